"""``dataloop envs`` and ``dataloop serve``: the task environments, and a teacher to reach."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from dataloop.cli.common import app, console, err_console, fail
from dataloop.errors import DataloopError
from dataloop.redact import redact_keys

_FIELD = re.compile(r"config field 'teacher\.(\w+)'")


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
            raise fail(exc) from None
        for problem in result.problems:
            err_console.print(
                f"[bold red]problem:[/] {escape(redact_keys(problem))}",
                highlight=False,
                soft_wrap=True,
            )
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
        raise fail(exc) from None
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
    port: Annotated[
        int, typer.Option(help="Port on 127.0.0.1 (replica i listens on port + i).")
    ] = 8080,
    replicas: Annotated[
        int, typer.Option(help="Servers to start, each on its own port; prints their base_urls.")
    ] = 1,
    devices: Annotated[
        str | None,
        typer.Option(help="GPUs the replicas split in order, e.g. 0,1,2,3 (CUDA_VISIBLE_DEVICES)."),
    ] = None,
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
    log: Annotated[
        Path | None, typer.Option(help="Server log file (NAME-i.log for replica i of several).")
    ] = None,
) -> None:
    """Serve a teacher on 127.0.0.1 until Ctrl-C: llama-server with a GGUF, or vllm serve;
    with --replicas K, K of them, and the teacher.base_urls that spread a run over them."""
    from dataloop.config import validate_config
    from dataloop.llm.backends import check_teacher, teacher_servers
    from dataloop.llm.server import port_problem

    log = log or Path(f"{backend}.log")
    modules = dict(pair.partition("=")[::2] for pair in lora_module or [])
    teacher: dict[str, object] = {
        "backend": backend,
        "model": model,
        "parallel": parallel,
        "threads": threads,
        "chat_template": chat_template,
        "tensor_parallel_size": tensor_parallel_size,
        "max_model_len": max_model_len,
        "lora_modules": modules,
        "max_lora_rank": max_lora_rank,
        "replicas": replicas,
        "vllm_python": vllm_python,
    }
    try:
        if backend not in ("llama-server", "vllm"):
            raise DataloopError(
                f"--backend: unknown backend '{backend}'; known: llama-server, vllm"
            )
        if any(not name or not path for name, path in modules.items()):
            raise DataloopError("--lora-module: expected name=path")
        if devices:
            if not all(part.strip().isdigit() for part in devices.split(",")):
                raise DataloopError(f"--devices '{devices}': expected GPU numbers, e.g. 0,1,2,3")
            teacher["devices"] = [int(part) for part in devices.split(",")]
        for number in range(port, port + max(1, replicas)):
            problem = port_problem(number)
            if problem is not None:
                raise DataloopError(f"--port {number}: {problem}")
        config = validate_config({"teacher": teacher}, "options").teacher
        try:
            check_teacher(config)  # what run checks first: the model file, the programs
        except DataloopError as exc:
            # The options of this command, not the run config's fields, are what to fix.
            flag = _FIELD.sub(lambda m: f"--{m[1].replace('_', '-')}", str(exc))
            raise DataloopError(flag) from None
        group = teacher_servers(config, log, port)
        with group:
            for server in group.servers:
                console.print(f"serving {server.base_url} (log: {server.log_path})", soft_wrap=True)
            console.print(
                f"teacher.base_urls: [{', '.join(group.base_urls)}]",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
            console.print("Ctrl-C to stop")
            group.wait()
    except DataloopError as exc:
        raise fail(exc) from None
    except KeyboardInterrupt:
        console.print("stopped")
