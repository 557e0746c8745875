"""An LLM judge: a filter stage that scores each candidate against a rubric and keeps those at or
above a threshold (``engine.judge``).

The rubric is the template ``prompts/judge/<kind>.j2`` (a user's ``engine.prompts_dir`` overrides
it); the judge answers one :class:`Score` as JSON, constrained by its schema where the server
supports it. Score and reason go into the candidate's provenance; each query counts against the
run's budget, whichever endpoint answers it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict

from dataloop.errors import BudgetExhausted, TeacherError
from dataloop.llm.base import Sampling
from dataloop.llm.structured import InvalidReply, json_schema, parse_json
from dataloop.llm.teacher import Teacher, TeacherKind
from dataloop.llm.templates import Templates
from dataloop.schema import Example, SkillInfo


class Score(BaseModel):
    """What the judge answers for one example."""

    model_config = ConfigDict(extra="forbid")

    score: Literal[1, 2, 3, 4, 5]
    """1 (wrong, nonsense) to 5 (clear, on the skill, correct and complete)."""
    reason: str
    """One sentence on what decided the score."""


@dataclass
class Judged:
    """One candidate after judging, with what the judging cost."""

    example: Example
    """The candidate with the judge's score and reason in its provenance."""
    queries: int = 0
    exhausted: bool = False
    """The budget ran out: the candidate was not judged, and is not kept."""
    errors: list[str] = field(default_factory=list)


class Judge:
    """Scores candidates with ``teacher`` (the judge's client, prompt kind and templates) and
    keeps those scoring at least ``threshold``."""

    def __init__(
        self,
        teacher: Teacher,
        threshold: int = 4,
        temperature: float = 0.0,
        max_tokens: int = 256,
    ) -> None:
        if not 1 <= threshold <= 5:
            raise ValueError("the judge's threshold must be a score from 1 to 5")
        self.teacher = teacher
        self.threshold = threshold
        self.temperature = temperature
        self.max_tokens = max_tokens

    def prompt(self, example: Example, skill: SkillInfo) -> str:
        """The rubric prompt for one example."""
        return rubric(self.teacher.templates, self.teacher.kind, example, skill)

    async def judge(self, example: Example, skill: SkillInfo) -> Judged:
        """``example`` scored: its provenance holds the score and the reason (or, when the
        judge could not score it, None and why)."""
        sampling = Sampling(
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            seed=self.teacher.sampling_seed("judge", example.id, example.answer),
            json_schema=json_schema(Score),
            # A base model writes its judgement on one line, then would start another demo.
            stop=("\n",) if self.teacher.kind == "base" else (),
        )
        try:
            reply = await self.teacher.ask(self.prompt(example, skill), sampling)
        except BudgetExhausted:
            return Judged(_noted(example, None, "not judged: the budget is spent"), exhausted=True)
        except TeacherError as exc:
            return Judged(_noted(example, None, f"not judged: {exc}"), errors=[str(exc)])
        queries = 0 if reply.cached else 1
        try:
            score = parse_json(reply.texts[0], Score)
        except InvalidReply as exc:
            reason = f"the judge's reply could not be read: {exc}"
            return Judged(_noted(example, None, reason), queries)
        return Judged(_noted(example, score.score, score.reason), queries)

    def keeps(self, example: Example) -> bool:
        """Whether the example's score is at or above the threshold."""
        score = example.provenance.judge_score
        return score is not None and score >= self.threshold


def copying_warning(examples: list[Example], least: int = 10) -> str | None:
    """A warning when the judge gave every one of at least ``least`` candidates it scored the
    same score with the same reason, as a small model copying its prompt's example reply does
    (Gemma 3 270M, E6: 288 of 288 scored 4, with the example's reason); None otherwise."""
    scored = [
        (e.provenance.judge_score, e.provenance.judge_reason)
        for e in examples
        if e.provenance.judge_score is not None
    ]
    if len(scored) < least or len(set(scored)) > 1:
        return None
    score, reason = scored[0]
    return (
        f"the judge gave all {len(scored)} candidates it scored a {score}, each with the reason "
        f"{reason!r}: it may be copying its prompt rather than judging (docs/publishing.md, "
        "'LLM judge')"
    )


def rubric(templates: Templates, kind: TeacherKind, example: Example, skill: SkillInfo) -> str:
    """The judge's prompt for one example: ``judge/<kind>.j2`` rendered with the skill, the
    question and the answer."""
    return templates.render(
        f"judge/{kind}.j2", skill=skill, question=example.question, answer=example.answer
    )


def _noted(example: Example, score: int | None, reason: str) -> Example:
    """The example with the judge's score and reason in its provenance."""
    provenance = example.provenance.model_copy(
        update={"judge_score": score, "judge_reason": reason}
    )
    return example.model_copy(update={"provenance": provenance})
