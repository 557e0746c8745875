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
from dataloop.policies.structured import ErrorGuided, SkillTreePolicy, failed_examples, one_line
from dataloop.schema import Explore, GenerationRequest, Observation, Plan, SkillTree
from dataloop.taxonomy import slug

log = logging.getLogger(__name__)

DEFAULT_STRATEGIES = ("new-question", "answer-augmentation", "question-rephrase")


class InvalidPlan(InvalidReply):
    """The teacher's plan names an unknown skill, strategy or subskill, or asks for nothing."""


def plan_schema(
    skills: list[str], strategies: list[str], structure: str = "skill-list"
) -> dict[str, object]:
    """JSON schema of the plan the teacher writes: the Plan model narrowed to known names.

    Every field is required, as OpenAI's strict mode asks. In ``open-ended`` and ``skill-tree``
    a request also has ``guidance`` (may be empty); in ``skill-tree`` a ``subskill`` (null for
    the whole skill), and the plan an ``explore`` list (may be empty).
    """
    request: dict[str, object] = {"skill": {"type": "string", "enum": skills}}
    if structure == "skill-tree":
        request["subskill"] = {"type": ["string", "null"]}
    request["strategy"] = {"type": "string", "enum": strategies}
    request["count"] = {"type": "integer", "minimum": 0}
    if structure != "skill-list":
        request["guidance"] = {"type": "string"}
    plan: dict[str, object] = {}
    if structure == "skill-tree":
        explore = {
            "skill": {"type": "string", "enum": skills},
            "name": {"type": "string"},
            "description": {"type": "string"},
        }
        plan["explore"] = {"type": "array", "items": _closed(explore)}
    plan["requests"] = {"type": "array", "items": _closed(request)}
    plan["rationale"] = {"type": "string"}
    return _closed(plan)


def _closed(properties: dict[str, object]) -> dict[str, object]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def check_plan(
    plan: Plan,
    skills: list[str],
    strategies: list[str],
    total: int,
    tree: SkillTree | None = None,
) -> Plan:
    """``plan`` scaled to ``total`` examples, once it names only known skills, strategies and
    (with the skill ``tree``) subskills.

    An explore's name is made a slug; an explore of a subskill its skill already has (or that
    the plan explores twice) is dropped, as it asks for what is there. A request's subskill
    must be under its skill in ``tree`` or explored by this plan; an empty one means the whole
    skill. Guidance is put on one line. Raises InvalidPlan when the plan names an unknown
    skill, strategy or subskill, explores without a tree, adds a subskill of its own without a
    description, or asks for nothing.
    """
    explore = _check_explore(plan.explore, tree)
    requests: list[GenerationRequest] = []
    for request in plan.requests:
        if request.skill not in skills:
            raise InvalidPlan(f"unknown skill '{request.skill}'")
        if request.strategy not in strategies:
            raise InvalidPlan(f"strategy '{request.strategy}' is not one of {strategies}")
        subskill = _check_subskill(request, tree, explore)
        guidance = one_line(request.guidance)
        requests.append(request.model_copy(update={"subskill": subskill, "guidance": guidance}))
    if plan.total == 0:
        raise InvalidPlan("the plan asks for no examples")
    # The teacher chooses the split; the iteration's size stays the user's to set.
    scaled = allocate(total, {i: r.count for i, r in enumerate(requests)})
    requests = [
        r.model_copy(update={"count": scaled[i]}) for i, r in enumerate(requests) if scaled[i] > 0
    ]
    return Plan(requests=requests, rationale=plan.rationale, explore=explore)


def _check_explore(explore: list[Explore], tree: SkillTree | None) -> list[Explore]:
    if explore and tree is None:
        raise InvalidPlan("the plan explores subskills, but this run has no skill tree")
    kept: list[Explore] = []
    for action in explore:
        node = tree.node(action.skill) if tree else None
        if node is None:
            raise InvalidPlan(f"explore: unknown skill '{action.skill}'")
        name = slug(action.name)
        if not name:
            raise InvalidPlan(f"explore: subskill name '{action.name}' has no letters or digits")
        if node.subskill(name) or any((k.skill, k.name) == (action.skill, name) for k in kept):
            log.info("llm-planner: dropped explore of %s/%s: already there", action.skill, name)
            continue
        offered = any(c.name == name for c in node.candidates)
        if not offered and not action.description.strip():
            raise InvalidPlan(
                f"explore: new subskill '{name}' of '{action.skill}' needs a description "
                "(only the task's candidates may go without)"
            )
        kept.append(
            action.model_copy(update={"name": name, "description": one_line(action.description)})
        )
    return kept


