"""The ``dataloop`` command line."""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from dataloop.errors import DataloopError

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
        overrides[key] = yaml.safe_load(value)
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
) -> None:
    """Run the closed loop: reset, then plan -> generate -> train -> evaluate per iteration."""
    from dataloop.assemble import open_loop, run_dir_for
    from dataloop.config import load_config, validate_config
    from dataloop.display import Display

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
            from dataloop.config import apply_overrides

            cfg = validate_config(apply_overrides({}, overrides), origin="--set")
        display = Display(err_console, quiet=quiet)
        run_dir = run_dir_for(cfg)
        started = time.monotonic()
        with open_loop(cfg, display, run_dir) as loop:
            history = loop.run()
    except DataloopError as exc:
        raise _fail(exc) from None
    first, last = history[0], history[-1]
    console.print(
        f"mean validation accuracy: {first.mean_accuracy:.1%} after reset -> "
        f"{last.mean_accuracy:.1%} after iteration {last.iteration} "
        f"({time.monotonic() - started:.0f}s); results in {run_dir.path}"
    )


@app.command()
def envs(
    verbose: Annotated[
        bool, typer.Option(help="Load each environment to show its skills.")
    ] = False,
) -> None:
    """List the task environments dataloop can find (built-in and entry points)."""
    from dataloop.environments import available, load_task

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
    model: Annotated[
        Path | None, typer.Option(help="GGUF file; default: the packaged Gemma 3 270M.")
    ] = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8080,
    parallel: Annotated[int, typer.Option(help="Parallel slots (-np).")] = 8,
    log: Annotated[Path, typer.Option(help="Server log file.")] = Path("llama-server.log"),
) -> None:
    """Serve a GGUF model with llama-server on 127.0.0.1 until Ctrl-C."""
    from dataloop.llm.server import default_gguf, llama_server

    try:
        server = llama_server(model or default_gguf(), log, parallel=parallel, port=port)
        with server:
            console.print(f"serving {server.base_url} (log: {log}); Ctrl-C to stop")
            while server.process is not None and server.process.poll() is None:
                time.sleep(1)
    except DataloopError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:
        console.print("stopped")


def main() -> None:
    """Console-script entry point."""
    logging.basicConfig(level=logging.WARNING)
    # Library deprecation chatter (transformers, TRL) is not the user's to act on.
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    app()


if __name__ == "__main__":
    main()
