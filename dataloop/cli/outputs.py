"""``dataloop report`` and ``dataloop export``: what a finished run leaves for people."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from dataloop.cli.common import app, console, fail
from dataloop.errors import DataloopError


@app.command()
def report(
    run_path: Annotated[Path, typer.Argument(help="The run folder.")],
) -> None:
    """Learning curves (PNG), provenance and budget tables, and one HTML page for a run; for a
    skill-tree run also the tree as a sunburst (PNG) with per-node tables."""
    from dataloop.report import build_report
    from dataloop.runs import RunDir

    try:
        page = build_report(RunDir(run_path), console)
    except DataloopError as exc:
        raise fail(exc) from None
    console.print(f"report: {page}")


@app.command()
def export(
    run_path: Annotated[Path, typer.Argument(help="The run folder.")],
    out: Annotated[Path, typer.Option(help="Output file (jsonl, parquet) or folder (hf).")],
    format_: Annotated[
        str, typer.Option("--format", help="hf (datasets.load_from_disk), jsonl or parquet.")
    ] = "hf",
    license_: Annotated[
        str | None,
        typer.Option("--license", help="The seed data's Hub licence id, if the task cannot tell."),
    ] = None,
    push_to_hub: Annotated[
        str | None,
        typer.Option(help="Push data and card to this Hub dataset repo (token: $HF_TOKEN)."),
    ] = None,
) -> None:
    """Export the run's final training set (seed + accepted) with provenance columns and a
    dataset card (README.md beside it), leaving out what overlaps the run's benchmarks
    (engine.benchmarks); optionally push both to the Hugging Face Hub."""
    from dataloop.publish import export_run
    from dataloop.runs import RunDir

    try:
        if format_ not in ("hf", "jsonl", "parquet"):
            raise DataloopError(f"--format '{format_}': choose hf, jsonl or parquet")
        done = export_run(
            RunDir(run_path),
            out,
            format_,  # type: ignore[arg-type]
            license=license_,
            push_to=push_to_hub,
        )
    except DataloopError as exc:
        raise fail(exc) from None
    if done.benchmark_sizes:
        table = Table("benchmark", "texts", "examples left out", title="benchmark overlap")
        for name, size in done.benchmark_sizes.items():
            table.add_row(name, str(size), str(done.benchmark_hits.get(name, 0)))
        console.print(table)
    console.print(f"exported {done.rows} examples to {out} ({format_}); dataset card: {done.card}")
    if done.url is not None:
        console.print(f"pushed to the Hub: {done.url}")
