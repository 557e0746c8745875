"""The GPU experiments' scripts at toy size on the CPU (``DEVICE=cpu``): each builds and
pretrains its student, serves the task teacher, runs its registered experiment file(s) through
``dataloop bench`` and prints its table; the data each method made is checked to be what the
method asks for. A test of the machinery: the numbers are not results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dataloop.envs.arithmetic import ArithmeticTask
from dataloop.envs.math import MathTask, final_answer

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def _script(name: str, out: Path) -> str:
    env = {**os.environ, "DEVICE": "cpu", "PYTHON": sys.executable, "OUT": str(out)}
    done = subprocess.run(
        [str(ROOT / "scripts" / name)], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


def _accepted(run: Path) -> list[dict]:
    return [
        json.loads(line)
        for path in sorted(run.glob("iterations/*/accepted.jsonl"))
        for line in path.read_text().splitlines()
    ]


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_llm2llm_toy_runs_the_registered_experiment_as_the_paper_s_code_does(tmp_path) -> None:
    stdout = _script("gpu_llm2llm.sh", tmp_path)
    out = tmp_path / "llm2llm"
    assert "toy size: a test of the machinery, not a result" in stdout
    assert "| llm2llm-faithful-toy | seed-only | 2 |" in stdout
    assert "| llm2llm-faithful-toy | llm2llm | 2 |" in stdout
    assert "llm2llm − seed-only:" in stdout
    assert (out / "table.md").read_text().strip() in stdout
    records = _records(out / "llm2llm-faithful-toy" / "llm2llm-faithful-toy.jsonl")
    assert sorted((r["arm"], r["seed"]) for r in records) == [
        ("llm2llm", 200), ("llm2llm", 201), ("seed-only", 200), ("seed-only", 201)
    ]  # fmt: skip
    assert json.loads((out / "pretraining.json").read_text())["steps"] > 0
    # The registered schedule reached every run: from the base, sampled evaluation, novelty on.
    registered = yaml.safe_load((ROOT / "experiments" / "llm2llm-faithful.yaml").read_text())
    for record in records:
        student, engine = record["config"]["student"], record["config"]["engine"]
        assert student["train_from"] == "base"
        assert (student["eval_temperature"], student["eval_top_p"]) == (0.7, 0.9)
        assert engine["novelty"] == registered["base"]["engine"]["novelty"] == 0.95
    # Each llm2llm example is like the failed seed it came from: same skill and subskill.
    task = ArithmeticTask(seed=200, train_per_skill=8, validation_per_skill=8,
                          test_per_skill=8, skills=["first", "max"])  # fmt: skip
    seeds = {e.id: e for e in task.split("train")}
    made = _accepted(out / "runs" / "llm2llm" / "seed-200")
    assert made
    for row in made:
        parent = seeds[row["provenance"]["parent_ids"][0]]
        assert row["skill"] == parent.skill and row["question"] not in {
            s.question for s in seeds.values()
        }
        subskills = [s.name for s in task.subskills(parent.skill)]
        child = parent.relabel(question=row["question"], answer=row["answer"])
        assert [task.in_subskill(child, s) for s in subskills] == [
            task.in_subskill(parent, s) for s in subskills
        ]
    assert not _accepted(out / "runs" / "seed-only" / "seed-200")


def test_e3_toy_runs_strategies_by_budget_ratio_and_each_makes_its_kind_of_data(
    tmp_path,
) -> None:
    stdout = _script("gpu_e3.sh", tmp_path)
    out = tmp_path / "e3"
    for ratio in (1, 8):
        for arm in ("answer-augmentation", "question-rephrase", "new-question"):
            assert f"| BR {ratio} | {arm} | 1 |" in stdout
        records = _records(
            out / f"e3-balancing-br{ratio}-toy" / f"e3-balancing-br{ratio}-toy.jsonl"
        )
        assert {r["arm"] for r in records} == {
            "answer-augmentation", "question-rephrase", "new-question"
        }  # fmt: skip
        assert {r["config"]["teacher"]["max_queries"] for r in records} == {ratio * 6}
    assert "BR 1: answer-augmentation − new-question:" in stdout
    # The manipulation check, from the run folders that stay on the GPU machine.
    for ratio in (1, 8):
        assert f"e3-balancing-br{ratio}-toy manipulation check: answer-augmentation: " in stdout
    assert "answer-augmentation: 0 accepted" not in stdout
    assert stdout.count("100 % of its kind") == 6, stdout[-3000:]
    options = {"train_size": 6, "validation_size": 10, "test_size": 10}
    task = MathTask(seed=300, data_files=str(out / "toy-data"), skill_field="skill", **options)
    seeds = {e.question: e.answer for e in task.split("train")}
    runs = out / "runs" / "e3-balancing-br8-toy"
    augmented = _accepted(runs / "answer-augmentation" / "seed-300")
    rephrased = _accepted(runs / "question-rephrase" / "seed-300")
    new = _accepted(runs / "new-question" / "seed-300")
    assert augmented and rephrased and new
    # Answer augmentation: a seed's question, another worked solution with the same answer.
    for row in augmented:
        assert row["question"] in seeds and row["answer"] != seeds[row["question"]]
        assert final_answer(row["answer"]) == final_answer(seeds[row["question"]])
    # Rephrase: another question with a seed's answer; new questions: none of the seeds.
    assert all(r["question"] not in seeds and r["answer"] in seeds.values() for r in rephrased)
    assert all(r["question"] not in seeds for r in new)


def test_a_run_past_its_deadline_stops_and_still_tabulates_what_is_recorded(tmp_path) -> None:
    """On the GPU the call's time is the limit: at the deadline bench and its runs are stopped
    and the table says what is pending instead of nothing coming back."""
    command = [sys.executable, str(ROOT / "benchmarks" / "gpu_experiments.py"), "llm2llm"]
    command += ["--toy", "--budget", "5", "--out", str(tmp_path)]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "llm2llm-faithful-toy.yaml: stopped at the deadline" in done.stdout
    assert "llm2llm − seed-only: incomplete; 4 runs pending" in done.stdout
    assert "4 runs pending" in (tmp_path / "llm2llm" / "table.md").read_text()
