"""Skill discovery against the real embedded teacher (Gemma 3 270M on llama-server)."""

from __future__ import annotations

import asyncio
import json

import pytest

from dataloop.environments import load_task
from dataloop.llm import OpenAIClient
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
            discovery = SkillDiscovery(client, max_skills=5, sample_size=8, attempts=4)
            return await discover_skills(client, examples, path, discovery=discovery)
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
