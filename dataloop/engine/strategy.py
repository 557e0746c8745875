"""The strategy contract: one GenerationRequest -> prompts -> candidate examples.

A strategy renders a jinja2 template from ``prompts/<strategy>/{base,chat}.j2`` (base models get
a few-shot completion prompt, chat models a user message) and parses what the teacher wrote.
"""

from __future__ import annotations

import inspect
import json
import random
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import jinja2

from dataloop.environments import TaskEnvironment
from dataloop.errors import RegistryError
from dataloop.plugins import is_reference, load_reference
from dataloop.resources import prompts_dir
from dataloop.schema import Example, Failure, GenerationRequest, SkillInfo

TeacherKind = Literal["base", "chat"]


@dataclass
class RequestContext:
    """Everything a strategy may use to write prompts for one request."""

    task: TaskEnvironment
    request: GenerationRequest
    skill: SkillInfo
    seeds: list[Example]
    """The task's seed (train split) examples of this skill."""
    failures: list[Failure] = field(default_factory=list)
    """Seed examples of this skill the student currently gets wrong."""
    iteration: int = 0
    teacher: str = ""
    shots: int = 8


@dataclass
class Prompt:
    """One rendered prompt and the examples it was built on (its parents)."""

    text: str
    template: str
    parents: list[Example]


class Templates:
    """Finds ``<strategy>/<kind>.j2`` in the user's folder first, then in built-in ``prompts/``."""

    def __init__(self, user_dir: Path | None = None) -> None:
        self.search_path = [str(p) for p in (user_dir, prompts_dir()) if p is not None]
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.search_path),
            undefined=jinja2.StrictUndefined,
            # Jinja drops the file's final newline, so a base prompt ends exactly at "Q:".
            keep_trailing_newline=False,
        )

    def render(self, name: str, **values: object) -> str:
        """Render template ``name`` (e.g. ``new_question/base.j2``)."""
        try:
            return self.env.get_template(name).render(**values)
        except jinja2.TemplateNotFound:
            raise RegistryError(
                f"prompt template '{name}' not found in {', '.join(self.search_path)}"
            ) from None


_QA = re.compile(r"Q:\s*(?P<q>[^\n]+?)\s*\n\s*A:\s*(?P<a>[^\n]*)")
_JSON_OBJECT = re.compile(r"\{[^{}\n]*\}")


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """(question, answer) pairs from ``Q: … / A: …`` lines or JSON objects; junk is skipped.

    A pair cut off by the length limit (a question with no answer line) is dropped.
    """
    pairs = [(m["q"], m["a"].strip()) for m in _QA.finditer(text)]
    for blob in _JSON_OBJECT.findall(text):
        try:
            obj = json.loads(blob)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict) and isinstance(obj.get("question"), str):
            answer = obj.get("answer")
            pairs.append((obj["question"].strip(), "" if answer is None else str(answer).strip()))
    return [(q, a) for q, a in pairs if q]


class Strategy(ABC):
    """Turns a request into prompts and the teacher's text into candidate examples."""

    name: ClassVar[str]
    template_dir: ClassVar[str]

    def __init__(self, templates: Templates, kind: TeacherKind = "base") -> None:
        self.templates = templates
        self.kind = kind

    @abstractmethod
    def prompt(self, ctx: RequestContext, index: int, count: int) -> Prompt:
        """The ``index``-th prompt for a request, asking for about ``count`` examples."""

    def parse(self, text: str, ctx: RequestContext, prompt: Prompt) -> list[Example]:
        """Candidates from one completion, with provenance; the answer may still be wrong."""
        return [
            Example.make(
                ctx.skill.name,
                question,
                answer,
                source="generated",
                strategy=self.name,
                parent_ids=[p.id for p in prompt.parents],
                teacher=ctx.teacher,
                template=prompt.template,
                iteration=ctx.iteration,
            )
            for question, answer in parse_pairs(self.prefix(prompt) + text)
        ]

    def prefix(self, prompt: Prompt) -> str:
        """Text the completion continues (a base prompt ends mid-item, e.g. with ``Q:``)."""
        if self.kind == "base":
            return prompt.text[prompt.text.rfind("\n") + 1 :]
        return ""

    def _render(self, ctx: RequestContext, parents: list[Example], count: int) -> Prompt:
        name = f"{self.template_dir}/{self.kind}.j2"
        text = self.templates.render(
            name,
            skill=ctx.skill,
            examples=parents,
            failures=ctx.failures,
            guidance=ctx.request.guidance,
            count=count,
        )
        return Prompt(text=text, template=name, parents=parents)


class NewQuestion(Strategy):
    """New questions (and answers) for a skill, written from a few seed examples of it."""

    name = "new-question"
    template_dir = "new_question"

    def prompt(self, ctx: RequestContext, index: int, count: int) -> Prompt:
        # Each prompt shows a different sample of seeds, so completions do not all echo one list.
        rng = random.Random(f"{ctx.iteration}/{ctx.skill.name}/{index}")
        pool = [e for e in ctx.seeds if not ctx.request.seed_ids or e.id in ctx.request.seed_ids]
        parents = rng.sample(pool or ctx.seeds, min(ctx.shots, len(pool or ctx.seeds)))
        return self._render(ctx, parents, count)


BUILTIN_STRATEGIES: dict[str, type[Strategy]] = {NewQuestion.name: NewQuestion}


def resolve_strategy(spec: str) -> type[Strategy]:
    """A strategy class by registered name or ``path/to/file.py:Class``."""
    if is_reference(spec):
        obj = load_reference(spec)
        if not (inspect.isclass(obj) and issubclass(obj, Strategy)):
            raise RegistryError(f"'{spec}' is not a Strategy subclass")
        return obj
    if spec not in BUILTIN_STRATEGIES:
        known = ", ".join(BUILTIN_STRATEGIES)
        raise RegistryError(f"unknown strategy '{spec}'; known: {known}")
    return BUILTIN_STRATEGIES[spec]
