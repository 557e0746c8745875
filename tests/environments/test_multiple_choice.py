"""Multiple choice: MMLU and ARC formats, letter extraction from messy output, verify."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dataloop.environments import load_task
from dataloop.schema import Example
from dataloop.taskdata import DataError

ARC = Path(__file__).resolve().parent.parent / "fixtures" / "arc"


@pytest.fixture(scope="module")
def mc():
    return load_task("multiple_choice")


def test_mmlu_sample_has_subject_skills(mc) -> None:
    assert [s.name for s in mc.skills()] == ["biology", "computer-science", "geography", "physics"]
    example = mc.split("train")[0]
    assert example.question.splitlines()[1].startswith("A. ")
    assert example.answer in "ABCD" and mc.score(example, mc.target(example))


def test_both_arc_layouts_load_to_the_same_shape() -> None:
    task = load_task(
        "multiple_choice", options={"data_files": str(ARC), "validation_size": 4, "test_size": None}
    )
    assert [s.name for s in task.skills()] == ["general"]  # ARC has no subject column
    assert len(task.split("test")) == 16  # ARC-Easy-Test.jsonl: question.stem, labels 1-4
    lifo = next(e for e in task.split("test") if "last in, first out" in e.question)
    assert lifo.answer == "B" and "\nB. Stack" in lifo.question


@pytest.mark.parametrize(
    ("completion", "letter"),
    [
        ("B", "B"),
        (" (b)", "B"),
        ("The answer is B.", "B"),
        ("**B**", "B"),
        ("B) Stack", "B"),
        ("Answer: B\nQuestion: Which of A. x", "B"),
        ("I think the correct option is (B) because stacks pop the last item", "B"),
        ("Stack", "B"),  # the choice's text alone
        ("b", "B"),
        ("A\nB", "A"),
        ("", ""),
        ("I do not know", ""),
    ],
)
def test_letter_extraction_from_messy_output(mc, completion, letter) -> None:
    example = Example.make(
        "cs", "Which works last in, first out?\nA. Queue\nB. Stack\nC. Heap\nD. Graph", "B"
    )
    assert mc.score(example, completion) is (letter == "B")
    if letter and completion.strip() != "Stack":
        assert mc.extract(completion) == letter


def test_verify_normalises_and_rejects_malformed(mc) -> None:
    ok = mc.verify(Example.make("physics", "Unit of force?\nA) Joule\nB) Newton", "(b)"))
    assert (
        ok is not None and ok.answer == "B" and ok.question == "Unit of force?\nA. Joule\nB. Newton"
    )
    assert ok.provenance.relabelled
    for question, answer in [
        ("Unit of force?\nA. Joule\nB. Newton", "C"),  # no such choice
        ("Unit of force?\nA. Joule", "A"),  # one choice
        ("Unit of force?\nA. Joule\nC. Newton", "A"),  # letters skip
        ("Unit of force?\nA. Joule\nB. joule", "A"),  # duplicate choices
        ("A. Joule\nB. Newton", "A"),  # no question
    ]:
        assert mc.verify(Example.make("physics", question, answer)) is None


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"question": "q", "choices": ["a", "b"]}, "row 1 field 'answer': missing"),
        ({"question": "q", "choices": ["a", "b"], "answer": 5}, "field 'answer': index 5"),
        ({"question": "q", "choices": "ab", "answer": 0}, "field 'choices': expected list or dict"),
        ({"question": "q", "choices": ["a"], "answer": 0}, "field 'choices': expected 2 to 26"),
        ({"question": "q", "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "C"},
         "field 'answerKey': 'C' is not one of the labels"),
        ({"question": "q", "choices": ["a", "b"], "answer": True}, "field 'answer': expected int"),
    ],
)  # fmt: skip
def test_bad_rows_name_file_row_and_field(tmp_path, row, message) -> None:
    path = tmp_path / "mmlu.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(DataError, match=message) as info:
        load_task("multiple_choice", options={"data_files": str(path)})
    assert str(path) in str(info.value)
