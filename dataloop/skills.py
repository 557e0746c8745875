"""Skill discovery: when a data set has no skill labels, the teacher proposes a few and labels it.

As in DataEnvGym, an LLM reads a sample of questions and proposes a small taxonomy (a name and
a sentence per skill), then assigns every example one of those skills. The result is a JSON file
in the run directory; a user may edit it (rename, merge, relabel) and it is read back as-is on the
next run. Environments take it through their ``skills_file`` option. The file, and reading and
applying it, are :mod:`dataloop.taxonomy`'s (``Label``, ``SkillTaxonomy``, ``slug``,
``read_taxonomy`` and ``apply_taxonomy`` stay importable from here).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from dataloop.atomic import write_text
from dataloop.errors import BudgetExhausted, DataloopError, TeacherError
from dataloop.llm.base import Sampling
from dataloop.llm.teacher import Teacher
from dataloop.schema import Example, SkillInfo
from dataloop.taxonomy import Label, SkillTaxonomy, apply_taxonomy, read_taxonomy, slug

__all__ = [
    "OTHER",
    "Label",
    "SkillDiscovery",
    "SkillTaxonomy",
    "apply_taxonomy",
    "discover_skills",
    "match_skill",
    "parse_skills",
    "read_taxonomy",
    "slug",
    "subskill_labeller",
]

log = logging.getLogger(__name__)

OTHER = SkillInfo(name="other", description="examples the labeller could not place in a skill")
_SKILL_LINE = re.compile(r"^\s*(?:[-*•]|\d+[.)])?\s*([A-Za-z][\w /&-]{0,40}?)\s*:\s*(\S.*)$")
_SAMPLE_CHARS = 300  # long questions (code prompts) are cut: the gist is enough to group them


def parse_skills(text: str, max_skills: int) -> list[SkillInfo]:
    """Skills from ``name: description`` lines or a JSON ``{"skills": [...]}`` reply."""
    found: list[SkillInfo] = []
    try:
        data = json.loads(text[text.index("{") : text.rindex("}") + 1])
        items = data.get("skills", []) if isinstance(data, dict) else []
        pairs = [(i.get("name"), i.get("description")) for i in items if isinstance(i, dict)]
    except ValueError:
        pairs = [(m[1], m[2]) for m in map(_SKILL_LINE.match, text.splitlines()) if m]
    for name, description in pairs:
        if not isinstance(name, str) or not isinstance(description, str):
            continue
        key = slug(name)
        if key and key != OTHER.name and key not in {s.name for s in found}:
            found.append(SkillInfo(name=key, description=description.strip()))
    return found[:max_skills]


def match_skill(text: str, skills: list[SkillInfo]) -> str | None:
    """The skill a labelling reply names: its first line, compared as slugs."""
    lines = text.strip().splitlines()
    answer = slug(lines[0]) if lines else ""
    for skill in skills:
        if answer == skill.name or answer.startswith(skill.name + "-"):
            return skill.name
    for skill in skills:
        if skill.name in answer:
            return skill.name
    return None


class SkillDiscovery:
    """Proposes a taxonomy from a sample of questions and labels questions with it, asking
    ``teacher`` (prompts ``skill_discovery/propose_<kind>.j2`` and ``label_<kind>.j2``)."""

    def __init__(
        self,
        teacher: Teacher,
        *,
        max_skills: int = 6,
        sample_size: int = 24,
        attempts: int = 3,
    ) -> None:
        self.teacher = teacher
        self.max_skills = max_skills
        self.sample_size = sample_size
        self.attempts = attempts

    async def _ask(self, prompt: str, sampling: Sampling) -> str:
        return (await self.teacher.ask(prompt, sampling)).texts[0]

    def _render(self, name: str, **values: object) -> str:
        return self.teacher.templates.render(
            f"skill_discovery/{name}_{self.teacher.kind}.j2", **values
        )

    async def propose(self, questions: list[str]) -> list[SkillInfo]:
        """A taxonomy of 2..max_skills skills from a sample of ``questions``."""
        seed = self.teacher.seed
        rng = random.Random(f"{seed}/skills")
        for attempt in range(self.attempts):
            sample = rng.sample(questions, min(self.sample_size, len(questions)))
            prompt = self._render(
                "propose", questions=[_cut(q) for q in sample], max_skills=self.max_skills
            )
            # A base prompt ends inside the first "- name:" item; glue it back for parsing.
            prefix = prompt[prompt.rfind("\n") + 1 :] if self.teacher.kind == "base" else ""
            sampling = Sampling(temperature=0.7, max_tokens=256, seed=seed + attempt)
            skills = parse_skills(prefix + await self._ask(prompt, sampling), self.max_skills)
            if len(skills) >= 2:
                return skills
        raise DataloopError(
            f"skill discovery: the teacher proposed fewer than 2 usable skills in {self.attempts} "
            "tries; write the skills file yourself or use a stronger teacher"
        )

    async def label(
        self,
        questions: list[str],
        skills: list[SkillInfo],
        on_progress: Callable[[int], None] | None = None,
    ) -> list[Label]:
        """One skill per question; a reply naming no known skill gives ``other``."""
        sampling = Sampling(temperature=0.0, max_tokens=12, stop=("\n",), seed=self.teacher.seed)

        async def one(question: str) -> Label:
            prompt = self._render("label", skills=skills, question=_cut(question))
            name = match_skill(await self._ask(prompt, sampling), skills)
            if on_progress is not None:
                on_progress(1)
            return Label(question=question, skill=name or OTHER.name)

        return list(await asyncio.gather(*(one(q) for q in questions)))


NONE = SkillInfo(name="none", description="the question fits none of the above")


def subskill_labeller(
    discovery: SkillDiscovery, runner: asyncio.Runner
) -> Callable[[list[Example], list[SkillInfo]], dict[str, str | None]]:
    """A labeller for the skill tree (``dataloop.gym.Labeller``): the teacher places each
    example in one of a skill's teacher-made subskills, or in none, with the skill-labelling
    prompt (one query per distinct question, counted against the budget). ``runner`` is the
    run's event loop. A teacher that stops answering (budget spent, unreachable) leaves the
    examples unplaced, and the run goes on."""

    def label(examples: list[Example], subskills: list[SkillInfo]) -> dict[str, str | None]:
        questions = list(dict.fromkeys(e.question for e in examples))
        try:
            labels = runner.run(discovery.label(questions, [*subskills, NONE]))
        except (BudgetExhausted, TeacherError) as exc:
            log.warning("subskill labelling stopped, examples left unplaced: %s", exc)
            return {}
        placed = {
            lab.question: lab.skill for lab in labels if lab.skill not in (NONE.name, OTHER.name)
        }
        return {e.id: placed.get(e.question) for e in examples}

    return label


def _cut(question: str) -> str:
    flat = " ".join(question.split())
    return flat if len(flat) <= _SAMPLE_CHARS else flat[: _SAMPLE_CHARS - 3] + "..."


async def discover_skills(
    discovery: SkillDiscovery,
    examples: list[Example],
    path: Path,
    on_progress: Callable[[int], None] | None = None,
) -> SkillTaxonomy:
    """The skills file at ``path``, created or completed with the teacher.

    If ``path`` exists it is read back (the user may have edited it) and only questions it
    does not label yet are sent to the teacher; otherwise a taxonomy is proposed from a sample
    first. The file is written atomically after labelling. ``on_progress(1)`` is called per
    question labelled.
    """
    questions = list(dict.fromkeys(e.question for e in examples))
    if not questions:
        raise DataloopError("skill discovery: no examples to label")
    if path.exists():
        taxonomy = read_taxonomy(path)
    else:
        taxonomy = SkillTaxonomy(skills=await discovery.propose(questions))
    labelled = taxonomy.skill_of()
    missing = [q for q in questions if q not in labelled]
    if missing or not path.exists():
        taxonomy.labels.extend(await discovery.label(missing, taxonomy.skills, on_progress))
        used = Counter(label.skill for label in taxonomy.labels)
        if used[OTHER.name] and OTHER.name not in {s.name for s in taxonomy.skills}:
            taxonomy.skills.append(OTHER)
        write_text(path, taxonomy.model_dump_json(indent=2))
    return taxonomy
