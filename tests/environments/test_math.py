"""The math environment: GSM8K-format loading, answer extraction from messy output, verify."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dataloop.engine.filters import Decontaminator, normalize
from dataloop.environments import load_task
from dataloop.envs.math import make_data
from dataloop.schema import Example
from dataloop.taskdata import DataError

MATH_DIR = Path(make_data.__file__).parent


@pytest.fixture(scope="module")
def math():
    return load_task("math")


def test_embedded_sample_loads_with_skills_and_disjoint_splits(math) -> None:
    assert {s.name for s in math.skills()} == {
        "money",
        "percentages",
        "rates",
        "counting",
        "fractions",
    }
    splits = {s: math.split(s) for s in ("train", "validation", "test")}
    assert all(splits.values())
    questions = [{e.question for e in part} for part in splits.values()]
    assert not (questions[0] & questions[1] or questions[0] & questions[2])
    for e in [e for part in splits.values() for e in part]:
        assert e.answer.rstrip().split("#### ")[-1].isdigit() and "\n" not in e.answer
        assert math.score(e, math.target(e))
        assert math.verify(e) is not None


def test_embedded_splits_share_no_word_8_gram(math) -> None:
    """No template is shared between splits: decontamination keeps generated data modelled on the
    seeds, and test accuracy cannot come from memorising a training template."""

    def grams(split: str) -> set[tuple[str, ...]]:
        words = [normalize(e.question).split() for e in math.split(split)]
        return {tuple(w[i : i + 8]) for w in words for i in range(len(w) - 7)}

    grams = {split: grams(split) for split in ("train", "validation", "test")}
    assert not grams["train"] & grams["test"]
    assert not grams["train"] & grams["validation"]
    assert not grams["validation"] & grams["test"]
    held_out = Decontaminator(math.split("validation") + math.split("test"))
    assert not any(held_out.contaminated(e) for e in math.split("train"))


def test_embedded_sample_is_what_its_generator_writes() -> None:
    for split, rows in make_data.make().items():
        shipped = (MATH_DIR / "data" / f"{split}.jsonl").read_text().splitlines()
        assert [json.loads(line)["question"] for line in shipped] == [r["question"] for r in rows]


@pytest.mark.parametrize(
    ("completion", "right"),
    [
        ("#### 72", True),
        ("She sold 48 + 24 = 72 clips. #### 72\nQuestion: Tom has 5", True),
        ("The answer is $72.00.", True),
        ("so the total is \\boxed{72}", True),
        ("48/2 = 24, 48 + 24 = 72 clips", True),
        ("72 Question: A train goes 60 miles", True),
        ("#### 7,2", True),  # commas are thousands separators
        ("The answer is 71.", False),
        ("#### 72.5", False),
        ("", False),
        ("no numbers here", False),
    ],
)
def test_score_reads_the_final_answer_of_messy_output(math, completion, right) -> None:
    example = Example.make("math", "q", "Natalia sold 48/2 = <<48/2=24>>24 clips. #### 72")
    assert math.score(example, completion) is right


def test_numeric_equivalence() -> None:
    task = load_task("math")
    example = Example.make("math", "q", "Half of it. \\boxed{\\frac{1}{2}}")
    assert task.score(example, "The answer is 0.5")
    assert task.score(example, "#### 1/2")
    assert not task.score(example, "#### 0.51")


def test_verify_accepts_correct_arithmetic_and_marks_the_answer(math) -> None:
    generated = Example.make(
        "money",
        "Tom buys 3 pens at $2 each. How much?",
        "3 * 2 = $6.\nThe answer: \\boxed{6}",
        source="generated",
    )
    checked = math.verify(generated)
    assert checked is not None
    assert checked.answer == "3 * 2 = $6. The answer: \\boxed{6} #### 6"
    assert checked.provenance.relabelled and checked.provenance.source == "generated"


@pytest.mark.parametrize(
    "solution",
    [
        "3 * 2 = <<3*2=7>>7 dollars. #### 7",  # wrong calculator annotation
        "3 * 2 = 7 dollars. #### 7",  # wrong inline equation
        "3 * 2 = 6 dollars. #### 9",  # final answer the reasoning never reaches
        "3 * 2 = 6 dollars, so 6",  # no marked final answer (cut off?)
        "#### many",  # not a number
    ],
)
def test_verify_rejects_wrong_or_unmarked_solutions(math, solution) -> None:
    assert math.verify(Example.make("money", "Tom buys 3 pens at $2 each.", solution)) is None


def test_local_jsonl_and_parquet_and_skill_column(tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {"problem": f"What is {i} + {i}?", "solution": f"{i} + {i} = {2 * i}. \\boxed{{{2 * i}}}",
         "type": "Prealgebra" if i % 2 else "Number Theory"}
        for i in range(1, 31)
    ]  # fmt: skip
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "train.parquet")
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:6]))
    task = load_task(
        "math",
        options={"data_files": str(tmp_path), "question_field": "problem",
                 "answer_field": "solution", "skill_field": "type", "validation_size": 5},
    )  # fmt: skip
    assert {s.name for s in task.skills()} == {"prealgebra", "number-theory"}
    assert len(task.split("test")) == 6 and len(task.split("validation")) == 5
    assert all(
        e.answer.endswith(f"#### {int(e.question.split()[2]) * 2}") for e in task.split("train")
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"answer": "#### 1"}', r"bad\.jsonl row 2 field 'question': missing"),
        (
            '{"question": "q", "answer": 5}',
            r"bad\.jsonl row 2 field 'answer': expected str, got int",
        ),
        (
            '{"question": "q", "answer": "no final answer"}',
            r"row 2 field 'answer': no final answer",
        ),
        ("not json", r"bad\.jsonl row 2: not valid JSON"),
    ],
)
def test_bad_rows_name_file_row_and_field(tmp_path, line, message) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "q1", "answer": "#### 1"}\n' + line + "\n")
    with pytest.raises(DataError, match=message):
        load_task("math", options={"data_files": str(path)})


def test_empty_split_is_an_error(tmp_path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text('{"question": "q1", "answer": "#### 1"}\n')
    with pytest.raises(DataError, match="split 'train' is empty"):
        load_task("math", options={"data_files": str(path), "validation_size": 1, "test_size": 1})


def test_levels_by_steps_exist_only_where_the_seeds_show_several_counts(math) -> None:
    from dataloop.envs.math import steps

    assert steps("In one day 12 * 6 = <<12*6=72>>72.\nIn 2 days 72 * 2 = <<72*2=144>>144.") == 2
    assert steps("It is 3 * 4 = 12, then 12 + 1 = 13. #### 13") == 2  # inline equations
    assert steps("The answer is \\boxed{7}") == 0
    counts = {
        s.name: {steps(e.answer) for e in math.split("train") if e.skill == s.name}
        for s in math.skills()
    }
    for skill in math.skills():
        names = [level.name for level in math.levels(skill.name)]
        if len(counts[skill.name]) >= 2:
            assert names == [f"{n}-steps" for n in sorted(counts[skill.name])]
        else:
            assert names == []
    assert math.levels("rates") and not math.levels("money")  # the shipped sample
    three = next(e for e in math.split("train") if e.skill == "rates" and steps(e.answer) == 3)
    assert math.level_of(three) == 1
    assert math.level_of(Example.make("money", three.question, three.answer)) is None
