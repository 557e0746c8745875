"""docs/configuration.md's field tables list every config field, with the default it has."""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from dataloop import config

PAGE = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
CLASS = re.compile(r"^#{2,3} (?:`[\w.]+`|Top level): `(\w+)`")  # "## `engine`: `EngineConfig`, how"
SECTION = re.compile(r"^#{2,3} `(\w+)`")  # "## `teacher`: the LLM ..." (several classes)
ROW = re.compile(r"^\| `(\w+)` \| ([^|]*) \|")
FIRST = re.compile(r"`([^`]*)`")


def _sections() -> dict[str, dict[str, str]]:
    """Per documented class (the last backticked name of a heading): field -> default shown."""
    sections: dict[str, dict[str, str]] = {}
    rows: dict[str, str] | None = None
    for line in PAGE.read_text().splitlines():
        heading = CLASS.match(line) or SECTION.match(line)
        if heading:
            rows = sections.setdefault(heading[1], {})
        elif line.startswith("#"):
            rows = None  # a heading that documents no class
        elif rows is not None and (row := ROW.match(line)):
            # The default: the cell, or its first `value` when a note follows ("`0` (`20` ...)").
            cell = row[2].strip()
            first = FIRST.match(cell)
            rows[row[1]] = first[1] if first else cell
    return sections


def _shown(value: Any) -> str:
    """A default as the page writes it (YAML's spelling)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, list | tuple) and not value:
        return "[]"
    if isinstance(value, dict) and not value:
        return "{}"
    return str(value)


TEACHERS = (
    config.LlamaServerTeacherConfig,
    config.VLLMTeacherConfig,
    config.VLLMOfflineTeacherConfig,
    config.OpenAITeacherConfig,
)
DOCUMENTED: dict[str, tuple[type[BaseModel], ...]] = {
    "LoopConfig": (config.LoopConfig,),
    "EnvConfig": (config.EnvConfig,),
    "StudentConfig": (config.StudentConfig,),
    "LoraSettings": (config.LoraSettings,),
    "VLLMSettings": (config.VLLMSettings,),
    "teacher": TEACHERS,
    "PolicyConfig": (config.PolicyConfig,),
    "EngineConfig": (config.EngineConfig,),
    "JudgeConfig": (config.JudgeConfig,),
}


@pytest.mark.parametrize("name", DOCUMENTED)
def test_every_field_is_a_row_with_its_default(name: str) -> None:
    rows = _sections()[name]
    for model in DOCUMENTED[name]:
        for field, info in model.model_fields.items():
            assert field in rows, f"{model.__name__}.{field} is not in {PAGE.name}'s table"
            nested = isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
            if info.default is PydanticUndefined or nested or rows[field] == "see below":
                continue
            if name == "teacher" and field in ("backend", "model", "flavor"):
                continue  # one row for every backend, whose defaults differ
            assert rows[field] == _shown(info.default), f"{model.__name__}.{field}"
    fields = {f for model in DOCUMENTED[name] for f in model.model_fields}
    assert not set(rows) - fields, f"{PAGE.name} documents fields {name} does not have"
