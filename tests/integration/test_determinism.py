"""The same config, seed and commit give the same numbers: what lets anyone recompute a
published result. Two real runs (the tiny student trained for real, a scripted teacher whose
reply is a pure function of the prompt) through the CLI, compared file by file."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from fakeserver import FakeOpenAI, few_shot_variations

pytestmark = pytest.mark.integration


def _run(tmp_path, name: str, url: str, seed: int) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable, "-m", "dataloop.cli", "run", "--name", name, "--runs-dir",
        str(tmp_path), "--iterations", "2", "--quiet",
        "--set", f"seed={seed}",
        "--set", "env.options={skills: [max, sort, len], validation_per_skill: 20, "
                 "test_per_skill: 20}",
        "--set", "env.feedback_per_skill=10",
        "--set", "policy.name=dataenvgym-skill-list",
        "--set", "policy.examples_per_iteration=24",
        "--set", "student.steps_per_iteration=20", "--set", "student.batch_size=16",
        "--set", "teacher.backend=openai", "--set", "teacher.model=fake",
        "--set", f"teacher.base_urls=[{url}]", "--set", "engine.per_query=4",
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def test_same_config_seed_and_commit_give_the_same_metrics_and_data(tmp_path) -> None:
    with FakeOpenAI(latency=0.01, reply=few_shot_variations) as server:
        for name, seed in (("a", 7), ("b", 7), ("c", 8)):
            done = _run(tmp_path, name, server.base_url, seed)
            assert done.returncode == 0, done.stderr
    metrics = {n: json.loads((tmp_path / n / "metrics.json").read_text()) for n in "abc"}
    assert metrics["a"] == metrics["b"]
    assert metrics["a"]["test"] and len(metrics["a"]["iterations"]) == 3
    for k in (1, 2):
        accepted = [(tmp_path / n / f"iterations/{k}/accepted.jsonl").read_text() for n in "ab"]
        assert accepted[0] == accepted[1] and accepted[0]
        plans = [json.loads((tmp_path / n / f"iterations/{k}/plan.json").read_text()) for n in "ab"]
        assert plans[0] == plans[1]
    # The seed matters: another seed is another run (splits, initialisation, data).
    assert metrics["c"] != metrics["a"]
    start = json.loads((tmp_path / "a" / "environment.jsonl").read_text().splitlines()[0])
    assert start["versions"]["torch"] and start["versions"]["transformers"]
    assert "trl" in start["versions"] and start["python"]
