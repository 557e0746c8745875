"""Small real runs through the CLI in a subprocess: an unreachable teacher stops the run with one
line and leaves it resumable; INFO logging stays in run.log unless --verbose.

Each trains the tiny student in a fresh process (11-48 s apiece): integration tests, run one
after another by ``make test`` after the unit tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakeserver import FakeOpenAI, few_shot_variations
from test_cli_errors import REPO, dataloop, one_line_error
from tinybench import tiny_experiment

pytestmark = pytest.mark.integration

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


def test_a_teacher_that_fails_mid_run_stops_it_and_it_resumes_once_it_is_back(tmp_path) -> None:
    port = _free_port()
    teacher = [
        "--set", "teacher.backend=openai", "--set", "teacher.model=fake",
        "--set", f"teacher.base_urls=[http://127.0.0.1:{port}/v1]",
        "--set", "teacher.retries=1", "--set", "teacher.timeout=1",
    ]  # fmt: skip
    with FakeOpenAI(port=port, fault_rate=1.0):  # up (the model list answers), every request fails
        out = dataloop("run", "--name", "r", "--runs-dir", str(tmp_path), *SMALL, *teacher)
    one_line_error(out, f"127.0.0.1:{port}", "once it is back: dataloop resume")
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


@pytest.mark.parametrize("teacher", ["down", "hanging"])
def test_a_teacher_down_or_hanging_from_the_start_is_found_before_anything_trains(
    tmp_path, teacher
) -> None:
    """At 4df1ece it was found after the reset trained, and a hanging one after ~10 minutes
    (120 s x 5 attempts); now the model list is asked for first, within probe_timeout."""
    with socket.socket() as hang:
        hang.bind(("127.0.0.1", 0))
        if teacher == "hanging":
            hang.listen(1)  # accepts connections, never answers
        url = f"http://127.0.0.1:{hang.getsockname()[1]}/v1"
        started = time.monotonic()
        out = dataloop(
            "run", "--name", "r", "--runs-dir", str(tmp_path), *SMALL,
            "--set", "teacher.backend=openai", "--set", "teacher.model=fake",
            "--set", f"teacher.base_urls=[{url}]", "--set", "teacher.probe_timeout=2",
        )  # fmt: skip
        elapsed = time.monotonic() - started
    needle = "cannot be reached" if teacher == "down" else "did not answer within 2 s"
    one_line_error(out, f"teacher at {url}", needle)
    assert elapsed < 60, elapsed  # the probe, not 10 minutes of retries
    assert not (tmp_path / "r").exists()  # nothing trained, nothing left


def test_verbose_shows_the_log_on_the_terminal(tmp_path) -> None:
    out = dataloop(
        "run", "--name", "v", "--runs-dir", str(tmp_path), *SMALL,
        "--set", "engine.source=none", "--verbose",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "iteration done" in out.stderr


PLUGINS = Path(__file__).resolve().parent / "fixtures" / "plugins"
GOOD_POLICY = """
from dataloop.policies import Policy
from dataloop.schema import GenerationRequest, Plan


class Raises(Policy):
    def plan(self, obs):
        return Plan(requests=[GenerationRequest(skill=obs.skills[0].name, count=2)])
"""


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("Raises", "plan() raised KeyError: 'plan' (at "),
        ("ReturnsDict", "returned dict, not a Plan"),
    ],
)
def test_a_policy_that_fails_is_named_in_one_line_and_the_run_resumes(tmp_path, name, needle):
    """At 4df1ece: a 58-line (raises) or 47-line (dict) traceback after the reset trained."""
    policy = tmp_path / "my_policy.py"
    shutil.copy(PLUGINS / "bad_policies.py", policy)
    out = dataloop(
        "run", "--name", "r", "--runs-dir", str(tmp_path), *SMALL,
        "--set", "engine.source=none", "--policy", f"{policy}:{name}",
    )  # fmt: skip
    run = tmp_path / "r"
    one_line_error(out, f"policy {policy}:{name}: ", needle, f"dataloop resume {run}")
    state = json.loads((run / "state.json").read_text())
    assert (state["iteration"], state["phase"]) == (0, "trained")  # the reset is kept
    if name == "Raises":
        policy.write_text(GOOD_POLICY)  # fixed: the same file and class
        out = dataloop("resume", str(run))
        assert out.returncode == 0, out.stderr
        assert "mean validation accuracy" in out.stdout
        assert json.loads((run / "state.json").read_text())["iteration"] == 1


def test_an_environment_whose_verify_raises_on_most_candidates_is_named(tmp_path) -> None:
    """At 4df1ece: one raising verify was a 67-line traceback; now each candidate it raises on
    is rejected and counted, and the run stops (resumable) only when most of them do."""
    reply = lambda prompt: " 12+30\nA: 42\nQ: 11+30\nA: 41\n"  # noqa: E731
    with FakeOpenAI(reply=reply) as server:
        out = dataloop(
            "run", "--name", "r", "--runs-dir", str(tmp_path), *SMALL,
            "--env", f"{PLUGINS / 'bad_envs.py'}:VerifyRaises",
            "--set", "teacher.backend=openai", "--set", "teacher.model=fake",
            "--set", f"teacher.base_urls=[{server.base_url}]",
        )  # fmt: skip
    line = one_line_error(out, "bad_envs.py:VerifyRaises", "checking candidates raised on")
    assert "RuntimeError: my verify is broken (at " in line and "dataloop resume" in line
    state = json.loads((tmp_path / "r" / "state.json").read_text())
    assert (state["iteration"], state["phase"]) == (1, "planned")


def _ctrl_c_as_in_a_terminal() -> None:
    """SIGINT at its default in the child, whatever this test inherits: a background job (``make
    test &``) ignores it, and a child that ignores it cannot be interrupted."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _ctrl_c_once_started(args: list[str], state: Path) -> tuple[int, str]:
    """``dataloop ARGS`` in a subprocess, sent SIGINT once ``state`` exists (a run has started);
    its exit code and stderr."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    process = subprocess.Popen(
        [sys.executable, "-m", "dataloop.cli", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=path), preexec_fn=_ctrl_c_as_in_a_terminal,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while not state.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    return process.returncode, err


def test_ctrl_c_says_how_to_resume(tmp_path) -> None:
    """At 4df1ece SIGINT exited 130 with no word on what next."""
    state = tmp_path / "r" / "state.json"
    code, err = _ctrl_c_once_started(
        ["run", "--name", "r", "--runs-dir", str(tmp_path), *SMALL,
         "--set", "engine.source=none", "--iterations", "50"],
        state,
    )  # fmt: skip
    assert code == 130, err
    assert (
        err.strip().splitlines()[-1] == f"interrupted: continue with dataloop resume {state.parent}"
    )
    assert "Traceback" not in err


def test_ctrl_c_in_bench_says_how_to_continue(tmp_path) -> None:
    """Before 2026-12-04 bench ended on Ctrl-C with exit 130 and no word on what next."""
    with FakeOpenAI(latency=0.05, reply=few_shot_variations) as server:
        experiment = tmp_path / "exp.yaml"
        experiment.write_text(tiny_experiment(server.base_url, iterations=50))
        out = tmp_path / "bench"
        code, err = _ctrl_c_once_started(
            ["bench", str(experiment), "--out", str(out), "--quiet"],
            out / "seed-only" / "seed-0" / "state.json",
        )
    assert code == 130, err
    assert err.strip().splitlines()[-1] == (
        "interrupted: run the same command again to continue (finished runs are recorded, "
        "unfinished ones resume)"
    )
    assert "Traceback" not in err
