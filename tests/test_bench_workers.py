"""Several workers on one experiment: the run lock (a dead worker's lock is stale), the results
file under concurrent writers, ``--plan``'s commands run as Slurm array tasks, ``--jobs``, and a
real race between two workers, one of them killed with -9."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakeserver import FakeOpenAI, few_shot_variations
from tinybench import tiny_experiment
from typer.testing import CliRunner

from dataloop.bench import (
    BenchError,
    CurvePoint,
    RunResult,
    load_experiment,
    planned_runs,
    read_results,
    run_bench,
    run_config_data,
)
from dataloop.bench.lock import RunLock
from dataloop.bench.results import record_result
from dataloop.bench.workers import Processes, WorkerResult
from dataloop.cli import app
from dataloop.config import load_config

HOLD = """
import sys, time
from pathlib import Path
from dataloop.bench.lock import RunLock
lock = RunLock(Path(sys.argv[1]))
assert lock.acquire()[0]
print("held", flush=True)
time.sleep(600)
"""


def test_a_held_run_is_busy_and_a_dead_workers_lock_is_stale(tmp_path) -> None:
    folder = tmp_path / "uniform" / "seed-0"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        taken, who = RunLock(folder).acquire()
        assert not taken
        assert who is not None and who.pid == holder.pid
        assert f"pid {holder.pid} on " in str(who)
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # dies holding the lock
        holder.wait()
    lock = RunLock(folder)
    taken, stale = lock.acquire()  # no waiting for a timeout: the kernel dropped the flock
    assert taken
    assert stale is not None and stale.pid == holder.pid  # recognised as a takeover
    assert lock.holder() is not None and lock.holder().pid == os.getpid()  # type: ignore[union-attr]
    lock.release()
    again = RunLock(folder)
    assert again.acquire() == (True, None)  # a released lock leaves no note behind
    again.release()
    assert not folder.exists()  # the lock lives beside the run folder, not in it


def test_a_job_reports_a_run_another_worker_holds_as_held_not_done(tmp_path) -> None:
    """``--jobs``: a worker process that finds its run held says so, and the job reports it as
    running in the other worker (it used to report it "done in 1 s")."""
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(tiny_experiment("http://127.0.0.1:9/v1", iterations=1))
    out = tmp_path / "bench"
    spec, base = load_experiment(experiment)
    cell = next(c for c in planned_runs(spec, base, out) if c[0].name == "uniform" and c[1] == 0)
    folder = out / "uniform" / "seed-0"
    folder.parent.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    seen: list[str] = []
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        failures = Processes(experiment, out, jobs=2, threads=1).run(
            [cell], lambda arm, seed, status: seen.append(status)
        )
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert failures == {}
    assert len(seen) == 2 and seen[0] == "running"
    held = f"running in another worker, pid {holder.pid} on {socket.gethostname()} since "
    assert seen[1].startswith(held)


@pytest.mark.parametrize(
    ("result", "took", "said"),
    [
        (WorkerResult(None, "ran"), "12 s", "done in 12 s"),
        (WorkerResult(None, "ran"), None, "done"),
        (WorkerResult(None, "done before"), "1 s", "done before"),
        (WorkerResult(None, "busy, pid 7 on h"), "1 s", "running in another worker, pid 7 on h"),
        (WorkerResult(None, "ran, pid 7"), "9 s", "done in 9 s, taken over from pid 7, now gone"),
        (WorkerResult("BenchError: boom"), "3 s", "failed after 3 s"),
        (WorkerResult("BenchError: boom"), None, "failed"),
    ],
)  # fmt: skip
def test_a_workers_result_reads_as_the_runs_progress(result, took, said) -> None:
    assert result.describe(took) == said


def _record(arm: str, seed: int) -> RunResult:
    point = CurvePoint(iteration=0, queries=0, examples=0, budget_spent=0.0, mean_accuracy=0.5)
    return RunResult(arm=arm, seed=seed, run=f"{arm}/seed-{seed}", points=[point], final=0.5,
                     test=0.5, auc=0.5, seconds=1.0)  # fmt: skip


def _write_records(path: Path, arm: str, count: int) -> None:
    for seed in range(count):
        record_result(path, _record(arm, seed))


def test_workers_finishing_at_once_all_keep_their_records(tmp_path) -> None:
    path = tmp_path / "results" / "e.jsonl"
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_write_records, args=(path, f"arm{i}", 15)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
        assert w.exitcode == 0
    records = read_results(path)
    assert sorted((r.arm, r.seed) for r in records) == sorted(
        (f"arm{i}", s) for i in range(4) for s in range(15)
    )
    record_result(path, _record("arm0", 3))  # the same run again replaces its line
    assert len(read_results(path)) == 60


def test_plan_writes_every_config_and_prints_the_runs_still_to_make(tmp_path) -> None:
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(tiny_experiment("http://127.0.0.1:9/v1", iterations=1))
    spec, base = load_experiment(experiment)
    out = tmp_path / "out"
    done = next(c for c in planned_runs(spec, base, out) if (c[0].name, c[1]) == ("uniform", 1))
    recorded = _record("uniform", 1)
    recorded.config = run_config_data(done[2])
    assert spec.results is not None
    record_result(spec.results, recorded)  # made elsewhere: not to be made again

    result = CliRunner().invoke(app, ["bench", str(experiment), "--out", str(out), "--plan"])
    assert result.exit_code == 0, result.output
    commands = [shlex.split(line) for line in result.stdout.splitlines()]
    cells = {(c[c.index("--arm") + 1], int(c[c.index("--seed") + 1])) for c in commands}
    assert cells == {("seed-only", 0), ("seed-only", 1), ("uniform", 0)}
    assert all(c[:3] == ["dataloop", "bench", str(experiment)] for c in commands)
    for arm, seed, config in planned_runs(spec, base, out):
        assert load_config(out / arm.name / f"seed-{seed}" / "config.yaml") == config

    # The experiment changed after planning: the planned folders say so.
    experiment.write_text(experiment.read_text().replace("queries: 6", "queries: 7"))
    again = CliRunner().invoke(app, ["bench", str(experiment), "--out", str(out), "--plan"])
    assert again.exit_code == 2 and "differs from what the experiment now asks" in again.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--jobs", "2", "--executor", "ray"], "--jobs is for the local executor"),
        (["--address", "127.0.0.1:6379"], "need --executor ray"),
        (["--executor", "slurm"], "unknown executor; known: local, ray"),
        (["--plan", "--arm", "uniform"], "leave out --arm and --seed"),
        (["--arm", "uniform", "--jobs", "2"], "start no workers"),
        (["--arm", "best"], "--arm best is not an arm of exp; arms: seed-only, uniform"),
        (["--seed", "7"], "--seed 7 is not a seed of exp; seeds: 0, 1"),
    ],
)
def test_options_that_do_not_go_together_are_one_line(tmp_path, args, message) -> None:
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(tiny_experiment("http://127.0.0.1:9/v1", iterations=1))
    result = CliRunner().invoke(app, ["bench", str(experiment), "--out", str(tmp_path), *args])
    assert result.exit_code == 2
    assert message in result.output and result.output.count("\n") == 1


SBATCH = Path(__file__).resolve().parent.parent / "examples" / "cluster" / "bench-array.sbatch"


class _Failing:
    """An executor whose worker processes all fail (e.g. a teacher that is down)."""

    def run(self, cells, progress):  # type: ignore[no-untyped-def]
        return {(arm.name, seed): "teacher unreachable" for arm, seed, _ in cells}


def test_failed_runs_are_named_after_the_tables_of_the_others(tmp_path) -> None:
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(tiny_experiment("http://127.0.0.1:9/v1", iterations=1))
    spec, base = load_experiment(experiment)
    with pytest.raises(BenchError, match=r"^4 runs failed \(seed-only/seed-0: teacher unreach"):
        run_bench(spec, base, tmp_path / "out", executor=_Failing())
    assert (
        "Not finished yet: 4 of 4 runs (seed-only/seed-0, uniform/seed-0"
        in (tmp_path / "out" / "results.md").read_text()
    )


def _bench(experiment: Path, out: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "dataloop.cli", "bench", str(experiment), "--out", str(out),
            "--quiet", *args]  # fmt: skip


def _wait_for(condition, what: str, timeout: float = 300) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.integration
def test_two_workers_race_and_the_survivor_takes_over_a_killed_workers_run(tmp_path) -> None:
    """Two real `dataloop bench` workers on one experiment (tiny student trained for real,
    scripted loopback teacher); the first is killed with -9 while it holds a run."""
    with FakeOpenAI(latency=0.05, reply=few_shot_variations) as server:
        experiment = tmp_path / "exp.yaml"
        experiment.write_text(tiny_experiment(server.base_url, iterations=1))
        out = tmp_path / "bench"
        first = subprocess.Popen(_bench(experiment, out), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)  # fmt: skip
        notes = lambda: list(out.glob("*/seed-*.worker"))  # noqa: E731
        _wait_for(lambda: notes() and (out / "seed-only/seed-0/state.json").is_file(),
                  "the first worker to start its first run")  # fmt: skip
        log = (tmp_path / "second.err").open("w")
        second = subprocess.Popen(_bench(experiment, out), stdout=subprocess.DEVNULL, stderr=log)
        # The second worker leaves the first worker's run to it and makes the others.
        _wait_for(lambda: "running in another worker" in (tmp_path / "second.err").read_text(),
                  "the second worker to find a run held")  # fmt: skip
        held = [p for p in notes() if json.loads(p.read_text())["pid"] == first.pid]
        assert held, "the first worker holds no run"
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        assert second.wait(timeout=600) == 0, (tmp_path / "second.err").read_text()

    err = (tmp_path / "second.err").read_text()
    taken = held[0].name.removesuffix(".worker")  # e.g. seed-0 of the arm folder it is in
    run = f"{held[0].parent.name}/{taken}"
    assert re.search(rf"\(running in another worker, pid {first.pid} on ", err)
    assert re.search(rf"\(taken over from pid {first.pid} on .*, now gone\)", err), err
    recorded = read_results(tmp_path / "results" / "exp.jsonl")
    assert sorted((r.arm, r.seed) for r in recorded) == [
        ("seed-only", 0), ("seed-only", 1), ("uniform", 0), ("uniform", 1)
    ]  # fmt: skip
    # Every run was started by one worker only, except the killed one's, resumed once.
    starts = {
        f"{p.parent.parent.name}/{p.parent.name}": len(p.read_text().splitlines())
        for p in out.glob("*/seed-*/environment.jsonl")
    }
    assert starts.pop(run) == 2
    assert set(starts.values()) == {1}
    assert not notes()  # every lock released
    results = json.loads((out / "results.json").read_text())
    assert len(results["runs"]) == 4 and not results["pending"]


@pytest.mark.integration
def test_parallel_jobs_and_one_cell_commands_give_the_runs_one_process_gives(tmp_path) -> None:
    """--jobs 2 (each run its own process, one CPU thread each) and the --plan commands run as
    Slurm array tasks make the same numbers as one process making the runs in turn."""
    with FakeOpenAI(latency=0.05, reply=few_shot_variations) as server:
        tables = {}
        for way in ("in turn", "jobs", "plan"):
            folder = tmp_path / way.replace(" ", "-")
            folder.mkdir()
            experiment = folder / "exp.yaml"
            experiment.write_text(tiny_experiment(server.base_url, iterations=1))
            out = folder / "bench"
            if way == "plan":
                commands = folder / "commands"
                with commands.open("w") as f:
                    subprocess.run(_bench(experiment, out, "--plan"), stdout=f, check=True)
                lines = len(commands.read_text().splitlines())
                # Each command as a Slurm array task runs it (the shipped sbatch script).
                env = {**os.environ, "SLURM_CPUS_PER_TASK": "1",
                       "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}  # fmt: skip
                for task in range(1, lines + 1):
                    one = subprocess.run(["bash", str(SBATCH), str(commands)], capture_output=True,
                                         text=True, timeout=300,
                                         env={**env, "SLURM_ARRAY_TASK_ID": str(task)})  # fmt: skip
                    assert one.returncode == 0, one.stderr
                    assert one.stdout.endswith(": ran\n")
                args = ["--results-only"]
            else:
                args = ["--jobs", "2"] if way == "jobs" else []
            done = subprocess.run(_bench(experiment, out, *args), capture_output=True, text=True,
                                  timeout=600)  # fmt: skip
            assert done.returncode == 0, done.stderr
            if way == "jobs":
                assert done.stderr.count("(running; ") == 4 and done.stderr.count("(done in ") == 4
                # Once a run is recorded, a run that starts says how long the rest will take.
                assert re.search(
                    r"\(running; \d runs? to make, about .+ at the median run", done.stderr
                )
            runs = json.loads((out / "results.json").read_text())["runs"]
            tables[way] = {(r["arm"], r["seed"]): (r["final"], r["test"]) for r in runs}
    assert len(tables["in turn"]) == 4
    assert tables["jobs"] == tables["in turn"] == tables["plan"]
