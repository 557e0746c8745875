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

from dataloop.config import parse_yaml
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


def _parse_sets(pairs: list[str]) -> dict[str, Any]:
    """``key.path=value`` pairs; values are read as YAML scalars (``3``, ``true``, ``1e-3``)."""
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise DataloopError(f"--set '{pair}': expected key.path=value")
        overrides[key] = parse_yaml(value, f"--set {key}")
    return overrides


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
    from dataloop.assemble import run_dir_for
    from dataloop.config import apply_overrides, load_config, validate_config
    from dataloop.runs import RunError

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
        overrides.update(_parse_sets(set_ or []))
        if config is not None:
            cfg = load_config(config, overrides)
        else:
            cfg = validate_config(apply_overrides({}, overrides), origin="--set")
        run_dir = run_dir_for(cfg)
        if run_dir.exists("state.json"):
            raise RunError(
                f"run {run_dir.path} already exists; continue it with "
                f"'dataloop resume {run_dir.path}' or choose another --name"
            )
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
    from dataloop.config import load_config
    from dataloop.runs import RunDir, RunError

    try:
        if not (run_path / "config.yaml").is_file():
            raise RunError(f"{run_path / 'config.yaml'} is missing: {run_path} is not a run folder")
        cfg = load_config(run_path / "config.yaml")
    except DataloopError as exc:
        raise _fail(exc) from None
    _run_loop(cfg, RunDir(run_path), quiet, verbose)


@app.command()
def report(
    run_path: Annotated[Path, typer.Argument(help="The run folder.")],
) -> None:
    """Learning curves (PNG), provenance and budget tables, and one HTML page for a run."""
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
    from dataloop.assemble import task_options
    from dataloop.config import load_config
    from dataloop.environments import load_task
    from dataloop.export import export_examples
    from dataloop.runs import RunDir

    run_dir = RunDir(run_path)
    try:
        if format_ not in ("hf", "jsonl", "parquet"):
            raise DataloopError(f"--format '{format_}': choose hf, jsonl or parquet")
        cfg = load_config(run_path / "config.yaml")
        run_dir.read_state()
        task = load_task(cfg.env.name, seed=cfg.seed, options=task_options(cfg, run_dir))
        examples = task.split("train")
        for k in run_dir.iterations_done():
            examples += run_dir.accepted(k)
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
    from dataloop.environments import available, load_task

    if check is not None:
        # Every problem is collected and printed, so a user fixes them in one pass.
        problems: list[str] = []
        try:
            task = load_task(check, options=_parse_sets(set_ or []))
            skills = [s.name for s in task.skills()]
        except DataloopError as exc:
            raise _fail(exc) from None
        except Exception as exc:
            message = f"loading '{check}' failed: {type(exc).__name__}: {exc}"
            raise _fail(DataloopError(message)) from None
        if not skills or len(set(skills)) != len(skills):
            problems.append(f"skills(): expected distinct skill names, got {skills}")
        for split in ("train", "validation", "test"):
            try:
                examples = task.split(split)  # type: ignore[arg-type]
            except Exception as exc:
                problems.append(f"split('{split}') raised {type(exc).__name__}: {exc}")
                continue
            if not examples:
                problems.append(f"split('{split}') is empty")
            stray = sorted({e.skill for e in examples} - set(skills))
            if stray:
                problems.append(f"split('{split}') has skills not in skills(): {stray}")
            for e in examples[:sample]:
                try:
                    if not task.prompt(e.question).strip():
                        problems.append(f"prompt() of {e.id} ({split}) is empty")
                    if not task.score(e, task.target(e)):
                        problems.append(
                            f"score({e.id}, target({e.id})) is False ({split}): the reference "
                            "answer must score as correct; check extract() and score()"
                        )
                    if task.score(e, ""):
                        problems.append(f"score({e.id}, '') is True ({split}): empty output wins")
                    if split == "train" and task.verify(e) is None:
                        problems.append(f"verify() rejects the seed example {e.id}")
                except Exception as exc:
                    problems.append(f"{e.id} ({split}): {type(exc).__name__}: {exc}")
        counts = {s: len(task.split(s)) for s in ("train", "validation", "test")}  # type: ignore[arg-type]
        for problem in problems:
            err_console.print(f"[bold red]problem:[/] {problem}", highlight=False, soft_wrap=True)
        if problems:
            raise typer.Exit(code=1)
        console.print(f"ok: {check}: {len(skills)} skills ({', '.join(skills)}), splits {counts}")
        return
    table = Table("name", "source", *(["skills"] if verbose else []))
    try:
        for env_name, origin in available().items():
            row = [env_name, origin]
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
    log: Annotated[Path | None, typer.Option(help="Server log file.")] = None,
) -> None:
    """Serve a teacher on 127.0.0.1 until Ctrl-C: llama-server with a GGUF, or vllm serve."""
    from dataloop.llm.server import default_gguf, llama_server, vllm_server

    try:
        log = log or Path(f"{backend}.log")
        if backend == "llama-server":
            gguf = Path(model) if model else default_gguf()
            server = llama_server(
                gguf,
                log,
                parallel=parallel,
                threads=threads,
                port=port,
                chat_template=chat_template,
            )
        elif backend == "vllm":
            if not model:
                raise DataloopError("--model: vllm needs a model id or directory")
            modules = dict(pair.partition("=")[::2] for pair in lora_module or [])
            if any(not name or not path for name, path in modules.items()):
                raise DataloopError("--lora-module: expected name=path")
            server = vllm_server(
                model,
                log,
                tensor_parallel_size=tensor_parallel_size,
                max_model_len=max_model_len,
                lora_modules=modules,
                max_lora_rank=max_lora_rank,
                port=port,
            )
        else:
            raise DataloopError(
                f"--backend: unknown backend '{backend}'; known: llama-server, vllm"
            )
        with server:
            console.print(f"serving {server.base_url} (log: {log}); Ctrl-C to stop")
            while server.process is not None and server.process.poll() is None:
                time.sleep(1)
            raise DataloopError(
                f"server exited with code {server.process.returncode if server.process else '?'}; "
                f"see {log}"
            )
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
