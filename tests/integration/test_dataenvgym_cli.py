"""DataEnvGym's open-ended and skill-tree teachers for real: the CLI in a subprocess, the
embedded teacher (llama-server + Gemma 3 270M), real training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from realcli import small_run

pytestmark = pytest.mark.integration

GYM = (
    "env.options={train_per_skill: 8, validation_per_skill: 20, test_per_skill: 10, "
    "skills: [max, sort, reverse]}"
)


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_open_ended_teacher_writes_a_fixed_count_from_failed_probes(tmp_path) -> None:
    out = small_run(
        tmp_path, "r", "--iterations", "1", "--policy", "dataenvgym-open-ended",
        "--set", "env.structure=open-ended", "--set", GYM,
        "--set", "policy.examples_per_iteration=18",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    run = tmp_path / "r"
    observation = _read(run / "iterations/0/observation.json")
    plan = _read(run / "iterations/1/plan.json")
    assert sum(r["count"] for r in plan["requests"]) == 18
    assert all(r["show_skill"] is False for r in plan["requests"])
    probes = {p["example"]["id"] for p in observation["probes"]}
    shown = [f["example"]["id"] for r in plan["requests"] for f in r["failures"]]
    assert shown and set(shown) <= probes  # failed feedback probes, never validation
    accepted = _lines(run / "iterations/1/accepted.jsonl")
    assert accepted, "the teacher's data was all rejected"
    assert not {e["id"] for e in accepted} & probes  # never trained on a probe


def test_skill_tree_teacher_explores_then_exploits_the_subskills_it_explored(tmp_path) -> None:
    # Two skills and few validation items: the teacher places each in a subskill, one query each.
    # The allocation by data accuracy is the unit tests' (tests/policies/test_dataenvgym.py);
    # here, the real teacher's subskills, their data accuracy and the alternation.
    out = small_run(
        tmp_path, "r", "--iterations", "2", "--policy", "dataenvgym-skill-tree",
        "--set", "env.structure=skill-tree",
        "--set", "env.options={train_per_skill: 8, validation_per_skill: 10, "
        "test_per_skill: 10, skills: [max, sort]}",
        "--set", "policy.examples_per_iteration=18",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    run = tmp_path / "r"
    first, second = (_read(run / f"iterations/{k}/plan.json") for k in (1, 2))
    assert first["explore"], "the teacher proposed no subskill"
    explored = {(e["skill"], e["name"]) for e in first["explore"]}
    tree = _read(run / "iterations/1/observation.json")["tree"]
    grown = {(n["name"], s["name"]): s for n in tree["skills"] for s in n["subskills"]}
    assert explored <= set(grown)
    # The student's accuracy on the data each explored subskill was given, then the exploit.
    assert any(grown[k]["data_accuracy"] is not None for k in explored)
    exploited = {e["skill"] for e in first["explore"]}
    assert not {e["skill"] for e in second["explore"]} & exploited
    for request in second["requests"]:
        if request["skill"] in exploited:
            assert (request["skill"], request["subskill"]) in explored
    assert "exploit by data accuracy" in second["rationale"]
    accepted = _lines(run / "iterations/1/accepted.jsonl")
    assert any(e["provenance"]["subskill"] for e in accepted)
