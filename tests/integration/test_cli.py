"""The real CLI in a subprocess: listing, bad configs, and a whole (small) loop."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def dataloop(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dataloop.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=900,
    )


def test_help_and_envs() -> None:
    for command in ([], ["run"], ["envs"], ["serve"]):
        out = dataloop(*command, "--help")
        assert out.returncode == 0 and "Usage" in out.stdout
    out = dataloop("envs", "--verbose")
    assert out.returncode == 0
    assert "arithmetic" in out.stdout and "reverse" in out.stdout


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("student:\n  batch_sise: 8\n", "config field 'student.batch_sise': unknown field"),
        ("iterations: many\n", "config field 'iterations': Input should be a valid integer"),
        ("env:\n  name: nosuch\n", "unknown environment 'nosuch'; known: arithmetic"),
        ("policy:\n  name: best\n", "unknown policy 'best'"),
    ],
)
def test_bad_config_is_one_line_without_traceback(tmp_path, yaml_text, message) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(yaml_text)
    out = dataloop("run", str(config), "--runs-dir", str(tmp_path / "runs"))
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_a_small_loop_runs_end_to_end(tmp_path) -> None:
    out = dataloop(
        "run", "--name", "small", "--runs-dir", str(tmp_path), "--iterations", "1", "--quiet",
        "--set", "env.options={validation_per_skill: 20, test_per_skill: 20}",
        "--set", "policy.examples_per_iteration=24",
        "--set", "student.steps_per_iteration=20",
        "--set", "teacher.parallel=4",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "mean validation accuracy" in out.stdout
    run = tmp_path / "small"
    metrics = json.loads((run / "metrics.json").read_text())
    assert [it["iteration"] for it in metrics["iterations"]] == [0, 1]
    accepted = (run / "iterations/1/accepted.jsonl").read_text().splitlines()
    assert accepted and all(json.loads(a)["provenance"]["source"] == "generated" for a in accepted)
    generated = [json.loads(line) for line in (run / "iterations/1/generated.jsonl").open()]
    assert len(generated) >= len(accepted)
    assert json.loads((run / "iterations/1/plan.json").read_text())["requests"]
    assert (run / "config.yaml").is_file() and (run / "teacher.log").is_file()
    assert (run / "checkpoints/iteration-1").is_dir()
