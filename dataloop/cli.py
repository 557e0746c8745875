"""The ``dataloop`` command line."""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from dataloop.errors import DataloopError, TeacherUnavailable

app = typer.Typer(
    help="Closed-loop synthetic data: a teacher LLM writes data where a student is weak.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def _fail(exc: DataloopError) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


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
        raise _fail(exc) from None
    _run_loop(cfg, run_dir, quiet, verbose)


def _run_loop(cfg: Any, run_dir: Any, quiet: bool, verbose: bool) -> None:
    from dataloop.assemble import open_loop
    from dataloop.display import Display
    from dataloop.logs import verbose_terminal

    if verbose:
        verbose_terminal()
    started = time.monotonic()
    try:
        with open_loop(cfg, Display(err_console, quiet=quiet), run_dir) as loop:
            history = loop.run()
    except TeacherUnavailable as exc:
        if run_dir.exists("state.json"):
            exc = TeacherUnavailable(f"{exc}; once it is back: dataloop resume {run_dir.path}")
        raise _fail(exc) from None
    except DataloopError as exc:
        raise _fail(exc) from None
    first, last = history[0], history[-1]
    console.print(
        f"mean validation accuracy: {first.mean_accuracy:.1%} after reset -> "
        f"{last.mean_accuracy:.1%} after iteration {last.iteration} "
        f"({time.monotonic() - started:.0f}s); results in {run_dir.path}"
    )


@app.command()
def resume(
    run_path: Annotated[Path, typer.Argument(help="The run folder, e.g. runs/arithmetic-...")],
    quiet: Annotated[bool, typer.Option(help="No progress display.")] = False,
    verbose: Annotated[bool, typer.Option(help="Log dataloop's steps to the terminal.")] = False,
) -> None:
    """Continue an interrupted run from its last completed phase."""
    from dataloop.assemble import resume_config
    from dataloop.runs import RunDir

    try:
        cfg = resume_config(run_path)
    except DataloopError as exc:
        raise _fail(exc) from None
    _run_loop(cfg, RunDir(run_path), quiet, verbose)


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
        raise _fail(exc) from None
    console.print(f"report: {page}")


@app.command()
def export(
    run_path: Annotated[Path, typer.Argument(help="The run folder.")],
    out: Annotated[Path, typer.Option(help="Output file (jsonl, parquet) or folder (hf).")],
    format_: Annotated[
        str, typer.Option("--format", help="hf (datasets.load_from_disk), jsonl or parquet.")
    ] = "hf",
) -> None:
    """Export the run's final training set (seed + accepted) with provenance columns."""
    from dataloop.assemble import training_set
    from dataloop.export import export_examples
    from dataloop.runs import RunDir

    try:
        if format_ not in ("hf", "jsonl", "parquet"):
            raise DataloopError(f"--format '{format_}': choose hf, jsonl or parquet")
        examples = training_set(RunDir(run_path))
        export_examples(examples, out, format_)  # type: ignore[arg-type]
    except DataloopError as exc:
        raise _fail(exc) from None
    console.print(f"exported {len(examples)} examples to {out} ({format_})")


@app.command()
def envs(
    verbose: Annotated[
        bool, typer.Option(help="Load each environment to show its skills.")
    ] = False,
    check: Annotated[
        str | None,
        typer.Option(help="Validate one environment (name or path/to/env.py[:Class]) and exit."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="With --check: an env option, e.g. --set data_files=x.jsonl"),
    ] = None,
    sample: Annotated[int, typer.Option(help="With --check: examples tried per split.")] = 5,
) -> None:
    """List the task environments dataloop can find, or check one with --check."""
    from dataloop.config import parse_overrides
    from dataloop.env_checker import check_environment
    from dataloop.environments import available, load_task

    if check is not None:
        try:
            result = check_environment(check, parse_overrides(set_ or []), sample)
        except DataloopError as exc:
            raise _fail(exc) from None
        for problem in result.problems:
            err_console.print(f"[bold red]problem:[/] {problem}", highlight=False, soft_wrap=True)
        if result.problems:
            raise typer.Exit(code=1)
        skills = result.skills
        console.print(
            f"ok: {check}: {len(skills)} skills ({', '.join(skills)}), splits {result.sizes}"
        )
        return
    table = Table("name", "class", *(["skills"] if verbose else []))
    try:
        for env_name, target in available().items():
            row = [env_name, target]
            if verbose:
                row.append(", ".join(s.name for s in load_task(env_name).skills()))
            table.add_row(*row)
    except DataloopError as exc:
        raise _fail(exc) from None
    console.print(table)


@app.command()
def serve(
    backend: Annotated[
        str, typer.Option(help="llama-server (a GGUF on the CPU) or vllm (vllm serve, GPU).")
    ] = "llama-server",
    model: Annotated[
        str | None,
        typer.Option(help="GGUF file (default: the packaged Gemma 3 270M), or vLLM model id/dir."),
    ] = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8080,
    parallel: Annotated[int, typer.Option(help="llama-server: parallel slots (-np).")] = 8,
    threads: Annotated[int, typer.Option(help="llama-server: CPU threads (-t).")] = 2,
    chat_template: Annotated[
        str | None,
        typer.Option(help="llama-server: built-in template name or .jinja file."),
    ] = None,
    tensor_parallel_size: Annotated[int, typer.Option(help="vllm: GPUs per model.")] = 1,
    max_model_len: Annotated[int | None, typer.Option(help="vllm: context length.")] = None,
    lora_module: Annotated[
        list[str] | None,
        typer.Option(help="vllm: serve a LoRA adapter, name=path (repeatable)."),
    ] = None,
    max_lora_rank: Annotated[int | None, typer.Option(help="vllm: largest LoRA rank.")] = None,
    vllm_python: Annotated[
        str | None,
        typer.Option(help="vllm: the python of a venv with vLLM (e.g. the CPU build's)."),
    ] = None,
    log: Annotated[Path | None, typer.Option(help="Server log file.")] = None,
) -> None:
    """Serve a teacher on 127.0.0.1 until Ctrl-C: llama-server with a GGUF, or vllm serve."""
    from dataloop.assemble import teacher_server
    from dataloop.config import validate_config

    log = log or Path(f"{backend}.log")
    modules = dict(pair.partition("=")[::2] for pair in lora_module or [])
    teacher = {
        "backend": backend,
        "model": model,
        "parallel": parallel,
        "threads": threads,
        "chat_template": chat_template,
        "tensor_parallel_size": tensor_parallel_size,
        "max_model_len": max_model_len,
        "lora_modules": modules,
        "max_lora_rank": max_lora_rank,
        "vllm_python": vllm_python,
    }
    try:
        if backend not in ("llama-server", "vllm"):
            raise DataloopError(
                f"--backend: unknown backend '{backend}'; known: llama-server, vllm"
            )
        if any(not name or not path for name, path in modules.items()):
            raise DataloopError("--lora-module: expected name=path")
        server = teacher_server(validate_config({"teacher": teacher}, "options").teacher, log, port)
        with server:
            console.print(f"serving {server.base_url} (log: {log}); Ctrl-C to stop")
            server.wait()
    except DataloopError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:
        console.print("stopped")


@app.command()
def bench(
    experiment: Annotated[Path, typer.Argument(help="Experiment YAML (arms, seeds, budget).")],
    out: Annotated[
        Path | None, typer.Option(help="Folder for the runs and results (default runs/<name>).")
    ] = None,
    results_only: Annotated[
        bool, typer.Option(help="Run nothing: tabulate the runs that have finished.")
    ] = False,
    quiet: Annotated[bool, typer.Option(help="No per-run progress display.")] = False,
) -> None:
    """Run an experiment: every arm once per seed under one budget; tables with 95 % CIs."""
    from dataloop.bench import load_experiment, markdown, run_bench
    from dataloop.display import Display

    def progress(arm: str, seed: int, index: int, total: int, status: str) -> None:
        err_console.print(f"[bold]run {index}/{total}[/]: {arm}, seed {seed} ({status})")

    try:
        spec, base = load_experiment(experiment)
        folder = out or Path("runs") / (spec.name or experiment.stem)
        result = run_bench(
            spec,
            base,
            folder,
            run_missing=not results_only,
            on_run=progress,
            display_factory=lambda: Display(err_console, quiet=quiet),
        )
    except DataloopError as exc:
        raise _fail(exc) from None
    console.print(markdown(result), markup=False, highlight=False)
    console.print(
        f"results: {folder / 'results.md'}, {folder / 'results.json'}, {folder / 'curves.png'}"
    )


def main() -> None:
    """Console-script entry point."""
    # The handler's own level, not only the root's: dataloop's logger is set to INFO for
    # run.log, and its records reach the root's handlers whatever the root's level. INFO goes
    # to the terminal only with --verbose.
    terminal = logging.StreamHandler()
    terminal.setLevel(logging.WARNING)
    logging.basicConfig(level=logging.WARNING, handlers=[terminal])
    # Library deprecation chatter (transformers, TRL) is not the user's to act on.
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    app()


if __name__ == "__main__":
    main()
