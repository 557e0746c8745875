"""Built-in policies on hand-made observations, and loading user policies."""

from __future__ import annotations

import pytest

from dataloop.errors import RegistryError
from dataloop.policies import FunctionPolicy, Uniform, WeakestSkills, allocate, make_policy
from dataloop.schema import GenerationRequest, Observation, Plan, SkillInfo


def _obs(accuracy: dict[str, float]) -> Observation:
    return Observation(
        iteration=0,
        skills=[SkillInfo(name=s, description=s) for s in accuracy],
        accuracy=accuracy,
        mean_accuracy=sum(accuracy.values()) / len(accuracy),
    )


def test_allocate_sums_to_total_and_follows_weights() -> None:
    parts = allocate(100, {"a": 1, "b": 1, "c": 1})
    assert sum(parts.values()) == 100 and sorted(parts.values()) == [33, 33, 34]
    assert allocate(10, {"a": 0, "b": 0}) == {"a": 5, "b": 5}
    assert allocate(7, {"a": 3, "b": 1}) == {"a": 5, "b": 2}


def test_uniform_gives_every_skill_the_same() -> None:
    plan = Uniform(examples_per_iteration=60).plan(_obs({"a": 0.9, "b": 0.1, "c": 0.5}))
    assert [r.count for r in plan.requests] == [20, 20, 20]


def test_weakest_skills_allocates_by_error_with_floor() -> None:
    obs = _obs({"solved": 1.0, "half": 0.5, "weak": 0.0})
    plan = WeakestSkills(examples_per_iteration=200, floor=0.1).plan(obs)
    counts = {r.skill: r.count for r in plan.requests}
    assert sum(counts.values()) == 200
    assert counts["solved"] == 20  # the floor: 10 % of 200
    assert counts["weak"] > counts["half"] > counts["solved"]
    assert counts["weak"] == 20 + round(140 * 2 / 3)
    assert "weak 0%" in plan.rationale


def test_make_policy_by_name_path_and_function(tmp_path) -> None:
    assert isinstance(make_policy("uniform", examples_per_iteration=5), Uniform)
    with pytest.raises(
        RegistryError, match="unknown policy 'weakest'; known: uniform, weakest-skills"
    ):
        make_policy("weakest")
    with pytest.raises(RegistryError, match="bad option"):
        make_policy("uniform", nonsense=1)
    path = tmp_path / "mine.py"
    path.write_text(
        "from dataloop import Plan, GenerationRequest\n"
        "def only_add(obs):\n"
        "    return Plan(requests=[GenerationRequest(skill='add', count=3)])\n"
    )
    policy = make_policy(f"{path}:only_add")
    assert isinstance(policy, FunctionPolicy)
    assert policy.plan(_obs({"add": 0.0})) == Plan(
        requests=[GenerationRequest(skill="add", count=3)]
    )
