"""scripts/continue_experiment.sh continues a registered experiment at the commit its file
names, from a checkout at another commit: a worktree of that commit makes the runs (the real
CLI, the tiny student trained for real, seed-only runs that need no teacher), the records carry
that commit, and they come back to the checkout's results file; a second call makes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tinybench import tiny_experiment

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SCRIPT = "scripts/continue_experiment.sh"


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_runs_are_made_at_the_registered_commit_and_copied_back(tmp_path) -> None:
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "-q", "--no-hardlinks", str(REPO), str(clone))
    for key, value in (("user.email", "t@example.com"), ("user.name", "test")):
        _git(clone, "config", key, value)
    experiment = clone / "experiments" / "tiny.yaml"
    text = tiny_experiment("http://127.0.0.1:9/v1", iterations=1, seeds=(0,), baseline=None)
    experiment.write_text(text.replace("  - name: uniform\n", ""))  # seed-only: no teacher
    _git(clone, "add", str(experiment))
    _git(clone, "commit", "-q", "-m", "register tiny")
    registered = _git(clone, "rev-parse", "HEAD")
    # The registration names its commit afterwards, and the checkout moves on.
    # Quoted, as docs/policies.md says: a prefix of digits only (1 in ~70) is a YAML number.
    experiment.write_text(experiment.read_text() + f"code: '{registered[:9]}'\n")
    _git(clone, "commit", "-q", "-am", "name the commit; later work")
    assert _git(clone, "rev-parse", "HEAD") != registered

    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": ""}
    refused = subprocess.run(
        [sys.executable, "-m", "dataloop.cli", "bench", "experiments/tiny.yaml"],
        cwd=clone, capture_output=True, text=True, env={**env, "PYTHONPATH": str(clone)},
    )  # fmt: skip
    assert refused.returncode != 0 and "experiment field 'code'" in refused.stderr

    done = subprocess.run(
        ["bash", SCRIPT, "experiments/tiny.yaml"], cwd=clone, capture_output=True, text=True,
        env=env, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    tree = clone / ".cache" / "experiments" / registered[:9]
    assert _git(tree, "rev-parse", "HEAD") == registered
    results = clone / "experiments" / "results" / "tiny.jsonl"
    (record,) = [json.loads(line) for line in results.read_text().splitlines()]
    assert record["arm"] == "seed-only" and record["code"]["commit"] == registered
    assert not record["code"]["dirty"]
    assert (tree / "experiments" / "results" / "tiny.jsonl").read_text() == results.read_text()

    again = subprocess.run(
        ["bash", SCRIPT, "experiments/tiny.yaml"], cwd=clone, capture_output=True, text=True,
        env=env, timeout=600,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "(done before)" in again.stderr and len(results.read_text().splitlines()) == 1
