"""Where an experiment's runs are made: each run in its own process, ``dataloop bench EXPERIMENT
--arm A --seed S``, started here several at once (:class:`Processes`), as Ray tasks
(:class:`RayTasks`), or by any scheduler from the commands ``--plan`` prints.

A worker process locks its run, makes it and records it in the results file itself; an
executor only starts the processes and reports which failed. Whatever it reports, the caller
reads what was made from the results file (:func:`dataloop.bench.execute.run_bench`).
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from dataloop.bench.spec import Arm, BenchError
from dataloop.config import LoopConfig

Cell = tuple[Arm, int, LoopConfig]
"""One planned run: its arm, seed and config (:func:`dataloop.bench.execute.planned_runs`)."""

Progress = Callable[[str, int, str], None]
"""``progress(arm, seed, status)``: a run was started, finished or failed."""

Failures = dict[tuple[str, int], str]
"""(arm, seed) -> the failed run's last line of error output."""


class WorkerResult(NamedTuple):
    """What one worker process did with its run."""

    error: str | None
    """The failed run's last line of error output; None when it did not fail."""
    status: str = ""
    """The worker's own word for the run (``ran``, ``done before``, ``busy, pid … on …``,
    ``ran, pid … on …`` for a dead worker's run taken over), as ``dataloop bench --arm --seed``
    prints it; empty when it failed."""

    def describe(self, took: str | None = None) -> str:
        """The run's progress status: ``done`` (``done in 12 s``), ``failed``, ``done before``,
        ``running in another worker, pid …``, ``done …, taken over from pid …, now gone``."""
        if self.error:
            return f"failed after {took}" if took else "failed"
        status, _, holder = self.status.partition(", ")
        if status == "busy":
            return f"running in another worker, {holder}"
        if status != "ran":
            return status or "done"
        done = f"done in {took}" if took else "done"
        return f"{done}, taken over from {holder}, now gone" if holder else done


class Executor(Protocol):
    """Makes runs, each in a process that records it (or says it is another worker's)."""

    def run(self, cells: Sequence[Cell], progress: Progress | None) -> Failures:
        """Make ``cells``; the runs that failed, with their error."""
        ...


def cell_args(
    experiment: Path,
    out: Path,
    arm: str,
    seed: int,
    threads: int | None = None,
    allow_mixed: bool = False,
) -> list[str]:
    """The ``dataloop bench`` arguments that make one run."""
    args = ["bench", str(experiment), "--out", str(out), "--arm", arm, "--seed", str(seed)]
    args += ["--threads", str(threads)] if threads else []
    return args + (["--allow-mixed-commits"] if allow_mixed else []) + ["--quiet"]


def cell_command(experiment: Path, out: Path, arm: str, seed: int) -> str:
    """One run as a shell command line (what ``--plan`` prints, one per run)."""
    return shlex.join(["dataloop", *cell_args(experiment, out, arm, seed)[:-1]])


def available_cpus() -> int:
    """CPUs this process may run on (its affinity, which a scheduler's cgroup or taskset sets)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def thread_env(threads: int) -> dict[str, str]:
    """Environment that caps a run's math libraries at ``threads`` threads."""
    return {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}


