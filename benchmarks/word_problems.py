"""E3's gym: math word problems with worked solutions (GSM8K format), made by templates whose
teacher is the generator itself.

Why not the math environment's shipped sample: its splits are worded by different templates
(so decontamination measures something), which a student built from scratch on a GPU in a
minute cannot bridge; and its phrases are long, so any two problems of one template share a
word 8-gram and the engine's decontamination would reject every generated problem. Here the
wordings are short, with several of a problem's numbers, its name and its item in every 8
words, so a fresh problem shares an 8-gram with 400 held-out ones only ~2-3 % of the time
(tests/test_task_teacher.py bounds it), and seeds, validation and test are drawn from one
distribution (:func:`write_pool` keeps the splits' questions distinct).

Each template has two wordings and each solution step three written forms, so the task teacher
(:mod:`task_teacher`) can serve the three strategies of Chan et al. (arXiv:2409.19759) from
the generator: a *new question* is a fresh draw of the skill, a *rephrase* is the same problem
(same numbers, same answer) with another name and item in either wording, an *answer augmentation*
is the same question with another worked solution (steps worded differently, operands of + and
* in another order). Seeds, validation and test always use the canonical solution.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

NAMES = ["Ken", "Omar", "Jack", "Tom", "Maria", "Priya", "Aisha", "Lena", "Ravi", "Zoe"]
ITEMS = ["pens", "cards", "shells", "stamps", "beads", "coins", "stickers", "marbles"]
Step = tuple[str, str, str, int]
"""One solution step: (its label, what it computes, expression, value); the canonical solution
writes ``label expression = <<...>>value.``, the other forms use the second phrase."""


@dataclass(frozen=True)
class Problem:
    """One drawn problem: its skill, template, wording-free parameters and solution steps."""

    skill: str
    template: str
    params: dict[str, int | str]
    steps: list[Step]

    def question(self, wording: int) -> str:
        """The question in wording 0 or 1."""
        return TEMPLATES[self.template].wordings[wording].format(**self.params)

    def solution(self, rng: random.Random | None = None) -> str:
        """The worked solution ending in ``#### answer``: the canonical one (seeds, validation,
        test), or with ``rng`` another rationale for the same answer, drawn from the others
        (each step worded one of three ways, the operands of + and * in either order)."""
        for _ in range(50):
            lines, canonical = [], True
            for first, second, expr, value in self.steps:
                style = rng.randint(0, 2) if rng else 0
                if rng and rng.random() < 0.5 and _commute(expr) != expr:
                    expr, canonical = _commute(expr), False
                canonical = canonical and style == 0
                done = f"{expr} = <<{expr.replace(' ', '')}={value}>>{value}"
                lines.append(
                    (f"{first} {done}.", f"{done}, {second}.", f"So {second} is {done}.")[style]
                )
            if rng is None or not canonical:
                break
        return " ".join(lines) + f" #### {self.steps[-1][3]}"


def _commute(expr: str) -> str:
    parts = expr.split(" ")
    if len(parts) == 3 and parts[1] in "+*":
        return f"{parts[2]} {parts[1]} {parts[0]}"
    return expr


@dataclass(frozen=True)
class Template:
    """A skill's problem: two wordings over one set of parameters, and its solver."""

    skill: str
    wordings: tuple[str, str]
    draw: Callable[[random.Random], tuple[dict[str, int | str], list[Step]]]


def _wages(rng: random.Random) -> tuple[dict[str, int | str], list[Step]]:
    r, h, d = rng.randint(8, 49), rng.randint(2, 12), rng.randint(2, 9)
    return {"r": r, "h": h, "d": d}, [
        ("A day:", "the pay for a day", f"{r} * {h}", r * h),
        ("In all:", "the pay in all", f"{r * h} * {d}", r * h * d),
    ]


def _change(rng: random.Random) -> tuple[dict[str, int | str], list[Step]]:
    n, p = rng.randint(2, 9), rng.randint(3, 29)
    b = next(b for b in (20, 50, 100, 200, 500) if b > n * p)
    return {"n": n, "p": p, "b": b}, [
        ("Cost:", "the cost", f"{n} * {p}", n * p),
        ("Change:", "the change", f"{b} - {n * p}", b - n * p),
    ]


