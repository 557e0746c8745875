"""Export a run's final training set with provenance columns (HF datasets, JSONL, Parquet)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from datasets import Dataset

from dataloop.errors import DataloopError
from dataloop.schema import Example

ExportFormat = Literal["hf", "jsonl", "parquet"]


def to_rows(examples: list[Example]) -> list[dict[str, Any]]:
    """Flat rows: the example's fields plus one column per provenance field."""
    rows = []
    for e in examples:
        p = e.provenance
        rows.append(
            {
                "id": e.id,
                "skill": e.skill,
                "question": e.question,
                "answer": e.answer,
                "source": p.source,
                "strategy": p.strategy or "",
                "parent_ids": list(p.parent_ids),
                "teacher": p.teacher or "",
                "template": p.template or "",
                "iteration": -1 if p.iteration is None else p.iteration,
                "relabelled": p.relabelled,
                "judge_score": -1 if p.judge_score is None else p.judge_score,
                "judge_reason": p.judge_reason or "",
            }
        )
    return rows


def to_dataset(examples: list[Example]) -> Dataset:
    """A Hugging Face dataset of the examples with provenance columns."""
    rows = to_rows(examples)
    if not rows:
        empty = to_rows([Example.make("x", "x", "x")])[0]
        return Dataset.from_list([empty]).select([])
    return Dataset.from_list(rows)


def export_examples(examples: list[Example], out: Path, fmt: ExportFormat) -> Path:
    """Write the examples to ``out`` as ``hf`` (save_to_disk folder), ``jsonl`` or ``parquet``.

    ``out`` must not be an existing folder (an export never merges into or replaces one); a
    file there is replaced. A path that cannot be written raises DataloopError.
    """
    if fmt not in ("hf", "jsonl", "parquet"):
        raise DataloopError(f"unknown export format '{fmt}'; known: hf, jsonl, parquet")
    if out.is_dir():
        raise DataloopError(f"--out {out} is an existing folder; give a path that does not exist")
    dataset = to_dataset(examples)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "hf":
            dataset.save_to_disk(str(out))
        elif fmt == "jsonl":
            dataset.to_json(str(out), lines=True)
        else:
            dataset.to_parquet(str(out))
    except OSError as exc:
        raise DataloopError(f"--out {out}: cannot write there: {exc.strerror or exc}") from None
    return out
