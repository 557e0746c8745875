"""One registry shape for strategies, policies and environments: a built-in name, an entry
point of the kind's group, or ``path.py:Class``, with the same one-line errors."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from dataloop.engine import STRATEGIES, NewQuestion
from dataloop.environments import ENVIRONMENTS
from dataloop.envs.arithmetic import ArithmeticTask
from dataloop.errors import RegistryError
from dataloop.plugins import Registry
from dataloop.policies import POLICIES, Uniform

PLUGIN = textwrap.dedent(
    """
    from dataloop.engine import NewQuestion
    from dataloop.envs.arithmetic import ArithmeticTask
    from dataloop.policies import Uniform

    class MyStrategy(NewQuestion):
        name = "mine"

    class MyPolicy(Uniform):
        name = "mine"

    class MyTask(ArithmeticTask):
        name = "mine"

    class NotAPlugin:
        pass
    """
)

# kind -> (registry, a built-in name, what it resolves to, the class the plug-in file defines)
KINDS = {
    "strategy": (STRATEGIES, "new-question", NewQuestion, "MyStrategy"),
    "policy": (POLICIES, "uniform", Uniform, "MyPolicy"),
    "environment": (ENVIRONMENTS, "arithmetic", ArithmeticTask, "MyTask"),
}


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real installed distribution (a dist-info folder on sys.path) registering one plug-in
    of every kind under the name ``theirs``, and one that tries to take a built-in's name."""
    (tmp_path / "their_plugins.py").write_text(PLUGIN)
    info = tmp_path / "their_plugins-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: their-plugins\nVersion: 1.0\n")
    lines = []
    for kind, (registry, builtin, _, cls) in KINDS.items():
        lines += [f"[{registry.group}]", f"theirs = their_plugins:{cls}"]
        lines += [f"{builtin} = their_plugins:{cls}"] if kind != "environment" else []
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path / "their_plugins.py"
    sys.modules.pop("their_plugins", None)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_is_found_by_builtin_name_entry_point_and_path(kind: str, installed) -> None:
    registry, builtin, expected, cls = KINDS[kind]
    assert registry.kind == kind
    groups = {"strategy": "strategies", "policy": "policies", "environment": "environments"}
    assert registry.group == f"dataloop.{groups[kind]}"
    assert registry.resolve(builtin) is expected  # a plug-in cannot take a built-in's name
    plugged = registry.resolve("theirs")
    assert plugged.__name__ == cls and plugged.__module__ == "their_plugins"
    assert registry.names()["theirs"] == f"their_plugins:{cls}"
    assert registry.resolve(f"{installed}:{cls}").__name__ == cls


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_refuses_the_same_way_in_one_line(kind: str, tmp_path: Path) -> None:
    registry, builtin, _, _ = KINDS[kind]
    with pytest.raises(RegistryError) as unknown:
        registry.resolve("nosuch")
    message = str(unknown.value)
    assert message.startswith(f"unknown {kind} 'nosuch'; known: ")
    assert builtin in message and f"entry point in group '{registry.group}'" in message
    assert "path/to/file.py:Class" in message and "\n" not in message
    path = tmp_path / "plugin.py"
    path.write_text(PLUGIN)
    with pytest.raises(RegistryError, match=rf"^{kind} '.*plugin.py:NotAPlugin' is not a"):
        registry.resolve(f"{path}:NotAPlugin")
    with pytest.raises(RegistryError, match="has no attribute 'Nope'"):
        registry.resolve(f"{path}:Nope")


def test_a_registry_of_a_new_kind_takes_three_lines() -> None:
    registry: Registry[int] = Registry(
        "number",
        "dataloop.numbers",
        "an int",
        lambda obj, spec: obj if isinstance(obj, int) else None,
        {"one": 1},
    )
    assert registry.resolve("one") == 1
    assert registry.resolve("errno:ENOENT") == 2
    with pytest.raises(RegistryError, match=r"^number 'sys:path' is not an int$"):
        registry.resolve("sys:path")