def _discount(rng: random.Random) -> tuple[dict[str, int | str], list[Step]]:
    o = rng.choice([10, 20, 25, 50])
    p = rng.randint(2, 30) * (100 // o if o != 25 else 4)
    cut = p * o // 100
    return {"p": p, "o": o}, [
        ("Discount:", "the discount", f"{p} * {o} / 100", cut),
        ("Sale price:", "the sale price", f"{p} - {cut}", p - cut),
    ]


def _share(rng: random.Random) -> tuple[dict[str, int | str], list[Step]]:
    o = rng.choice([10, 20, 25, 50])
    n = rng.randint(2, 20) * (100 // o if o != 25 else 4)
    part = n * o // 100
    return {"n": n, "o": o}, [
        ("Red:", "the red ones", f"{n} * {o} / 100", part),
        ("Not red:", "the rest", f"{n} - {part}", n - part),
    ]


def _trip(rng: random.Random) -> tuple[dict[str, int | str], list[Step]]:
    s, t, x = rng.randint(20, 90), rng.randint(2, 9), rng.randint(5, 99)
    return {"s": s, "t": t, "x": x}, [
        ("First part:", "the first part", f"{s} * {t}", s * t),
        ("Distance:", "the distance", f"{s * t} + {x}", s * t + x),
    ]


def _reading(rng: random.Random) -> tuple[dict[str, int | str], list[Step]]:
    p, d, q = rng.randint(5, 40), rng.randint(2, 9), rng.randint(10, 90)
    return {"p": p, "d": d, "q": q}, [
        ("Read:", "the pages read", f"{p} * {d}", p * d),
        ("Book:", "the book's length", f"{p * d} + {q}", p * d + q),
    ]


def _boxes(rng: random.Random) -> tuple[dict[str, int | str], list[Step]]:
    a, b = rng.randint(2, 9), rng.randint(4, 24)
    c = rng.randint(1, a * b - 1)
    return {"a": a, "b": b, "c": c}, [
        ("Had:", "what there was", f"{a} * {b}", a * b),
        ("Left:", "what is left", f"{a * b} - {c}", a * b - c),
    ]


def _rows(rng: random.Random) -> tuple[dict[str, int | str], list[Step]]:
    a, b, c = rng.randint(2, 12), rng.randint(3, 15), rng.randint(2, 40)
    return {"a": a, "b": b, "c": c}, [
        ("In rows:", "those in rows", f"{a} * {b}", a * b),
        ("In all:", "all of them", f"{a * b} + {c}", a * b + c),
    ]


def _eaten(rng: random.Random) -> tuple[dict[str, int | str], list[Step]]:
    k = rng.randint(2, 6)
    n = k * rng.randint(2, 15)
    return {"n": n, "k": k}, [
        ("Eaten:", "the eaten ones", f"{n} / {k}", n // k),
        ("Left:", "what is left", f"{n} - {n // k}", n - n // k),
    ]


def _given(rng: random.Random) -> tuple[dict[str, int | str], list[Step]]:
    k = rng.randint(2, 6)
    n, m = k * rng.randint(2, 15), rng.randint(2, 30)
    return {"n": n, "k": k, "m": m}, [
        ("Given:", "the part given", f"{n} / {k}", n // k),
        ("Now:", "what there is now", f"{n // k} + {m}", n // k + m),
    ]


# Wordings: short, every 8 words holding several of the problem's numbers, name and item.
TEMPLATES: dict[str, Template] = {
    "wages": Template(
        "money",
        (
            "{name} earns ${r}/hour, {h} hours/day, {d} days. Pay?",
            "{d} days, {h} hours each, ${r}/hour: {name}'s pay?",
        ),
        _wages,
    ),
    "change": Template(
        "money",
        (
            "{name} buys {n} {item} at ${p} each, pays ${b}. Change?",
            "${b} paid for {n} {item} at ${p} each by {name}. Change?",
        ),
        _change,
    ),
    "discount": Template(
        "percentages",
        (
            "{name}'s ${p} {item} are {o}% off. Sale price?",
            "{o}% off {name}'s {item} at ${p}. New price?",
        ),
        _discount,
    ),
    "share": Template(
        "percentages",
        (
            "{name} has {n} {item}, {o}% red. Not red?",
            "{o}% of {name}'s {n} {item} are red. Others?",
        ),
        _share,
    ),
    "trip": Template(
        "rates",
        (
            "{name} drives {t} hours at {s} km/h, then {x} km. Distance?",
            "{name}: {s} km/h for {t} hours, then {x} km more. Distance?",
        ),
        _trip,
    ),
    "reading": Template(
        "rates",
        (
            "{name} reads {p} pages/day for {d} days, {q} left. Book length?",
            "{p} pages a day, {d} days, {q} pages left: {name}'s book length?",
        ),
        _reading,
    ),
    "boxes": Template(
        "counting",
        (
            "{name} has {a} boxes of {b} {item}, gives away {c}. Left?",
            "{c} given away from {a} boxes of {b} {item} by {name}. Left?",
        ),
        _boxes,
    ),
    "rows": Template(
        "counting",
        (
            "{name} has {a} rows of {b} {item} and {c} more. In all?",
            "{c} {item} plus {a} rows of {b} for {name}. In all?",
        ),
        _rows,
    ),
    "eaten": Template(
        "fractions",
        (
            "{name} has {n} {item}, loses 1/{k} of them. Left?",
            "1/{k} of {name}'s {n} {item} are lost. Left?",
        ),
        _eaten,
    ),
    "given": Template(
        "fractions",
        (
            "{name} gives 1/{k} of {n} {item} to Sam ({m}). Sam's total?",
            "Sam had {m} {item}, then got 1/{k} of {name}'s {n}. Sam's total?",
        ),
        _given,
    ),
}
SKILLS = {
    "money": "prices, wages, totals and change",
    "percentages": "a percent of a quantity, discounts and shares",
    "rates": "per-unit quantities over time",
    "counting": "multiplying, adding and subtracting counts",
    "fractions": "a unit fraction of a quantity, then adding or subtracting",
}


def draw(rng: random.Random, skill: str | None = None, template: str | None = None) -> Problem:
    """A fresh problem of ``skill`` (or of ``template``; any skill when neither is given)."""
    names = [t for t, tpl in TEMPLATES.items() if skill in (None, tpl.skill)]
    name = template or rng.choice(names)
    params, steps = TEMPLATES[name].draw(rng)
    params = {**params, "name": rng.choice(NAMES), "item": rng.choice(ITEMS)}
    return Problem(TEMPLATES[name].skill, name, params, steps)


def rephrased(problem: Problem, rng: random.Random) -> Problem:
    """The same problem (numbers, answer) with another name and item."""
    others = [n for n in NAMES if n != problem.params["name"]]
    items = [i for i in ITEMS if i != problem.params["item"]]
    params = {**problem.params, "name": rng.choice(others), "item": rng.choice(items)}
    return Problem(problem.skill, problem.template, params, problem.steps)


def pool(seed: int, sizes: dict[str, int]) -> dict[str, list[tuple[Problem, int]]]:
    """Problems with their wording per split, every question distinct across the splits."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: dict[str, list[tuple[Problem, int]]] = {}
    for split, size in sizes.items():
        rows: list[tuple[Problem, int]] = []
        while len(rows) < size:
            problem, wording = draw(rng), rng.randint(0, 1)
            question = problem.question(wording)
            if question not in seen:
                seen.add(question)
                rows.append((problem, wording))
        out[split] = rows
    return out


def write_pool(folder: Path, seed: int, sizes: dict[str, int]) -> dict[str, Problem]:
    """Write ``{train,validation,test}.jsonl`` (question, answer, skill) into ``folder`` for
    the math environment (``env.options.data_files``, ``skill_field: skill``); returns every
    question's problem, which the task teacher needs to rephrase and re-solve seeds."""
    folder.mkdir(parents=True, exist_ok=True)
    known: dict[str, Problem] = {}
    for split, rows in pool(seed, sizes).items():
        with (folder / f"{split}.jsonl").open("w", encoding="utf-8") as f:
            for problem, wording in rows:
                question = problem.question(wording)
                known[question] = problem
                row = {"question": question, "answer": problem.solution(), "skill": problem.skill}
                f.write(json.dumps(row) + "\n")
    return known


def equations(rng: random.Random) -> str:
    """One line of the pretraining text: a solution step's arithmetic without its words."""
    a, b = rng.randint(2, 99), rng.randint(2, 30)
    op = rng.choice("+-*/")
    if op == "/":
        a = a * b
    if op == "-" and a < b:
        a, b = b, a
    value = {"+": a + b, "-": a - b, "*": a * b, "/": a // b}[op]
    return f"{a} {op} {b} = <<{a}{op}{b}={value}>>{value}."
