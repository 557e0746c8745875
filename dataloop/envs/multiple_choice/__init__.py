"""Multiple-choice questions (MMLU, ARC): a question, lettered choices, one right letter.

Records in MMLU's format (``question``, ``subject``, ``choices`` as a list, ``answer`` as an
index) or ARC's (``question`` as text or ``{"stem", "choices": [{"text", "label"}]}``,
``choices`` as ``{"text": [...], "label": [...]}``, ``answerKey`` as a letter or digit) are read
from ``data_files``, a hub ``dataset`` (e.g. ``cais/mmlu`` with ``dataset_config: all``), or the
small MMLU-format sample in ``data/``. The skill of an example is its ``skill_field`` column
(MMLU's ``subject``), or a discovered skill from ``skills_file``.

The student sees the question with choices ``A. ...`` on separate lines and answers a letter.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any

from dataloop.schema import Example
from dataloop.taskdata import DataError, DataFiles, DatasetTask, Row
from dataloop.taxonomy import slug

DATA = Path(__file__).resolve().parent / "data"
LETTERS = string.ascii_uppercase
_CHOICE_LINE = re.compile(r"^\s*\(?([A-Z])[.)]\s+(.+?)\s*$", re.M)
# Ways models state a letter, most explicit first: "answer is (B)", "Answer: B", "**B**", "B.".
_LETTER_PATTERNS = [
    re.compile(r"answer\s*(?:is|:)?\s*(?:option\s*)?[\(\[*]*([A-J])\b", re.I),
    re.compile(r"\(([A-J])\)"),
    re.compile(r"^\s*[\(\[*]*([A-J])(?:[\)\].:*]|\s*(?:\n|$))"),
    re.compile(r"\b([A-J])[.)]\s"),
]


def render(question: str, choices: list[str]) -> str:
    """The question followed by one ``A. choice`` line per choice."""
    lines = [f"{LETTERS[i]}. {' '.join(c.split())}" for i, c in enumerate(choices)]
    return "\n".join([question.strip(), *lines])


def choices_of(question: str) -> list[str]:
    """The choices written in a rendered question (``A. ...`` lines), in letter order."""
    found = _CHOICE_LINE.findall(question)
    letters = [letter for letter, _ in found]
    if letters != list(LETTERS[: len(letters)]):
        return []
    return [text for _, text in found]


def extract_letter(completion: str, choices: list[str] | None = None) -> str:
    """The letter a messy completion chooses; a completion that repeats a choice's text counts.

    Only the first line that says anything is read: models often go on to the next question.
    """
    text = completion.strip()
    for pattern in _LETTER_PATTERNS:
        match = pattern.search(text)
        if match:
            return match[1].upper()
    if choices:
        said = " ".join(text.lower().split())
        hits = [i for i, c in enumerate(choices) if c.lower() in said]
        if len(hits) == 1:
            return LETTERS[hits[0]]
    bare = re.fullmatch(r"[\W_]*([a-jA-J])[\W_]*", text.splitlines()[0] if text else "")
    return bare[1].upper() if bare else ""


class MultipleChoiceTask(DatasetTask):
    """MMLU/ARC-style multiple choice: the answer is a letter; skills from a subject column."""

    name = "multiple_choice"
    description = "multiple-choice questions (MMLU/ARC format); answers are letters"
    accepts_skills_file = True

    def __init__(
        self,
        seed: int = 0,
        data_files: DataFiles | None = None,
        dataset: str | None = None,
        dataset_config: str | None = None,
        skill_field: str | None = "subject",
        skills_file: str | None = None,
        train_size: int | None = None,
        validation_size: int | None = 8,
        test_size: int | None = 8,
    ) -> None:
        super().__init__(seed)
        self.skill_field = skill_field
        self._load(
            self._example,
            data_files=data_files,
            dataset=dataset,
            dataset_config=dataset_config,
            default=DATA,
            sizes={"train": train_size, "validation": validation_size, "test": test_size},
        )
        self._use_skills(
            skills_file, lambda n: f"multiple-choice questions on {n.replace('-', ' ')}"
        )

    def _example(self, row: Row) -> Example:
        question, choices, labels = self._question(row)
        if len(choices) < 2 or len(choices) > len(LETTERS):
            raise DataError(f"{row.where('choices')}: expected 2 to 26 choices, got {len(choices)}")
        answer = self._answer(row, labels)
        skill = "general"
        if self.skill_field and self.skill_field in row.data:
            skill = slug(row.text(self.skill_field)) or "general"
        return Example.make(skill, render(question, choices), answer)

    def _question(self, row: Row) -> tuple[str, list[str], list[str]]:
        """Question text, choice texts and the data set's own choice labels."""
        raw: Any = row.get("question", (str, dict))
        if isinstance(raw, dict):  # ARC's original layout: {"stem", "choices": [...]}
            stem = Row(raw, row.origin, row.number).text("stem")
            items = Row(raw, row.origin, row.number).get("choices", list)
            texts = [str(Row(c, row.origin, row.number).get("text", str)) for c in items]
            labels = [str(Row(c, row.origin, row.number).get("label", (str, int))) for c in items]
            return stem, texts, labels
        if not raw.strip():
            raise DataError(f"{row.where('question')}: empty string")
        choices = row.get("choices", (list, dict))
        if isinstance(choices, dict):  # ARC on the hub: {"text": [...], "label": [...]}
            inner = Row(choices, row.origin, row.number)
            texts, labels = inner.get("text", list), inner.get("label", list)
        else:
            texts, labels = choices, list(LETTERS[: len(choices)])
        if not all(isinstance(t, str | int | float) for t in texts):
            raise DataError(f"{row.where('choices')}: every choice must be text")
        return raw, [str(t) for t in texts], [str(label) for label in labels]

    def _answer(self, row: Row, labels: list[str]) -> str:
        """The right letter, from MMLU's index ``answer`` or ARC's ``answerKey`` label."""
        if "answerKey" in row.data:
            key = str(row.get("answerKey", (str, int))).strip()
            if key not in labels:
                raise DataError(
                    f"{row.where('answerKey')}: '{key}' is not one of the labels {labels}"
                )
            return LETTERS[labels.index(key)]
        answer = row.get("answer", (int, str))
        if isinstance(answer, str):
            answer = answer.strip().upper()
            if answer in LETTERS[: len(labels)]:
                return answer
            raise DataError(f"{row.where('answer')}: '{answer}' is not one of the choice letters")
        if not 0 <= answer < len(labels):
            raise DataError(f"{row.where('answer')}: index {answer} is out of range")
        return LETTERS[answer]

    def prompt(self, question: str) -> str:
        return f"{question}\nAnswer: "

    def extract(self, completion: str) -> str:
        """The chosen letter (``B``, ``(b)``, ``The answer is B.``, ``**B**``, ``B) Paris``)."""
        return extract_letter(completion)

    def score(self, example: Example, completion: str) -> bool:
        return extract_letter(completion, choices_of(example.question)) == example.answer.strip()

    def verify(self, example: Example) -> Example | None:
        """Accept a well-formed generated question: 2+ distinct lettered choices, a valid letter.

        Whether the letter is the right one cannot be checked here: ``engine.votes`` has the
        teacher answer the question again several times and keeps it only if most agree.
        """
        choices = choices_of(example.question)
        if len(choices) < 2 or len({c.lower() for c in choices}) < len(choices):
            return None
        letter = extract_letter(example.answer, choices)
        if letter not in LETTERS[: len(choices)]:
            return None
        stem = _CHOICE_LINE.split(example.question)[0].strip()
        if not stem:
            return None
        return example.relabel(question=render(stem, choices), answer=letter)
