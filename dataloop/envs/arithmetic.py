"""The arithmetic gym: six small skills of different difficulty, every answer computable.

It is the embedded default environment: a tiny student learns it on a CPU in minutes, and
``verify`` recomputes the answer of any question a teacher writes, so even a weak teacher's
output becomes correct training data.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from dataloop.environments import Split, TaskEnvironment
from dataloop.schema import Example, SkillInfo

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class _Skill:
    description: str
    pattern: re.Pattern[str]
    solve: Callable[[re.Match[str]], str | None]
    sample: Callable[[random.Random], str]


def _two_digit(rng: random.Random) -> int:
    return rng.randint(10, 99)


def _sample_sub(rng: random.Random) -> str:
    a, b = sorted((_two_digit(rng), _two_digit(rng)), reverse=True)
    return f"{a}-{b}"


def _solve_sub(m: re.Match[str]) -> str | None:
    a, b = int(m[1]), int(m[2])
    return str(a - b) if a >= b else None


def _word(rng: random.Random, low: int, high: int) -> str:
    return "".join(rng.choices(_LETTERS, k=rng.randint(low, high)))


SKILLS: dict[str, _Skill] = {
    "first": _Skill(
        "the first letter of a word of 3-6 lowercase letters, e.g. first(house) = h",
        re.compile(r"first\(([a-z]{3,6})\)"),
        lambda m: m[1][0],
        lambda rng: f"first({_word(rng, 3, 6)})",
    ),
    "last": _Skill(
        "the last letter of a word of 3-6 lowercase letters, e.g. last(house) = e",
        re.compile(r"last\(([a-z]{3,6})\)"),
        lambda m: m[1][-1],
        lambda rng: f"last({_word(rng, 3, 6)})",
    ),
    "len": _Skill(
        "the number of letters in a word of 2-9 lowercase letters, e.g. len(house) = 5",
        re.compile(r"len\(([a-z]{2,9})\)"),
        lambda m: str(len(m[1])),
        lambda rng: f"len({_word(rng, 2, 9)})",
    ),
    "add": _Skill(
        "add two 2-digit numbers, e.g. 12+35 = 47",
        re.compile(r"([1-9]\d)\+([1-9]\d)"),
        lambda m: str(int(m[1]) + int(m[2])),
        lambda rng: f"{_two_digit(rng)}+{_two_digit(rng)}",
    ),
    "sub": _Skill(
        "subtract a 2-digit number from a larger or equal one, e.g. 57-23 = 34",
        re.compile(r"([1-9]\d)-([1-9]\d)"),
        _solve_sub,
        _sample_sub,
    ),
    "mul": _Skill(
        "multiply a 1-digit number (2-9) by a 2-digit number, e.g. 7*34 = 238",
        re.compile(r"([2-9])\*([1-9]\d)"),
        lambda m: str(int(m[1]) * int(m[2])),
        lambda rng: f"{rng.randint(2, 9)}*{_two_digit(rng)}",
    ),
    "max": _Skill(
        "the larger of two 2-digit numbers, e.g. max(41,17) = 41",
        re.compile(r"max\(([1-9]\d),([1-9]\d)\)"),
        lambda m: str(max(int(m[1]), int(m[2]))),
        lambda rng: f"max({_two_digit(rng)},{_two_digit(rng)})",
    ),
    "reverse": _Skill(
        "reverse a word of 3-5 lowercase letters, e.g. rev(cat) = tac",
        re.compile(r"rev\(([a-z]{3,5})\)"),
        lambda m: m[1][::-1],
        lambda rng: f"rev({_word(rng, 3, 5)})",
    ),
    "sort": _Skill(
        "sort the 4 digits of a number ascending, e.g. sort(5213) = 1235",
        re.compile(r"sort\((\d{4})\)"),
        lambda m: "".join(sorted(m[1])),
        lambda rng: "sort({})".format("".join(rng.choices("0123456789", k=4))),
    ),
}


DEFAULT_SKILLS = ["first", "last", "len", "max", "sort", "reverse"]
"""The default mix (docs/benchmarks.md, "The embedded gym"): three skills the tiny student
learns from about a hundred examples and three that keep paying for hundreds. ``add``, ``sub``
and ``mul`` are opt-in (``env.options.skills``): the tiny student barely learns them at all."""


def canonical(question: str) -> str:
    """Questions are compared and stored without whitespace: ``12 + 35`` is ``12+35``."""
    return re.sub(r"\s+", "", question)


def solve(skill: str, question: str) -> str | None:
    """The answer to a question of a skill, or None if it is not a well-formed question of it."""
    spec = SKILLS.get(skill)
    if spec is None:
        return None
    match = spec.pattern.fullmatch(canonical(question))
    return spec.solve(match) if match else None


class ArithmeticTask(TaskEnvironment):
    """Six arithmetic and string skills for tiny students; every answer is recomputed."""

    name = "arithmetic"
    description = "add, sub, mul, max, reverse, sort: small verifiable skills (embedded gym)"

    def __init__(
        self,
        seed: int = 0,
        train_per_skill: int = 24,
        validation_per_skill: int = 100,
        test_per_skill: int = 100,
        skills: list[str] | None = None,
    ) -> None:
        super().__init__(seed)
        unknown = sorted(set(skills or []) - set(SKILLS))
        if unknown:
            raise ValueError(f"unknown skills {unknown}; known: {', '.join(SKILLS)}")
        self._skills = list(skills or DEFAULT_SKILLS)
        self._sizes: dict[Split, int] = {
            "train": train_per_skill,
            "validation": validation_per_skill,
            "test": test_per_skill,
        }
        self._splits = self._build_splits()

    def _build_splits(self) -> dict[Split, list[Example]]:
        # Each skill draws its own questions from its own generator, so adding a skill or
        # changing one split's size leaves the other skills' questions untouched.
        splits: dict[Split, list[Example]] = {name: [] for name in self._sizes}
        for skill in self._skills:
            rng = random.Random(f"{self.seed}/{skill}")
            seen: set[str] = set()
            for split, size in self._sizes.items():
                drawn = attempts = 0
                while drawn < size:
                    attempts += 1
                    if attempts > 100 * size:
                        raise ValueError(
                            f"skill '{skill}' has too few distinct questions for "
                            f"{sum(self._sizes.values())} examples; ask for fewer per skill"
                        )
                    question = SKILLS[skill].sample(rng)
                    answer = solve(skill, question)
                    if question in seen or answer is None:
                        continue
                    seen.add(question)
                    splits[split].append(Example.make(skill, question, answer))
                    drawn += 1
        return splits

    def skills(self) -> list[SkillInfo]:
        return [SkillInfo(name=s, description=SKILLS[s].description) for s in self._skills]

    def split(self, name: Split) -> list[Example]:
        return list(self._splits[name])

    def sample(self, skill: str, n: int, rng: random.Random) -> list[Example]:
        """``n`` fresh questions of ``skill`` from the same generator as the splits, solved."""
        spec = SKILLS[skill]
        questions = [spec.sample(rng) for _ in range(n)]
        return [Example.make(skill, q, a) for q in questions if (a := solve(skill, q)) is not None]

    def prompt(self, question: str) -> str:
        return f"{question}="

    def verify(self, example: Example) -> Example | None:
        """Parse the question; reject it if malformed, else store the recomputed answer."""
        answer = solve(example.skill, example.question)
        if answer is None:
            return None
        return example.relabel(question=canonical(example.question), answer=answer)

    def check_answer(self, example: Example) -> bool | None:
        """True exactly when the question is well formed and the answer is its result."""
        return solve(example.skill, example.question) == example.answer.strip()
