"""Finding task environments by name, by path and by entry point."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from dataloop.environments import TaskEnvironment, available, load_task, resolve
from dataloop.errors import RegistryError
from dataloop.resources import checkout_entry_points

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


def test_builtins_are_entry_points_and_importable() -> None:
    from dataloop.envs.arithmetic import ArithmeticTask
    from dataloop.envs.math import MathTask

    known = available()
    assert known["arithmetic"] == "dataloop.envs.arithmetic:ArithmeticTask"
    assert {"math", "multiple_choice", "code"} <= set(known)
    assert resolve("math") is MathTask
    task = load_task("arithmetic", options={"train_per_skill": 4})
    assert isinstance(task, ArithmeticTask)
    assert len(task.split("train")) == 4 * len(task.skills())

    class Bigger(MathTask):  # a built-in is a class like any other
        name = "bigger-math"

    assert Bigger(validation_size=4).split("validation")[0].skill in {
        s.name for s in MathTask().skills()
    }


def test_an_uninstalled_checkout_reads_its_entry_points_from_pyproject() -> None:
    builtins = checkout_entry_points("dataloop.environments")
    assert builtins["math"] == "dataloop.envs.math:MathTask" and len(builtins) == 4
    assert checkout_entry_points("no.such.group") == {}


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
    assert available()["upper"] == "upper_env:Upper"
    cls = resolve("upper")
    assert issubclass(cls, TaskEnvironment) and cls.__name__ == "Upper"
    sys.modules.pop("upper_env", None)


def test_dataset_option_reads_a_save_to_disk_folder_offline(tmp_path, monkeypatch) -> None:
    """``env.options.dataset`` may name a folder written by ``datasets``' ``save_to_disk``: it is
    read without the hub (here with the hub switched off)."""
    import datasets

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    rows = [
        {"question": f"Ann has {n} pens and buys 2 more. How many pens?", "answer": f"#### {n + 2}"}
        for n in range(30)
    ]
    saved = tmp_path / "gsm-like"
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list(rows[:24]),
            "test": datasets.Dataset.from_list(rows[24:]),
        }
    ).save_to_disk(str(saved))
    task = load_task("math", options={"dataset": str(saved), "validation_size": 4})
    assert [len(task.split(s)) for s in ("train", "validation", "test")] == [20, 4, 6]
    assert task.data_source() == f"datasets folder {saved}"


def test_an_unreachable_hub_is_one_line_naming_the_data_set(tmp_path) -> None:
    code = (
        "from dataloop.environments import load_task\n"
        "from dataloop.taskdata import DataError\n"
        "try:\n"
        "    load_task('math', options={'dataset': 'openai/gsm8k', 'dataset_config': 'main'})\n"
        "except DataError as exc:\n"
        "    print(exc)\n"
    )
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(tmp_path),  # an empty cache: nothing to fall back on
    }
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1 and "cannot load data set 'openai/gsm8k' (main) from the hub" in lines[0]


def test_the_deprecated_describe_still_gives_one_line_and_warns() -> None:
    """``TaskEnvironment.describe()``, in the task contract docs/environments.md once gave."""
    task = load_task("arithmetic")
    with pytest.warns(DeprecationWarning, match=r"TaskEnvironment\.description"):
        line = task.describe()
    assert line == type(task).description and line

    class Undescribed(type(task)):  # type: ignore[misc]
        """Arithmetic, told apart.

        More text that is not the one line."""

        description = ""

    with pytest.warns(DeprecationWarning):
        assert Undescribed().describe() == "Arithmetic, told apart."
