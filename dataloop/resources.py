"""Where the top-level ``prompts/`` folder lives.

From a checkout (or an editable install) it sits beside the ``dataloop`` package; an installed
wheel carries it inside the package as ``dataloop/_data/prompts`` (see ``pyproject.toml``).
"""

from __future__ import annotations

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
