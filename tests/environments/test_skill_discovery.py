"""Skill discovery with a scripted teacher: taxonomy, labels, the editable cache file."""

from __future__ import annotations

import asyncio
import json

import pytest

from dataloop.environments import load_task
from dataloop.errors import DataloopError
from dataloop.llm.base import Completion, Message, Sampling
from dataloop.llm.teacher import Teacher
from dataloop.schema import Budget, Example
from dataloop.skills import SkillDiscovery, discover_skills, match_skill, parse_skills


class Scripted:
    """Answers taxonomy prompts with a list and labelling prompts by keyword."""

    model = "scripted"

    def __init__(self, taxonomy: str) -> None:
        self.taxonomy = taxonomy
        self.budget = Budget()
        self.prompts: list[str] = []

    async def complete(self, prompt: str, sampling: Sampling) -> Completion:
        self.prompts.append(prompt)
        if prompt.rstrip().endswith("Skill:"):
            question = prompt.rsplit("Question:", 1)[1]
            return Completion(texts=[" Adding things" if "+" in question else " no idea"])
        return Completion(texts=[self.taxonomy])

    async def chat(self, messages: list[Message], sampling: Sampling) -> Completion:
        return await self.complete(messages[0].content, sampling)

    async def aclose(self) -> None:
        pass


QUESTIONS = [Example.make("x", f"{a}+{a}" if a % 2 else f"max({a},3)", "0") for a in range(10, 20)]
TAXONOMY = " adding-things: add two numbers\n- Maxima: the larger of two\n\nQuestions:\n- junk"


def test_discovery_proposes_labels_and_caches(tmp_path) -> None:
    client = Scripted(TAXONOMY)
    path = tmp_path / "run" / "skills.json"
    taxonomy = asyncio.run(discover_skills(SkillDiscovery(Teacher(client)), QUESTIONS, path))
    assert [s.name for s in taxonomy.skills] == ["adding-things", "maxima", "other"]
    labels = taxonomy.skill_of()
    assert labels["11+11"] == "adding-things" and labels["max(10,3)"] == "other"
    saved = json.loads(path.read_text())
    assert len(saved["labels"]) == 10
    # The user edits the file; the next run reads it back and asks the teacher nothing.
    saved["labels"][0]["skill"] = "maxima"
    path.write_text(json.dumps(saved))
    again = Scripted("unused")
    reread = asyncio.run(discover_skills(SkillDiscovery(Teacher(again)), QUESTIONS, path))
    assert again.prompts == [] and reread.labels[0].skill == "maxima"
    # New questions are labelled, old labels kept.
    more = [*QUESTIONS, Example.make("x", "1+2", "3")]
    grown = asyncio.run(discover_skills(SkillDiscovery(Teacher(again)), more, path))
    assert len(again.prompts) == 1 and grown.skill_of()["1+2"] == "adding-things"


def test_no_usable_taxonomy_is_an_error(tmp_path) -> None:
    discovery = SkillDiscovery(Teacher(Scripted("nothing useful")), attempts=2)
    with pytest.raises(DataloopError, match="fewer than 2 usable skills in 2 tries"):
        asyncio.run(discover_skills(discovery, QUESTIONS, tmp_path / "s.json"))


def test_parsing_is_tolerant() -> None:
    assert [
        s.name for s in parse_skills('{"skills": [{"name": "A B", "description": "d"}]}', 6)
    ] == ["a-b"]
    assert [s.name for s in parse_skills("1. Rates: speed\n2) Money: cost\nrates: again", 6)] == [
        "rates",
        "money",
    ]
    skills = parse_skills("- rates: speed\n- money: cost", 6)
    assert match_skill(" Money\n", skills) == "money"
    assert match_skill("rates-and-more", skills) == "rates"
    assert match_skill("dunno", skills) is None


def test_an_environment_takes_the_edited_file(tmp_path) -> None:
    task = load_task("multiple_choice")
    questions = [e for s in ("train", "validation", "test") for e in task.split(s)]
    path = tmp_path / "skills.json"
    path.write_text(json.dumps({
        "skills": [{"name": "science", "description": "d"}, {"name": "world", "description": "d"}],
        "labels": [{"question": e.question,
                    "skill": "world" if e.skill == "geography" else "science"} for e in questions],
    }))  # fmt: skip
    relabelled = load_task("multiple_choice", options={"skills_file": str(path)})
    assert [s.name for s in relabelled.skills()] == ["science", "world"]
    path.write_text(json.dumps({"skills": [{"name": "a", "description": "d"}],
                                "labels": [{"question": "q", "skill": "b"}]}))  # fmt: skip
    with pytest.raises(DataloopError, match=r"labels\[0\] has skill 'b', which is not in"):
        load_task("multiple_choice", options={"skills_file": str(path)})
