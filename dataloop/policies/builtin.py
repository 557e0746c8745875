"""The built-in rule policies: uniform, weakest-skills, learning-progress, llm2llm, budget-ratio.

Each reads only the :class:`~dataloop.schema.Observation`; the options of each are its
constructor's keyword arguments (``policy.options`` in a run config).
"""

from __future__ import annotations

import logging
import math
from itertools import chain, zip_longest

from dataloop.policies.base import Policy, allocate, check_fraction
from dataloop.schema import Failure, GenerationRequest, Observation, Plan

log = logging.getLogger(__name__)


class Uniform(Policy):
    """The same number of examples for every skill: the baseline."""

    name = "uniform"

    def plan(self, obs: Observation) -> Plan:
        allocation = allocate(self.examples_per_iteration, {s.name: 1.0 for s in obs.skills})
        return Plan(requests=self.requests_for(allocation), rationale="equal share per skill")


class WeakestSkills(Policy):
    """Error-proportional allocation: examples in proportion to each skill's validation error,
    with a floor per skill.

    The weaker the skill, the more data it gets; the prompts show seed examples, never the
    student's failures. This moves the quantity of data, not its content: it is not
    DataEnvGym's skill-list teacher, which shows each skill's failures at equal quantity
    (:class:`~dataloop.policies.dataenvgym.DataEnvGymSkillList`).

    Options:
        floor: fraction of the iteration's examples every skill gets first (default 0.05), so a
            nearly-solved skill is not forgotten; the rest is split by error (1 - accuracy).
    """

    name = "weakest-skills"
    structures = frozenset({"skill-list", "skill-tree"})  # reads per-skill accuracy

    def __init__(
        self, examples_per_iteration: int = 240, strategy: str = "new-question", floor: float = 0.05
    ) -> None:
        super().__init__(examples_per_iteration, strategy)
        self.floor = check_fraction("floor", floor)

    def allocation(self, obs: Observation) -> dict[str, int]:
        """Examples per skill: the floor each, the rest in proportion to error."""
        errors = {s.name: 1.0 - obs.accuracy.get(s.name, 0.0) for s in obs.skills}
        return allocate(self.examples_per_iteration, errors, self.floor)

    def weakest(self, obs: Observation, n: int = 3) -> str:
        """The ``n`` weakest skills with their accuracy, for a rationale."""
        weakest = sorted(obs.skills, key=lambda s: obs.accuracy.get(s.name, 0.0))[:n]
        return ", ".join(f"{s.name} {obs.accuracy.get(s.name, 0.0):.0%}" for s in weakest)

    def plan(self, obs: Observation) -> Plan:
        return Plan(
            requests=self.requests_for(self.allocation(obs)),
            rationale=f"by error; weakest: {self.weakest(obs)}",
        )


class LearningProgress(WeakestSkills):
    """Examples in proportion to each skill's recent gain in validation accuracy, with a floor.

    Error is not where data pays when the weakest skill does not move with more of it (E1b in
    docs/benchmarks.md: ``reverse`` absorbs weakest-skills' extra data and stays near 0 %). This
    policy puts data where the student was seen to learn: a skill's weight is its accuracy gain
    over the last ``window`` iterations, clipped at 0, after a floor per skill; with no history
    yet (the first plan) or no gain anywhere, the split is uniform. Learning progress as a
    curriculum signal follows Graves et al. (2017) and Portelas et al. (2020); here it is the
    plain gain per skill, the simplest form.

    Options:
        floor: fraction of the iteration's examples every skill gets first (default 0.05).
        window: iterations over which the gain is measured (default 1: the last one).
    """

    name = "learning-progress"

    def __init__(
        self,
        examples_per_iteration: int = 240,
        strategy: str = "new-question",
        floor: float = 0.05,
        window: int = 1,
    ) -> None:
        super().__init__(examples_per_iteration, strategy, floor)
        if window < 1:
            raise ValueError("window must be >= 1")
        self.window = window

    def gains(self, obs: Observation) -> dict[str, float]:
        """Per skill, validation accuracy now minus ``window`` observations ago (0 before
        there is a history), clipped at 0."""
        if len(obs.history) < 2:
            return {s.name: 0.0 for s in obs.skills}
        before = obs.history[-1 - min(self.window, len(obs.history) - 1)].accuracy
        now = obs.history[-1].accuracy
        return {
            s.name: max(0.0, now.get(s.name, 0.0) - before.get(s.name, 0.0)) for s in obs.skills
        }

    def allocation(self, obs: Observation) -> dict[str, int]:
        """Examples per skill: the floor each, the rest in proportion to gain."""
        return allocate(self.examples_per_iteration, self.gains(obs), self.floor)

    def plan(self, obs: Observation) -> Plan:
        gains = self.gains(obs)
        top = sorted(gains, key=lambda s: -gains[s])[:3]
        shown = ", ".join(f"{s} {gains[s]:+.0%}" for s in top)
        rationale = f"by gain; largest: {shown}" if any(gains.values()) else "no gain yet: uniform"
        return Plan(requests=self.requests_for(self.allocation(obs)), rationale=rationale)


