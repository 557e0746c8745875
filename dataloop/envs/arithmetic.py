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


def operands(question: str) -> list[str]:
    """The words or numbers of a question (``max(41,17)`` -> ``['41', '17']``)."""
    inside = question[question.index("(") + 1 :] if "(" in question else question
    return re.findall(r"[a-z]+|\d+", inside)


def _no_carry(a: str, b: str) -> bool:
    return all(int(x) + int(y) < 10 for x, y in zip(a[::-1], b[::-1], strict=False))


def _no_borrow(a: str, b: str) -> bool:
    return all(int(x) >= int(y) for x, y in zip(a[::-1], b[::-1], strict=False))


_Rule = Callable[[list[str]], bool]
SUBSKILLS: dict[str, dict[str, tuple[str, _Rule]]] = {
    "first": {
        "short-words": ("words of 3-4 letters", lambda w: len(w[0]) <= 4),
        "long-words": ("words of 5-6 letters", lambda w: len(w[0]) >= 5),
    },
    "last": {
        "short-words": ("words of 3-4 letters", lambda w: len(w[0]) <= 4),
        "long-words": ("words of 5-6 letters", lambda w: len(w[0]) >= 5),
    },
    "len": {
        "short-words": ("words of 2-5 letters", lambda w: len(w[0]) <= 5),
        "long-words": ("words of 6-9 letters", lambda w: len(w[0]) >= 6),
    },
    "add": {
        "no-carry": ("no column sums to 10 or more", lambda n: _no_carry(n[0], n[1])),
        "carry": ("some column sums to 10 or more", lambda n: not _no_carry(n[0], n[1])),
    },
    "sub": {
        "no-borrow": ("no column needs a borrow", lambda n: _no_borrow(n[0], n[1])),
        "borrow": ("some column needs a borrow", lambda n: not _no_borrow(n[0], n[1])),
    },
    "mul": {
        "two-digit-result": ("the product is below 100", lambda n: int(n[0]) * int(n[1]) < 100),
        "three-digit-result": ("the product is 100 or more", lambda n: int(n[0]) * int(n[1]) > 99),
    },
    "max": {
        "first-larger": ("the first number is the larger", lambda n: int(n[0]) > int(n[1])),
        "second-larger": ("the second number is the larger", lambda n: int(n[0]) < int(n[1])),
        "same-tens": ("both numbers have the same tens digit", lambda n: n[0][0] == n[1][0]),
    },
    "sort": {
        "distinct-digits": ("all four digits differ", lambda n: len(set(n[0])) == 4),
        "repeated-digits": ("a digit appears more than once", lambda n: len(set(n[0])) < 4),
        "sorted-already": ("the digits are already in order", lambda n: sorted(n[0]) == list(n[0])),
    },
    "reverse": {
        "three-letters": ("3-letter words", lambda w: len(w[0]) == 3),
        "four-letters": ("4-letter words", lambda w: len(w[0]) == 4),
        "five-letters": ("5-letter words", lambda w: len(w[0]) == 5),
    },
}
"""Subskills the task tells apart (``skill-tree``): name -> (description, rule on the question's
operands). The first ones of each skill split it in two or three; a later one may be a special
case that overlaps them (``max``'s ``same-tens``, ``sort``'s ``sorted-already``). Each is scored
on the questions its rule selects; a rule-based policy explores them in this order."""


def _carries(a: str, b: str) -> int:
    """Columns of ``a + b`` that carry, the carry from the column before counted in."""
    carry = count = 0
    for x, y in zip(a[::-1], b[::-1], strict=False):
        carry = int(int(x) + int(y) + carry >= 10)
        count += carry
    return count


def _inversions(digits: str) -> int:
    """Pairs of digits out of order (``5213`` has 4)."""
    return sum(x > y for i, x in enumerate(digits) for y in digits[i + 1 :])


def _word_levels(*spans: tuple[int, int, str]) -> list[tuple[str, str, _Rule]]:
    """Levels by word length: (shortest, longest, an example) per level."""

    def rule(low: int, high: int) -> _Rule:
        return lambda w: low <= len(w[0]) <= high

    def name(low: int, high: int) -> str:
        return f"{low}-{high}" if low < high else str(low)

    return [
        (
            f"{name(low, high)}-letters",
            f"words of {name(low, high)} letters, e.g. {example}",
            rule(low, high),
        )
        for low, high, example in spans
    ]