def _check_subskill(
    request: GenerationRequest, tree: SkillTree | None, explore: list[Explore]
) -> str | None:
    if not request.subskill:
        return None
    if tree is None:
        raise InvalidPlan(
            f"request for '{request.skill}' names subskill '{request.subskill}', but this run "
            "has no skill tree"
        )
    node = tree.node(request.skill)
    names = [s.name for s in node.subskills] if node else []
    names += [e.name for e in explore if e.skill == request.skill]
    for name in (request.subskill, slug(request.subskill)):
        if name in names:
            return name
    raise InvalidPlan(
        f"subskill '{request.subskill}' is not under skill '{request.skill}' in the tree nor "
        f"explored by the plan; its subskills: {', '.join(names) or 'none'}"
    )


class LLMPlanner(Policy):
    """The teacher LLM reads the rendered observation and writes the plan as JSON.

    The prompt is ``prompts/llm_planner/base.j2`` (few-shot completion) or ``chat.j2`` (a chat
    message; the reply is constrained by a JSON schema where the server supports it). The reply
    must validate against the :class:`~dataloop.schema.Plan` schema and name only known skills
    and the allowed strategies; its counts are scaled to ``examples_per_iteration``. An
    invalid reply is retried (with a different sampling seed) ``retries`` times; then the plan
    falls back to a rule policy for the observation's structure (``error-guided`` for
    open-ended, ``weakest-skills`` for skill-list, ``skill-tree`` for skill-tree), and the
    reason is logged and put in the plan's rationale. Every attempt is a teacher query and
    counts against the budget.

    What the prompt shows follows ``obs.structure``: in ``open-ended`` no per-skill accuracy,
    the mean accuracy so far and the failed probes, and the teacher writes each request's
    ``guidance`` (a data specification); in ``skill-tree`` the tree (subskills with accuracy,
    validation items and training data; the task's candidates), and the teacher may
    ``explore`` (add subskills) and name a ``subskill`` per request (see :func:`check_plan`).

    ``teacher`` is the run's :class:`~dataloop.llm.teacher.Teacher` (client, kind, prompt
    folder and seed: ``teacher.*``, ``engine.prompts_dir``). Options:
        strategies: strategies the teacher may choose from (default new-question,
            answer-augmentation, question-rephrase).
        retries: extra attempts after an invalid plan (default 2).
        temperature: sampling temperature of the planning request (default 0.7).
        max_tokens: completion tokens of the planning request (default 384).
        failures_shown: failed examples shown per skill (default 3): failed probes in
            open-ended, failed train examples otherwise.
        floor: the fallback's floor (as weakest-skills').
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
        self.fallbacks: dict[str, Policy] = {
            "open-ended": ErrorGuided(examples_per_iteration, floor=floor),
            "skill-list": WeakestSkills(examples_per_iteration, floor=floor),
            "skill-tree": SkillTreePolicy(examples_per_iteration, floor=floor),
        }

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
                schema = plan_schema(skills, self.strategies, obs.structure)
                reply = await self.teacher.ask_json(self.render(obs), Plan, sampling, schema=schema)
                plan = check_plan(
                    reply, skills, self.strategies, self.examples_per_iteration, obs.tree
                )
            except (BudgetExhausted, TeacherError) as exc:
                reasons.append(f"teacher unavailable: {exc}")
                break
            except InvalidReply as exc:
                reasons.append(str(exc))
                log.info("llm-planner attempt %d: invalid plan: %s", attempt + 1, exc)
                continue
            return plan.model_copy(update={"rationale": f"teacher: {plan.rationale}".strip()})
        reason = f"{len(reasons)} attempt(s) failed, last: {reasons[-1]}"
        policy = self.fallbacks[obs.structure]
        log.warning("llm-planner fell back to %s: %s", policy.name, reason)
        fallback = policy.plan(obs)
        return fallback.model_copy(
            update={"rationale": f"fallback to {policy.name} ({reason}); {fallback.rationale}"}
        )

    def render(self, obs: Observation) -> str:
        """The planning prompt for ``obs`` (``llm_planner/<kind>.j2``)."""
        failed = failed_examples(obs)[0] if obs.structure == "open-ended" else obs.failures
        skills = [
            {
                "name": s.name,
                "description": s.description,
                "accuracy": obs.accuracy.get(s.name, 0.0),
                "seeds": obs.seed_counts.get(s.name, 0),
                "failed": [f for f in failed if f.example.skill == s.name],
                "node": obs.tree.node(s.name) if obs.tree else None,
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
