"""Finding task environments by name, by path and by entry point."""

from __future__ import annotations

import sys
import textwrap

import pytest

from dataloop.environments import TaskEnvironment, available, load_task, resolve
from dataloop.errors import RegistryError

MY_ENV = """
from dataloop.environments import TaskEnvironment
from dataloop.schema import Example, SkillInfo

class Upper(TaskEnvironment):
    name = "upper"

    def skills(self):
        return [SkillInfo(name="upper", description="uppercase a word")]

    def split(self, name):
        return [Example.make("upper", w, w.upper()) for w in ("ab", "cd")]
"""


def test_builtin_by_name() -> None:
    assert "arithmetic" in available()
    task = load_task("arithmetic", options={"train_per_skill": 4})
    assert len(task.split("train")) == 4 * len(task.skills())


def test_unknown_name_lists_known_ones() -> None:
    with pytest.raises(RegistryError, match=r"unknown environment 'arith'; known: .*arithmetic"):
        resolve("arith")


def test_by_path_with_and_without_class(tmp_path) -> None:
    path = tmp_path / "my_env.py"
    path.write_text(MY_ENV)
    assert resolve(f"{path}:Upper").name == "upper"
    task = load_task(str(path))
    assert [e.answer for e in task.split("train")] == ["AB", "CD"]


def test_bad_paths_and_options(tmp_path) -> None:
    with pytest.raises(RegistryError, match="no such file"):
        resolve(str(tmp_path / "missing.py"))
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    with pytest.raises(RegistryError, match="exactly one TaskEnvironment subclass"):
        resolve(str(empty))
    with pytest.raises(RegistryError, match="has no attribute 'Nope'"):
        resolve(f"{empty}:Nope")
    with pytest.raises(RegistryError, match=r"env\.options"):
        load_task("arithmetic", options={"no_such_option": 1})


def test_by_entry_point(tmp_path, monkeypatch) -> None:
    # A real installed distribution: a dist-info folder with entry_points.txt on sys.path.
    (tmp_path / "upper_env.py").write_text(textwrap.dedent(MY_ENV))
    info = tmp_path / "upper_env-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: upper-env\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[dataloop.environments]\nupper = upper_env:Upper\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert available()["upper"] == "entry point (upper_env:Upper)"
    cls = resolve("upper")
    assert issubclass(cls, TaskEnvironment) and cls.__name__ == "Upper"
    sys.modules.pop("upper_env", None)
