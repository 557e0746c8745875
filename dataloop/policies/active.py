"""Active synthetic data generation: seeds chosen by the student's own loss."""

from __future__ import annotations

from typing import Literal

from dataloop.policies.base import Policy, allocate
from dataloop.schema import GenerationRequest, Observation, Plan


class HighLoss(Policy):
    """Sends the ``k`` seed examples the student fits worst (highest loss) to a strategy.

    "Towards Active Synthetic Data Generation for Finetuning Language Models" (Kessler et al.,
    2025, arXiv:2512.00884) generates data in a closed loop guided by the current student and
    finds that simple active-learning scores, the student's loss on a seed above all, choose
    the seeds the teacher writes from better than LLM-judged selection at the same budget.
    Each iteration here the environment measures the student's SFT loss on every seed example
    (``Observation.losses``, opt-in through :attr:`observes_loss`: one forward pass over the
    seed set, no generation), the ``k`` highest are taken (ties by id), and each skill among
    them gets one request naming its chosen seeds in ``seed_ids``, with a share of
    ``examples_per_iteration`` in proportion to how many it has. With ``new-question`` (the
    default) every prompt shows the chosen seeds as its examples; ``refine`` corrects those
    the student also answers wrongly, ``harder`` writes harder variants of them.

    Where dataloop differs: the paper scores a pool and generates one new example per selected
    seed; here the budget is ``examples_per_iteration`` whatever ``k``, split over skills by
    their chosen seeds, and a chosen seed may be the parent of several examples (or of none,
    when its skill's share runs out first).

    Options:
        k: seed examples chosen per iteration (default 16).
        pool: ``seeds`` (default: any seed example) or ``failures`` (only seeds the student
            currently answers wrongly; with none, the plan is empty).
    """

    name = "high-loss"
    observes_loss = True

    def __init__(
        self,
        examples_per_iteration: int = 240,
        strategy: str = "new-question",
        k: int = 16,
        pool: Literal["seeds", "failures"] = "seeds",
    ) -> None:
        super().__init__(examples_per_iteration, strategy)
        if k < 1:
            raise ValueError("k must be >= 1")
        if pool not in ("seeds", "failures"):
            raise ValueError(f"pool must be 'seeds' or 'failures', not {pool!r}")
        self.k = k
        self.pool = pool

    def chosen(self, obs: Observation) -> list[tuple[str, str, float]]:
        """The ``k`` (skill, seed id, loss) with the highest loss in the pool, highest first."""
        if not obs.losses:
            raise ValueError(
                "policy high-loss reads the student's loss (Observation.losses), which is "
                "empty: build the Environment with losses=True (a run does so for this policy)"
            )
        failed = {f.example.id for f in obs.failures}
        scored = [
            (skill, seed, loss)
            for skill, losses in obs.losses.items()
            for seed, loss in losses.items()
            if self.pool == "seeds" or seed in failed
        ]
        return sorted(scored, key=lambda t: (-t[2], t[1]))[: self.k]

    def plan(self, obs: Observation) -> Plan:
        chosen = self.chosen(obs)
        if not chosen:
            return Plan(rationale=f"no seed in the pool '{self.pool}': nothing to build on")
        by_skill: dict[str, list[str]] = {}
        for skill, seed, _ in chosen:
            by_skill.setdefault(skill, []).append(seed)
        allocation = allocate(
            self.examples_per_iteration, {s: float(len(ids)) for s, ids in by_skill.items()}
        )
        requests = [
            GenerationRequest(
                skill=skill, strategy=self.strategy, count=allocation[skill], seed_ids=ids
            )
            for skill, ids in by_skill.items()
            if allocation[skill] > 0
        ]
        top = ", ".join(f"{s} {loss:.2f}" for s, _, loss in chosen[:3])
        shares = ", ".join(f"{s} {len(ids)}" for s, ids in by_skill.items())
        return Plan(
            requests=requests,
            rationale=f"{len(chosen)} highest-loss {self.pool} (top: {top}); per skill: {shares}",
        )
