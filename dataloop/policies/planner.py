"""The LLM planner: the teacher LLM reads the observation and writes the plan as JSON."""

from __future__ import annotations

import asyncio
import json
import logging

from pydantic import ValidationError

from dataloop.engine.strategy import TeacherKind, Templates
from dataloop.errors import BudgetExhausted, TeacherError
from dataloop.llm.base import Completion, LLMClient, Message, Sampling
from dataloop.policies.base import Policy, allocate
from dataloop.policies.builtin import WeakestSkills
from dataloop.schema import Observation, Plan

log = logging.getLogger(__name__)

DEFAULT_STRATEGIES = ("new-question", "answer-augmentation", "question-rephrase")


class InvalidPlan(ValueError):
    """The teacher's reply is not a usable plan; the message says why."""


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


def parse_plan(text: str, skills: list[str], strategies: list[str], total: int) -> Plan:
    """The first JSON object in ``text`` as a Plan, scaled to ``total`` examples.

    Raises InvalidPlan when there is no JSON object, it does not validate against the Plan
    schema, it names an unknown skill or strategy, or it asks for nothing.
    """
    start = text.find("{")
    if start < 0:
        raise InvalidPlan("no JSON object in the reply")
    try:
        data, _ = json.JSONDecoder().raw_decode(text[start:])
    except json.JSONDecodeError as exc:
        raise InvalidPlan(f"reply is not valid JSON: {exc.msg}") from None
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "plan"
        raise InvalidPlan(f"not a Plan: field '{where}': {err['msg']}") from None
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

    In a run the teacher client, its kind and the prompt folder are the run's own
    (``teacher.*``, ``engine.prompts_dir``). Options:
        strategies: strategies the teacher may choose from (default new-question,
            answer-augmentation, question-rephrase).
        retries: extra attempts after an invalid plan (default 2).
        temperature: sampling temperature of the planning request (default 0.7).
        max_tokens: completion tokens of the planning request (default 384).
        failures_shown: failed train examples shown per skill (default 3).
        floor: weakest-skills' floor, for the fallback.
    """

    name = "llm-planner"

    def __init__(
        self,
        client: LLMClient,
        examples_per_iteration: int = 240,
        *,
        teacher_kind: TeacherKind = "base",
        templates: Templates | None = None,
        strategies: list[str] | None = None,
        retries: int = 2,
        temperature: float = 0.7,
        max_tokens: int = 384,
        failures_shown: int = 3,
        floor: float = 0.05,
        seed: int = 0,
    ) -> None:
        super().__init__(examples_per_iteration)
        if retries < 0:
            raise ValueError("retries must be >= 0")
        self.client = client
        self.teacher_kind: TeacherKind = teacher_kind
        self.templates = templates or Templates()
        self.strategies = list(strategies or DEFAULT_STRATEGIES)
        self.retries = retries
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.failures_shown = failures_shown
        self.seed = seed
        self.fallback = WeakestSkills(examples_per_iteration, floor=floor)

    def plan(self, obs: Observation) -> Plan:
        """The plan, from synchronous code; inside a running event loop await ``aplan``."""
        return asyncio.run(self.aplan(obs))

    async def aplan(self, obs: Observation) -> Plan:
        skills = [s.name for s in obs.skills]
        reasons: list[str] = []
        for attempt in range(1 + self.retries):
            try:
                reply = await self._ask(obs, skills, attempt)
            except (BudgetExhausted, TeacherError) as exc:
                reasons.append(f"teacher unavailable: {exc}")
                break
            text = reply.texts[0] if reply.texts else ""
            try:
                plan = parse_plan(text, skills, self.strategies, self.examples_per_iteration)
            except InvalidPlan as exc:
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
        return self.templates.render(
            f"llm_planner/{self.teacher_kind}.j2",
            obs=obs,
            skills=skills,
            failures_shown=self.failures_shown,
            examples_per_iteration=self.examples_per_iteration,
            strategies=self.strategies,
            queries_left=obs.budget.queries_left,
        )

    async def _ask(self, obs: Observation, skills: list[str], attempt: int) -> Completion:
        prompt = self.render(obs)
        # A new seed per attempt and iteration: a retry must not replay a cached bad reply.
        seed = self.seed + 1000 * obs.iteration + attempt
        if self.teacher_kind == "chat":
            sampling = Sampling(
                temperature=self.temperature,
                max_tokens=self.max_tokens,
                seed=seed,
                json_schema=plan_schema(skills, self.strategies),
            )
            return await self.client.chat([Message(role="user", content=prompt)], sampling)
        sampling = Sampling(
            temperature=self.temperature, max_tokens=self.max_tokens, seed=seed, stop=("\n\n",)
        )
        return await self.client.complete(prompt, sampling)
