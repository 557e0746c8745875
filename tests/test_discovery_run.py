"""``env.discover_skills``: skill discovery as a step of ``dataloop run`` (scripted teacher)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fakeserver import FakeOpenAI

from dataloop.assemble import check_run, open_loop, task_options
from dataloop.config import validate_config
from dataloop.display import Display
from dataloop.environments import TaskEnvironment
from dataloop.errors import ConfigError
from dataloop.runs import RunDir

SIZES = {"train_size": 8, "validation_size": 2, "test_size": 2}


def scripted(prompt: str) -> str:
    """The teacher: proposes two skills; labels questions that mention money 'money', others
    'counting'."""
    if prompt.rstrip().endswith("Skill:"):
        question = prompt.rsplit("Question:", 1)[1]
        return " money" if "$" in question else " counting"
    return " money: prices and costs\n- counting: how many things\n"


def config(**env: object):
    return validate_config({"env": {"name": "math", "options": SIZES, **env}}, origin="test")


def discover(run: RunDir, teacher: FakeOpenAI, max_queries: int | None = None) -> TaskEnvironment:
    """The task as ``dataloop run`` would train on it, its skills found by ``teacher``."""
    cfg = validate_config(
        {
            "iterations": 0,
            "env": {"name": "math", "options": SIZES, "discover_skills": True},
            "teacher": {
                "backend": "openai",
                "model": "scripted",
                "base_urls": [teacher.base_url],
                "max_queries": max_queries,
                "cache": False,
            },
        },
        origin="test",
    )
    with open_loop(cfg, Display(quiet=True), run) as loop:
        return loop.env.task


def test_discovered_skills_label_the_task_and_land_in_the_run_folder(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    with FakeOpenAI(reply=scripted) as teacher:
        task = discover(run, teacher)
    saved = json.loads(run.skills_file.read_text())
    assert [s["name"] for s in saved["skills"]] == ["money", "counting"]
    questions = {e.question for s in ("train", "validation", "test") for e in task.split(s)}
    assert {label["question"] for label in saved["labels"]} == questions
    by_question = {label["question"]: label["skill"] for label in saved["labels"]}
    for split in ("train", "validation", "test"):
        for example in task.split(split):
            assert example.skill == by_question[example.question]
            assert example.skill == ("money" if "$" in example.question else "counting")
    assert {s.name for s in task.skills()} <= {"money", "counting"}
    # Export and a resumed run read the run's file, not the data's own labels.
    assert task_options(config(discover_skills=True), run)["skills_file"] == str(run.skills_file)
    assert "skills_file" not in task_options(config(), run)


def test_an_edited_skills_file_is_read_back_without_asking_the_teacher(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    with FakeOpenAI(reply=scripted) as teacher:
        discover(run, teacher)
    saved = json.loads(run.skills_file.read_text())
    saved["skills"] = [{"name": "word-problems", "description": "all of them, merged by hand"}]
    for label in saved["labels"]:
        label["skill"] = "word-problems"
    run.skills_file.write_text(json.dumps(saved))
    with FakeOpenAI(reply=scripted) as again:
        task = discover(run, again)
    assert again.bodies == []
    assert [s.name for s in task.skills()] == ["word-problems"]
    assert {e.skill for e in task.split("train")} == {"word-problems"}


def test_discovery_that_cannot_fit_the_query_budget_fails_before_asking(tmp_path: Path) -> None:
    with (
        FakeOpenAI(reply=scripted) as teacher,
        pytest.raises(ConfigError, match=r"'teacher\.max_queries': skill discovery labels each"),
    ):
        discover(RunDir(tmp_path / "run"), teacher, max_queries=5)
    assert teacher.bodies == []


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"name": "arithmetic"}, "environment 'arithmetic' has no 'skills_file' option"),
        (
            {"name": "math", "options": {"skills_file": "mine.json"}},
            "env.options.skills_file is set too",
        ),
    ],
)
def test_discovery_on_a_task_that_cannot_take_it_is_a_config_error(
    tmp_path: Path, env: dict, message: str
) -> None:
    cfg = validate_config({"env": {**env, "discover_skills": True}}, origin="test")
    with (
        pytest.raises(ConfigError, match=re.escape(message)) as caught,
        open_loop(cfg, Display(quiet=True), RunDir(tmp_path / "run")),
    ):
        pass
    assert str(caught.value).startswith("config field 'env.discover_skills'")
    assert not (tmp_path / "run").exists()  # checked before anything is written


LEGACY_TASK = """
from dataloop.envs.math import MathTask


class Undeclared(MathTask):
    accepts_skills_file = False  # as a plug-in written before the attribute: not declared


class NoSkillsFile(MathTask):
    accepts_skills_file = False

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed=seed)
"""


def test_a_task_declares_that_it_takes_a_skills_file(tmp_path: Path) -> None:
    (tmp_path / "legacy.py").write_text(LEGACY_TASK)

    def check(name: str) -> None:
        env = {"name": f"{tmp_path / 'legacy.py'}:{name}", "discover_skills": True}
        check_run(validate_config({"env": env}, origin="test"))

    check_run(validate_config({"env": {"name": "math", "discover_skills": True}}))  # declared
    # A plug-in that takes the option without declaring it still works, warned.
    with pytest.warns(FutureWarning, match="set the class attribute accepts_skills_file = True"):
        check("Undeclared")
    with pytest.raises(ConfigError, match="has no 'skills_file' option"):
        check("NoSkillsFile")
