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
