"""What the engine returns: every candidate with its verdict, the accepted examples and the
per-stage counts (:class:`GenerationResult`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel

from dataloop.schema import Example, GenerationReport

ProgressFn = Callable[[int], None]
"""Called with the number of examples just accepted."""


Verdict = Literal[
    "accepted",
    "unverified",
    "wrong-answer",
    "error",
    "duplicate",
    "near-duplicate",
    "similar",
    "contaminated",
    "benchmark",
    "too-long",
    "low-score",
    "surplus",
]


class Candidate(BaseModel):
    """One parsed teacher output and what the filters decided."""

    example: Example
    verdict: Verdict
    """``unverified``: the task's verify rejected it; ``wrong-answer``: a strategy that keeps
    the teacher's (or the seed's) answer found it wrong; ``error``: checking it raised
    (rejected, see ``error``); ``surplus``: good, but the request was already met;
    ``near-duplicate``: a MinHash LSH match of a held question (``near_duplicates``);
    ``similar``: too close to a held question by ROUGE-L (``novelty``); ``benchmark``: overlaps
    a test set of ``benchmarks``; ``low-score``: the ``judge`` scored it below its threshold (or
    could not score it); the others name the filter that removed it."""
    error: str | None = None
    """What checking it raised, and where (verdict ``error``)."""


@dataclass
class GenerationResult:
    """Accepted examples, every candidate with its verdict, and the per-stage counts."""

    accepted: list[Example] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    report: GenerationReport = field(default_factory=GenerationReport)
    budget_exhausted: bool = False
    errors: list[str] = field(default_factory=list)
