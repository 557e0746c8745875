"""Math word problems with numeric answers: GSM8K's format, MATH's ``\\boxed{}`` too.

A record is a question and a worked solution that ends in the final answer (GSM8K:
``... #### 72``; MATH: ``... \\boxed{72}``). The student is trained to write the solution; a
completion is right when the number it ends with equals the reference's, numerically (``1,000``,
``$1000.00`` and ``1000`` are the same answer).

Data: ``data_files`` (JSONL/parquet files or a folder of them), ``dataset`` (a hub name such as
``openai/gsm8k`` with ``dataset_config: main``, loaded only when asked), or the small GSM8K-format
sample shipped in ``data/`` so that ``dataloop run --env math`` works offline.
"""

from __future__ import annotations

import ast
import operator
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

from dataloop.schema import Example, SkillInfo
from dataloop.taskdata import DataError, DataFiles, DatasetTask, Row
from dataloop.taxonomy import slug

DATA = Path(__file__).resolve().parent / "data"
_NUMBER = r"(?:-?\$?\d[\d,]*(?:\.\d+)?|-?\$?\.\d+)"
_MARKER = re.compile(r"####\s*(?P<v>[^\n#]+)")
_BOXED = re.compile(r"\\boxed\s*\{")
_ANSWER_IS = re.compile(r"answer\s*(?:is|:|=)\s*:?\s*(?P<v>" + _NUMBER + r"(?:\s*/\s*\d+)?)", re.I)
_NUMBERS = re.compile(_NUMBER + r"(?:\s*/\s*\d+)?%?")
_ANNOTATION = re.compile(r"<<(?P<expr>[^=<>]+)=(?P<value>[^<>]+)>>")
_EQUATION = re.compile(
    r"(?P<expr>(?:\$?\d[\d,]*(?:\.\d+)?\s*[-+*/x×÷]\s*)+\$?\d[\d,]*(?:\.\d+)?)"
    r"\s*=\s*\$?(?P<value>-?\d[\d,]*(?:\.\d+)?)(?![\d.]*\s*[-+*/x×÷]\s*\d)"
)
_OPS: dict[type, Any] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}


def to_number(text: str) -> Fraction | None:
    """A number written as usual: ``-1,234.5``, ``$12``, ``3/4``, ``50%``, ``\\frac{3}{4}``."""
    text = text.strip().rstrip(".").replace("\\!", "").replace("$", "").replace(",", "")
    text = re.sub(r"\\[dt]?frac\{([^{}]+)\}\{([^{}]+)\}", r"(\1)/(\2)", text)
    percent = text.endswith("%") or text.endswith("\\%")
    text = text.rstrip("%").rstrip("\\").strip()
    try:
        value = _evaluate(text)
    except (ValueError, SyntaxError, ZeroDivisionError, TypeError):
        return None
    return value / 100 if percent else value


