"""What dataloop ships beside its code: the top-level ``prompts/`` folder, and its own entry
points when it runs from a checkout that is not installed.

From a checkout (or an editable install) ``prompts/`` sits beside the ``dataloop`` package; an
installed wheel carries it inside the package as ``dataloop/_data/prompts`` (see
``pyproject.toml``).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The folder ``name`` (``prompts``) shipped with dataloop."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"dataloop's '{name}/' folder is missing (looked in {_PACKAGE / '_data'} and "
        f"{_PACKAGE.parent}); reinstall dataloop"
    )


def prompts_dir() -> Path:
    """The built-in jinja2 prompt templates."""
    return data_dir("prompts")


def checkout_entry_points(group: str) -> dict[str, str]:
    """The entry points of ``group`` that the ``pyproject.toml`` beside the package declares,
    when dataloop runs from its checkout (``PYTHONPATH=.``, no install); else none. An
    installed dataloop has them in its metadata, where plug-ins' are too."""
    path = _PACKAGE.parent / "pyproject.toml"
    try:
        project = tomllib.loads(path.read_text()).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    if project.get("name") != "dataloop":
        return {}
    return dict(project.get("entry-points", {}).get(group, {}))
