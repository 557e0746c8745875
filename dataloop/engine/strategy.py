"""The strategy contract: one GenerationRequest -> prompts -> checked candidate examples.

A strategy picks what each prompt is built on (seed questions, failed examples), renders a
jinja2 template from ``prompts/<strategy>/{base,chat}.j2`` (base models get a few-shot
completion prompt, chat models a user message), reads what the teacher wrote, and says whether
a candidate passes the task's verification. The built-in strategies live in
:mod:`dataloop.engine.strategies`; a user's own is named by path (``my_strats.py:MyStrategy``).
"""

from __future__ import annotations

import hashlib
import random
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar, Literal

from dataloop.engine.parsing import Item, Parsed
from dataloop.environments import TaskEnvironment
from dataloop.llm.teacher import TeacherKind
from dataloop.llm.templates import Templates
from dataloop.schema import Example, Failure, GenerationRequest, SkillInfo

Check = Literal["verified", "unverified", "wrong-answer"]
"""What a strategy's check says: passed, rejected by the task's ``verify``, or a wrong answer."""


@dataclass(frozen=True)
class Level:
    """A request's difficulty level as prompts show it: ``level {number} of {of} ({name}):
    {description}``."""

    index: int
    """The index in the task's levels of the skill (0 the easiest), as requests name it."""
    of: int
    """How many levels the skill has."""
    name: str
    description: str

    @property
    def number(self) -> int:
        """The level counted from 1, as a prompt says it."""
        return self.index + 1


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
    used: Counter[str] = field(default_factory=Counter)
    """Times each seed already is the parent of a training example this request's strategy
    made (read from the training set's provenance, so it survives a resume)."""
    show_student_answer: bool = False
    """Whether a prompt about a failed example may show what the student answered."""
    level: Level | None = None
    """The difficulty level the request asks for (``GenerationRequest.level``), if any."""

    def pool(self) -> list[Example]:
        """The seeds the request names in ``seed_ids``, or all seeds of the skill."""
        named = [e for e in self.seeds if e.id in self.request.seed_ids]
        return named or self.seeds

    @cached_property
    def rotation(self) -> list[Example]:
        """The pool in the order prompts take their target seed: as named in ``seed_ids``, else
        the seeds least used so far first, ties in an order drawn anew each iteration.

        Prompt ``i`` of a request takes ``rotation[i % len(rotation)]``: a request's prompts
        spread over all the skill's seeds before any repeats, and the next iteration starts
        with the seeds this one did not reach. Both inputs (the training set's provenance,
        the iteration) are kept in the run folder, so a resumed run picks the same seeds.
        """
        named = [e for e in self.seeds if e.id in self.request.seed_ids]
        if named:
            return named

        def draw(e: Example) -> str:
            return hashlib.sha1(f"{self.iteration}/{e.id}".encode()).hexdigest()

        return sorted(self.seeds, key=lambda e: (self.used[e.id], draw(e)))

    def rng(self, index: int) -> random.Random:
        """A generator fixed by iteration, skill and prompt index: reruns draw the same."""
        return random.Random(f"{self.iteration}/{self.skill.name}/{index}")


@dataclass
class Prompt:
    """One rendered prompt, the examples it was built on (its parents), and where to stop."""

    text: str
    template: str
    parents: list[Example]
    stop: tuple[str, ...] = ()
    """Stop sequences for the teacher (e.g. one line for a single answer)."""


def multiline(examples: list[Example]) -> bool:
    """Whether any question or answer spans lines (code, lettered choices).

    Base-model prompts show such examples as JSON lines (one item per line, newlines escaped)
    instead of ``Q: / A:`` lines, so that every reader stays line-based.
    """
    return any("\n" in e.question or "\n" in e.answer for e in examples)


