"""Skill discovery against the real embedded teacher (Gemma 3 270M on llama-server)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from dataloop.environments import load_task
from dataloop.llm import OpenAIClient, Teacher
from dataloop.skills import SkillDiscovery, discover_skills

pytestmark = pytest.mark.integration


def test_gemma_proposes_skills_and_labels_every_question(llama: str, tmp_path) -> None:
    sizes = {"validation_size": 2, "test_size": 2, "train_size": 8}
    task = load_task("math", options=sizes)
    examples = [e for s in ("train", "validation", "test") for e in task.split(s)]
    path = tmp_path / "run" / "skills.json"

    async def go():
        # A generous timeout: on a busy 2-core machine the server's queue is slow.
        client = OpenAIClient("gemma", [llama], concurrency=4, timeout=300, retries=1)
        try:
            teacher = Teacher(client)
            discovery = SkillDiscovery(teacher, max_skills=5, sample_size=8, attempts=4)
            return await discover_skills(discovery, examples, path)
        finally:
            await client.aclose()

    taxonomy = asyncio.run(go())
    saved = json.loads(path.read_text())
    names = [s["name"] for s in saved["skills"]]
    assert 2 <= len([n for n in names if n != "other"]) <= 5
    assert {label["question"] for label in saved["labels"]} == {e.question for e in examples}
    assert all(label["skill"] in names for label in saved["labels"])
    # The environment takes the discovered labels as its skills.
    relabelled = load_task("math", options={**sizes, "skills_file": str(path)})
    assert {e.skill for e in relabelled.split("train")} <= set(names)
    assert taxonomy.skills and taxonomy.labels


def test_run_discovers_skills_into_the_run_folder_and_export_reads_edits(tmp_path) -> None:
    """``dataloop run --set env.discover_skills=true`` from the CLI, then the file edited."""

    def dataloop(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dataloop.cli", *args],
            capture_output=True,
            text=True,
            timeout=900,
        )

    out = dataloop(
        "run", "--env", "math", "--name", "disc", "--runs-dir", str(tmp_path),
        "--iterations", "1", "--quiet",
        # 24 questions: the taxonomy prompt shows all of them (sample_size 24), which once
        # overflowed llama-server's 1024-token slots.
        "--set", "env.options={train_size: 16, validation_size: 4, test_size: 4}",
        "--set", "env.discover_skills=true", "--set", "env.max_skills=4",
        "--set", "student.max_length=320", "--set", "student.max_new_tokens=32",
        "--set", "student.steps_per_iteration=4", "--set", "student.batch_size=8",
        "--set", "policy.examples_per_iteration=4", "--set", "engine.max_rounds=1",
        "--set", "teacher.parallel=4", "--set", "teacher.max_tokens=96",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    run = tmp_path / "disc"
    saved = json.loads((run / "skills.json").read_text())
    names = [s["name"] for s in saved["skills"]]
    assert 2 <= len([n for n in names if n != "other"]) <= 4
    assert len(saved["labels"]) == 24 and all(lb["skill"] in names for lb in saved["labels"])
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["iterations"][0]["accuracy"]) <= set(names)
    assert metrics["iterations"][0]["queries"] >= 25  # a taxonomy, then one label a question
    # The user merges every skill into one; export reads the edited file.
    saved["skills"] = [{"name": "word-problems", "description": "merged by hand"}]
    for label in saved["labels"]:
        label["skill"] = "word-problems"
    (run / "skills.json").write_text(json.dumps(saved))
    out = dataloop("export", str(run), "--out", str(tmp_path / "data.jsonl"), "--format", "jsonl")
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "data.jsonl").read_text().splitlines()]
    seeds = [r for r in rows if r["question"] in {lb["question"] for lb in saved["labels"]}]
    assert len(seeds) >= 16 and {r["skill"] for r in seeds} == {"word-problems"}
