"""Each built-in environment from the CLI: ``envs --check`` and one loop iteration, tiny student."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

# Per environment: the options and student sizes that keep one iteration to a few seconds.
RUNS = {
    # math with self-consistency votes: each verified new problem is solved twice more.
    "math": ["--set", "env.options={validation_size: 8, test_size: 8, train_size: 16}",
             "--set", "student.max_length=320", "--set", "student.max_new_tokens=48",
             "--set", "engine.votes=2"],
    "multiple_choice": ["--set", "student.max_length=160", "--set", "student.max_new_tokens=4"],
    "code": ["--set", "student.max_length=384", "--set", "student.max_new_tokens=48",
             "--set", "env.options={timeout_seconds: 2}"],
}  # fmt: skip


def dataloop(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dataloop.cli", *args], capture_output=True, text=True, timeout=600
    )


@pytest.mark.parametrize("env", sorted(RUNS))
def test_one_iteration_runs_on_each_environment(tmp_path: Path, env: str) -> None:
    out = dataloop(
        "run", "--env", env, "--name", env, "--runs-dir", str(tmp_path), "--iterations", "1",
        "--quiet", *RUNS[env],
        "--set", "policy.examples_per_iteration=6",
        "--set", "engine.shots=2",
        "--set", "student.steps_per_iteration=4",
        "--set", "student.batch_size=8",
        "--set", "teacher.parallel=4",
        "--set", "teacher.max_tokens=96",
        "--set", "engine.max_rounds=1",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = json.loads((tmp_path / env / "metrics.json").read_text())
    assert [it["iteration"] for it in metrics["iterations"]] == [0, 1]
    generated = (tmp_path / env / "iterations/1/generated.jsonl").read_text().splitlines()
    verdicts = {json.loads(line)["verdict"] for line in generated}
    assert verdicts <= {
        "accepted",
        "unverified",
        "wrong-answer",  # voted down (math runs with engine.votes)
        "duplicate",
        "contaminated",
        "too-long",
        "surplus",
    }


def test_check_passes_builtins_and_names_problems_in_a_broken_env(tmp_path: Path) -> None:
    for env in RUNS:
        out = dataloop("envs", "--check", env)
        assert out.returncode == 0 and out.stdout.startswith(f"ok: {env}"), out.stderr
    broken = tmp_path / "broken.py"
    broken.write_text(
        "from dataloop.environments import TaskEnvironment\n"
        "from dataloop.schema import Example, SkillInfo\n\n"
        "class Broken(TaskEnvironment):\n"
        "    name = 'broken'\n"
        "    def skills(self):\n"
        "        return [SkillInfo(name='a', description='d')]\n"
        "    def split(self, name):\n"
        "        if name == 'test':\n"
        "            return []\n"
        "        return [Example.make('b', 'q', 'x')]\n"
        "    def score(self, example, completion):\n"
        "        return False\n"
    )
    out = dataloop("envs", "--check", str(broken))
    assert out.returncode == 1
    assert "split('test') is empty" in out.stderr
    assert "has skills not in skills(): ['b']" in out.stderr
    assert "the reference answer must score as correct" in out.stderr
    bad_data = dataloop("envs", "--check", "math", "--set", f"data_files={tmp_path / 'none.jsonl'}")
    assert bad_data.returncode == 2 and "none.jsonl does not exist" in bad_data.stderr