def _evaluate(expr: str) -> Fraction:
    """Exact value of an arithmetic expression (numbers, + - * / // %, parentheses) only."""
    expr = re.sub(r"(?<=\d)\s*[x×]\s*(?=\d)", "*", expr.replace("÷", "/"))

    def value(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return Fraction(str(node.value))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            inner = value(node.operand)
            return -inner if isinstance(node.op, ast.USub) else inner
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return Fraction(_OPS[type(node.op)](value(node.left), value(node.right)))
        raise ValueError("not plain arithmetic")

    return value(ast.parse(expr.strip(), mode="eval").body)


def _boxed(text: str) -> list[str]:
    """Contents of every ``\\boxed{...}``, braces balanced."""
    found = []
    for match in _BOXED.finditer(text):
        depth, start = 1, match.end()
        for i in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                found.append(text[start:i].strip())
                break
    return found


def final_answer(text: str, *, marked_only: bool = False) -> str | None:
    """The final answer in a solution or a model's messy output, as written.

    In order: the first ``#### x`` (what follows is usually the model rambling on), the last
    ``\\boxed{x}``, the last "the answer is x", the last number. ``marked_only`` stops after
    the first two: a reference solution must mark its answer.
    """
    marker = _MARKER.search(text)
    if marker:
        return marker["v"].strip()
    boxed = _boxed(text)
    if boxed:
        return boxed[-1]
    if marked_only:
        return None
    said = _ANSWER_IS.findall(text)
    if said:
        return str(said[-1])
    numbers = _NUMBERS.findall(text)
    return numbers[-1] if numbers else None


def same_answer(a: str | None, b: str | None) -> bool:
    """Numerically equal when both are numbers, else equal after removing spaces and ``$``."""
    if a is None or b is None:
        return False
    x, y = to_number(a), to_number(b)
    if x is not None and y is not None:
        return abs(x - y) <= Fraction(1, 10**6) * max(Fraction(1), abs(y))
    return _plain(a) == _plain(b)


def _plain(text: str) -> str:
    return re.sub(r"\s|\$|\\left|\\right|\\!|\.$", "", text)


def canonical(value: str) -> str:
    """A final answer in a canonical form: ``1,000.00`` -> ``1000``, ``0.50`` -> ``0.5``."""
    number = to_number(value)
    if number is None:
        return value.strip()
    if number.denominator == 1:
        return str(number.numerator)
    rest = number.denominator
    for factor in (2, 5):
        while rest % factor == 0:
            rest //= factor
    # Terminating decimals are written as decimals, others as exact fractions (1/3).
    return str(float(number)) if rest == 1 else f"{number.numerator}/{number.denominator}"


def _close(computed: Fraction, written: str) -> bool:
    # Solutions round ("10/3 = 3.33"): compare to the precision the value is written with.
    number = to_number(written)
    if number is None:
        return False
    decimals = len(written.split(".")[1]) if "." in written else 0
    return abs(computed - number) <= Fraction(1, 2 * 10**decimals) + Fraction(1, 10**9)


def arithmetic_errors(solution: str) -> list[str]:
    """Calculations in a worked solution that are wrong (``<<a*b=c>>`` and ``a * b = c``)."""
    errors = []
    for match in [*_ANNOTATION.finditer(solution), *_EQUATION.finditer(solution)]:
        try:
            computed = _evaluate(match["expr"].replace("$", "").replace(",", ""))
        except (ValueError, SyntaxError, ZeroDivisionError, TypeError):
            continue  # not plain arithmetic (units, variables): nothing to check
        if not _close(computed, match["value"].strip()):
            errors.append(match[0])
    return errors


def steps(solution: str) -> int:
    """Calculation steps in a worked solution: its ``<<a*b=c>>`` annotations, or where it has
    none its inline ``a * b = c`` equations (0 for a solution that shows no calculation)."""
    return len(_ANNOTATION.findall(solution)) or len(_EQUATION.findall(solution))


def flatten(solution: str) -> str:
    """A solution on one line: steps joined by spaces, so any line-based format can carry it."""
    return " ".join(line.strip() for line in solution.splitlines() if line.strip())


class MathTask(DatasetTask):
    """Math word problems with a worked solution and a numeric final answer (GSM8K format)."""

    name = "math"
    description = "math word problems, worked solutions ending in '#### <answer>' (GSM8K format)"
    accepts_skills_file = True

    def __init__(
        self,
        seed: int = 0,
        data_files: DataFiles | None = None,
        dataset: str | None = None,
        dataset_config: str | None = None,
        question_field: str = "question",
        answer_field: str = "answer",
        skill_field: str | None = None,
        skills_file: str | None = None,
        train_size: int | None = None,
        validation_size: int | None = 16,
        test_size: int | None = None,
    ) -> None:
        super().__init__(seed)
        self.question_field, self.answer_field, self.skill_field = (
            question_field,
            answer_field,
            skill_field,
        )
        self._load(
            self._example,
            data_files=data_files,
            dataset=dataset,
            dataset_config=dataset_config,
            default=DATA,
            sizes={"train": train_size, "validation": validation_size, "test": test_size},
        )
        if skills_file is None and data_files is None and dataset is None:
            skills_file = str(DATA.parent / "skills.json")  # labels of the shipped sample
        field = skill_field or "one skill: no skill_field or skills_file given"
        self._use_skills(skills_file, lambda n: f"math word problems: {n} ({field})")

    def levels(self, skill: str) -> list[SkillInfo]:
        """Levels by the number of calculation steps (:func:`steps`), one per step count that
        the skill's seed solutions show, fewest first; none when they show fewer than two
        counts (or no calculations, as ``\\boxed{}`` solutions without equations): the data
        decides which levels exist."""
        counts = sorted(
            {n for e in self.split("train") if e.skill == skill if (n := steps(e.answer))}
        )
        if len(counts) < 2:
            return []
        return [
            SkillInfo(name=f"{n}-steps", description=f"solutions of {n} calculation steps")
            for n in counts
        ]

    def level_of(self, example: Example) -> int | None:
        """The level with the solution's step count; None for a count no level has."""
        names = [level.name for level in self.levels(example.skill)]
        name = f"{steps(example.answer)}-steps"
        return names.index(name) if name in names else None

    def data_license(self) -> str | None:
        """The shipped sample is dataloop's (Apache-2.0); other data's licence is unknown."""
        return "apache-2.0" if self.data_source() == str(DATA) else None

    def _example(self, row: Row) -> Example:
        question = row.text(self.question_field)
        solution = flatten(row.text(self.answer_field))
        answer = final_answer(solution, marked_only=True)
        if answer is None:
            raise DataError(
                f"{row.where(self.answer_field)}: no final answer; end the solution with "
                "'#### <answer>' (GSM8K) or \\boxed{<answer>} (MATH)"
            )
        if not _MARKER.search(solution):
            solution = f"{solution} #### {canonical(answer)}"
        skill = slug(row.text(self.skill_field)) if self.skill_field else "math"
        return Example.make(skill, question, solution)

    def prompt(self, question: str) -> str:
        return f"Question: {question}\nAnswer: "

    def extract(self, completion: str) -> str:
        """The final answer of a completion: ``####``, ``\\boxed{}``, "answer is", last number."""
        # A student that runs on writes the next "Question:" of its training format: cut it.
        found = final_answer(completion.split("Question:")[0])
        return canonical(found) if found is not None else ""

    def score(self, example: Example, completion: str) -> bool:
        return same_answer(self.extract(completion), final_answer(example.answer))

    def verify(self, example: Example) -> Example | None:
        """Accept a generated solution whose arithmetic checks and whose final answer is marked.

        Deterministic checks on the example alone: a question; a solution ending in ``#### x``
        or ``\\boxed{x}``; every ``<<a*b=c>>`` annotation and inline ``a * b = c`` correct; a
        final answer that the reasoning arrives at (it appears among the reasoning's numbers).
        Whether the answer is the *right* one is left to several teacher solutions agreeing
        (``engine.votes``: self-consistency).
        """
        solution = flatten(example.answer)
        answer = final_answer(solution, marked_only=True)
        if not example.question.strip() or answer is None or to_number(answer) is None:
            return None
        if arithmetic_errors(solution):
            return None
        marker = _MARKER.search(solution)
        reasoning = solution[: marker.start() if marker else solution.rfind("\\boxed")]
        numbers = _NUMBERS.findall(reasoning)
        if numbers and not any(same_answer(n, answer) for n in numbers):
            return None
        body = _MARKER.sub("", solution).strip()
        normalized = f"{body} #### {canonical(answer)}".strip()
        return example.relabel(question=example.question.strip(), answer=normalized)
