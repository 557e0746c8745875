"""Rule policies for the structures beyond the skill list: ``error-guided`` (made for
``open-ended``) and ``skill-tree``.

As DataEnvGym's teacher environments: an open-ended teacher sees no per-skill accuracy, only
the mean and the questions the student gets wrong, and answers with a data specification; a
skill-tree teacher grows subskills under each skill (explore) and splits the data across them
(exploit). Each policy reads only the :class:`~dataloop.schema.Observation`, so a resumed run
plans as the first would have.
"""

from __future__ import annotations

from dataloop.policies.base import Policy, allocate, check_fraction
from dataloop.schema import (
    Explore,
    Failure,
    GenerationRequest,
    Observation,
    Plan,
    SkillInfo,
    SkillNode,
    SkillTree,
    Subskill,
)


def failed_examples(obs: Observation) -> tuple[list[Failure], str]:
    """The failed examples an open-ended teacher reads, and what they are, in words: the failed
    feedback probes, or the failed train examples when there are no probes."""
    if obs.probes:
        return obs.probes, "failed probes"
    return obs.failures, "failed train examples (no probes)"


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines too) made one space."""
    return " ".join(text.split())


_GUIDANCE_HEAD = "The student gets questions like these wrong: "
_GUIDANCE_TAIL = " Write questions of this kind."


class ErrorGuided(Policy):
    """Examples in proportion to each skill's failed probes, each request with a data
    specification written from them: an open-ended teacher that reads no per-skill accuracy.

    Reads only ``obs.probes`` (failed examples of the held-out feedback split), or, when there
    are none, ``obs.failures`` (failed train examples; the rationale says so). Every skill gets
    the floor first; the rest is split by the number of failed examples per skill. Each
    request's ``guidance`` quotes up to ``shown`` of the skill's failed examples on one line::

        The student gets questions like these wrong: "sort(5213)" (answer "1235", it said
        "1253"); ... Write questions of this kind.

    A skill with nothing failed gets the floor and no guidance; with nothing failed at all the
    plan is uniform. Deterministic: the same observation gives the same plan.

    Options:
        floor: fraction of the iteration's examples every skill gets first (default 0.05).
        shown: failed examples quoted per skill in the guidance (default 3).
        max_guidance_chars: longest guidance; a longer one is cut (with "…") before its
            closing sentence (default 400).
    """

    name = "error-guided"

    def __init__(
        self,
        examples_per_iteration: int = 240,
        strategy: str = "new-question",
        *,
        floor: float = 0.05,
        shown: int = 3,
        max_guidance_chars: int = 400,
    ) -> None:
        super().__init__(examples_per_iteration, strategy)
        if shown < 1:
            raise ValueError("shown must be >= 1")
        if max_guidance_chars < 100:
            raise ValueError("max_guidance_chars must be >= 100 (room for one example)")
        self.floor = check_fraction("floor", floor)
        self.shown = shown
        self.max_guidance_chars = max_guidance_chars

    def guidance(self, failed: list[Failure]) -> str:
        """A one-line data specification quoting the first ``shown`` of ``failed``; "" if none."""
        if not failed:
            return ""
        quoted = "; ".join(
            f'"{one_line(f.example.question)}" (answer "{one_line(f.example.answer)}", '
            f'it said "{one_line(f.prediction)}")'
            for f in failed[: self.shown]
        )
        room = self.max_guidance_chars - len(_GUIDANCE_TAIL)
        body = f"{_GUIDANCE_HEAD}{quoted}."
        if len(body) > room:
            body = body[: room - 1].rstrip() + "…"
        return body + _GUIDANCE_TAIL

    def plan(self, obs: Observation) -> Plan:
        failed, source = failed_examples(obs)
        by_skill: dict[str, list[Failure]] = {s.name: [] for s in obs.skills}
        for failure in failed:
            if failure.example.skill in by_skill:
                by_skill[failure.example.skill].append(failure)
        counts = {skill: len(fs) for skill, fs in by_skill.items()}
        if not any(counts.values()):
            allocation = allocate(self.examples_per_iteration, counts)
            rationale = "no failed probes or train examples: equal share per skill, no guidance"
        else:
            allocation = allocate(self.examples_per_iteration, counts, self.floor)
            most = sorted((s for s in counts if counts[s]), key=lambda s: -counts[s])[:3]
            rationale = f"by {source}: " + ", ".join(f"{s} {counts[s]}" for s in most)
        requests = [
            GenerationRequest(
                skill=skill,
                strategy=self.strategy,
                count=count,
                guidance=self.guidance(by_skill[skill]),
            )
            for skill, count in allocation.items()
            if count > 0
        ]
        return Plan(requests=requests, rationale=rationale)


Leaf = tuple[str, str | None]
"""A place data can go in the skill tree: (skill, subskill), or (skill, None) for a whole skill
without subskills."""


class SkillTreePolicy(Policy):
    """A rule-based DataEnvGym skill-tree teacher: grows subskills the task offers, then splits
    the data across the tree's leaves by error.

    Reads ``obs.tree``. Each iteration, for every skill:

    - **explore**: when none of its subskills still needs data (it has none yet, or each is
      learned or stuck) and the task offers a candidate, add the first ``explore_per_iteration``
      of ``node.candidates`` (a rule cannot invent a subskill; ``llm-planner`` can);
    - **exploit**: the leaves are the skill's subskills (those just added too) or, when it has
      none, the skill itself; ``examples_per_iteration`` is split across all leaves by error
      (1 - accuracy) after a ``floor`` per leaf; a learned leaf gets only the floor.

    A leaf is **learned** at accuracy ≥ ``learned``. A subskill is **stuck** when it is not
    learned although the training set already holds ``stuck_data`` of its examples (seeds and
    accepted): more of the same is unlikely to help, so its skill opens another branch (it
    keeps its share of the data). The rule reads only the observation, not a history of
    subskill accuracies (the history has none), so a resumed run decides as the first would.
    A subskill without accuracy (just added, or no validation items of its own) counts at its
    skill's accuracy: nothing says it is weaker or stronger than the skill.

    Options:
        learned: accuracy at which a leaf is learned (default 0.9).
        stuck_data: training examples after which a subskill still under ``learned`` is stuck
            (default 100).
        explore_per_iteration: most subskills added per skill and iteration (default 1; 0
            never explores).
        floor: fraction of the iteration's examples every leaf gets first (default 0.05;
            the floor is at most an equal share, so with many leaves lower it).
    """

    name = "skill-tree"
    structures = frozenset({"skill-tree"})

    def __init__(
        self,
        examples_per_iteration: int = 240,
        strategy: str = "new-question",
        *,
        learned: float = 0.9,
        stuck_data: int = 100,
        explore_per_iteration: int = 1,
        floor: float = 0.05,
    ) -> None:
        super().__init__(examples_per_iteration, strategy)
        if stuck_data < 0:
            raise ValueError("stuck_data must be >= 0")
        if explore_per_iteration < 0:
            raise ValueError("explore_per_iteration must be >= 0")
        self.learned = check_fraction("learned", learned)
        self.stuck_data = stuck_data
        self.explore_per_iteration = explore_per_iteration
        self.floor = check_fraction("floor", floor)

    @staticmethod
    def accuracy(subskill: Subskill, node: SkillNode) -> float:
        """The subskill's accuracy, or its skill's when it has none."""
        return node.accuracy if subskill.accuracy is None else subskill.accuracy

    def stuck(self, subskill: Subskill, node: SkillNode) -> bool:
        """Not learned although ``stuck_data`` of its examples are in the training set."""
        return self.accuracy(subskill, node) < self.learned and subskill.data >= self.stuck_data

    def to_explore(self, node: SkillNode) -> list[SkillInfo]:
        """The candidates to add under ``node`` now: none while a subskill still needs data."""
        done = all(
            self.accuracy(s, node) >= self.learned or self.stuck(s, node) for s in node.subskills
        )
        return node.candidates[: self.explore_per_iteration] if done else []

    def plan(self, obs: Observation) -> Plan:
        tree = _tree(obs)
        explore: list[Explore] = []
        at: dict[Leaf, float] = {}  # each leaf's accuracy
        for node in tree.skills:
            added = self.to_explore(node)
            explore += [
                Explore(skill=node.name, name=c.name, description=c.description) for c in added
            ]
            for sub in node.subskills:
                at[node.name, sub.name] = self.accuracy(sub, node)
            for candidate in added:
                at[node.name, candidate.name] = node.accuracy
            if not node.subskills and not added:
                at[node.name, None] = node.accuracy
        errors = {leaf: 0.0 if a >= self.learned else 1.0 - a for leaf, a in at.items()}
        allocation = allocate(self.examples_per_iteration, errors, self.floor)
        requests = [
            GenerationRequest(skill=skill, subskill=sub, strategy=self.strategy, count=count)
            for (skill, sub), count in allocation.items()
            if count > 0
        ]
        new = {(e.skill, e.name) for e in explore}
        weakest = sorted(at, key=lambda leaf: at[leaf])[:3]
        shown = ", ".join(
            f"{_label(leaf)} {at[leaf]:.0%}{' (new)' if leaf in new else ''}" for leaf in weakest
        )
        explored = ", ".join(f"{e.skill}/{e.name}" for e in explore) or "nothing"
        return Plan(
            requests=requests,
            explore=explore,
            rationale=f"explored: {explored}; weakest: {shown}",
        )


def _label(leaf: Leaf) -> str:
    skill, subskill = leaf
    return skill if subskill is None else f"{skill}/{subskill}"


def _tree(obs: Observation) -> SkillTree:
    if obs.tree is None:
        raise ValueError(
            f"policy 'skill-tree' needs the skill tree (env.structure: skill-tree); this "
            f"observation is {obs.structure} and has none"
        )
    return obs.tree
