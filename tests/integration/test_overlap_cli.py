"""``overlap`` for real: the CLI, the packaged Gemma teacher on llama-server generating the next
iteration while the tiny student trains, and the staleness in the records and the report.
Two iterations (the second is planned from the reset's observation and generated while the
first trains); the steady state, k planned from k-2, is covered by tests/test_overlap.py."""

from __future__ import annotations

import json

import pytest
from realcli import dataloop, small_run

pytestmark = pytest.mark.integration


def test_cli_overlapped_run_records_what_each_plan_read(tmp_path) -> None:
    out = small_run(
        tmp_path, "o", "--iterations", "2",
        "--set", "overlap=true",
        "--set", "env.options={train_per_skill: 8, validation_per_skill: 10, "
        "test_per_skill: 10, skills: [add, max]}",
        "--set", "policy.examples_per_iteration=12",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    run = tmp_path / "o"
    metrics = json.loads((run / "metrics.json").read_text())
    assert [h["planned_from"] for h in metrics["iterations"]] == [None, 0, 0]
    assert json.loads((run / "state.json").read_text())["done"]
    questions = []
    for k in (1, 2):
        folder = run / "iterations" / str(k)
        candidates = [json.loads(line) for line in (folder / "generated.jsonl").open()]
        assert candidates, f"iteration {k}: the teacher wrote nothing"
        # Numbered for its own iteration: plans 1 and 2 read the same observation, yet the
        # teacher's sampling seeds (and so its answers) differ.
        assert {c["example"]["provenance"]["iteration"] for c in candidates} == {k}
        questions.append({c["example"]["question"] for c in candidates})
    assert questions[0] != questions[1]

    report = dataloop("report", str(run))
    assert report.returncode == 0, report.stderr
    row = next(line for line in report.stdout.splitlines() if "planned from" in line)
    assert [c.strip() for c in row.split("│")[2:5]] == ["", "reset", "reset"]
