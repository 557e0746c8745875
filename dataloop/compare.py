"""Compare policies: the same task, seeds and teacher query budget; accuracy per query spent.

Each policy gets its own run of the loop (its own run folder, teacher server and response cache,
so no policy is served another's cached replies) built from one config that differs only in
``policy.name``. A run ends when the policy reaches the target accuracy, spends the query budget,
or has done ``iterations`` iterations. The result is one learning curve per policy: mean
validation accuracy against cumulative teacher queries, and the queries it needed to reach the
target (None if it did not).

    dataloop compare --env arithmetic --policies uniform,weakest-skills --max-queries 200
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel, Field
from rich.console import Console
from rich.table import Table

from dataloop.config import LoopConfig
from dataloop.display import Display
from dataloop.schema import SCHEMA_VERSION, HistoryEntry


class CurvePoint(BaseModel):
    """The student after one iteration, and the teacher queries spent up to then."""

    iteration: int
    queries: int
    """Cumulative teacher queries (after reset: only skill discovery's, if it ran)."""
    mean_accuracy: float
    accuracy: dict[str, float] = Field(default_factory=dict)


class PolicyResult(BaseModel):
    """One policy's learning curve."""

    policy: str
    points: list[CurvePoint]
    queries_to_target: int | None
    """Cumulative queries when mean accuracy first reached the target; None if never."""
    seconds: float
    run: str
    """The run folder of this policy."""

    @property
    def final(self) -> CurvePoint:
        """The last point of the curve."""
        return self.points[-1]


class Comparison(BaseModel):
    """All policies' curves under one budget and target."""

    schema_version: int = SCHEMA_VERSION
    env: str
    seed: int
    target_accuracy: float
    max_queries: int | None
    iterations: int
    examples_per_iteration: int
    policies: list[PolicyResult]


def curve(history: list[HistoryEntry]) -> list[CurvePoint]:
    """Learning-curve points from a run's history (queries made cumulative)."""
    points, spent = [], 0
    for entry in history:
        spent += entry.queries
        points.append(
            CurvePoint(
                iteration=entry.iteration,
                queries=spent,
                mean_accuracy=entry.mean_accuracy,
                accuracy=entry.accuracy,
            )
        )
    return points


def queries_to_reach(points: list[CurvePoint], target: float) -> int | None:
    """Queries spent when mean accuracy first reached ``target``; None if it never did."""
    return next((p.queries for p in points if p.mean_accuracy >= target), None)


def _folder(spec: str) -> str:
    # A policy may be code (examples/my.py:Name, pkg.mod:Name): its folder is "my-Name".
    target, _, attr = spec.rpartition(":")
    module = Path(target).name.removesuffix(".py").rpartition(".")[2]
    name = f"{module}-{attr}" if target else spec
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "policy"


def run_comparison(
    config: LoopConfig,
    policies: list[str],
    target: float,
    out: Path,
    display: Display | None = None,
) -> Comparison:
    """Run the loop once per policy under ``config``; write ``comparison.json`` and ``.png``.

    ``config.target_accuracy`` is set to ``target`` (each run stops there) and
    ``policy.options`` is dropped, since options of one policy are not valid for another.
    """
    from dataloop.assemble import open_loop  # torch + transformers: import only when needed
    from dataloop.runs import RunDir

    display = display or Display(quiet=True)
    results = []
    for spec in policies:
        cfg = config.model_copy(deep=True)
        cfg.target_accuracy = target
        cfg.policy.name = spec
        cfg.policy.options = {}
        folder = out / _folder(spec)
        display.log(f"[bold]policy {spec}[/]: run folder {folder}")
        started = time.monotonic()
        with open_loop(cfg, display, RunDir(folder)) as loop:
            history = loop.run()
        points = curve(history)
        results.append(
            PolicyResult(
                policy=spec,
                points=points,
                queries_to_target=queries_to_reach(points, target),
                seconds=round(time.monotonic() - started, 1),
                run=str(folder),
            )
        )
    comparison = Comparison(
        env=config.env.name,
        seed=config.seed,
        target_accuracy=target,
        max_queries=config.teacher.max_queries,
        iterations=config.iterations,
        examples_per_iteration=config.policy.examples_per_iteration,
        policies=results,
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.json").write_text(comparison.model_dump_json(indent=2))
    plot(comparison, out / "comparison.png")
    return comparison


def plot(comparison: Comparison, path: Path) -> None:
    """Mean validation accuracy against cumulative teacher queries, one line per policy."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a server
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for result in comparison.policies:
        xs = [p.queries for p in result.points]
        ys = [100 * p.mean_accuracy for p in result.points]
        ax.plot(xs, ys, marker="o", label=result.policy)
    ax.axhline(100 * comparison.target_accuracy, color="grey", linestyle="--", label="target")
    if comparison.max_queries is not None:
        ax.axvline(comparison.max_queries, color="grey", linestyle=":", label="query budget")
    ax.set_xlabel("teacher queries spent")
    ax.set_ylabel("mean validation accuracy (%)")
    ax.set_title(f"{comparison.env}: policies under one query budget (seed {comparison.seed})")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def table(comparison: Comparison) -> Table:
    """One row per policy: queries spent, accuracy reached, queries to the target."""
    target = f"{comparison.target_accuracy:.0%}"
    result_table = Table(
        "policy",
        "iterations",
        "queries",
        "mean acc. after reset",
        "final mean acc.",
        f"queries to {target}",
        "seconds",
        title=f"{comparison.env}: same seed and budget ({comparison.max_queries} queries)",
    )
    for r in comparison.policies:
        result_table.add_row(
            r.policy,
            str(r.final.iteration),
            str(r.final.queries),
            f"{r.points[0].mean_accuracy:.1%}",
            f"{r.final.mean_accuracy:.1%}",
            "not reached" if r.queries_to_target is None else str(r.queries_to_target),
            f"{r.seconds:.0f}",
        )
    return result_table


def compare_command(
    config: Annotated[
        Path | None, typer.Argument(help="YAML run config shared by all policies.")
    ] = None,
    policies: Annotated[
        str, typer.Option(help="Comma-separated policy names or path/to/file.py:Class.")
    ] = "uniform,weakest-skills",
    env: Annotated[
        str | None, typer.Option(help="Environment name or path/to/env.py[:Class].")
    ] = None,
    max_queries: Annotated[
        int | None, typer.Option(help="Teacher query budget of each policy's run.")
    ] = None,
    target: Annotated[float, typer.Option(help="Target mean validation accuracy.")] = 0.9,
    iterations: Annotated[int | None, typer.Option(help="Most iterations per policy.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for the runs and the results.")] = Path(
        "runs/compare"
    ),
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override any config field: --set student.batch_size=32"),
    ] = None,
    quiet: Annotated[bool, typer.Option(help="No progress display.")] = False,
) -> None:
    """Run several policies with the same seeds and query budget; plot accuracy per query."""
    from dataloop.cli import _fail, _parse_sets, console, err_console
    from dataloop.config import apply_overrides, load_config, validate_config
    from dataloop.errors import ConfigError, DataloopError

    flags = {"env.name": env, "iterations": iterations, "teacher.max_queries": max_queries}
    try:
        names = [p.strip() for p in policies.split(",") if p.strip()]
        if not names:
            raise ConfigError("--policies: name at least one policy")
        if not 0 < target <= 1:
            raise ConfigError("--target: a mean accuracy between 0 and 1, e.g. 0.9")
        overrides = {k: v for k, v in flags.items() if v is not None}
        overrides.update(_parse_sets(set_ or []))
        if config is not None:
            cfg = load_config(config, overrides)
        else:
            cfg = validate_config(apply_overrides({}, overrides), origin="--set")
        display = Display(err_console, quiet=quiet)
        comparison = run_comparison(cfg, names, target, out, display)
    except DataloopError as exc:
        raise _fail(exc) from None
    Console(width=max(console.width, 110)).print(table(comparison))
    console.print(f"results: {out / 'comparison.json'}, plot: {out / 'comparison.png'}")
