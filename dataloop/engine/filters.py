"""Filters that make teacher output trustworthy: dedup, near-duplicates, novelty,
decontamination, length limits.

Verification lives on the task (:meth:`TaskEnvironment.verify`); these are task-agnostic.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import count
from typing import TYPE_CHECKING

from dataloop.schema import Example

if TYPE_CHECKING:
    from datasketch import LeanMinHash, MinHashLSH


def normalize(text: str) -> str:
    """Lowercase words and numbers only, so trivial rewrites compare equal."""
    return " ".join(re.findall(r"\w+", text.lower()))


def _ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


class Seen:
    """Examples already held (training set, or earlier in this batch), per skill.

    Two questions are duplicates when they normalise to the same text; with ``with_answer``,
    two examples are duplicates only when their answers do too (new answers to old questions).
    """

    def __init__(self, examples: Iterable[Example] = ()) -> None:
        self._questions: set[tuple[str, str]] = set()
        self._pairs: set[tuple[str, str, str]] = set()
        for e in examples:
            self.add(e)

    def add(self, example: Example) -> None:
        """Remember an example's question and its (question, answer) pair."""
        question = normalize(example.question)
        self._questions.add((example.skill, question))
        self._pairs.add((example.skill, question, normalize(example.answer)))

    def contains(self, example: Example, with_answer: bool = False) -> bool:
        """Whether the question (or, ``with_answer``, the question and answer) is held."""
        question = normalize(example.question)
        if with_answer:
            return (example.skill, question, normalize(example.answer)) in self._pairs
        return (example.skill, question) in self._questions


def rouge_tokens(text: str) -> list[str]:
    """Tokens as ``rouge_score``'s default tokenizer makes them (lowercase ``[a-z0-9]+`` runs,
    no stemming), which LLM2LLM's filter uses."""
    return re.findall(r"[a-z0-9]+", text.lower())


def rouge_l(a: list[str], b: list[str]) -> float:
    """ROUGE-L F1 of two token lists: longest common subsequence over both lengths."""
    if not a or not b:
        return 0.0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    lcs = previous[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(a), lcs / len(b)
    return 2 * precision * recall / (precision + recall)


class Novelty:
    """LLM2LLM's novelty filter: a question is too similar when its ROUGE-L F1 with a question
    held of the same skill exceeds ``threshold``.

    It holds the skill's seed questions and every question added (those accepted in this
    iteration), as LLM2LLM compares a new question with the seed questions and the questions
    generated in the same step (``GSM8K/generate_data.py``). Each check compares against all
    held questions of the skill, so its cost grows with the seed set.
    """

    def __init__(self, threshold: float, seeds: Iterable[Example] = ()) -> None:
        if not 0 < threshold <= 1:
            raise ValueError("the ROUGE-L threshold must be in (0, 1]")
        self.threshold = threshold
        self._held: dict[str, list[list[str]]] = {}
        for e in seeds:
            self.add(e)

    def add(self, example: Example) -> None:
        """Hold an example's question."""
        self._held.setdefault(example.skill, []).append(rouge_tokens(example.question))

    def similar(self, example: Example) -> bool:
        """Whether the question is too close to one held of its skill."""
        tokens = rouge_tokens(example.question)
        return any(
            rouge_l(tokens, held) > self.threshold for held in self._held.get(example.skill, [])
        )


SHINGLE = 3
"""Words per shingle of a question's MinHash (a shorter question is one shingle)."""
PERMUTATIONS = 128
"""Hash functions per MinHash signature."""


def shingles(text: str) -> list[bytes]:
    """The word 3-grams of the normalised text, as MinHash takes them."""
    words = normalize(text).split()
    if len(words) <= SHINGLE:
        return [" ".join(words).encode()]
    return [" ".join(words[i : i + SHINGLE]).encode() for i in range(len(words) - SHINGLE + 1)]


class NearDuplicates:
    """Near-duplicate questions by MinHash LSH (``datasketch``): a question is a near-duplicate
    when the estimated Jaccard similarity of its word 3-gram set with that of a question held
    of the same skill is at least ``threshold``.

    It holds the questions it starts with (the training set: seeds and earlier accepted data)
    and each one added (accepted in this batch). Each check and each addition costs the same
    whatever is held, so a batch costs time linear in its size, unlike :class:`Novelty`.
    """

    def __init__(self, threshold: float, held: Iterable[Example] = ()) -> None:
        # datasketch (numpy, scipy) is imported by a run that uses it: the CLI starts at once.
        from datasketch import LeanMinHash, MinHash

        if not 0 < threshold <= 1:
            raise ValueError("the near-duplicate threshold must be in (0, 1]")
        self.threshold = threshold
        self._index: dict[str, MinHashLSH] = {}
        self._keys = count()
        self._last: tuple[str, LeanMinHash] | None = None
        # Copies of one empty signature share its permutations: making them anew for every
        # question would take most of the time of a check.
        self._empty = MinHash(num_perm=PERMUTATIONS)
        self._lean = LeanMinHash
        held = list(held)
        signatures = MinHash.bulk([shingles(e.question) for e in held], num_perm=PERMUTATIONS)
        for example, signature in zip(held, signatures, strict=True):
            self._insert(example.skill, self._lean(signature))

    def _signature(self, question: str) -> LeanMinHash:
        # The engine checks a question, then adds it if it passes the later filters: one hash.
        if self._last is None or self._last[0] != question:
            signature = self._empty.copy()
            signature.update_batch(shingles(question))
            self._last = (question, self._lean(signature))
        return self._last[1]

    def _insert(self, skill: str, signature: LeanMinHash) -> None:
        from datasketch import MinHashLSH

        index = self._index.get(skill)
        if index is None:
            index = self._index[skill] = MinHashLSH(self.threshold, num_perm=PERMUTATIONS)
        index.insert(next(self._keys), signature, check_duplication=False)

    def add(self, example: Example) -> None:
        """Hold an example's question."""
        self._insert(example.skill, self._signature(example.question))

    def similar(self, example: Example) -> bool:
        """Whether the question is a near-duplicate of one held of its skill."""
        index = self._index.get(example.skill)
        return index is not None and bool(index.query(self._signature(example.question)))


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