LEVELS: dict[str, list[tuple[str, str, _Rule]]] = {
    "first": _word_levels((3, 4, "first(cat) = c"), (5, 6, "first(house) = h")),
    "last": _word_levels((3, 4, "last(cat) = t"), (5, 6, "last(house) = e")),
    "len": _word_levels(
        (2, 3, "len(at) = 2"),
        (4, 5, "len(tree) = 4"),
        (6, 7, "len(garden) = 6"),
        (8, 9, "len(elephant) = 8"),
    ),
    "reverse": _word_levels(
        (3, 3, "rev(cat) = tac"), (4, 4, "rev(tree) = eert"), (5, 5, "rev(house) = esuoh")
    ),
    "add": [
        ("no-carry", "no column carries, e.g. 23+45 = 68", lambda n: _carries(*n) == 0),
        ("one-carry", "exactly one column carries, e.g. 27+45 = 72", lambda n: _carries(*n) == 1),
        ("two-carries", "both columns carry, e.g. 68+57 = 125", lambda n: _carries(*n) == 2),
    ],
    "sub": [
        ("no-borrow", "no column needs a borrow, e.g. 57-23 = 34", lambda n: _no_borrow(*n)),
        ("borrow", "a column needs a borrow, e.g. 52-27 = 25", lambda n: not _no_borrow(*n)),
    ],
    "mul": [
        (
            "two-digit-product",
            "the product is below 100, e.g. 3*21 = 63",
            lambda n: int(n[0]) * int(n[1]) < 100,
        ),
        (
            "three-digit-product",
            "the product is 100 or more, e.g. 7*34 = 238",
            lambda n: int(n[0]) * int(n[1]) > 99,
        ),
    ],
    "max": [
        (
            "different-tens",
            "the tens digits differ, e.g. max(41,17) = 41",
            lambda n: n[0][0] != n[1][0],
        ),
        (
            "same-tens",
            "the tens digits are the same, e.g. max(43,47) = 47",
            lambda n: n[0][0] == n[1][0],
        ),
    ],
    "sort": [
        (
            "in-order",
            "the digits are already in order, e.g. sort(1237) = 1237",
            lambda n: _inversions(n[0]) == 0,
        ),
        (
            "few-swaps",
            "1 or 2 pairs of digits are out of order, e.g. sort(1324) = 1234",
            lambda n: 1 <= _inversions(n[0]) <= 2,
        ),
        (
            "many-swaps",
            "3 or more pairs of digits are out of order, e.g. sort(5213) = 1235",
            lambda n: _inversions(n[0]) >= 3,
        ),
    ],
}
"""Difficulty levels of each skill, easiest first: name -> (description, rule on the question's
operands). The rules of a skill split its questions without overlap. Every level lies inside
the question format ``verify`` accepts (word length, carries, borrows, the product's digits,
digits out of order), so a level narrows a skill and never widens it: the number of digits or
items in a question is fixed by the format and is not a level."""


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
    description = (
        "first, last, len, max, sort, reverse (add, sub, mul opt-in): small verifiable skills "
        "(embedded gym)"
    )

    def __init__(
        self,
        seed: int = 0,
        train_per_skill: int | dict[str, int] = 24,
        validation_per_skill: int = 100,
        test_per_skill: int = 100,
        skills: list[str] | None = None,
        train_subskill: dict[str, str] | None = None,
    ) -> None:
        """``train_per_skill``: seeds per skill, one number or a mapping skill -> number (skills
        it does not name get 24), for a gym with imbalanced seeds. ``train_subskill``: skill ->
        one of its :data:`SUBSKILLS`; that skill's seeds are drawn only where the subskill's
        rule holds while validation and test cover the whole skill (a coverage gap)."""
        super().__init__(seed)
        unknown = sorted(set(skills or []) - set(SKILLS))
        if unknown:
            raise ValueError(f"unknown skills {unknown}; known: {', '.join(SKILLS)}")
        self._skills = list(skills or DEFAULT_SKILLS)
        counts = train_per_skill if isinstance(train_per_skill, dict) else {}
        self._train = {
            s: counts.get(s, 24) if isinstance(train_per_skill, dict) else train_per_skill
            for s in self._skills
        }
        self._slice = dict(train_subskill or {})
        for name, named in (("train_per_skill", counts), ("train_subskill", self._slice)):
            stray = sorted(set(named) - set(self._skills))
            if stray:
                raise ValueError(f"{name} names {stray}, not skills of this gym: {self._skills}")
        for skill, sub in self._slice.items():
            if sub not in SUBSKILLS[skill]:
                known = ", ".join(SUBSKILLS[skill])
                raise ValueError(
                    f"train_subskill: '{skill}' has no subskill '{sub}'; known: {known}"
                )
        if any(not isinstance(n, int) or n < 0 for n in self._train.values()):
            raise ValueError(f"train_per_skill must be whole numbers >= 0, got {train_per_skill}")
        self._sizes: dict[Split, int] = {"validation": validation_per_skill, "test": test_per_skill}
        self._splits = self._build_splits()

    def _build_splits(self) -> dict[Split, list[Example]]:
        # Each skill draws its own questions from its own generator, so adding a skill or
        # changing one skill's seeds leaves the other skills' questions untouched.
        splits: dict[Split, list[Example]] = {"train": [], **{name: [] for name in self._sizes}}
        for skill in self._skills:
            rng = random.Random(f"{self.seed}/{skill}")
            seen: set[str] = set()
            sizes: dict[Split, int] = {"train": self._train[skill], **self._sizes}
            for split, size in sizes.items():
                sliced = split == "train" and skill in self._slice
                rule = SUBSKILLS[skill][self._slice[skill]][1] if sliced else None
                drawn = attempts = 0
                while drawn < size:
                    attempts += 1
                    if attempts > 100 * size:
                        raise ValueError(
                            f"skill '{skill}' has too few distinct questions for "
                            f"{sum(sizes.values())} examples; ask for fewer per skill"
                        )
                    question = SKILLS[skill].sample(rng)
                    answer = solve(skill, question)
                    if question in seen or answer is None:
                        continue
                    if rule is not None and not rule(operands(question)):
                        continue
                    seen.add(question)
                    splits[split].append(Example.make(skill, question, answer))
                    drawn += 1
        return splits

    def skills(self) -> list[SkillInfo]:
        return [SkillInfo(name=s, description=SKILLS[s].description) for s in self._skills]

    def data_license(self) -> str | None:
        """The problems are made by this code, dataloop's (Apache-2.0)."""
        return "apache-2.0"

    def split(self, name: Split) -> list[Example]:
        return list(self._splits[name])

    def sample(self, skill: str, n: int, rng: random.Random) -> list[Example]:
        """``n`` fresh questions of ``skill`` from the same generator as the splits, solved."""
        spec = SKILLS[skill]
        questions = [spec.sample(rng) for _ in range(n)]
        return [Example.make(skill, q, a) for q in questions if (a := solve(skill, q)) is not None]

    def prompt(self, question: str) -> str:
        return f"{question}="

    def subskills(self, skill: str) -> list[SkillInfo]:
        """The skill's subskills in :data:`SUBSKILLS`, in order."""
        return [
            SkillInfo(name=name, description=description)
            for name, (description, _) in SUBSKILLS.get(skill, {}).items()
        ]

    def in_subskill(self, example: Example, subskill: str) -> bool | None:
        """By the subskill's rule on the question's operands; None for an unknown subskill,
        False for a malformed question."""
        rule = SUBSKILLS.get(example.skill, {}).get(subskill)
        if rule is None:
            return None
        if solve(example.skill, example.question) is None:
            return False
        return rule[1](operands(canonical(example.question)))

    def levels(self, skill: str) -> list[SkillInfo]:
        """The skill's :data:`LEVELS`, easiest first."""
        return [SkillInfo(name=name, description=text) for name, text, _ in LEVELS.get(skill, [])]

    def level_of(self, example: Example) -> int | None:
        """The index of the level whose rule the question's operands meet; None for a
        malformed question or a skill without levels."""
        if solve(example.skill, example.question) is None:
            return None
        words = operands(canonical(example.question))
        rules = [rule for _, _, rule in LEVELS.get(example.skill, [])]
        return next((i for i, rule in enumerate(rules) if rule(words)), None)

    def verify(self, example: Example) -> Example | None:
        """Parse the question; reject it if malformed, else store the recomputed answer."""
        answer = solve(example.skill, example.question)
        if answer is None:
            return None
        return example.relabel(question=canonical(example.question), answer=answer)

    def check_answer(self, example: Example) -> bool | None:
        """True exactly when the question is well formed and the answer is its result."""
        return solve(example.skill, example.question) == example.answer.strip()
