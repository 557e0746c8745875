"""An experiment's wall time made one run after another, two at once, and as Ray tasks.

The same small experiment (arms seed-only and uniform, the tiny student trained for real, the
tests' scripted loopback teacher) is made from scratch three ways, each in a fresh folder with a
fresh results file:

- ``jobs 1``: one run after another in this process (``dataloop bench``'s default);
- ``jobs 2``: two runs at once, each its own process with half the CPUs (``--jobs 2``);
- ``ray``: one Ray task of 1 CPU per run on a local Ray instance (``--executor ray``), started
  before the clock runs (its start is timed on its own).

It prints one markdown table: wall time, the ratio to ``jobs 1``, and for Ray its overhead per
run over ``jobs 2`` (same concurrency, a process per run both ways), and whether every way made
the same numbers.

    .venv/bin/python benchmarks/bench_parallel.py --seeds 2 --steps 16
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fakeserver import FakeOpenAI, few_shot_variations
from tinybench import tiny_experiment

from dataloop.bench import load_experiment, run_bench
from dataloop.bench.workers import Executor, Processes, RayTasks, available_cpus, start_local_ray


def make(way: str, url: str, seeds: list[int], steps: int, root: Path) -> tuple[float, dict]:
    """Seconds to make the experiment from scratch one ``way``, and its numbers per run."""
    folder = root / way.replace(" ", "-")
    folder.mkdir()
    experiment = folder / "exp.yaml"
    experiment.write_text(tiny_experiment(url, seeds=seeds, steps=steps, baseline=None))
    spec, base = load_experiment(experiment)
    out = folder / "bench"
    executor: Executor | None = None
    if way == "jobs 2":
        executor = Processes(experiment, out, jobs=2)
    elif way == "ray":
        executor = RayTasks(experiment, out, cpus=1)
    started = time.perf_counter()
    result = run_bench(spec, base, out, executor=executor)
    seconds = time.perf_counter() - started
    return seconds, {(r.arm, r.seed): (r.final, r.test) for r in result.runs}


def import_seconds() -> float:
    """Seconds a fresh process takes to import what a run needs (torch, transformers, trl):
    what each run pays again when it is a process of its own."""
    started = time.perf_counter()
    code = "import dataloop.assemble, dataloop.students.hf"
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=2, help="seeds per arm (2 arms)")
    parser.add_argument("--steps", type=int, default=16, help="training steps per iteration")
    args = parser.parse_args()
    seeds = list(range(args.seeds))
    imports = import_seconds()
    started = time.perf_counter()
    start_local_ray(num_cpus=available_cpus())
    ray_start = time.perf_counter() - started
    walls, numbers = {}, {}
    with (
        FakeOpenAI(latency=0.05, reply=few_shot_variations) as server,
        tempfile.TemporaryDirectory() as tmp,
    ):
        for way in ("jobs 1", "jobs 2", "ray"):
            walls[way], numbers[way] = make(way, server.base_url, seeds, args.steps, Path(tmp))
    import ray  # after start_local_ray: Ray reads its loopback setting when imported

    ray.shutdown()
    runs = 2 * len(seeds)
    same = all(n == numbers["jobs 1"] for n in numbers.values())
    print(f"{runs} runs (2 arms x {len(seeds)} seeds, {args.steps} steps an iteration), "
          f"{available_cpus()} CPUs; local Ray started in {ray_start:.1f} s (not in the times "
          f"below); a run process's imports: {imports:.1f} s")  # fmt: skip
    print()
    print("| way | wall (s) | vs jobs 1 | overhead per run vs jobs 2 (s) |")
    print("|---|---:|---:|---:|")
    for way, wall in walls.items():
        # With 2 runs at once, each slot makes runs/2 of them in turn.
        extra = f"{(wall - walls['jobs 2']) / (runs / 2):+.1f}" if way == "ray" else "—"
        print(f"| {way} | {wall:.1f} | {wall / walls['jobs 1']:.2f} | {extra} |")
    print()
    print(f"same numbers every way: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
