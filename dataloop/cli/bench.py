"""``dataloop bench`` and ``dataloop power``: experiments of many runs, and the seeds they need."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from dataloop.cli.common import app, console, err_console, fail, interrupts_not_lost
from dataloop.errors import DataloopError


@app.command()
def bench(
    experiment: Annotated[Path, typer.Argument(help="Experiment YAML (arms, seeds, budget).")],
    out: Annotated[
        Path | None, typer.Option(help="Folder for the runs and results (default runs/<name>).")
    ] = None,
    results_only: Annotated[
        bool, typer.Option(help="Run nothing: tabulate the recorded and finished runs.")
    ] = False,
    rerun: Annotated[
        str | None,
        typer.Option(help="Arms to run again at this commit, comma-separated (e.g. a baseline)."),
    ] = None,
    allow_mixed_commits: Annotated[
        bool,
        typer.Option(
            help="Make and pair runs by code other than the recorded runs' (refused by default; "
            "an experiment's 'code' is never overridden)."
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option(help="No per-run progress display.")] = False,
    jobs: Annotated[
        int,
        typer.Option(
            min=1, help="Runs at once on this machine, each its own process; CPUs divided."
        ),
    ] = 1,
    executor: Annotated[
        str, typer.Option(help="local (this machine, --jobs) or ray (one Ray task per run).")
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(help="ray: the cluster (ray://... or HOST:PORT); default: a local one."),
    ] = None,
    cpus_per_run: Annotated[
        float | None, typer.Option(help="ray: CPUs each run's task declares (default 1).")
    ] = None,
    gpus_per_run: Annotated[
        float | None, typer.Option(help="ray: GPUs each run's task declares (default 0).")
    ] = None,
    plan: Annotated[
        bool,
        typer.Option(
            help="Run nothing: write each run folder's config, print one command per run."
        ),
    ] = False,
    arm: Annotated[
        str | None, typer.Option(help="Make only this arm's runs (with --seed: one run), here.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Make only this seed's runs, here.")] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            min=1, help="CPU threads per run (student, teacher server); default: all / --jobs."
        ),
    ] = None,
) -> None:
    """Run an experiment: every arm once per seed under one budget; tables with 95 % CIs.

    Each finished run is recorded in the experiment's results file (default
    results/<name>.jsonl beside the experiment file); recorded runs are not run again. Runs
    can be made several at once (--jobs), as Ray tasks (--executor ray), or by any scheduler
    from the commands --plan prints (each makes one run: --arm A --seed S)."""
    from dataloop.bench import BenchError, load_experiment, markdown, run_bench
    from dataloop.bench.execute import plan_bench, run_cell, select_runs
    from dataloop.bench.workers import cell_command, choose_executor
    from dataloop.display import Display

    def progress(arm: str, seed: int, index: int, total: int, status: str) -> None:
        err_console.print(
            f"[bold]run {index}/{total}[/]: {arm}, seed {seed} ({status})", soft_wrap=True
        )

    try:
        with interrupts_not_lost():
            spec, base = load_experiment(experiment)
            folder = out or Path("runs") / (spec.name or experiment.stem)
            # Options that do not go together: parsing, so here.
            if plan and (arm is not None or seed is not None):
                raise BenchError("--plan lists every run; leave out --arm and --seed")
            if (plan or arm is not None or seed is not None) and (jobs != 1 or executor != "local"):
                raise BenchError(
                    "--plan, --arm and --seed start no workers; leave out --jobs, --executor"
                )
            if plan:
                todo = plan_bench(spec, base, folder)
                for cell in todo:
                    typer.echo(cell_command(experiment, folder, cell[0].name, cell[1]))
                err_console.print(
                    f"{len(todo)} runs to make; each run folder's config is in {folder}; then "
                    f"gather: dataloop bench {experiment} --out {folder} --results-only",
                    highlight=False,
                )
                return
            if arm is not None or seed is not None:
                for cell in select_runs(spec, base, folder, arm, seed):
                    outcome = run_cell(
                        spec,
                        folder,
                        cell,
                        threads=threads,
                        display_factory=lambda: Display(err_console, quiet=quiet),
                        allow_mixed=allow_mixed_commits,
                    )
                    held = f", {outcome.holder}" if outcome.holder else ""
                    typer.echo(f"{outcome.run}: {outcome.status}{held}")
                return
            result = run_bench(
                spec,
                base,
                folder,
                run_missing=not results_only,
                rerun=[a for a in (rerun or "").split(",") if a],
                allow_mixed_commits=allow_mixed_commits,
                on_run=progress,
                display_factory=lambda: Display(err_console, quiet=quiet),
                executor=choose_executor(
                    experiment,
                    folder,
                    executor=executor,
                    jobs=jobs,
                    threads=threads,
                    address=address,
                    cpus=cpus_per_run,
                    gpus=gpus_per_run,
                    allow_mixed=allow_mixed_commits,
                ),
                threads=threads,
            )
    except DataloopError as exc:
        raise fail(exc) from None
    except KeyboardInterrupt:
        # Finished runs are recorded; a run under way resumes from its last committed phase.
        err_console.print(
            "interrupted: run the same command again to continue (finished runs are recorded, "
            "unfinished ones resume)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(code=130) from None
    console.print(markdown(result), markup=False, highlight=False)
    console.print(
        f"results: {folder / 'results.md'}, {folder / 'results.json'}, {folder / 'curves.png'}; "
        f"per run: {spec.results}"
    )


@app.command()
def power(
    effect: Annotated[
        float, typer.Option(help="Smallest difference of interest, a fraction (0.03 = 3 points).")
    ],
    sd: Annotated[
        float | None, typer.Option(help="SD of the per-seed paired differences (a fraction).")
    ] = None,
    pilot: Annotated[
        Path | None,
        typer.Option(help="A results file (JSON lines) to take the SD from, per comparison."),
    ] = None,
    baseline: Annotated[
        str | None, typer.Option(help="With --pilot: compare every arm with this one.")
    ] = None,
    metric: Annotated[str, typer.Option(help="With --pilot: final, test or auc.")] = "test",
    alpha: Annotated[float, typer.Option(help="Two-sided level of the paired t-test.")] = 0.05,
    target: Annotated[float, typer.Option("--power", help="Power to reach.")] = 0.8,
) -> None:
    """Seeds needed to detect a paired difference, from a given SD or a pilot's results."""
    from dataloop.bench import power_rows

    try:
        rows = power_rows(
            effect, sd=sd, pilot=pilot, baseline=baseline, metric=metric, alpha=alpha, power=target
        )
    except DataloopError as exc:
        raise fail(exc) from None
    table = Table("comparison", "pairs", "paired SD (points)", "seeds needed")
    for row in rows:
        table.add_row(row.comparison, str(row.pairs or "—"), f"{100 * row.sd:.2f}", str(row.seeds))
    console.print(table)
    console.print(
        f"two-sided paired t-test, alpha {alpha}, power {target}, effect {100 * effect:.1f} points"
    )
