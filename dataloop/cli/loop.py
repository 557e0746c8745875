"""``dataloop run`` and ``dataloop resume``: the closed loop, from a config or a run folder."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from dataloop.cli.common import app, console, err_console, fail, interrupts_not_lost
from dataloop.errors import DataloopError, DiskFull, PluginError, TeacherUnavailable


@app.command()
def run(
    config: Annotated[
        Path | None, typer.Argument(help="YAML run config; omit to use defaults.")
    ] = None,
    env: Annotated[
        str | None, typer.Option(help="Environment name or path/to/env.py[:Class].")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Run name (folder under runs_dir).")] = None,
    iterations: Annotated[int | None, typer.Option(help="Iterations after reset.")] = None,
    policy: Annotated[
        str | None, typer.Option(help="Policy name or path/to/file.py:Class.")
    ] = None,
    strategy: Annotated[
        str | None, typer.Option(help="Use this strategy for every request.")
    ] = None,
    runs_dir: Annotated[Path | None, typer.Option(help="Parent folder of run folders.")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override any config field: --set student.batch_size=32"),
    ] = None,
    quiet: Annotated[bool, typer.Option(help="No progress display.")] = False,
    verbose: Annotated[bool, typer.Option(help="Log dataloop's steps to the terminal.")] = False,
) -> None:
    """Run the closed loop: reset, then plan -> generate -> train -> evaluate per iteration."""
    from dataloop.assemble import new_run_dir
    from dataloop.config import load_config, parse_overrides

    flags = {
        "env.name": env,
        "name": name,
        "iterations": iterations,
        "policy.name": policy,
        "engine.strategy": strategy,
        "runs_dir": str(runs_dir) if runs_dir else None,
    }
    try:
        overrides = {k: v for k, v in flags.items() if v is not None}
        cfg = load_config(config, {**overrides, **parse_overrides(set_ or [])})
        run_dir = new_run_dir(cfg)
    except DataloopError as exc:
        raise fail(exc) from None
    _run_loop(cfg, run_dir, quiet, verbose)


def _run_loop(cfg: Any, run_dir: Any, quiet: bool, verbose: bool) -> None:
    from dataloop.assemble import open_loop
    from dataloop.display import Display
    from dataloop.logs import verbose_terminal

    if verbose:
        verbose_terminal()
    started = time.monotonic()
    try:
        with (
            interrupts_not_lost(),
            open_loop(cfg, Display(err_console, quiet=quiet), run_dir) as loop,
        ):
            history = loop.run()
    except (TeacherUnavailable, PluginError, DiskFull) as exc:
        if run_dir.exists("state.json"):
            fixes = {TeacherUnavailable: "once it is back", DiskFull: "then"}
            fix = fixes.get(type(exc), "once it is fixed")
            exc = type(exc)(f"{exc}; {fix}: dataloop resume {run_dir.path}")
        raise fail(exc) from None
    except DataloopError as exc:
        raise fail(exc) from None
    except KeyboardInterrupt:
        # What was committed stays; the phase under way is redone on resume.
        hint = f": continue with dataloop resume {run_dir.path}"
        shown = f"interrupted{hint if run_dir.exists('state.json') else ''}"
        err_console.print(shown, markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=130) from None
    first, last = history[0], history[-1]
    console.print(
        f"mean validation accuracy: {first.mean_accuracy:.1%} after reset -> "
        f"{last.mean_accuracy:.1%} after iteration {last.iteration} "
        f"({time.monotonic() - started:.0f}s); results in {run_dir.path}"
    )


@app.command()
def resume(
    run_path: Annotated[Path, typer.Argument(help="The run folder, e.g. runs/arithmetic-...")],
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="How to reach the teacher now, e.g. --set teacher.base_urls=[URL] (a URL "
            "whose credentials were not saved); nothing else of the run changes.",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option(help="No progress display.")] = False,
    verbose: Annotated[bool, typer.Option(help="Log dataloop's steps to the terminal.")] = False,
) -> None:
    """Continue an interrupted run from its last completed phase."""
    from dataloop.assemble import resume_config
    from dataloop.config import parse_overrides
    from dataloop.runs import RunDir

    try:
        cfg = resume_config(run_path, parse_overrides(set_ or []))
    except DataloopError as exc:
        raise fail(exc) from None
    _run_loop(cfg, RunDir(run_path), quiet, verbose)