def _interleave_by_skill(failures: list[Failure]) -> list[Failure]:
    # Round-robin over skills, so a cap keeps every failing skill represented.
    groups: dict[str, list[Failure]] = {}
    for failure in failures:
        groups.setdefault(failure.example.skill, []).append(failure)
    rounds = zip_longest(*groups.values())
    return [f for f in chain.from_iterable(rounds) if f is not None]


class LLM2LLM(Policy):
    """One error-targeting request per seed example the student gets wrong (LLM2LLM).

    Following LLM2LLM (Lee et al., 2024, arXiv:2403.15042): every seed (train)
    example the student answers wrongly becomes a request of strategy ``llm2llm`` whose
    ``seed_ids`` is that example's id, for ``per_failure`` new examples (the paper: one). Every
    failure is targeted: the plan's size is the number of failures, not
    ``examples_per_iteration``, which this policy does not use. A cap is only ever the
    ``max_failures`` option; when it bites, the failures are taken round-robin over skills and
    the plan's rationale and the log say how many were left out. With no failures the plan is
    empty. In a run, this policy also makes the student retrain from the base model each
    iteration (``student.train_from: base``), unless the config sets ``train_from``.

    Options:
        per_failure: examples asked for per failed example (default 1, as the paper).
        max_failures: most failed examples targeted per iteration (default None: all).
    """

    name = "llm2llm"

    def __init__(
        self,
        examples_per_iteration: int = 240,
        strategy: str = "llm2llm",
        per_failure: int = 1,
        max_failures: int | None = None,
    ) -> None:
        super().__init__(examples_per_iteration, strategy)
        if per_failure < 1:
            raise ValueError("per_failure must be >= 1")
        if max_failures is not None and max_failures < 0:
            raise ValueError("max_failures must be >= 0 (or None for all)")
        self.per_failure = per_failure
        self.max_failures = max_failures

    def plan(self, obs: Observation) -> Plan:
        chosen = _interleave_by_skill(obs.failures)
        rationale = f"all {len(chosen)} failed train examples targeted"
        if self.max_failures is not None and len(chosen) > self.max_failures:
            chosen = chosen[: self.max_failures]
            rationale = (
                f"{len(chosen)} of {len(obs.failures)} failed train examples targeted "
                f"(policy option max_failures={self.max_failures})"
            )
            log.warning("llm2llm: %s", rationale)
        requests = [
            GenerationRequest(
                skill=f.example.skill,
                strategy=self.strategy,
                count=self.per_failure,
                seed_ids=[f.example.id],
            )
            for f in chosen
        ]
        return Plan(requests=requests, rationale=rationale)


SWITCH_BY_SEED_COUNT: dict[int, float] = {100: 27.0, 1000: 17.6}
"""Seed-set size -> budget ratio at which new questions overtake answer augmentation, as this
project reads Chan et al. (arXiv:2409.19759): 17.6 is the average switch reported for 1,000
seeds, 27 the low end of the 27-51 reported for 100 seeds. Not re-checked against the paper's
tables; see docs/policies.md."""


