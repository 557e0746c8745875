"""error-guided and skill-tree on hand-made open-ended and skill-tree observations."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from dataloop.errors import RegistryError
from dataloop.policies import ErrorGuided, SkillTreePolicy, make_policy
from dataloop.schema import (
    Example,
    Explore,
    Failure,
    Observation,
    Plan,
    SkillInfo,
    SkillNode,
    SkillTree,
    Subskill,
)


def _failure(skill: str, question: str, answer: str = "1", said: str = "2") -> Failure:
    return Failure(example=Example.make(skill, question, answer), prediction=said)


def _open(
    skills: list[str], probes: list[Failure], failures: list[Failure] | None = None
) -> Observation:
    return Observation(
        iteration=1,
        skills=[SkillInfo(name=s, description=s) for s in skills],
        accuracy={},  # open-ended: no per-skill accuracy
        mean_accuracy=0.5,
        failures=failures or [],
        probes=probes,
        structure="open-ended",
    )


def _counts(plan: Plan) -> dict[str, int]:
    return {r.skill: r.count for r in plan.requests}


# error-guided


def test_error_guided_allocates_by_failed_probes_after_the_floor() -> None:
    probes = [_failure("a", f"a{i}") for i in range(6)] + [_failure("b", f"b{i}") for i in range(2)]
    plan = ErrorGuided(examples_per_iteration=100, floor=0.05).plan(_open(["a", "b", "c"], probes))
    # floor 5 each; the other 85 split 6:2:0 (63.75, 21.25) with the remainder to a
    assert _counts(plan) == {"a": 69, "b": 26, "c": 5}
    assert plan.rationale == "by failed probes: a 6, b 2"
    assert plan.explore == []


def test_error_guided_guidance_quotes_failed_probes_on_one_line() -> None:
    probes = [
        _failure("sort", "sort(5213)", "1235", "1253"),
        _failure("sort", "sort(\n  90)", "09", "9\n0"),
        _failure("sort", "sort(7)", "7", "77"),
        _failure("sort", "sort(42)", "24", "42"),
        _failure("add", "1+1", "2", "3"),
    ]
    plan = ErrorGuided(examples_per_iteration=60).plan(_open(["sort", "add", "mul"], probes))
    guidance = {r.skill: r.guidance for r in plan.requests}
    assert guidance["sort"] == (
        'The student gets questions like these wrong: "sort(5213)" (answer "1235", it said '
        '"1253"); "sort( 90)" (answer "09", it said "9 0"); "sort(7)" (answer "7", it said '
        '"77"). Write questions of this kind.'
    )  # shown=3: the fourth is left out; newlines made spaces
    assert guidance["add"].startswith('The student gets questions like these wrong: "1+1"')
    assert guidance["mul"] == ""  # nothing failed: the floor, no guidance


def test_error_guided_guidance_is_capped() -> None:
    probes = [_failure("a", "x" * 500, "y" * 300, "z" * 300) for _ in range(3)]
    policy = ErrorGuided(examples_per_iteration=10, max_guidance_chars=150, shown=2)
    (request,) = policy.plan(_open(["a"], probes)).requests
    assert len(request.guidance) == 150
    assert request.guidance.endswith("x… Write questions of this kind.")
    assert "\n" not in request.guidance


def test_error_guided_falls_back_to_train_failures_and_says_so() -> None:
    failures = [_failure("b", "b1"), _failure("b", "b2"), _failure("a", "a1")]
    plan = ErrorGuided(examples_per_iteration=40, floor=0.0).plan(_open(["a", "b"], [], failures))
    assert _counts(plan) == {"a": 13, "b": 27}
    assert plan.rationale == "by failed train examples (no probes): b 2, a 1"
    assert '"b1"' in {r.skill: r.guidance for r in plan.requests}["b"]


def test_error_guided_reads_probes_not_train_failures_when_it_has_both() -> None:
    plan = ErrorGuided(examples_per_iteration=20, floor=0.0).plan(
        _open(["a", "b"], [_failure("a", "probe")], [_failure("b", "train")])
    )
    assert _counts(plan) == {"a": 20}
    assert '"probe"' in plan.requests[0].guidance


def test_error_guided_with_nothing_failed_is_uniform_without_guidance() -> None:
    plan = ErrorGuided(examples_per_iteration=30).plan(_open(["a", "b", "c"], []))
    assert _counts(plan) == {"a": 10, "b": 10, "c": 10}
    assert {r.guidance for r in plan.requests} == {""}
    assert plan.rationale.startswith("no failed probes or train examples")


def test_error_guided_is_deterministic_and_ignores_unknown_skills() -> None:
    probes = [_failure(s, f"{s}{i}") for i in range(5) for s in ("a", "b", "gone")]
    obs = _open(["a", "b"], probes)
    first = ErrorGuided(examples_per_iteration=7).plan(obs)
    assert first == ErrorGuided(examples_per_iteration=7).plan(obs)
    assert first.total == 7 and {r.skill for r in first.requests} == {"a", "b"}


def test_error_guided_options_are_checked() -> None:
    with pytest.raises(RegistryError, match="bad option: shown must be >= 1"):
        make_policy("error-guided", shown=0)
    with pytest.raises(RegistryError, match="max_guidance_chars must be >= 100"):
        make_policy("error-guided", max_guidance_chars=20)
    with pytest.raises(RegistryError, match="floor must be between 0 and 1"):
        make_policy("error-guided", floor=-0.1)


# skill-tree


def _sub(name: str, accuracy: float | None, data: int = 0) -> Subskill:
    return Subskill(name=name, description=f"{name} questions", accuracy=accuracy, data=data)


def _node(
    name: str, accuracy: float, subskills: Sequence[Subskill] = (), candidates: Sequence[str] = ()
) -> SkillNode:
    return SkillNode(
        name=name,
        description=name,
        accuracy=accuracy,
        subskills=list(subskills),
        candidates=[SkillInfo(name=c, description=f"{c} (offered)") for c in candidates],
    )


def _tree_obs(*nodes: SkillNode) -> Observation:
    return Observation(
        iteration=1,
        skills=[SkillInfo(name=n.name, description=n.name) for n in nodes],
        accuracy={n.name: n.accuracy for n in nodes},
        mean_accuracy=sum(n.accuracy for n in nodes) / len(nodes),
        structure="skill-tree",
        tree=SkillTree(skills=list(nodes)),
    )


def _leaves(plan: Plan) -> dict[tuple[str, str | None], int]:
    return {(r.skill, r.subskill): r.count for r in plan.requests}


def test_skill_tree_explores_the_first_candidate_of_a_skill_without_subskills() -> None:
    obs = _tree_obs(_node("add", 0.5, candidates=["carry", "negative"]), _node("sort", 0.2))
    plan = SkillTreePolicy(examples_per_iteration=100, floor=0.1).plan(obs)
    assert plan.explore == [Explore(skill="add", name="carry", description="carry (offered)")]
    # add/carry (new) counts at add's accuracy; sort has no candidates: exploited whole.
    # floor 10 each, the other 80 split 0.5 : 0.8
    assert _leaves(plan) == {("add", "carry"): 41, ("sort", None): 59}
    assert plan.rationale == "explored: add/carry; weakest: sort 20%, add/carry 50% (new)"


def test_skill_tree_explores_the_next_candidate_once_every_subskill_is_learned() -> None:
    add = _node("add", 0.95, [_sub("carry", 0.92), _sub("small", 0.99)], ["negative", "big"])
    obs = _tree_obs(add, _node("mul", 0.3, [_sub("table", 0.3)]))
    plan = SkillTreePolicy(examples_per_iteration=100, floor=0.05).plan(obs)
    assert plan.explore == [Explore(skill="add", name="negative", description="negative (offered)")]
    leaves = _leaves(plan)
    assert leaves[("add", "carry")] == leaves[("add", "small")] == 5  # learned: the floor only
    # add/negative counts at add's 95 %: learned too, until it has an accuracy of its own
    assert leaves[("add", "negative")] == 5
    assert leaves[("mul", "table")] == 85
    assert sum(leaves.values()) == 100


def test_skill_tree_exploits_while_a_subskill_still_learns() -> None:
    add = _node("add", 0.6, [_sub("carry", 0.95), _sub("small", 0.4, data=99)], ["negative"])
    plan = SkillTreePolicy(examples_per_iteration=50, stuck_data=100).plan(_tree_obs(add))
    assert plan.explore == []
    assert plan.rationale.startswith("explored: nothing; weakest: add/small 40%")


def test_skill_tree_explores_past_a_stuck_subskill_and_keeps_feeding_it() -> None:
    add = _node("add", 0.6, [_sub("carry", 0.95), _sub("small", 0.4, data=100)], ["negative"])
    plan = SkillTreePolicy(examples_per_iteration=50, stuck_data=100).plan(_tree_obs(add))
    assert [e.name for e in plan.explore] == ["negative"]
    leaves = _leaves(plan)
    assert leaves[("add", "small")] > leaves[("add", "carry")]  # stuck, not dropped


def test_skill_tree_without_candidates_only_exploits() -> None:
    add = _node("add", 0.9, [_sub("carry", 0.95), _sub("small", 0.99)])
    plan = SkillTreePolicy(examples_per_iteration=60, floor=0.1).plan(
        _tree_obs(add, _node("sort", 0.0))
    )
    assert plan.explore == []
    assert _leaves(plan) == {("add", "carry"): 6, ("add", "small"): 6, ("sort", None): 48}


def test_skill_tree_explore_per_iteration_and_zero() -> None:
    obs = _tree_obs(_node("add", 0.5, candidates=["a", "b", "c"]))
    two = SkillTreePolicy(explore_per_iteration=2).plan(obs)
    assert [e.name for e in two.explore] == ["a", "b"]
    assert {r.subskill for r in two.requests} == {"a", "b"}
    none = SkillTreePolicy(explore_per_iteration=0).plan(obs)
    assert none.explore == [] and _leaves(none) == {("add", None): 240}


def test_skill_tree_subskill_without_accuracy_counts_at_its_skill() -> None:
    add = _node("add", 0.2, [_sub("carry", None), _sub("small", 0.8)])
    plan = SkillTreePolicy(examples_per_iteration=100, floor=0.0).plan(_tree_obs(add))
    assert _leaves(plan) == {("add", "carry"): 80, ("add", "small"): 20}


@pytest.mark.parametrize("total", [0, 1, 7, 59, 240, 1001])
@pytest.mark.parametrize("floor", [0.0, 0.05, 0.5, 1.0])
def test_skill_tree_allocation_sums_to_the_iteration(total: int, floor: float) -> None:
    obs = _tree_obs(
        _node("add", 0.95, [_sub("carry", 0.99), _sub("small", 0.3, data=500)], ["neg"]),
        _node("mul", 0.1, candidates=["table"]),
        _node("sort", 0.5),
    )
    plan = SkillTreePolicy(examples_per_iteration=total, floor=floor).plan(obs)
    assert plan.total == total
    assert all(r.count > 0 for r in plan.requests)
    assert [(e.skill, e.name) for e in plan.explore] == [("add", "neg"), ("mul", "table")]


def test_skill_tree_needs_the_tree() -> None:
    with pytest.raises(ValueError, match=r"needs the skill tree.*open-ended and has none"):
        SkillTreePolicy().plan(_open(["a"], []))
    with pytest.raises(RegistryError, match="learned must be between 0 and 1"):
        make_policy("skill-tree", learned=1.5)
