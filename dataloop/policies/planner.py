"""The LLM planner: the teacher LLM reads the observation and writes the plan as JSON."""

from __future__ import annotations

import asyncio
import logging

from dataloop.errors import BudgetExhausted, TeacherError
from dataloop.llm.base import Sampling
from dataloop.llm.structured import InvalidReply
from dataloop.llm.teacher import Teacher
from dataloop.policies.base import Policy, allocate
from dataloop.policies.builtin import WeakestSkills
from dataloop.schema import Observation, Plan

log = logging.getLogger(__name__)

DEFAULT_STRATEGIES = ("new-question", "answer-augmentation", "question-rephrase")


class InvalidPlan(InvalidReply):
    """The teacher's plan names an unknown skill or strategy, or asks for nothing."""


def plan_schema(skills: list[str], strategies: list[str]) -> dict[str, object]:
    """JSON schema of the plan the teacher writes: the Plan model narrowed to known names."""
    request = {
        "type": "object",
        "properties": {
            "skill": {"type": "string", "enum": skills},
            "strategy": {"type": "string", "enum": strategies},
            "count": {"type": "integer", "minimum": 0},
        },
        "required": ["skill", "strategy", "count"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {
            "requests": {"type": "array", "items": request},
            "rationale": {"type": "string"},
        },
        "required": ["requests", "rationale"],
        "additionalProperties": False,
    }


def check_plan(plan: Plan, skills: list[str], strategies: list[str], total: int) -> Plan:
    """``plan`` scaled to ``total`` examples, once it names only known skills and strategies.

    Raises InvalidPlan when it names an unknown skill or strategy, or asks for nothing.
    """
    for request in plan.requests:
        if request.skill not in skills:
            raise InvalidPlan(f"unknown skill '{request.skill}'")
        if request.strategy not in strategies:
            raise InvalidPlan(f"strategy '{request.strategy}' is not one of {strategies}")
    if plan.total == 0:
        raise InvalidPlan("the plan asks for no examples")
    # The teacher chooses the split; the iteration's size stays the user's to set.
    scaled = allocate(total, {str(i): float(r.count) for i, r in enumerate(plan.requests)})
    requests = [
        r.model_copy(update={"count": scaled[str(i)]})
        for i, r in enumerate(plan.requests)
        if scaled[str(i)] > 0
    ]
    return Plan(requests=requests, rationale=plan.rationale)


class LLMPlanner(Policy):
    """The teacher LLM reads the rendered observation and writes the plan as JSON.

    The prompt is ``prompts/llm_planner/base.j2`` (few-shot completion) or ``chat.j2`` (a chat
    message; the reply is constrained by a JSON schema where the server supports it). The reply
    must validate against the :class:`~dataloop.schema.Plan` schema and name only known skills
    and the allowed strategies; its counts are scaled to ``examples_per_iteration``. An
    invalid reply is retried (with a different sampling seed) ``retries`` times; then the plan
    falls back to weakest-skills, and the reason is logged and put in the plan's rationale.
    Every attempt is a teacher query and counts against the budget.

    ``teacher`` is the run's :class:`~dataloop.llm.teacher.Teacher` (client, kind, prompt
    folder and seed: ``teacher.*``, ``engine.prompts_dir``). Options:
        strategies: strategies the teacher may choose from (default new-question,
            answer-augmentation, question-rephrase).
        retries: extra attempts after an invalid plan (default 2).
        temperature: sampling temperature of the planning request (default 0.7).
        max_tokens: completion tokens of the planning request (default 384).
        failures_shown: failed train examples shown per skill (default 3).
        floor: weakest-skills' floor, for the fallback.
    """

    name = "llm-planner"
    uses_teacher = True

    def __init__(
        self,
        teacher: Teacher,
        examples_per_iteration: int = 240,
        *,
        strategies: list[str] | None = None,
        retries: int = 2,
        temperature: float = 0.7,
        max_tokens: int = 384,
        failures_shown: int = 3,
        floor: float = 0.05,
    ) -> None:
        super().__init__(examples_per_iteration)
        if retries < 0:
            raise ValueError("retries must be >= 0")
        self.teacher = teacher
        self.strategies = list(strategies or DEFAULT_STRATEGIES)
        self.retries = retries
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.failures_shown = failures_shown
        self.fallback = WeakestSkills(examples_per_iteration, floor=floor)

    def plan(self, obs: Observation) -> Plan:
        """The plan, from synchronous code; inside a running event loop await ``aplan``."""
        return asyncio.run(self.aplan(obs))

    async def aplan(self, obs: Observation) -> Plan:
        skills = [s.name for s in obs.skills]
        reasons: list[str] = []
        for attempt in range(1 + self.retries):
            # A new seed per attempt and iteration: a retry must not replay a cached bad reply.
            sampling = Sampling(
                temperature=self.temperature,
                max_tokens=self.max_tokens,
                seed=self.teacher.seed + 1000 * obs.iteration + attempt,
                stop=("\n\n",) if self.teacher.kind == "base" else (),
            )
            try:
                reply = await self.teacher.ask_json(
                    self.render(obs), Plan, sampling, schema=plan_schema(skills, self.strategies)
                )
                plan = check_plan(reply, skills, self.strategies, self.examples_per_iteration)
            except (BudgetExhausted, TeacherError) as exc:
                reasons.append(f"teacher unavailable: {exc}")
                break
            except InvalidReply as exc:
                reasons.append(str(exc))
                log.info("llm-planner attempt %d: invalid plan: %s", attempt + 1, exc)
                continue
            return plan.model_copy(update={"rationale": f"teacher: {plan.rationale}".strip()})
        reason = f"{len(reasons)} attempt(s) failed, last: {reasons[-1]}"
        log.warning("llm-planner fell back to weakest-skills: %s", reason)
        fallback = self.fallback.plan(obs)
        return fallback.model_copy(
            update={"rationale": f"fallback to weakest-skills ({reason}); {fallback.rationale}"}
        )

    def render(self, obs: Observation) -> str:
        """The planning prompt for ``obs`` (``llm_planner/<kind>.j2``)."""
        skills = [
            {
                "name": s.name,
                "description": s.description,
                "accuracy": obs.accuracy.get(s.name, 0.0),
                "seeds": obs.seed_counts.get(s.name, 0),
                "failed": [f for f in obs.failures if f.example.skill == s.name],
            }
            for s in obs.skills
        ]
        return self.teacher.render(
            "llm_planner",
            obs=obs,
            skills=skills,
            failures_shown=self.failures_shown,
            examples_per_iteration=self.examples_per_iteration,
            strategies=self.strategies,
            queries_left=obs.budget.queries_left,
        )