class BudgetRatio(WeakestSkills):
    """Chooses the strategy from the run's budget ratio; allocates across skills as weakest-skills.

    Chan et al., "Balancing Cost and Effectiveness of Synthetic Data Generation Strategies for
    LLMs" (NeurIPS 2024 FITML workshop, arXiv:2409.19759) define the budget ratio
    BR = teacher query budget / seed set size and find that the best strategy depends on it:
    when BR is low, new answers to the existing questions (answer augmentation) train the
    student best; as it grows, new questions win; where the switch lies depends on the seed
    set's size (:data:`SWITCH_BY_SEED_COUNT`). Question rephrasing sits between the two.

    BR is the run's *total* query budget (``obs.budget.max_queries``, i.e.
    ``teacher.max_queries``; unlimited counts as infinite) over the seed set size
    (``sum(obs.seed_counts.values())``). Both are fixed for a run, so the strategy is chosen
    once and every iteration (and a resumed run) plans with the same one. The paper spends one
    query per generated example whatever the strategy; a run with this policy makes that so by
    defaulting ``engine.per_query`` to 1 (see :mod:`dataloop.config`).

    - ``BR < answer_augmentation_below``: ``answer-augmentation``
    - ``answer_augmentation_below <= BR < rephrase_below``: ``question-rephrase``
    - otherwise: ``new-question``

    Options:
        answer_augmentation_below: BR under which answers are augmented (default: the switch
            for the seed-set size in :data:`SWITCH_BY_SEED_COUNT` nearest the run's, on a log
            scale).
        rephrase_below: BR under which questions are rephrased rather than new ones written
            (default: no rephrase band, as the paper finds new questions generally better;
            raise it for a weak teacher).
        floor: as for weakest-skills.
    """

    name = "budget-ratio"

    def __init__(
        self,
        examples_per_iteration: int = 240,
        floor: float = 0.05,
        answer_augmentation_below: float | None = None,
        rephrase_below: float | None = None,
    ) -> None:
        super().__init__(examples_per_iteration, "new-question", floor)
        if answer_augmentation_below is not None and answer_augmentation_below < 0:
            raise ValueError("answer_augmentation_below must be >= 0")
        if (
            answer_augmentation_below is not None
            and rephrase_below is not None
            and rephrase_below < answer_augmentation_below
        ):
            raise ValueError("need 0 <= answer_augmentation_below <= rephrase_below")
        self.answer_augmentation_below = answer_augmentation_below
        self.rephrase_below = rephrase_below

    @staticmethod
    def ratio(obs: Observation) -> float:
        """The run's query budget per seed example; infinite when either is unbounded."""
        total = obs.budget.max_queries
        seeds = sum(obs.seed_counts.values())
        return math.inf if total is None or seeds == 0 else total / seeds

    def switch(self, seeds: int) -> float:
        """The BR under which answers are augmented, for a seed set of ``seeds`` examples."""
        if self.answer_augmentation_below is not None:
            return self.answer_augmentation_below
        nearest = min(SWITCH_BY_SEED_COUNT, key=lambda n: abs(math.log(max(seeds, 1) / n)))
        return SWITCH_BY_SEED_COUNT[nearest]

    def choose(self, ratio: float, seeds: int) -> str:
        """The strategy for a budget ratio and a seed-set size."""
        if ratio < self.switch(seeds):
            return "answer-augmentation"
        if self.rephrase_below is not None and ratio < self.rephrase_below:
            return "question-rephrase"
        return "new-question"

    def plan(self, obs: Observation) -> Plan:
        ratio, seeds = self.ratio(obs), sum(obs.seed_counts.values())
        strategy = self.choose(ratio, seeds)
        return Plan(
            requests=self.requests_for(self.allocation(obs), strategy),
            rationale=(
                f"budget ratio {ratio:.1f} ({obs.budget.max_queries} queries / {seeds} seeds; "
                f"switch {self.switch(seeds):g}) -> {strategy}; weakest: {self.weakest(obs)}"
            ),
        )