def run_worker(args: list[str], env: dict[str, str]) -> WorkerResult:
    """Run ``python -m dataloop.cli ARGS`` (one ``bench --arm --seed`` run) in a process that
    dies with its caller: what it said of the run, or the last line it wrote to stderr (its
    one-line error) when it failed."""
    from dataloop.llm.server import _die_with_parent

    proc = subprocess.run(
        [sys.executable, "-m", "dataloop.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        preexec_fn=_die_with_parent,
        check=False,
    )
    if proc.returncode == 0:
        # Its last line is "<arm>/seed-<seed>: <status>[, <holder>]".
        said = [line for line in proc.stdout.splitlines() if line.strip()]
        return WorkerResult(None, said[-1].partition(": ")[2] if said else "")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    return WorkerResult(lines[-1].strip() if lines else f"exit status {proc.returncode}")


class Processes:
    """``jobs`` runs at once, each a process on this machine with ``threads`` CPU threads
    (default: this machine's CPUs divided between the jobs)."""

    def __init__(
        self,
        experiment: Path,
        out: Path,
        jobs: int,
        threads: int | None = None,
        *,
        allow_mixed: bool = False,
    ) -> None:
        self.experiment, self.out, self.jobs = experiment, out, jobs
        self.threads = threads or max(1, available_cpus() // jobs)
        self.allow_mixed = allow_mixed

    def run(self, cells: Sequence[Cell], progress: Progress | None) -> Failures:
        """Make ``cells``, ``jobs`` at a time; the failed ones, with their error."""

        def one(cell: Cell) -> str | None:
            arm, seed, _ = cell
            if progress:
                progress(arm.name, seed, "running")
            started = time.monotonic()
            args = cell_args(
                self.experiment, self.out, arm.name, seed, self.threads, self.allow_mixed
            )
            result = run_worker(args, thread_env(self.threads))
            if progress:
                progress(arm.name, seed, result.describe(f"{time.monotonic() - started:.0f} s"))
            return result.error

        with ThreadPoolExecutor(self.jobs) as pool:
            errors = list(pool.map(one, cells))
        return {(c[0].name, c[1]): e for c, e in zip(cells, errors, strict=True) if e}


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise BenchError(
            "--executor ray needs Ray: pip install 'dataloop[ray]' (or ray>=2.60)"
        ) from None
    return ray


LOCAL_RAY_ENV = {
    # Ray turns a loopback node address into the machine's own IP, and then listens on every
    # interface, unless multi-node clusters are off: what a local instance is. Read when Ray
    # is imported.
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_AUTH_MODE": "disabled",  # else a token is written to ~/.ray/auth_token
    "RAY_USAGE_STATS_ENABLED": "0",
}
"""Environment of a local Ray instance that only this machine can reach."""


def start_local_ray(num_cpus: int | None = None) -> None:
    """Start a Ray instance on this machine, reachable from this machine only: every Ray
    process listens on 127.0.0.1 and no token is written under ``~/.ray``. Refused (BenchError)
    when Ray was imported before without :data:`LOCAL_RAY_ENV`."""
    for name, value in LOCAL_RAY_ENV.items():
        os.environ.setdefault(name, value)
    ray = _ray()
    ray.init(
        num_cpus=num_cpus,
        _node_ip_address="127.0.0.1",
        include_dashboard=False,
        log_to_driver=False,
    )
    if not ipaddress.ip_address(ray.util.get_node_ip_address()).is_loopback:
        ray.shutdown()
        raise BenchError(
            "a local Ray would listen on every interface: Ray was imported before "
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 was set; set it before importing Ray"
        )


class RayTasks:
    """One Ray task per run, declaring ``cpus`` CPUs (its thread count) and ``gpus`` GPUs (Ray
    sets ``CUDA_VISIBLE_DEVICES``), on the cluster at ``address`` or, without one, on the Ray
    instance this process already runs or a local one started for the experiment.

    The workers must see the experiment file and the output folder at the same paths (a shared
    filesystem) and have dataloop installed; the paths are sent absolute."""

    def __init__(
        self,
        experiment: Path,
        out: Path,
        *,
        address: str | None = None,
        cpus: float = 1,
        gpus: float = 0,
        allow_mixed: bool = False,
    ) -> None:
        self.experiment, self.out = experiment.resolve(), out.resolve()
        self.address, self.cpus, self.gpus = address, cpus, gpus
        self.allow_mixed = allow_mixed

    def run(self, cells: Sequence[Cell], progress: Progress | None) -> Failures:
        """Submit every run as a task, then wait for them all; the failed ones, with their
        error (a task whose node died is retried by Ray, and the run resumes)."""
        started_here = "ray" not in sys.modules or not _ray().is_initialized()
        if started_here and self.address:
            _ray().init(address=self.address, log_to_driver=False)
        elif started_here:
            start_local_ray()
        ray = _ray()
        try:
            threads = max(1, int(self.cpus))
            task = ray.remote(run_worker).options(num_cpus=self.cpus, num_gpus=self.gpus)
            pending = {}
            for arm, seed, _ in cells:
                args = cell_args(
                    self.experiment, self.out, arm.name, seed, threads, self.allow_mixed
                )
                pending[task.remote(args, thread_env(threads))] = (arm.name, seed)
                if progress:
                    progress(arm.name, seed, "submitted")
            failures: Failures = {}
            while pending:
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                arm_name, seed = pending.pop(ref)
                result: WorkerResult = ray.get(ref)
                if result.error:
                    failures[(arm_name, seed)] = result.error
                if progress:
                    progress(arm_name, seed, result.describe())
            return failures
        finally:
            if started_here:
                ray.shutdown()


def choose_executor(
    experiment: Path,
    out: Path,
    *,
    executor: str = "local",
    jobs: int = 1,
    threads: int | None = None,
    address: str | None = None,
    cpus: float | None = None,
    gpus: float | None = None,
    allow_mixed: bool = False,
) -> Executor | None:
    """The executor the ``bench`` options ask for; None for one run after another in this
    process (``--jobs 1``). Options that do not go together are one error. ``allow_mixed``
    lets its workers make runs by other code than the recorded runs' (``--allow-mixed-commits``)."""
    if executor == "ray":
        if jobs != 1:
            raise BenchError(
                "--jobs is for the local executor; with --executor ray, runs go at once as "
                "far as the cluster has --cpus-per-run and --gpus-per-run for them"
            )
        return RayTasks(
            experiment, out, address=address, cpus=cpus or 1, gpus=gpus or 0,
            allow_mixed=allow_mixed,
        )  # fmt: skip
    if executor != "local":
        raise BenchError(f"--executor {executor}: unknown executor; known: local, ray")
    if address is not None or cpus is not None or gpus is not None:
        raise BenchError("--address, --cpus-per-run and --gpus-per-run need --executor ray")
    return Processes(experiment, out, jobs, threads, allow_mixed=allow_mixed) if jobs > 1 else None
