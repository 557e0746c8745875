"""User policies for real: from a file through the CLI (``dataloop bench``) and from Python."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from realcli import small_run

from dataloop import GenerationRequest, Loop, Observation, Plan, Policy
from dataloop.config import StudentConfig
from dataloop.engine import Engine
from dataloop.gym import Environment
from dataloop.llm import OpenAIClient, Sampling, Teacher
from dataloop.students.hf import HFStudent

pytestmark = pytest.mark.integration

USER_POLICY = """
from dataloop import GenerationRequest, Observation, Plan, Policy


class OnlyMax(Policy):
    def plan(self, obs: Observation) -> Plan:
        request = GenerationRequest(skill="max", count=self.examples_per_iteration)
        return Plan(requests=[request], rationale="user policy: max only")
"""


def test_bench_runs_a_user_policy_the_llm_planner_and_the_controls(tmp_path) -> None:
    """``dataloop bench`` for real: Gemma teacher arms (a user policy from a file, the LLM
    planner), the oracle and seed-only controls, two seeds, one query budget."""
    policy_file = tmp_path / "my_policy.py"
    policy_file.write_text(USER_POLICY)
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(
        f"""
base:
  iterations: 1
  env: {{options: {{skills: [max, sort], validation_per_skill: 20, test_per_skill: 5}}}}
  policy: {{examples_per_iteration: 6}}
  teacher: {{max_tokens: 64, parallel: 4}}
  student: {{steps_per_iteration: 10}}
seeds: [0, 1]
budget: {{queries: 8}}
baselines: [seed-only]
arms:
  - name: seed-only
  - name: only-max
    set: {{policy.name: "{policy_file}:OnlyMax"}}
  - name: planner
    set: {{policy.name: llm-planner}}
  - name: oracle
"""
    )
    out = tmp_path / "bench"
    command = [sys.executable, "-m", "dataloop.cli", "bench", str(experiment), "--quiet",
               "--out", str(out)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    assert "| only-max | 2 |" in result.stdout
    results = json.loads((out / "results.json").read_text())
    assert sorted((r["arm"], r["seed"]) for r in results["runs"]) == sorted(
        (arm, seed) for arm in ("seed-only", "only-max", "planner", "oracle") for seed in (0, 1)
    )
    for run in results["runs"]:
        assert run["points"][-1]["queries"] <= 8
        if run["arm"] in ("seed-only", "oracle"):
            assert run["points"][-1]["queries"] == 0  # no teacher was asked
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    user_run = out / "only-max" / "seed-0"
    plan = json.loads((user_run / "iterations/1/plan.json").read_text())
    assert plan["rationale"] == "user policy: max only"
    accepted = [json.loads(x) for x in (user_run / "iterations/1/accepted.jsonl").open()]
    assert accepted and {a["skill"] for a in accepted} == {"max"}
    oracle = [json.loads(x) for x in (out / "oracle/seed-0/iterations/1/accepted.jsonl").open()]
    assert len(oracle) == 6 and {a["provenance"]["teacher"] for a in oracle} == {"oracle"}
    assert not (out / "seed-only/seed-0/iterations/1/accepted.jsonl").read_text()
    # Gemma 270M may or may not write a valid plan: either way the plan is usable and says so.
    planned = json.loads((out / "planner/seed-0/iterations/1/plan.json").read_text())
    assert planned["rationale"].startswith(("teacher:", "fallback to weakest-skills"))
    assert sum(r["count"] for r in planned["requests"]) == 6
    # Everything is finished: a second call runs nothing and gives the same table.
    again = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "running" not in again.stderr and again.stderr.count("done before") == 8
    assert json.loads((out / "results.json").read_text())["arms"] == results["arms"]


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
    engine = Engine(
        Teacher(OpenAIClient("gemma", [llama], concurrency=4)),
        task,
        sampling=Sampling(max_tokens=64),
    )
    env = Environment(
        task, student, checkpoints_dir=tmp_path, max_iterations=1, budget=engine.budget
    )
    loop = Loop(env=env, policy=WeakestOnly(examples_per_iteration=5), engine=engine)
    history = loop.run()
    assert [h.iteration for h in history] == [0, 1]
    weakest = min(history[0].accuracy, key=lambda s: history[0].accuracy[s])
    assert set(history[1].accepted) == {weakest}
    assert 0 < history[1].accepted[weakest] <= 5
    generated = [e for e in env.train_set if e.provenance.source == "generated"]
    assert generated and all(e.skill == weakest for e in generated)


def test_cli_high_loss_sends_the_seeds_the_student_fits_worst_to_harder(tmp_path) -> None:
    """One small real run (tiny student, Gemma teacher): the student's loss on every seed is in
    each observation, the plan names the k highest, and harder builds on exactly those."""
    out = small_run(
        tmp_path, "h", "--iterations", "1",
        "--set", "env.options={train_per_skill: 8, validation_per_skill: 10, "
        "test_per_skill: 10, skills: [add, max]}",
        "--set", "policy.name=high-loss",
        "--set", "policy.options={k: 4, strategy: harder}",
        "--set", "policy.examples_per_iteration=8",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    run = tmp_path / "h" / "iterations"
    losses = json.loads((run / "0" / "observation.json").read_text())["losses"]
    assert {s: len(ls) for s, ls in losses.items()} == {"add": 8, "max": 8}
    ranked = sorted(((-v, k) for ls in losses.values() for k, v in ls.items()))
    chosen = {k for _, k in ranked[:4]}
    plan = json.loads((run / "1" / "plan.json").read_text())
    assert {r["strategy"] for r in plan["requests"]} == {"harder"}
    assert {i for r in plan["requests"] for i in r["seed_ids"]} == chosen
    assert sum(r["count"] for r in plan["requests"]) == 8
    candidates = [json.loads(line) for line in (run / "1" / "generated.jsonl").open()]
    assert candidates
    for candidate in candidates:
        provenance = candidate["example"]["provenance"]
        assert provenance["strategy"] == "harder" and set(provenance["parent_ids"]) <= chosen
    assert json.loads((run / "1" / "observation.json").read_text())["losses"]
