"""Small real runs through the CLI in a subprocess: an unreachable teacher stops the run with one
line and leaves it resumable; INFO logging stays in run.log unless --verbose."""

from __future__ import annotations

import json
import socket

from fakeserver import FakeOpenAI
from test_cli_errors import dataloop, one_line_error

SMALL = [
    "--iterations", "1", "--quiet",
    "--set", "env.options={train_per_skill: 4, validation_per_skill: 4, test_per_skill: 4}",
    "--set", "student.steps_per_iteration=1",
    "--set", "policy.examples_per_iteration=12",
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_teacher_stops_the_run_which_resumes_once_it_is_back(tmp_path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/v1"
    out = dataloop(
        "run", "--name", "r", "--runs-dir", str(tmp_path), *SMALL,
        "--set", "teacher.backend=openai", "--set", "teacher.model=fake",
        "--set", f"teacher.base_urls=[{url}]", "--set", "teacher.retries=1",
    )  # fmt: skip
    line = one_line_error(out, f"teacher at {url} cannot be reached", "dataloop resume")
    assert "max_connection_failures" in line
    assert "mean validation accuracy" not in out.stdout  # no training result is reported
    run = tmp_path / "r"
    state = json.loads((run / "state.json").read_text())
    assert (state["iteration"], state["phase"]) == (1, "planned")  # generation not committed
    assert not (run / "iterations/1/accepted.jsonl").exists()
    assert [
        h["iteration"] for h in json.loads((run / "metrics.json").read_text())["iterations"]
    ] == [0]

    with FakeOpenAI(port=port) as server:
        out = dataloop("resume", str(run))
    assert out.returncode == 0, out.stderr
    assert server.requests > 0
    assert "mean validation accuracy" in out.stdout
    assert "INFO" not in out.stderr  # logging reaches the terminal only with --verbose
    metrics = json.loads((run / "metrics.json").read_text())
    assert [h["iteration"] for h in metrics["iterations"]] == [0, 1]
    log = [json.loads(line) for line in (run / "run.log").read_text().splitlines()]
    assert any(r["message"] == "iteration done" and r["iteration"] == 1 for r in log)


def test_verbose_shows_the_log_on_the_terminal(tmp_path) -> None:
    out = dataloop(
        "run", "--name", "v", "--runs-dir", str(tmp_path), *SMALL,
        "--set", "engine.source=none", "--verbose",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "iteration done" in out.stderr
