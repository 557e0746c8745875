"""The ``dataloop`` command line."""

from __future__ import annotations

import logging
import re
import time
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dataloop.errors import DataloopError, DiskFull, PluginError, TeacherUnavailable
from dataloop.redact import redact_keys

app = typer.Typer(
    help="Closed-loop synthetic data: a teacher LLM writes data where a student is weak.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


_FIELD = re.compile(r"config field 'teacher\.(\w+)'")


def _fail(exc: DataloopError) -> typer.Exit:
    # Escaped: a message's own brackets ('dataloop[vllm]') are text, not rich markup. A key
    # pasted where a name or URL belongs is not echoed.
    message = escape(redact_keys(str(exc)))
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
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
    except (TeacherUnavailable, PluginError, DiskFull) as exc:
        if run_dir.exists("state.json"):
            fixes = {TeacherUnavailable: "once it is back", DiskFull: "then"}
            fix = fixes.get(type(exc), "once it is fixed")
            exc = type(exc)(f"{exc}; {fix}: dataloop resume {run_dir.path}")
        raise _fail(exc) from None
    except DataloopError as exc:
        raise _fail(exc) from None
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
        raise _fail(exc) from None
    if done.benchmark_sizes:
        table = Table("benchmark", "texts", "examples left out", title="benchmark overlap")
        for name, size in done.benchmark_sizes.items():
            table.add_row(name, str(size), str(done.benchmark_hits.get(name, 0)))
        console.print(table)
    console.print(f"exported {done.rows} examples to {out} ({format_}); dataset card: {done.card}")
    if done.url is not None:
        console.print(f"pushed to the Hub: {done.url}")


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
        bool, typer.Option(help="Run nothing: tabulate the recorded and finished runs.")
    ] = False,
    rerun: Annotated[
        str | None,
        typer.Option(help="Arms to run again at this commit, comma-separated (e.g. a baseline)."),
    ] = None,
    allow_mixed_commits: Annotated[
        bool, typer.Option(help="Pair runs made by different code (refused by default).")
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
            ),
            threads=threads,
        )
    except DataloopError as exc:
        raise _fail(exc) from None
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
        raise _fail(exc) from None
    table = Table("comparison", "pairs", "paired SD (points)", "seeds needed")
    for row in rows:
        table.add_row(row.comparison, str(row.pairs or "—"), f"{100 * row.sd:.2f}", str(row.seeds))
    console.print(table)
    console.print(
        f"two-sided paired t-test, alpha {alpha}, power {target}, effect {100 * effect:.1f} points"
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
