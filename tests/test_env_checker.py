"""``check_environment``: the library check behind ``dataloop envs --check``."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataloop.env_checker import check_environment
from dataloop.errors import DataloopError

BROKEN = """
from dataloop.environments import TaskEnvironment
from dataloop.schema import Example, SkillInfo

class Broken(TaskEnvironment):
    name = "broken"
    def skills(self):
        return [SkillInfo(name="a", description="d")]
    def split(self, name):
        if name == "test":
            return []
        if name == "validation":
            raise RuntimeError("no validation data")
        return [Example.make("b", "q", "x")]
    def score(self, example, completion):
        return False
"""


def test_a_builtin_passes_with_its_skills_and_split_sizes() -> None:
    check = check_environment("arithmetic", {"train_per_skill": 2, "test_per_skill": 3})
    assert check.problems == []
    assert check.skills[:3] == ["first", "last", "len"]
    assert check.sizes["train"] == 2 * len(check.skills)
    assert check.sizes["test"] == 3 * len(check.skills)


def test_every_problem_of_a_broken_task_is_collected(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text(BROKEN)
    problems = "\n".join(check_environment(str(path)).problems)
    assert "split('test') is empty" in problems
    assert "split('validation') raised RuntimeError: no validation data" in problems
    assert "has skills not in skills(): ['b']" in problems
    assert "the reference answer must score as correct" in problems


def test_a_task_that_cannot_load_is_one_error(tmp_path: Path) -> None:
    with pytest.raises(DataloopError, match=r"none\.jsonl does not exist"):
        check_environment("math", {"data_files": str(tmp_path / "none.jsonl")})
    path = tmp_path / "raises.py"
    path.write_text(BROKEN.replace('return [SkillInfo(name="a", description="d")]', "1 / 0"))
    with pytest.raises(DataloopError, match=r"loading '.*raises\.py' failed: ZeroDivisionError"):
        check_environment(str(path))
