"""``dataloop export``: a run's final training set, checked against the run's benchmarks, written
with provenance columns and a dataset card, and optionally pushed to the Hugging Face Hub."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from dataloop.assemble import task_options, training_set
from dataloop.card import CardFacts, check_replaceable, render_card, write_card
from dataloop.config import LoopConfig, load_config
from dataloop.engine.benchmarks import contamination, load_benchmarks
from dataloop.environments import load_task
from dataloop.errors import DataloopError
from dataloop.export import ExportFormat, export_examples
from dataloop.llm.server import PACKAGED_GGUF_NAME
from dataloop.report import RunSummary
from dataloop.runs import RunDir

TOKEN_VARIABLE = "HF_TOKEN"
"""The environment variable ``--push-to-hub`` reads the Hub token from; it is never saved."""


@dataclass
class Exported:
    """What an export wrote and what it left out."""

    path: Path
    card: Path
    rows: int
    """Examples written."""
    benchmark_hits: dict[str, int] = field(default_factory=dict)
    """Examples (seeds included) left out per benchmark they overlap (``engine.benchmarks``)."""
    benchmark_sizes: dict[str, int] = field(default_factory=dict)
    """Texts of each benchmark checked against."""
    url: str | None = None
    """The Hub commit, when pushed."""


def _filters(config: LoopConfig) -> dict[str, str]:
    """The engine's optional filters that are on, in words."""
    engine = config.engine
    on = {}
    if engine.votes:
        on["self-consistency"] = f"{engine.votes} teacher votes per answer"
    if engine.near_duplicates is not None:
        on["near-duplicates"] = f"MinHash LSH, Jaccard threshold {engine.near_duplicates}"
    if engine.novelty is not None:
        on["novelty"] = f"ROUGE-L F1 above {engine.novelty} rejected"
    if engine.judge is not None:
        on["LLM judge"] = f"scores 1-5 against a rubric, kept at {engine.judge.threshold} or above"
    if engine.benchmarks:
        names = ", ".join(b.name for b in engine.benchmarks)
        on["benchmarks"] = f"{names} (word {engine.benchmark_ngram}-grams)"
    return on


def _teacher(config: LoopConfig, run: RunDir) -> str:
    """The teacher model as the run's examples record it, else as the config names it."""
    for k in run.iterations_done():
        for example in run.accepted(k):
            if example.provenance.teacher:
                return example.provenance.teacher
    teacher = config.teacher
    if teacher.backend == "llama-server" and teacher.model is None:
        # By name: exporting needs neither the packaged model nor its package.
        return Path(PACKAGED_GGUF_NAME).stem
    return teacher.request_model or teacher.backend


def export_run(
    run: RunDir,
    out: Path,
    fmt: ExportFormat,
    *,
    license: str | None = None,
    push_to: str | None = None,
    endpoint: str | None = None,
) -> Exported:
    """Write ``run``'s training set (seeds and accepted data) to ``out`` as ``fmt``, leaving out
    every example that overlaps a benchmark of the run's ``engine.benchmarks``, and its dataset
    card beside it (``README.md``); with ``push_to``, push both to that Hub dataset repository
    (token from ``$HF_TOKEN``; ``endpoint`` defaults to huggingface_hub's, ``$HF_ENDPOINT``).

    ``license`` is the seed data's Hub licence id when the task cannot tell it.
    """
    config = load_config(run.path / "config.yaml")
    token = os.environ.get(TOKEN_VARIABLE) if push_to else None
    if push_to and not token:
        raise DataloopError(
            f"--push-to-hub needs a Hugging Face token with write access in the environment: "
            f"export {TOKEN_VARIABLE}=... (dataloop never saves it)"
        )
    examples = training_set(run)
    index = load_benchmarks(config.engine.benchmarks, config.engine.benchmark_ngram)
    hits: dict[str, int] = {}
    if index is not None:
        found = contamination(examples, index)
        examples, hits = found.clean, dict(found.hits)
    card = out / "README.md" if fmt == "hf" else out.parent / "README.md"
    task = load_task(config.env.name, seed=config.seed, options=task_options(config, run))
    facts = CardFacts(
        env=config.env.name,
        description=task.description,
        license=license or task.data_license(),
        teacher=_teacher(config, run),
        policy=config.policy.name,
        filters=_filters(config),
        data_file=None if fmt == "hf" else out.name,
        benchmark_sizes=dict(index.sizes) if index is not None else {},
        benchmark_hits=hits,
    )
    text = render_card(RunSummary.load(run), examples, facts)
    check_replaceable(card)  # before any data is written
    export_examples(examples, out, fmt)
    write_card(card, text)
    done = Exported(out, card, len(examples), hits, facts.benchmark_sizes)
    if push_to and token:
        done.url = push(push_to, token, out if fmt == "hf" else None, [out, card], endpoint)
    return done


def push(
    repo: str, token: str, folder: Path | None, files: list[Path], endpoint: str | None = None
) -> str:
    """Upload ``folder``'s files (a ``save_to_disk`` folder, card inside) or ``files`` to the
    dataset repository ``repo`` in one commit, creating it if needed; the commit's URL."""
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(endpoint=endpoint, token=token)
    if folder is not None:
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        names = [p.relative_to(folder).as_posix() for p in files]
    else:
        names = [p.name for p in files]
    operations = [
        CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(path))
        for name, path in zip(names, files, strict=True)
    ]
    try:
        api.create_repo(repo, repo_type="dataset", exist_ok=True)
        commit = api.create_commit(
            repo,
            operations,
            commit_message="dataloop export: data and dataset card",
            repo_type="dataset",
        )
    except (HfHubHTTPError, OSError, ValueError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataloopError(
            f"--push-to-hub {repo}: the Hub refused or could not be reached: {reason}"
        ) from None
    return str(commit.commit_url)
