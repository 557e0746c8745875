"""Where the top-level ``prompts/`` and ``environments/`` folders live.

From a checkout (or an editable install) they sit beside the ``dataloop`` package; an installed
wheel carries them inside the package as ``dataloop/_data/`` (see ``pyproject.toml``).
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The folder ``name`` (``prompts`` or ``environments``) shipped with dataloop."""
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


def environments_dir() -> Path:
    """The built-in task environments, one folder each."""
    return data_dir("environments")
