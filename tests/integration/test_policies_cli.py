"""User policies for real: from a file through the CLI (``dataloop compare``) and from Python."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dataloop import GenerationRequest, Loop, Observation, Plan, Policy
from dataloop.config import StudentConfig
from dataloop.engine import Engine
from dataloop.gym import Environment
from dataloop.llm import OpenAIClient
from dataloop.students.hf import HFStudent

pytestmark = pytest.mark.integration

USER_POLICY = """
from dataloop import GenerationRequest, Observation, Plan, Policy


class OnlyMax(Policy):
    def plan(self, obs: Observation) -> Plan:
        request = GenerationRequest(skill="max", count=self.examples_per_iteration)
        return Plan(requests=[request], rationale="user policy: max only")
"""


def test_compare_runs_a_user_policy_from_a_file_and_the_llm_planner(tmp_path) -> None:
    policy_file = tmp_path / "my_policy.py"
    policy_file.write_text(USER_POLICY)
    out = tmp_path / "cmp"
    result = subprocess.run(
        [
            sys.executable, "-m", "dataloop.cli", "compare", "--quiet",
            "--policies", f"{policy_file}:OnlyMax,llm-planner",
            "--iterations", "1", "--max-queries", "8", "--out", str(out),
            "--set", "env.options={skills: [max, sort], validation_per_skill: 20,"
            " test_per_skill: 5}",
            "--set", "policy.examples_per_iteration=6",
            "--set", "teacher.max_tokens=64",
            "--set", "student.steps_per_iteration=10",
            "--set", "teacher.parallel=4",
        ],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    comparison = json.loads((out / "comparison.json").read_text())
    assert [p["policy"] for p in comparison["policies"]] == [
        f"{policy_file}:OnlyMax",
        "llm-planner",
    ]
    assert all(p["points"][-1]["queries"] <= 8 for p in comparison["policies"])
    assert (out / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    user_run = next(out.glob("*OnlyMax"))
    plan = json.loads((user_run / "iterations/1/plan.json").read_text())
    assert plan["rationale"] == "user policy: max only"
    accepted = [json.loads(x) for x in (user_run / "iterations/1/accepted.jsonl").open()]
    assert accepted and {a["skill"] for a in accepted} == {"max"}
    # Gemma 270M may or may not write a valid plan: either way the plan is usable and says so.
    planned = json.loads((out / "llm-planner/iterations/1/plan.json").read_text())
    assert planned["rationale"].startswith(("teacher:", "fallback to weakest-skills"))
    assert sum(r["count"] for r in planned["requests"]) == 6


class WeakestOnly(Policy):
    """All of the iteration's examples for the weakest skill."""

    def plan(self, obs: Observation) -> Plan:
        weakest = min(obs.accuracy, key=lambda s: obs.accuracy[s])
        request = GenerationRequest(skill=weakest, count=self.examples_per_iteration)
        return Plan(requests=[request], rationale=f"weakest: {weakest}")


def test_python_api_loop_with_a_policy_subclass(llama: str, tmp_path) -> None:
    from dataloop.environments import load_task

    task = load_task(
        "arithmetic",
        options={"skills": ["max", "sort"], "validation_per_skill": 20, "test_per_skill": 5},
    )
    student = HFStudent(StudentConfig(steps_per_iteration=10), seed=0)
    env = Environment(task, student, checkpoints_dir=tmp_path, max_iterations=1)
    engine = Engine(OpenAIClient("gemma", [llama], concurrency=4), task, max_tokens=64)
    loop = Loop(env=env, policy=WeakestOnly(examples_per_iteration=5), engine=engine)
    history = loop.run()
    assert [h.iteration for h in history] == [0, 1]
    weakest = min(history[0].accuracy, key=lambda s: history[0].accuracy[s])
    assert set(history[1].accepted) == {weakest}
    assert 0 < history[1].accepted[weakest] <= 5
    generated = [e for e in env.train_set if e.provenance.source == "generated"]
    assert generated and all(e.skill == weakest for e in generated)
