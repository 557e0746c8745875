"""Skill taxonomies: the file that names a data set's skills and labels each question with one.

A taxonomy is written by skill discovery (:mod:`dataloop.skills`, the teacher proposes it) or
by hand, and read by the environments that take a ``skills_file`` option. This module is data
only; it asks no LLM, so data loading never reaches the teacher.

File format (``skills.json``)::

    {"schema_version": 1,
     "skills": [{"name": "percentages", "description": "..."}, ...],
     "labels": [{"question": "...", "skill": "percentages"}, ...]}
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from dataloop.errors import DataloopError
from dataloop.schema import SCHEMA_VERSION, Example, SkillInfo


class Label(BaseModel):
    """The skill of one question."""

    question: str
    skill: str


class SkillTaxonomy(BaseModel):
    """Discovered (or user-edited) skills and the label of every question."""

    schema_version: int = SCHEMA_VERSION
    skills: list[SkillInfo]
    labels: list[Label] = Field(default_factory=list)

    def skill_of(self) -> dict[str, str]:
        """Question -> skill name."""
        return {label.question: label.skill for label in self.labels}


def slug(name: str) -> str:
    """A skill name as a lowercase-hyphenated identifier (``Unit Rates`` -> ``unit-rates``)."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def read_taxonomy(path: Path) -> SkillTaxonomy:
    """Read and check a skills file: valid JSON, known skill in every label."""
    try:
        taxonomy = SkillTaxonomy.model_validate_json(path.read_text())
    except OSError as exc:
        raise DataloopError(f"cannot read skills file {path}: {exc.strerror or exc}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(map(str, err["loc"]))
        raise DataloopError(f"skills file {path}: field '{where}': {err['msg']}") from None
    names = [s.name for s in taxonomy.skills]
    if not names:
        raise DataloopError(f"skills file {path}: 'skills' is empty; list at least one skill")
    for i, label in enumerate(taxonomy.labels):
        if label.skill not in names:
            raise DataloopError(
                f"skills file {path}: labels[{i}] has skill '{label.skill}', which is not in "
                f"'skills' ({', '.join(names)}); add it there or fix the label"
            )
    return taxonomy


def apply_taxonomy(examples: list[Example], taxonomy: SkillTaxonomy, origin: Path) -> list[Example]:
    """The examples relabelled with the taxonomy's skills (ids follow the new skill)."""
    skill_of = taxonomy.skill_of()
    out = []
    for example in examples:
        skill = skill_of.get(example.question)
        if skill is None:
            raise DataloopError(
                f"skills file {origin} has no label for question {example.question[:60]!r}; "
                "add it to 'labels' or delete the file to discover skills again"
            )
        out.append(example.relabel(skill=skill))
    return out
