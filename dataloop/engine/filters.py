"""Filters that make teacher output trustworthy: dedup, decontamination, length limits.

Verification lives on the task (:meth:`TaskEnvironment.verify`); these are task-agnostic.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from dataloop.schema import Example


def normalize(text: str) -> str:
    """Lowercase words and numbers only, so trivial rewrites compare equal."""
    return " ".join(re.findall(r"\w+", text.lower()))


def _ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


class Seen:
    """Questions already held (training set, or earlier in this batch), per skill.

    Two questions are duplicates when they normalise to the same text.
    """

    def __init__(self, examples: Iterable[Example] = ()) -> None:
        self._keys: set[tuple[str, str]] = set()
        for e in examples:
            self.add(e)

    def add(self, example: Example) -> None:
        """Remember an example's question."""
        self._keys.add((example.skill, normalize(example.question)))

    def __contains__(self, example: object) -> bool:
        return isinstance(example, Example) and (
            (example.skill, normalize(example.question)) in self._keys
        )


class Decontaminator:
    """Flags questions that appear in, or share a word n-gram with, held-out data."""

    def __init__(self, held_out: Iterable[Example], n: int = 8) -> None:
        self.n = n
        self._exact: set[str] = set()
        self._grams: set[tuple[str, ...]] = set()
        for e in held_out:
            words = normalize(e.question).split()
            self._exact.add(" ".join(words))
            self._grams |= _ngrams(words, n)

    def contaminated(self, example: Example) -> bool:
        """True if the question equals a held-out one or shares an n-gram with one."""
        words = normalize(example.question).split()
        if " ".join(words) in self._exact:
            return True
        return not self._grams.isdisjoint(_ngrams(words, self.n))


def within_length(example: Example, max_chars: int) -> bool:
    """Non-empty question and answer, neither longer than ``max_chars``."""
    return (
        0 < len(example.question.strip()) <= max_chars
        and 0 < len(example.answer.strip()) <= max_chars
    )
