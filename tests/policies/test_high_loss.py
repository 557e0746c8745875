"""The high-loss policy on hand-made observations: which seeds it sends, where, and how many."""

from __future__ import annotations

import pytest

from dataloop.errors import RegistryError
from dataloop.policies import HighLoss, make_policy
from dataloop.schema import Example, Failure, Observation, SkillInfo


def _obs(losses: dict[str, dict[str, float]], failed: tuple[str, ...] = ()) -> Observation:
    examples = {
        i: Example(id=i, skill=s, question=i, answer="1") for s, ls in losses.items() for i in ls
    }
    return Observation(
        iteration=0,
        skills=[SkillInfo(name=s, description=s) for s in losses],
        accuracy={},
        mean_accuracy=0.0,
        failures=[Failure(example=examples[i], prediction="0") for i in failed],
        losses=losses,
    )


LOSSES = {
    "add": {"a1": 2.0, "a2": 0.1, "a3": 1.5},
    "max": {"m1": 3.0, "m2": 0.2},
    "sort": {"s1": 0.3},
}


def test_the_k_highest_loss_seeds_go_to_the_strategy_split_by_skill() -> None:
    plan = HighLoss(examples_per_iteration=30, k=3).plan(_obs(LOSSES))
    assert [(r.skill, r.strategy, r.count, r.seed_ids) for r in plan.requests] == [
        ("max", "new-question", 10, ["m1"]),
        ("add", "new-question", 20, ["a1", "a3"]),
    ]
    assert plan.total == 30 and "top: max 3.00, add 2.00, add 1.50" in plan.rationale


def test_the_pool_of_failures_and_the_chosen_strategy() -> None:
    policy = make_policy(
        "high-loss", examples_per_iteration=4, k=2, pool="failures", strategy="refine"
    )
    plan = policy.plan(_obs(LOSSES, failed=("a2", "s1", "m2")))
    # Among the failed seeds only (s1 0.3, m2 0.2 beat a2 0.1), each to refine.
    assert [(r.skill, r.strategy, r.seed_ids) for r in plan.requests] == [
        ("sort", "refine", ["s1"]),
        ("max", "refine", ["m2"]),
    ]
    assert HighLoss(pool="failures").plan(_obs(LOSSES)).requests == []  # none failed


def test_ties_are_broken_by_id_so_plans_repeat() -> None:
    tied = {"add": {"b": 1.0, "a": 1.0, "c": 1.0}}
    assert HighLoss(k=2).plan(_obs(tied)).requests[0].seed_ids == ["a", "b"]


def test_the_policy_asks_for_losses_and_says_when_it_has_none() -> None:
    assert HighLoss.observes_loss and not make_policy("uniform").observes_loss
    with pytest.raises(ValueError, match=r"Observation\.losses.*losses=True"):
        HighLoss().plan(_obs({}))
    with pytest.raises(RegistryError, match="k must be >= 1"):
        make_policy("high-loss", k=0)
    with pytest.raises(RegistryError, match="pool must be 'seeds' or 'failures'"):
        make_policy("high-loss", pool="probes")
