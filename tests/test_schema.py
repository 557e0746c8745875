"""Everything that crosses a boundary survives a JSON round trip."""

from __future__ import annotations

from dataloop.config import LoopConfig
from dataloop.schema import (
    Budget,
    Example,
    Failure,
    GenerationReport,
    GenerationRequest,
    HistoryEntry,
    Observation,
    Plan,
    SkillInfo,
)


def _roundtrip(model):
    return type(model).model_validate_json(model.model_dump_json())


def test_example_roundtrip_and_stable_id() -> None:
    ex = Example.make(
        "add",
        "12+35",
        "47",
        source="generated",
        strategy="new-question",
        parent_ids=["p1"],
        teacher="gemma",
        iteration=2,
    )
    assert _roundtrip(ex) == ex
    assert ex.id == Example.make("add", "12+35", "0").id != Example.make("sub", "12+35", "0").id


def test_relabel_keeps_provenance_and_records_a_changed_answer() -> None:
    ex = Example.make("add", "12 + 35", "48 ", source="generated", teacher="gemma", iteration=2)
    same = ex.relabel(answer="48")
    assert same.provenance == ex.provenance and not same.provenance.relabelled
    fixed = ex.relabel(question="12+35", answer="47")
    assert fixed.id == Example.make("add", "12+35", "").id and fixed.answer == "47"
    assert fixed.provenance.relabelled and fixed.provenance.teacher == "gemma"
    moved = fixed.relabel(skill="sums")
    assert moved.skill == "sums" and moved.id.startswith("sums-") and moved.provenance.relabelled


def test_a_restored_budget_keeps_its_limits() -> None:
    budget = Budget(max_queries=100)
    budget.restore(Budget(max_queries=10, queries=10, prompt_tokens=5, exhausted=True))
    assert (budget.max_queries, budget.queries, budget.prompt_tokens) == (100, 10, 5)
    assert budget.exhausted


def test_observation_plan_and_report_roundtrip() -> None:
    ex = Example.make("add", "1+1", "2")
    obs = Observation(
        iteration=1,
        skills=[SkillInfo(name="add", description="adds")],
        accuracy={"add": 0.5},
        mean_accuracy=0.5,
        failures=[Failure(example=ex, prediction="3")],
        budget=Budget(max_queries=10, queries=3),
        history=[HistoryEntry(iteration=0, accuracy={"add": 0.1}, mean_accuracy=0.1)],
    )
    assert _roundtrip(obs) == obs
    plan = Plan(requests=[GenerationRequest(skill="add", count=5, seed_ids=[ex.id])], rationale="r")
    assert _roundtrip(plan) == plan and plan.total == 5
    assert _roundtrip(GenerationReport()) == GenerationReport()
    assert obs.budget.queries_left == 7


def test_loop_config_roundtrip() -> None:
    config = LoopConfig.model_validate({"iterations": 5, "student": {"batch_size": 8}})
    assert _roundtrip(config) == config
