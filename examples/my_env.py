"""A custom task environment in one file: two small letter skills, every answer checkable.

    dataloop run --env examples/my_env.py:LetterTask
    dataloop run --env examples/my_env.py --set env.options.train_per_skill=16

Questions look like ``cap(hello)`` (answer ``Hello``) and ``count(l,hello)`` (answer ``2``).
``verify`` recomputes the answer of anything the teacher writes and rejects malformed
questions, so a weak teacher's output still becomes correct training data.
"""

from __future__ import annotations

import random
import re

from dataloop.environments import Split, TaskEnvironment
from dataloop.schema import Example, SkillInfo

_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_PATTERNS = {
    "capitalize": re.compile(r"cap\(([a-z]{3,7})\)"),
    "count": re.compile(r"count\(([a-z]),([a-z]{3,7})\)"),
}
_DESCRIPTIONS = {
    "capitalize": "capitalize a word of 3-7 lowercase letters, e.g. cap(hello) = Hello",
    "count": "count how often a letter occurs in a word, e.g. count(l,hello) = 2",
}


def canonical(question: str) -> str:
    """Questions are stored without whitespace: ``cap( hello )`` is ``cap(hello)``."""
    return re.sub(r"\s+", "", question)


def solve(skill: str, question: str) -> str | None:
    """The answer to a question of ``skill``, or None if it is not a well-formed one."""
    pattern = _PATTERNS.get(skill)
    match = pattern.fullmatch(canonical(question)) if pattern else None
    if match is None:
        return None
    if skill == "capitalize":
        return match[1].capitalize()
    return str(match[2].count(match[1]))


def _sample(skill: str, rng: random.Random) -> str:
    word = "".join(rng.choices(_LETTERS, k=rng.randint(3, 7)))
    if skill == "capitalize":
        return f"cap({word})"
    # Half the time ask for a letter of the word, so the answer is not almost always 0.
    letter = rng.choice(word) if rng.random() < 0.5 else rng.choice(_LETTERS)
    return f"count({letter},{word})"


class LetterTask(TaskEnvironment):
    """Capitalize a word; count a letter in a word. Every answer is recomputed."""

    name = "letters"
    description = "capitalize, count: two small verifiable letter skills (example plug-in)"

    def __init__(
        self,
        seed: int = 0,
        train_per_skill: int = 24,
        validation_per_skill: int = 50,
        test_per_skill: int = 50,
    ) -> None:
        super().__init__(seed)
        sizes: dict[Split, int] = {
            "train": train_per_skill,
            "validation": validation_per_skill,
            "test": test_per_skill,
        }
        self._splits: dict[Split, list[Example]] = {split: [] for split in sizes}
        for skill in _PATTERNS:
            rng = random.Random(f"{seed}/{skill}")
            seen: set[str] = set()  # no question appears in two splits
            for split, size in sizes.items():
                drawn = 0
                while drawn < size:
                    question = _sample(skill, rng)
                    answer = solve(skill, question)
                    if question not in seen and answer is not None:
                        seen.add(question)
                        self._splits[split].append(Example.make(skill, question, answer))
                        drawn += 1

    def skills(self) -> list[SkillInfo]:
        return [SkillInfo(name=s, description=_DESCRIPTIONS[s]) for s in _PATTERNS]

    def split(self, name: Split) -> list[Example]:
        return list(self._splits[name])

    def prompt(self, question: str) -> str:
        # The student sees "cap(hello)=" and is trained to continue with "Hello".
        return f"{question}="

    def verify(self, example: Example) -> Example | None:
        """Reject a malformed question; otherwise store it with the recomputed answer."""
        answer = solve(example.skill, example.question)
        if answer is None:
            return None
        # relabel keeps the teacher's provenance and records whether the answer changed.
        return example.relabel(question=canonical(example.question), answer=answer)