class Strategy(ABC):
    """Turns a request into prompts, the teacher's text into candidates, and checks them.

    Subclasses set ``name`` (what plans and ``--strategy`` call it) and ``template_dir`` (the
    folder of its ``base.j2`` / ``chat.j2``), and implement :meth:`prompt` and :meth:`read`.
    """

    name: ClassVar[str]
    template_dir: ClassVar[str]
    dedup_on_answer: ClassVar[bool] = False
    """Dedup on (question, answer) instead of the question: for new answers to old questions."""
    voted: ClassVar[bool] = True
    """Whether ``engine.votes`` applies: the candidate's answer is the teacher's (or a seed's
    kept for a reworded question) and no check so far graded it against a reference."""
    solves: ClassVar[bool] = False
    """Whether the strategy can answer a question on its own (:meth:`solve` and
    :meth:`answer`): the engine's self-consistency votes (``engine.votes``) ask the strategy
    named by ``engine.solver`` (``answer-augmentation`` by default), which must set it."""

    def __init__(self, templates: Templates, kind: TeacherKind = "base") -> None:
        self.templates = templates
        self.kind = kind

    def targets(self, ctx: RequestContext) -> list[Example]:
        """The examples prompts are built on, in the order they are taken; none means the
        request cannot be served. Default: the seed pool in rotation
        (:attr:`RequestContext.rotation`)."""
        return ctx.rotation

    def per_prompt(self, per_query: int) -> int:
        """Candidates one prompt is expected to yield (the engine sends missing / this)."""
        return per_query

    @abstractmethod
    def prompt(self, ctx: RequestContext, index: int, count: int) -> Prompt:
        """The ``index``-th prompt for a request, asking for about ``count`` examples."""

    @abstractmethod
    def read(self, text: str, prompt: Prompt, cut: bool) -> Parsed[Item]:
        """Items (``question`` / ``answer``) in one completion; ``cut``: hit the token limit."""

    def solve(self, ctx: RequestContext, target: Example, index: int) -> Prompt:
        """A prompt asking for one fresh answer to ``target``'s question (the ``index``-th
        asked); a strategy that sets :attr:`solves` implements it."""
        raise NotImplementedError(f"strategy '{self.name}' cannot answer a question")

    def answer(self, text: str, prompt: Prompt) -> str | None:
        """The answer in the teacher's completion of a :meth:`solve` prompt; None if it gave
        none. Default: the answer of the first item :meth:`read` finds."""
        items = self.read(text, prompt, cut=False).items
        return items[0].get("answer") if items else None

    def complete(self, item: Item, prompt: Prompt) -> tuple[str, str] | None:
        """The (question, answer) of a read item; None drops it. Default: both as written."""
        if "question" in item and "answer" in item:
            return item["question"], item["answer"]
        return None

    def parse(
        self, text: str, ctx: RequestContext, prompt: Prompt, cut: bool = False
    ) -> Parsed[Example]:
        """Candidate examples from one completion, with provenance; they may still be wrong."""
        parsed = self.read(text, prompt, cut)
        out: Parsed[Example] = Parsed(dropped=parsed.dropped)
        for item in parsed.items:
            pair = self.complete(item, prompt)
            if pair is None:
                out.dropped += 1
            else:
                out.items.append(self.example(ctx, prompt, *pair))
        return out

    def check(
        self, candidate: Example, ctx: RequestContext, prompt: Prompt
    ) -> tuple[Check, Example]:
        """The task's ``verify`` (it may reject a candidate or relabel it), then, for a request
        at a difficulty level, the task's ``level_of`` (a candidate it places at another level
        is rejected), then :meth:`answer_holds`."""
        verified = ctx.task.verify(candidate)
        if verified is None:
            return "unverified", candidate
        if ctx.level is not None and ctx.task.level_of(verified) not in (None, ctx.level.index):
            return "unverified", candidate
        if not self.answer_holds(candidate, ctx, prompt):
            return "wrong-answer", candidate
        return "verified", verified

    def answer_holds(self, candidate: Example, ctx: RequestContext, prompt: Prompt) -> bool:
        """Whether the candidate's answer is right, for a strategy that keeps an answer the
        task's ``verify`` does not recompute. Default: ``verify`` is the whole check."""
        return True

    def example(self, ctx: RequestContext, prompt: Prompt, question: str, answer: str) -> Example:
        """A generated example with this strategy's provenance."""
        return Example.make(
            ctx.skill.name,
            question,
            answer,
            source="generated",
            strategy=self.name,
            parent_ids=[p.id for p in prompt.parents],
            teacher=ctx.teacher,
            template=prompt.template,
            iteration=ctx.iteration,
            subskill=ctx.request.subskill,
            level=ctx.request.level,
        )

    def prefix(self, prompt: Prompt) -> str:
        """Text the completion continues (a base prompt ends mid-item, e.g. with ``Q:`` or an
        open JSON line ``{"question": "``)."""
        if self.kind == "base":
            return prompt.text[prompt.text.rfind("\n") + 1 :]
        return ""

    def render(
        self,
        ctx: RequestContext,
        count: int,
        *,
        examples: list[Example],
        parents: list[Example],
        target: Example | None = None,
        prediction: str | None = None,
        stop: tuple[str, ...] = (),
    ) -> Prompt:
        """Render this strategy's template for the teacher kind.

        Templates see ``skill`` (name, description), ``examples`` (seed examples shown),
        ``failures`` (this skill's failed seed examples), ``errors`` (the failed probes the
        request shows, rendered by ``student_errors/<kind>.j2``), ``show_skill`` (whether the
        prompt may name the skill: the request's), ``guidance`` (the request's),
        ``count`` (examples asked for), ``target`` (the one example a prompt is about, if any),
        ``prediction`` (what the student answered for ``target``, if it failed it), ``level``
        (the request's difficulty :class:`Level`, or None, rendered by
        ``difficulty/<kind>.j2``) and
        ``multiline`` (some shown example spans lines, so base prompts use JSON lines; the
        ``jsonline`` filter writes a value as a one-line JSON string).
        """
        name = f"{self.template_dir}/{self.kind}.j2"
        text = self.templates.render(
            name,
            multiline=multiline([*examples, *([target] if target else [])]),
            skill=ctx.skill,
            examples=examples,
            failures=ctx.failures,
            errors=ctx.request.failures,
            show_skill=ctx.request.show_skill,
            guidance=ctx.request.guidance,
            count=count,
            target=target,
            prediction=prediction,
            level=ctx.level,
        )
        return Prompt(text=text, template=name, parents=parents, stop=stop)

    def demos(self, ctx: RequestContext, index: int, pool: list[Example]) -> list[Example]:
        """Up to ``ctx.shots`` examples of ``pool`` to show, a different draw for each prompt."""
        return ctx.rng(index).sample(pool, min(ctx.shots, len(pool)))
