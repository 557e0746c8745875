"""The ``edge`` policy for real: the CLI, the packaged Gemma teacher on llama-server, and the
tiny student sampling its answers to the teacher's candidates."""

from __future__ import annotations

import json

import pytest
from realcli import dataloop, small_run

pytestmark = pytest.mark.integration


def test_cli_edge_run_measures_the_students_solve_rate_and_reports_the_levels(tmp_path) -> None:
    out = small_run(
        tmp_path, "e", "--iterations", "1",
        "--set", "env.options={train_per_skill: 8, validation_per_skill: 10, "
        "test_per_skill: 10, skills: [add, max]}",
        "--set", "policy.name=edge",
        "--set", "policy.options={samples: 3, candidates: 4}",
        "--set", "policy.examples_per_iteration=12",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    folder = tmp_path / "e" / "iterations" / "1"
    plan = json.loads((folder / "plan.json").read_text())
    assert {(r["skill"], r["level"]) for r in plan["requests"]} == {("add", 0), ("max", 0)}
    assert plan["solve_rate"]["samples"] == 3
    candidates = [json.loads(line) for line in (folder / "generated.jsonl").open()]
    assert candidates and {c["example"]["provenance"]["level"] for c in candidates} == {0}
    obs = json.loads((folder / "observation.json").read_text())
    assert [level["name"] for level in obs["levels"]["add"]] == [
        "no-carry", "one-carry", "two-carries",
    ]  # fmt: skip
    difficulty = obs["difficulty"]
    assert {s: d["level_name"] for s, d in difficulty.items()} == {
        "add": "no-carry",
        "max": "different-tens",
    }
    accepted = [json.loads(line) for line in (folder / "accepted.jsonl").open()]
    for skill, d in difficulty.items():
        of_skill = sum(e["skill"] == skill for e in accepted)
        assert d["candidates"] == min(4, of_skill)
        assert d["samples"] == 3 * d["candidates"] and 0 <= d["solved"] <= d["samples"]
    assert sum(d["samples"] for d in difficulty.values()) > 0  # the real student sampled

    report = dataloop("report", str(tmp_path / "e"))
    assert report.returncode == 0, report.stderr
    assert "difficulty" in report.stdout and "different-tens ·" in report.stdout
