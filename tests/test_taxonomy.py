"""The skills file as data: read, checked and applied without asking any teacher."""

from __future__ import annotations

import json

import pytest

import dataloop.skills
from dataloop import taxonomy
from dataloop.errors import DataloopError
from dataloop.schema import Example
from dataloop.taxonomy import apply_taxonomy, read_taxonomy, slug


def test_a_skills_file_relabels_examples_and_names_what_is_missing(tmp_path) -> None:
    path = tmp_path / "skills.json"
    path.write_text(json.dumps({
        "skills": [{"name": "unit-rates", "description": "speed, price per item"}],
        "labels": [{"question": "2 km in 1 h?", "skill": "unit-rates"}],
    }))  # fmt: skip
    found = read_taxonomy(path)
    [example] = apply_taxonomy([Example.make("x", "2 km in 1 h?", "2")], found, path)
    assert example.skill == "unit-rates" and slug("Unit Rates!") == "unit-rates"
    with pytest.raises(DataloopError, match="has no label for question 'other'"):
        apply_taxonomy([Example.make("x", "other", "1")], found, path)


def test_skill_discovery_still_offers_the_taxonomy_names() -> None:
    # Written against dataloop.skills before the taxonomy had a module of its own.
    for name in ("Label", "SkillTaxonomy", "slug", "read_taxonomy", "apply_taxonomy"):
        assert getattr(dataloop.skills, name) is getattr(taxonomy, name)
