"""Built-in rule policies on hand-made observations, and loading user policies."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dataloop.config import validate_config
from dataloop.errors import RegistryError
from dataloop.llm.teacher import Teacher
from dataloop.policies import (
    LLM2LLM,
    STRUCTURES,
    BudgetRatio,
    FunctionPolicy,
    LearningProgress,
    LLMPlanner,
    Uniform,
    WeakestSkills,
    allocate,
    as_policy,
    check_structure,
    default_policy,
    make_policy,
    policies_for,
)
from dataloop.schema import (
    Budget,
    Example,
    Failure,
    GenerationRequest,
    HistoryEntry,
    Observation,
    Plan,
    SkillInfo,
)


def _obs(
    accuracy: dict[str, float],
    failures: list[Failure] | None = None,
    budget: Budget | None = None,
    seeds_per_skill: int = 10,
) -> Observation:
    return Observation(
        iteration=0,
        skills=[SkillInfo(name=s, description=s) for s in accuracy],
        accuracy=accuracy,
        mean_accuracy=sum(accuracy.values()) / len(accuracy),
        failures=failures or [],
        seed_counts={s: seeds_per_skill for s in accuracy},
        budget=budget or Budget(),
    )


def _failure(skill: str, n: int) -> Failure:
    return Failure(example=Example.make(skill, f"q{n}", "a"), prediction="wrong")


def test_allocate_sums_to_total_and_follows_weights() -> None:
    parts = allocate(100, {"a": 1, "b": 1, "c": 1})
    assert sum(parts.values()) == 100 and sorted(parts.values()) == [33, 33, 34]
    assert allocate(10, {"a": 0, "b": 0}) == {"a": 5, "b": 5}
    assert allocate(7, {"a": 3, "b": 1}) == {"a": 5, "b": 2}


def test_uniform_gives_every_skill_the_same() -> None:
    plan = Uniform(examples_per_iteration=60).plan(_obs({"a": 0.9, "b": 0.1, "c": 0.5}))
    assert [r.count for r in plan.requests] == [20, 20, 20]
    assert {r.strategy for r in plan.requests} == {"new-question"}


def test_weakest_skills_allocates_by_error_with_floor() -> None:
    obs = _obs({"solved": 1.0, "half": 0.5, "weak": 0.0})
    plan = WeakestSkills(examples_per_iteration=200, floor=0.1).plan(obs)
    counts = {r.skill: r.count for r in plan.requests}
    assert sum(counts.values()) == 200
    assert counts["solved"] == 20  # the floor: 10 % of 200
    assert counts["weak"] > counts["half"] > counts["solved"]
    assert counts["weak"] == 20 + round(140 * 2 / 3)
    assert "weak 0%" in plan.rationale


@pytest.mark.parametrize("total", [0, 1, 7, 59, 240, 1001])
@pytest.mark.parametrize("floor", [0.0, 0.05, 0.5, 1.0])
def test_weakest_skills_sums_to_budget_and_floors_hold(total: int, floor: float) -> None:
    obs = _obs({"a": 1.0, "b": 0.97, "c": 0.3, "d": 0.0, "e": 1.0})
    plan = WeakestSkills(examples_per_iteration=total, floor=floor).plan(obs)
    counts = {s: 0 for s in obs.accuracy} | {r.skill: r.count for r in plan.requests}
    assert sum(counts.values()) == total
    floor_each = min(int(total * floor), total // 5)
    assert all(c >= floor_each for c in counts.values())
    assert counts["d"] >= counts["c"] >= counts["b"] >= counts["a"]


def test_llm2llm_one_request_per_failure_with_its_id() -> None:
    failures = [_failure("add", 1), _failure("add", 2), _failure("mul", 3)]
    plan = LLM2LLM(examples_per_iteration=100).plan(_obs({"add": 0.5, "mul": 0.5}, failures))
    assert [(r.skill, r.strategy, r.count) for r in plan.requests] == [
        ("add", "llm2llm", 1),
        ("mul", "llm2llm", 1),
        ("add", "llm2llm", 1),
    ]
    assert sorted(r.seed_ids[0] for r in plan.requests) == sorted(f.example.id for f in failures)
    assert all(len(r.seed_ids) == 1 for r in plan.requests)


def test_llm2llm_targets_every_failure_whatever_the_iteration_budget() -> None:
    failures = [_failure("add", i) for i in range(10)] + [_failure("mul", i) for i in range(2)]
    obs = _obs({"add": 0.0, "mul": 0.8}, failures)
    plan = LLM2LLM(examples_per_iteration=8).plan(obs)
    assert plan.total == 12 and "all 12" in plan.rationale
    assert LLM2LLM().plan(_obs({"add": 1.0})).requests == []


def test_llm2llm_cap_is_an_option_and_is_logged(caplog) -> None:
    failures = [_failure("add", i) for i in range(10)] + [_failure("mul", i) for i in range(2)]
    obs = _obs({"add": 0.0, "mul": 0.8}, failures)
    with caplog.at_level("WARNING"):
        plan = LLM2LLM(max_failures=4, per_failure=2).plan(obs)
    assert plan.total == 8 and len(plan.requests) == 4
    assert [r.skill for r in plan.requests].count("mul") == 2  # round-robin keeps mul in
    assert "4 of 12" in plan.rationale and "max_failures=4" in caplog.text


@pytest.mark.parametrize(
    ("max_queries", "expected"),
    [
        (0, "answer-augmentation"),
        (17 * 20, "answer-augmentation"),  # BR 17 < 27, the switch for ~100 seeds
        (27 * 20, "new-question"),  # BR 27
        (None, "new-question"),  # unlimited budget
    ],
)
def test_budget_ratio_picks_strategy_by_total_queries_per_seed(
    max_queries: int | None, expected: str
) -> None:
    # Two skills of 10 seeds: the seed set has 20 examples.
    obs = _obs({"a": 0.2, "b": 0.9}, budget=Budget(max_queries=max_queries))
    plan = BudgetRatio(examples_per_iteration=50).plan(obs)
    assert {r.strategy for r in plan.requests} == {expected}
    assert plan.total == 50
    counts = {r.skill: r.count for r in plan.requests}
    assert counts["a"] > counts["b"] >= 2  # weakest-skills allocation and its floor
    assert expected in plan.rationale


def test_budget_ratio_chooses_once_for_the_run_not_from_the_budget_left() -> None:
    policy = BudgetRatio(examples_per_iteration=50)
    first = _obs({"a": 0.2, "b": 0.9}, budget=Budget(max_queries=30 * 20, queries=0))
    drained = _obs({"a": 0.2, "b": 0.9}, budget=Budget(max_queries=30 * 20, queries=590))
    assert {r.strategy for r in policy.plan(first).requests} == {"new-question"}
    assert {r.strategy for r in policy.plan(drained).requests} == {"new-question"}


def test_budget_ratio_switch_depends_on_the_seed_set_size() -> None:
    policy = BudgetRatio()
    assert [policy.switch(n) for n in (20, 100, 300, 400, 1000, 50_000)] == [
        27.0,
        27.0,
        27.0,
        17.6,
        17.6,
        17.6,
    ]
    assert policy.choose(20, 100) == "answer-augmentation"
    assert policy.choose(20, 1000) == "new-question"


def test_budget_ratio_rephrase_band_between_thresholds() -> None:
    policy = BudgetRatio(answer_augmentation_below=5, rephrase_below=20)
    assert [policy.choose(r, 1000) for r in (4.9, 5, 19.9, 20, float("inf"))] == [
        "answer-augmentation",
        "question-rephrase",
        "question-rephrase",
        "new-question",
        "new-question",
    ]
    with pytest.raises(RegistryError, match="answer_augmentation_below <= rephrase_below"):
        make_policy("budget-ratio", answer_augmentation_below=30, rephrase_below=20)


def test_function_policy_sync_and_async() -> None:
    def sync_fn(obs: Observation) -> Plan:
        return Plan(requests=[GenerationRequest(skill="a", count=1)])

    async def async_fn(obs: Observation) -> Plan:
        return Plan(requests=[GenerationRequest(skill="a", count=2)])

    obs = _obs({"a": 0.0})
    assert as_policy(sync_fn).plan(obs).total == 1
    assert asyncio.run(as_policy(sync_fn).aplan(obs)).total == 1
    assert asyncio.run(as_policy(async_fn).aplan(obs)).total == 2
    with pytest.raises(TypeError, match="async"):
        as_policy(async_fn).plan(obs)


def test_make_policy_by_name_path_and_function(tmp_path) -> None:
    assert isinstance(make_policy("uniform", examples_per_iteration=5), Uniform)
    assert isinstance(make_policy("llm2llm"), LLM2LLM)
    assert isinstance(make_policy("budget-ratio"), BudgetRatio)
    with pytest.raises(
        RegistryError,
        match="unknown policy 'weakest'; known: uniform, weakest-skills, learning-progress, "
        "dataenvgym-skill-list, dataenvgym-open-ended, dataenvgym-skill-tree, "
        "llm2llm, budget-ratio, high-loss, error-guided, skill-tree, llm-planner",
    ):
        make_policy("weakest")
    with pytest.raises(RegistryError, match="bad option"):
        make_policy("uniform", nonsense=1)
    with pytest.raises(RegistryError, match="bad option: floor"):
        make_policy("weakest-skills", floor=2)
    # A policy written to the contract before the redesign (it took the client): the error says
    # what to change.
    old = tmp_path / "old.py"
    old.write_text(
        "from dataloop.policies import Policy\n"
        "class Old(Policy):\n"
        "    def __init__(self, client, examples_per_iteration=10):\n"
        "        super().__init__(examples_per_iteration)\n"
        "        self.client = client\n"
    )
    with pytest.raises(RegistryError, match=r"it takes client: .*uses_teacher = True"):
        make_policy(f"{old}:Old")
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


def test_make_policy_hands_the_teacher_only_to_who_asks(tmp_path) -> None:
    teacher = Teacher(object(), "chat", seed=7)  # type: ignore[arg-type]
    with pytest.raises(RegistryError, match="'llm-planner' asks the teacher LLM"):
        make_policy("llm-planner")
    planner = make_policy("llm-planner", teacher=teacher)
    assert isinstance(planner, LLMPlanner) and planner.teacher is teacher
    assert isinstance(make_policy("uniform", teacher=teacher), Uniform)
    path = tmp_path / "asks.py"
    path.write_text(
        "from dataloop import Policy, Plan\n"
        "class Asks(Policy):\n"
        "    uses_teacher = True\n"
        "    def __init__(self, teacher, examples_per_iteration=1):\n"
        "        super().__init__(examples_per_iteration)\n"
        "        self.teacher = teacher\n"
        "    def plan(self, obs):\n"
        "        return Plan()\n"
        "class DoesNotAsk(Policy):\n"
        "    def __init__(self, client=None):\n"
        "        super().__init__()\n"
        "        self.client = client\n"
        "    def plan(self, obs):\n"
        "        return Plan()\n"
    )
    assert make_policy(f"{path}:Asks", teacher=teacher).teacher is teacher  # type: ignore[attr-defined]
    # No parameter name is sniffed: only uses_teacher decides.
    assert make_policy(f"{path}:DoesNotAsk", teacher=teacher).client is None  # type: ignore[attr-defined]


def test_a_policy_that_draws_at_random_is_given_the_runs_seed(tmp_path: Path) -> None:
    path = tmp_path / "draws.py"
    path.write_text(
        "from dataloop import Policy, Plan\n"
        "class Draws(Policy):\n"
        "    uses_seed = True\n"
        "    def __init__(self, seed, examples_per_iteration=1):\n"
        "        super().__init__(examples_per_iteration)\n"
        "        self.seed = seed\n"
        "    def plan(self, obs):\n"
        "        return Plan()\n"
    )
    assert make_policy(f"{path}:Draws", run_seed=7).seed == 7  # type: ignore[attr-defined]
    assert make_policy(f"{path}:Draws", run_seed=7, seed=3).seed == 3  # type: ignore[attr-defined]
    assert make_policy("dataenvgym-open-ended", run_seed=5).seed == 5  # type: ignore[attr-defined]
    # A policy that does not declare it is not given one.
    assert isinstance(make_policy("uniform", run_seed=5), Uniform)


@pytest.mark.parametrize(
    ("spec", "structure", "message"),
    [
        (
            "weakest-skills",
            "open-ended",
            "policy 'weakest-skills' needs per-skill accuracy, which an open-ended observation "
            "does not show; use one of: uniform, dataenvgym-open-ended, llm2llm, high-loss, "
            "error-guided, llm-planner",
        ),
        (
            "budget-ratio",
            "open-ended",
            "policy 'budget-ratio' needs per-skill accuracy, which an open-ended observation "
            "does not show; use one of: uniform, dataenvgym-open-ended, llm2llm, high-loss, "
            "error-guided, llm-planner",
        ),
        (
            "skill-tree",
            "skill-list",
            "policy 'skill-tree' needs the skill tree, which a skill-list observation does not "
            "show; use one of: uniform, weakest-skills, learning-progress, dataenvgym-skill-list, "
            "dataenvgym-open-ended, llm2llm, budget-ratio, high-loss, error-guided, llm-planner, "
            "edge",
        ),
        (
            "skill-tree",
            "open-ended",
            "policy 'skill-tree' needs the skill tree, which an open-ended observation does not "
            "show; use one of: uniform, dataenvgym-open-ended, llm2llm, high-loss, error-guided, "
            "llm-planner",
        ),
        ("uniform", "tree", "unknown structure 'tree'; known: open-ended, skill-list, skill-tree"),
    ],
)
def test_check_structure_names_what_is_missing_and_who_can(
    spec: str, structure: str, message: str
) -> None:
    with pytest.raises(RegistryError) as info:
        check_structure(spec, structure)
    assert str(info.value) == message


def test_check_structure_passes_what_a_policy_can_plan_for(tmp_path) -> None:
    for structure in ("open-ended", "skill-list", "skill-tree"):
        for spec in ("uniform", "llm2llm", "error-guided", "llm-planner"):
            check_structure(spec, structure)
    for spec in ("weakest-skills", "budget-ratio"):
        check_structure(spec, "skill-list")
        check_structure(spec, "skill-tree")
    check_structure("skill-tree", "skill-tree")
    path = tmp_path / "mine.py"
    path.write_text(
        "from dataloop import Plan, Policy\n"
        "def anything(obs):\n"
        "    return Plan()\n"
        "class Plain(Policy):\n"
        "    def plan(self, obs):\n"
        "        return Plan()\n"
        "class OnlyOpen(Policy):\n"
        "    structures = frozenset({'open-ended'})\n"
        "    def plan(self, obs):\n"
        "        return Plan()\n"
    )
    for structure in ("open-ended", "skill-list", "skill-tree"):
        check_structure(f"{path}:anything", structure)  # a function: all
        check_structure(f"{path}:Plain", structure)  # a class that says nothing: all
    with pytest.raises(RegistryError, match="OnlyOpen' plans for open-ended only; use one of: "):
        check_structure(f"{path}:OnlyOpen", "skill-tree")


def test_each_structure_has_one_default_policy_that_plans_for_it() -> None:
    defaults = {s: default_policy(s) for s in STRUCTURES}
    assert defaults == {
        "open-ended": "error-guided",
        "skill-list": "weakest-skills",
        "skill-tree": "skill-tree",
    }
    for structure, name in defaults.items():
        assert name in policies_for(structure)  # a default can plan for its structure
        # The config's default is the same statement, not a second one.
        assert validate_config({"env": {"structure": structure}}).policy.name == name
    with pytest.raises(RegistryError, match="unknown structure 'tree'; known: open-ended"):
        default_policy("tree")


def _history(*accuracies: dict[str, float]) -> list[HistoryEntry]:
    return [
        HistoryEntry(iteration=i, accuracy=a, mean_accuracy=sum(a.values()) / len(a))
        for i, a in enumerate(accuracies)
    ]


def test_learning_progress_gives_data_where_accuracy_rose() -> None:
    skills = [SkillInfo(name=n, description=n) for n in ("a", "b", "c")]
    policy = LearningProgress(examples_per_iteration=100, floor=0.1)
    first = Observation(
        iteration=0,
        skills=skills,
        accuracy={"a": 0.1, "b": 0.1, "c": 0.0},
        mean_accuracy=0.07,
        history=_history({"a": 0.1, "b": 0.1, "c": 0.0}),
    )
    assert policy.allocation(first) == {"a": 34, "b": 33, "c": 33}  # no history: uniform
    assert policy.plan(first).rationale == "no gain yet: uniform"
    later = first.model_copy(
        update={
            "history": _history(
                {"a": 0.125, "b": 0.125, "c": 0.0}, {"a": 0.375, "b": 0.25, "c": 0.0}
            ),
            "accuracy": {"a": 0.375, "b": 0.25, "c": 0.0},
        }
    )
    # Floor 10 each; the other 70 by gain 0.25 : 0.125 : 0 (46.7 : 23.3 : 0).
    assert policy.allocation(later) == {"a": 10 + 47, "b": 10 + 23, "c": 10}
    assert policy.plan(later).rationale.startswith("by gain; largest: a +25%, b +")
    fell = later.model_copy(
        update={
            "history": _history({"a": 0.5, "b": 0.5, "c": 0.5}, {"a": 0.375, "b": 0.25, "c": 0}),
        }
    )
    assert policy.allocation(fell) == {"a": 34, "b": 33, "c": 33}  # no gain anywhere: uniform
    wide = LearningProgress(examples_per_iteration=100, floor=0.0, window=2)
    three = later.model_copy(
        update={
            "history": _history(
                {"a": 0.0, "b": 0.0, "c": 0.0},
                {"a": 0.5, "b": 0.0, "c": 0.0},
                {"a": 0.5, "b": 0.25, "c": 0.0},
            ),
        }
    )
    assert wide.allocation(three) == {"a": 67, "b": 33, "c": 0}  # gain over two iterations
    with pytest.raises(ValueError, match="window"):
        LearningProgress(window=0)
    assert make_policy("learning-progress", floor=0.2).floor == 0.2
    assert LearningProgress.structures == frozenset({"skill-list", "skill-tree"})


def _probe(skill: str, question: str, answer: str, said: str = "0") -> Failure:
    return Failure(example=Example.make(skill, question, answer), prediction=said)


def test_dataenvgym_skill_list_gives_equal_data_to_skills_with_errors_and_shows_them() -> None:
    obs = _obs({"a": 0.2, "b": 0.9, "c": 0.5})
    obs.probes = [_probe("a", "q1", "1"), _probe("c", "q2", "2"), _probe("a", "q3", "3")]
    policy = make_policy("dataenvgym-skill-list", examples_per_iteration=60)
    plan = policy.plan(obs)
    # Equal quantity for the skills with a failed probe, none for the one without.
    assert {r.skill: r.count for r in plan.requests} == {"a": 30, "c": 30}
    shown = {r.skill: [f.example.question for f in r.failures] for r in plan.requests}
    assert shown == {"a": ["q1", "q3"], "c": ["q2"]}
    assert "a 2" in plan.rationale
    every = make_policy("dataenvgym-skill-list", examples_per_iteration=60, all_skills=True)
    assert {r.skill: r.count for r in every.plan(obs).requests} == {"a": 20, "b": 20, "c": 20}
    capped = make_policy("dataenvgym-skill-list", examples_per_iteration=60, max_shown=1)
    assert [len(r.failures) for r in capped.plan(obs).requests] == [1, 1]
    obs.probes = []
    assert {r.skill: r.count for r in policy.plan(obs).requests} == {"a": 20, "b": 20, "c": 20}
    with pytest.raises(RegistryError, match="max_shown"):
        make_policy("dataenvgym-skill-list", max_shown=0)
    with pytest.raises(RegistryError, match="open-ended"):
        check_structure("dataenvgym-skill-list", "open-ended")


def test_dataenvgym_skill_list_brings_feedback_probes_with_it() -> None:
    from dataloop.config import validate_config
    from dataloop.errors import ConfigError

    config = validate_config({"policy": {"name": "dataenvgym-skill-list"}})
    assert config.env.feedback_per_skill == 20
    with pytest.raises(ConfigError, match=r"env\.feedback_per_skill above 0"):
        validate_config(
            {"policy": {"name": "dataenvgym-skill-list"}, "env": {"feedback_per_skill": 0}}
        )


def test_the_old_requests_helper_still_works_with_a_deprecation_warning() -> None:
    class Old(Uniform):
        def plan(self, obs: Observation) -> Plan:
            return Plan(requests=self._requests({"a": 3}))  # as docs/policies.md once said

    with pytest.warns(DeprecationWarning, match="requests_for"):
        plan = Old(examples_per_iteration=3).plan(_obs({"a": 0.5}))
    assert [(r.skill, r.count) for r in plan.requests] == [("a", 3)]
