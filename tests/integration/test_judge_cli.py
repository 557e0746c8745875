"""The LLM judge in a real run: the packaged Gemma 3 270M on llama-server writes the data and
judges it (chat, constrained to the score's JSON schema), through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dataloop.cli", *args], capture_output=True, text=True, timeout=900
    )


def test_a_run_with_the_judge_records_scores_and_reports_them(tmp_path) -> None:
    out = _cli(
        "run", "--name", "judged", "--runs-dir", str(tmp_path), "--iterations", "1", "--quiet",
        "--set", "env.options={skills: [add, sub], validation_per_skill: 10, test_per_skill: 10}",
        "--set", "policy.examples_per_iteration=4",
        "--set", "teacher.max_queries=12",
        "--set", "student.steps_per_iteration=5",
        "--set", "teacher.parallel=4",
        # Gemma 3 270M is no critic: keep whatever it scores, the test is the plumbing.
        "--set", "engine.judge={threshold: 1, max_tokens: 48}",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    run = tmp_path / "judged"
    candidates = [json.loads(line) for line in (run / "iterations/1/generated.jsonl").open()]
    judged = [c for c in candidates if c["example"]["provenance"]["judge_reason"] is not None]
    assert judged, "no candidate was judged"
    scores = [c["example"]["provenance"]["judge_score"] for c in judged]
    assert any(s is not None for s in scores) and set(scores) <= {None, 1, 2, 3, 4, 5}
    for c in candidates:
        if c["verdict"] == "accepted":
            assert c["example"]["provenance"]["judge_score"] in (1, 2, 3, 4, 5)
    # every judgement asked is a query of the run's budget, booked in the generation report
    # too; once the budget is spent the rest are not asked, and not kept
    asked = [c for c in judged if not c["example"]["provenance"]["judge_reason"].startswith("not")]
    spent = json.loads((run / "state.json").read_text())["budget"]["queries"]
    booked = json.loads((run / "iterations/1/generation.json").read_text())["queries"]
    assert spent == booked > len(asked) > 0  # the judgements and at least one generation
    assert spent <= 12
    report = _cli("report", str(run))
    assert report.returncode == 0, report.stderr
    assert "judge scores" in report.stdout
