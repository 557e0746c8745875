"""DataEnvGym's skill-tree teacher as its code builds it: subskills the teacher proposes, and
an explore/exploit action per skill (see :mod:`dataloop.policies.dataenvgym` for its other
teachers)."""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from dataloop.errors import BudgetExhausted, TeacherError
from dataloop.llm.base import Sampling
from dataloop.llm.structured import InvalidReply
from dataloop.llm.teacher import Teacher
from dataloop.policies.base import Policy, allocate
from dataloop.schema import Explore, GenerationRequest, Observation, Plan, SkillInfo, SkillNode
from dataloop.skills import parse_skills

log = logging.getLogger(__name__)


class TreeAction(BaseModel):
    """The teacher's action for one skill of the tree (DataEnvGym's ``SimpleAction``)."""

    model_config = ConfigDict(extra="forbid")

    action_type: Literal["explore", "exploit"]
    reasoning: str = ""
    num_new_skills: int | None = Field(default=None, ge=1)
    """Explore: subskills to add."""
    data_allocation: dict[str, int] | None = None
    """Exploit: examples per existing subskill (relative: scaled to the skill's share)."""


class DataEnvGymSkillTree(Policy):
    """DataEnvGym's skill-tree teacher: the teacher proposes subskills, and each skill
    alternates between exploring new ones and exploiting them by the student's accuracy on
    the data it was given.

    Follows codezakh/DataEnvGym's ``examples/math/skill_tree.py``: the skill-tree agent
    (``src/dataenvgym/gym/data_generation_agents/math/bandit_data_strategy.py``) with
    ``AlternatingExploreExploitPolicy`` (``.../math/handwritten_policies.py``), explore action
    ``Explore(num_new_skills=2, data_allocation_for_new_skills=30)``, and subskills proposed by
    the LLM (``ProposeSubskillsWithAzureOpenAI`` in ``.../math/bandit_components.py``: the
    skill, its subskills so far, "propose N new subskills"). Per skill, the first action is
    explore; after an explore comes an exploit, after an exploit an explore.

    - **explore**: the teacher proposes ``new_subskills`` subskills not in the tree (prompt
      ``dataenvgym_subskills/<kind>.j2``; asked again once for any missing, as DataEnvGym
      does), and the skill's share goes to them in equal parts. The teacher also places the
      skill's validation and seed examples among them (the run's labeller,
      :func:`dataloop.skills.subskill_labeller`).
    - **exploit**: the skill's share goes to the subskills the explore just added, in
      proportion to the student's error on their data (``1 - Subskill.data_accuracy``, the
      per-subskill part of ``Observation.data_accuracy``; none counts as 0 accuracy): the
      rule DataEnvGym's LLM action policy is given in the accumulate-train loop
      (``ACCUMULATE_TRAIN_ACTION_POLICY_TEMPLATE``: allocate to the subskills with the lowest
      training accuracy).

    The last action is read from the tree (an explore added subskills in the iteration
    observed), so a resumed run plans as the first would.

    Where dataloop differs: DataEnvGym's alternating exploit sets every allocation to zero;
    its loop calls the agent twice per training cycle (``accumulation_iterations_per_cycle=2``),
    so each cycle trains on one explore's data. Here one plan is one training round, and a
    round without data would be wasted, so exploit re-spends the share by data accuracy.
    ``perf_on_training_data`` is measured by DataEnvGym's quality checker before the student
    trains on the data, ``data_accuracy`` after. DataEnvGym gives each explored subskill 30
    examples (its total grows with the skills), with ``max_data_for_skill`` 200; here
    ``examples_per_iteration`` is split equally over the skills, so every policy spends the
    same. DataEnvGym's subskills are names; dataloop's need a sentence each, which the
    labeller reads. When the teacher proposes none, the skill's share goes to the whole skill.

    With ``actions: teacher`` the teacher chooses each skill's action itself, as DataEnvGym's
    LLM action policy does (``AzureOpenAIActionPolicy`` with
    ``ACCUMULATE_TRAIN_ACTION_POLICY_TEMPLATE`` in ``.../math/bandit_components.py``): the
    prompt (``dataenvgym_action/<kind>.j2``) shows the skill's validation accuracy and each
    subskill's training data and accuracy on its last data, and asks for the lowest training
    accuracy to get the data; the reply is a :class:`TreeAction` (explore with a number of new
    subskills, or exploit with an allocation over the subskills, scaled to the share). An
    invalid reply is asked again once, then the alternating rule decides (the rationale says
    so). DataEnvGym's prompt shows every past experience of the skill; the observation holds
    the tree as it is now, so this one shows that.

    ``teacher`` is the run's :class:`~dataloop.llm.teacher.Teacher`. Options:
        new_subskills: subskills one explore adds per skill (default 2; with ``actions:
            teacher``, the most the teacher may ask for).
        actions: ``alternating`` (default) or ``teacher``.
        temperature: sampling temperature of the teacher's requests (default 0.7).
        max_tokens: completion tokens of one proposal or action (default 160).
    """

    name = "dataenvgym-skill-tree"
    uses_teacher = True
    structures = frozenset({"skill-tree"})

    def __init__(
        self,
        teacher: Teacher,
        examples_per_iteration: int = 240,
        strategy: str = "new-question",
        *,
        new_subskills: int = 2,
        actions: Literal["alternating", "teacher"] = "alternating",
        temperature: float = 0.7,
        max_tokens: int = 160,
    ) -> None:
        super().__init__(examples_per_iteration, strategy)
        if new_subskills < 1:
            raise ValueError("new_subskills must be >= 1")
        if actions not in ("alternating", "teacher"):
            raise ValueError(f"actions must be alternating or teacher, not {actions!r}")
        self.teacher = teacher
        self.new_subskills = new_subskills
        self.actions = actions
        self.temperature = temperature
        self.max_tokens = max_tokens

    def plan(self, obs: Observation) -> Plan:
        """The plan, from synchronous code; inside a running event loop await ``aplan``."""
        return asyncio.run(self.aplan(obs))

    async def aplan(self, obs: Observation) -> Plan:
        if obs.tree is None:
            raise ValueError(
                f"policy '{self.name}' needs the skill tree (env.structure: skill-tree); this "
                f"observation is {obs.structure} and has none"
            )
        shares = allocate(self.examples_per_iteration, {n.name: 1.0 for n in obs.tree.skills})
        explore: list[Explore] = []
        requests: list[GenerationRequest] = []
        said: list[str] = []
        for node in obs.tree.skills:
            action, why = await self.action(node, obs)
            split: dict[str | None, int]
            if action.action_type == "exploit":
                weights = {k: float(max(v, 0)) for k, v in (action.data_allocation or {}).items()}
                split = {k: n for k, n in allocate(shares[node.name], weights).items()}
                said.append(f"{node.name}: exploit {why}")
            else:
                added = await self.propose(node, obs.iteration, action.num_new_skills)
                explore += added
                even = allocate(shares[node.name], {a.name: 1.0 for a in added})
                split = {k: n for k, n in even.items()} if added else {None: shares[node.name]}
                names = ", ".join(a.name for a in added) or "none proposed, whole skill"
                said.append(f"{node.name}: explore ({names}){why}")
            requests += [
                GenerationRequest(skill=node.name, subskill=sub, strategy=self.strategy, count=n)
                for sub, n in split.items()
                if n > 0
            ]
        return Plan(requests=requests, explore=explore, rationale="; ".join(said))

    def alternate(self, node: SkillNode, obs: Observation) -> tuple[TreeAction, str]:
        """DataEnvGym's alternation: exploit the subskills the last plan explored (those added
        in the iteration observed) by the error on their data, else explore."""
        last = [s for s in node.subskills if s.iteration == obs.iteration]
        if not last:
            return TreeAction(action_type="explore", num_new_skills=self.new_subskills), ""
        error = {s.name: round(100 * (1.0 - (s.data_accuracy or 0.0))) for s in last}
        accuracy = ", ".join(f"{s.name} {s.data_accuracy or 0.0:.0%}" for s in last)
        return TreeAction(action_type="exploit", data_allocation=error), (
            f"by data accuracy ({accuracy})"
        )

    async def action(self, node: SkillNode, obs: Observation) -> tuple[TreeAction, str]:
        """The skill's action and what to say of it: the alternation's, or the teacher's."""
        if self.actions == "alternating":
            return self.alternate(node, obs)
        known = {s.name for s in node.subskills}
        reasons: list[str] = []
        for attempt in range(2):
            sampling = Sampling(
                temperature=self.temperature,
                max_tokens=self.max_tokens,
                seed=self.teacher.sampling_seed(
                    self.name, "action", obs.iteration, node.name, attempt
                ),
                stop=("\n\n",) if self.teacher.kind == "base" else (),
            )
            prompt = self.teacher.render(
                "dataenvgym_action", obs=obs, node=node, most_new=self.new_subskills
            )
            try:
                action = await self.teacher.ask_json(prompt, TreeAction, sampling)
            except (BudgetExhausted, TeacherError) as exc:
                reasons.append(f"teacher unavailable: {exc}")
                break
            except InvalidReply as exc:
                reasons.append(str(exc))
                continue
            if action.action_type == "explore" and action.num_new_skills:
                action.num_new_skills = min(action.num_new_skills, self.new_subskills)
                return action, f" (teacher: {action.reasoning})"
            if action.action_type == "exploit" and action.data_allocation:
                unknown = set(action.data_allocation) - known
                if not unknown and any(v > 0 for v in action.data_allocation.values()):
                    return action, f"(teacher: {action.reasoning})"
                reasons.append(f"exploit names unknown subskills {sorted(unknown)} or no data")
                continue
            reasons.append(f"{action.action_type} without its numbers")
        action, why = self.alternate(node, obs)
        log.warning("%s fell back to the alternation for %s: %s", self.name, node.name, reasons[-1])
        return action, f"{why} (alternation: the teacher's action failed: {reasons[-1]})"

    async def propose(
        self, node: SkillNode, iteration: int, count: int | None = None
    ) -> list[Explore]:
        """``count`` (default ``new_subskills``) new subskills of ``node`` from the teacher
        (asked once more for any missing); fewer, or none, when it proposes fewer or cannot
        answer."""
        count = count or self.new_subskills
        known = {s.name for s in node.subskills}
        found: list[SkillInfo] = []
        for attempt in range(2):
            want = count - len(found)
            if want <= 0:
                break
            existing = [SkillInfo(name=s.name, description=s.description) for s in node.subskills]
            prompt = self.teacher.render(
                "dataenvgym_subskills", skill=node, subskills=existing + found, count=want
            )
            base = self.teacher.kind == "base"
            sampling = Sampling(
                temperature=self.temperature,
                max_tokens=self.max_tokens,
                seed=self.teacher.sampling_seed(self.name, iteration, node.name, attempt),
                stop=("\n\n",) if base else (),
            )
            try:
                text = (await self.teacher.ask(prompt, sampling)).texts[0]
            except (BudgetExhausted, TeacherError) as exc:
                log.warning("%s: no subskills proposed for %s: %s", self.name, node.name, exc)
                break
            # A base prompt ends inside the first "- name:" item; glue it back for parsing.
            prefix = prompt[prompt.rfind("\n") + 1 :] if base else ""
            for info in parse_skills(prefix + text, want):
                if info.name not in known and info.name not in {f.name for f in found}:
                    found.append(info)
        return [
            Explore(skill=node.name, name=f.name, description=f.description) for f in found[:count]
        ]
