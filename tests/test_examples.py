"""Every file in examples/ is what its comments and the docs say it is: each YAML config is a
valid run config whose policy can plan for its structure and whose files exist, the commands in
its comments name real options, the custom policies plan, and the custom task passes ``dataloop
envs --check`` with the output docs/environments.md shows. (What a real run of them does is
tested by the CLI integration tests with the same settings.)"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from dataloop.config import load_config, parse_overrides
from dataloop.policies import check_structure, make_policy
from dataloop.schema import Example, Failure, Observation, SkillInfo

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
CONFIGS = sorted(EXAMPLES.glob("*.yaml"))


def test_there_are_examples_to_check() -> None:
    assert {p.name for p in CONFIGS} >= {"publish.yaml", "student_aware.yaml", "skill_tree.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_example_config_is_a_valid_run(path: Path, monkeypatch) -> None:
    monkeypatch.chdir(REPO)  # its paths are relative to the checkout, as its comments run it
    config = load_config(path)
    check_structure(config.policy.name, config.env.structure)
    for benchmark in config.engine.benchmarks:
        if getattr(benchmark, "path", None) is not None:
            assert Path(benchmark.path).exists(), benchmark
    # Its comments say how to run it, by this name.
    assert f"dataloop run examples/{path.name}" in path.read_text(), path.name


def test_the_comments_options_are_real(monkeypatch) -> None:
    """student_aware.yaml lists the other student-aware teachers as options to add."""
    monkeypatch.chdir(REPO)
    path = EXAMPLES / "student_aware.yaml"
    lines = [line.lstrip("# ") for line in path.read_text().splitlines() if "--set" in line]
    assert len(lines) == 4
    for line in lines:
        words = shlex.split(line.split("  #")[0])
        sets = [words[i + 1] for i, w in enumerate(words) if w == "--set"]
        strategy = [words[i + 1] for i, w in enumerate(words) if w == "--strategy"]
        overrides = parse_overrides(sets)
        if strategy:
            overrides["engine"] = {"strategy": strategy[0]}
        config = load_config(path, overrides)
        check_structure(config.policy.name, config.env.structure)


def _observation() -> Observation:
    skills = [SkillInfo(name="add", description="a+b"), SkillInfo(name="max", description="max")]
    failures = [
        Failure(example=Example.make("add", f"{i}+1", str(i + 1)), prediction="0") for i in range(3)
    ]
    return Observation(
        iteration=1,
        skills=skills,
        accuracy={"add": 0.2, "max": 0.9},
        mean_accuracy=0.55,
        failures=failures,
        seed_counts={"add": 8, "max": 8},
        train_size=16,
    )


def test_the_custom_policies_plan_from_their_failures() -> None:
    obs = _observation()
    focus = make_policy("examples/custom_policy.py:FocusOnFailures", examples_per_iteration=40)
    plan = focus.plan(obs)
    counts = {r.skill: r.count for r in plan.requests}
    assert sum(counts.values()) == 40 and counts["add"] == 4 * counts["max"]  # weights 3+1, 0+1
    retry = make_policy("examples/custom_policy.py:retry_failures")
    (request,) = retry.plan(obs).requests
    assert request.skill == "add" and request.count == 12
    assert request.seed_ids == [f.example.id for f in obs.failures]


def test_the_custom_task_checks_as_the_docs_show() -> None:
    docs = (REPO / "docs" / "environments.md").read_text()
    shown = re.findall(r"^\$ dataloop envs --check (examples/my_env\.py.*)\n(ok: .*)$", docs, re.M)
    assert len(shown) == 1  # the plain check, with what it prints
    shown.append(("examples/my_env.py:LetterTask --set train_per_skill=8", "ok: "))
    assert "$ dataloop envs --check " + shown[1][0] in docs
    for command, output in shown:
        done = subprocess.run(
            [sys.executable, "-m", "dataloop.cli", "envs", "--check", *shlex.split(command)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "COLUMNS": "200"},  # rich wraps at 80 in a pipe
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().startswith(output)
        assert output != "ok: " or "splits {'train': 16," in done.stdout  # 8 a skill
