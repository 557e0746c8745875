"""Prompt templates: jinja2 files, looked up in the user's folder, then in built-in ``prompts/``."""

from __future__ import annotations

import json
from pathlib import Path

import jinja2

from dataloop.errors import RegistryError
from dataloop.resources import prompts_dir


class Templates:
    """Finds ``<folder>/<name>.j2`` in the user's folder first, then in built-in ``prompts/``."""

    def __init__(self, user_dir: Path | None = None) -> None:
        self.search_path = [str(p) for p in (user_dir, prompts_dir()) if p is not None]
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.search_path),
            undefined=jinja2.StrictUndefined,
            # Jinja drops the file's final newline, so a base prompt ends exactly at "Q:".
            keep_trailing_newline=False,
        )
        # A JSON string on one line, as written (jinja's tojson escapes <, > and & for HTML).
        self.env.filters["jsonline"] = lambda value: json.dumps(value, ensure_ascii=False)

    def render(self, name: str, **values: object) -> str:
        """Render template ``name`` (e.g. ``new_question/base.j2``)."""
        try:
            return self.env.get_template(name).render(**values)
        except jinja2.TemplateNotFound:
            raise RegistryError(
                f"prompt template '{name}' not found in {', '.join(self.search_path)}"
            ) from None
