"""The docs name only what exists: every dataloop name docs/architecture.md puts in backticks
(module, class, function, method, config field, file, CLI command) and every repository file
any docs page cites."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
import typing
import warnings
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
ARCHITECTURE = DOCS / "architecture.md"

CODE = re.compile(r"`([^`\n]+)`")
HEAD = re.compile(r"[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*")
PATH = re.compile(r"\b(?:dataloop|tests|examples|benchmarks|scripts|prompts)/[\w./-]*\w")

EXTERNAL = {"SFTConfig", "SFTTrainer", "vllm.LLM", "PYTHON"}
"""Names from other libraries (TRL, vLLM, HTTP) or placeholders the page uses as such."""

GONE = {"benchmarks/policies.py"}
"""Removed files a page cites as what made a historical result."""


def _modules() -> list[ModuleType]:
    names = sorted(
        ".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for p in (REPO / "dataloop").rglob("*.py")
        if p.name != "train.py"  # accelerate's entry script: runs on import
    )
    return [importlib.import_module(n) for n in names]


@cache
def _index() -> tuple[dict[str, list[object]], set[str]]:
    """Every name dataloop defines -> the objects it names, and every member name (methods,
    attributes, pydantic and dataclass fields, constructor parameters) of its classes."""
    names: dict[str, list[object]] = {}
    members: set[str] = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for module in _modules():
            names.setdefault(module.__name__.rsplit(".", 1)[-1], []).append(module)
            for name, value in vars(module).items():
                names.setdefault(name, []).append(value)
                if inspect.isclass(value) and value.__module__.startswith("dataloop"):
                    members.update(_members_of(value))
    return names, members


def _members_of(cls: type) -> set[str]:
    found = set(dir(cls)) | set(getattr(cls, "model_fields", {}))
    if dataclasses.is_dataclass(cls):
        found |= {f.name for f in dataclasses.fields(cls)}
    for klass in cls.__mro__:
        found |= set(vars(klass).get("__annotations__", {}))
        init = vars(klass).get("__init__")
        if inspect.isfunction(init) and init.__module__.startswith("dataloop"):
            found |= set(inspect.signature(init).parameters)
            try:  # attributes the constructor sets: self.name = ...
                source = inspect.getsource(init)
            except OSError:  # made by dataclasses: its fields are listed above
                continue
            found |= set(re.findall(r"self\.(\w+)\s*[:=]", source))
    return found


def _config_fields() -> set[str]:
    """``section.field`` for every field of every section model (each teacher backend's too)."""
    from dataloop import config

    paths = set()
    sections = {
        "env": [config.EnvConfig],
        "student": [config.StudentConfig],
        "policy": [config.PolicyConfig],
        "engine": [config.EngineConfig],
        "teacher": list(typing.get_args(typing.get_args(config.AnyTeacherConfig)[0])),
        "loop": [config.LoopConfig],
    }
    for section, models in sections.items():
        for model in models:
            paths |= {f"{section}.{field}" for field in model.model_fields}
    return paths


def _exists(name: str) -> bool:
    """Whether the dotted ``name`` is something dataloop has."""
    names, members = _index()
    head, *rest = name.split(".")
    if name in EXTERNAL or head in EXTERNAL:
        return True
    if head == "dataloop":
        return _resolves(name)
    fields = _config_fields()
    if ".".join([head, *rest[:1]]) in fields:
        return True
    if not rest:  # a name, a member's name or a config field's
        return head in names or head in members or any(f.endswith(f".{head}") for f in fields)
    if any(_has(obj, rest) for obj in names.get(head, [])):
        return True
    # a variable of the page's code (engine, env, obs, plan, ...): its member must exist
    return head.islower() and len(rest) == 1 and rest[0] in members


def _has(obj: object, path: list[str]) -> bool:
    for part in path:
        if inspect.isclass(obj) and part in _members_of(obj):
            obj = getattr(obj, part, None)
        elif hasattr(obj, part):
            obj = getattr(obj, part)
        else:
            return False
    return True


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _has(module, parts[cut:])
    return False


def _looks_like_code(head: str) -> bool:
    """A CamelCase name, a snake_case name, or a dotted one; not a plain lowercase word (a
    value, a verdict, a split), which the page uses as often as a method name."""
    return "." in head or "_" in head or head[:1].isupper()


def names_in(text: str) -> list[str]:
    """The dataloop-looking names in ``text``'s backticks (paths and CLI lines apart)."""
    found = []
    for span in CODE.findall(text):
        if "/" in span or span.startswith(("dataloop ", "-", "$")) or "<" in span:
            continue
        match = HEAD.match(span)
        if match is None:
            continue
        head = match.group(0)
        if span[match.end() : match.end() + 1] == "-":
            continue  # a hyphenated value or header: llama-server, skill-tree, Retry-After
        if head.endswith(
            (".py", ".json", ".jsonl", ".yaml", ".toml", ".log", ".png", ".html", ".md")
        ):
            continue
        if _looks_like_code(head) and not head.isupper():
            found.append(head)
    return sorted(set(found))


def paths_in(text: str) -> list[str]:
    """The repository files and folders ``text`` cites (no globs, placeholders or run files)."""
    return sorted(
        {
            m.group(0)
            for m in PATH.finditer(text)
            if text[m.end() : m.end() + 2] not in {"-{", "{", "/<", "/{", "/*"}
            and text[m.end() : m.end() + 1] not in {"{", "<", "*"}
            and m.group(0) not in GONE
        }
    )


def _commands() -> set[str]:
    from dataloop.cli import app

    return {
        info.name or info.callback.__name__.replace("_", "-")
        for info in app.registered_commands
        if info.callback is not None
    }


def test_every_name_in_architecture_md_exists() -> None:
    missing = [n for n in names_in(ARCHITECTURE.read_text()) if not _exists(n)]
    assert not missing, f"docs/architecture.md names what dataloop does not have: {missing}"


def test_every_bare_module_file_in_architecture_md_exists() -> None:
    text = ARCHITECTURE.read_text()
    files = {
        f for span in CODE.findall(text) if "/" not in span for f in re.findall(r"\w+\.py", span)
    }
    missing = [f for f in sorted(files) if not list((REPO / "dataloop").rglob(f))]
    assert not missing, f"docs/architecture.md cites module files dataloop lacks: {missing}"


def test_every_dataloop_command_in_architecture_md_exists() -> None:
    used = set(re.findall(r"`dataloop ([a-z-]+)", ARCHITECTURE.read_text()))
    assert used and used <= _commands(), f"unknown commands: {sorted(used - _commands())}"


@pytest.mark.parametrize(
    "page", [*sorted(DOCS.glob("*.md")), REPO / "README.md"], ids=lambda p: p.name
)
def test_every_repository_file_a_page_cites_exists(page: Path) -> None:
    missing = [p for p in paths_in(page.read_text()) if not (REPO / p).exists()]
    assert not missing, f"{page.relative_to(REPO)} cites files that do not exist: {missing}"


def test_the_checks_catch_a_stale_name() -> None:
    page = "`Loop.run()`, `dataloop.gym.Environment`, `teacher.max_queries`, `open_loop`"
    assert all(_exists(n) for n in names_in(page))
    stale = "`Loop.walk()`, `dataloop.gym.Gym`, `teacher.max_querys`, `open_loops`, `Nope`"
    assert not any(_exists(n) for n in names_in(stale))
    assert paths_in("see tests/test_compare.py and `dataloop/<name>.py`") == [
        "tests/test_compare.py"
    ]
