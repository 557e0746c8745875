"""Wall time of the embedded loop with ``overlap`` off and on: N pairs, alternating.

    python benchmarks/overlap.py --pairs 5                 # run, record, print the table
    python benchmarks/overlap.py --pairs 3 --label gpu --set student.steps_per_iteration=600
    python benchmarks/overlap.py --pairs 2 --pin           # teacher on core 0, student on core 1
    python benchmarks/overlap.py --table                   # the table from the records alone

Each run is ``dataloop run`` in a subprocess: the embedded teacher (llama-server with the
packaged Gemma 3 270M), the tiny student, :data:`SMALL`'s settings (one run takes about 1-3
minutes on 2 cores) and the ``--set`` given. A pair is one run with ``overlap: false`` and
one with ``overlap: true``, the same config and seed; the order flips from pair to pair (off,
on, then on, off), so a machine that warms up or slows down favours neither. Every run appends
one record to ``benchmarks/results/overlap.jsonl`` (``--out``): its label, pair, setting,
wall time of the whole process, and ``loop_s``: from the reset's end to the last iteration's
end in the run's ``run.log`` (whole seconds), the part overlap can change.

``--pin`` stands in for a teacher on other hardware than the student (a served or remote
teacher beside a GPU student, the case overlap is for) on a machine with two cores: the run,
its student and its evaluation are held to core 1 (``taskset -c 1``, ``OMP_NUM_THREADS=1``),
and llama-server (one thread, :data:`PIN`) is moved to core 0 as soon as it appears, every
thread of it, by this script (:func:`pin_teacher`; llama.cpp's own ``--cpu-range`` is not
honoured by every build). Each record says which cores the teacher's threads were allowed.

The table gives, per label, the medians and the on/off ratio per pair: its median and range
(a ratio below 1 means overlap is faster). docs/benchmarks.md's table is :func:`docs_table`,
computed from the committed records (``benchmarks/docs_tables.py`` regenerates it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "overlap.jsonl"

SMALL = [
    "env.options={skills: [add, max, sort], train_per_skill: 16, validation_per_skill: 30, "
    "test_per_skill: 20}",
    "policy.name=uniform",
    "policy.examples_per_iteration=24",
    "student.steps_per_iteration=200",
    "teacher.parallel=4",
    "teacher.max_tokens=96",
]
"""The small embedded loop both settings run (``--set`` adds to it or overrides it)."""

PIN = ["teacher.threads=1"]
"""With ``--pin``: llama-server computes with one thread (moved to core 0, :func:`pin_teacher`)."""


def _children(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def pin_teacher(pid: int, core: int = 0) -> set[int]:
    """Move every thread of every llama-server below ``pid`` to ``core``; returns the cores
    those threads are allowed after it (empty while none runs)."""
    allowed: set[int] = set()
    for child in _children(pid):
        try:
            if "llama-server" not in Path(f"/proc/{child}/cmdline").read_text():
                continue
            for task in Path(f"/proc/{child}/task").iterdir():
                os.sched_setaffinity(int(task.name), {core})
                allowed |= os.sched_getaffinity(int(task.name))
        except (OSError, ValueError):
            continue  # it ended meanwhile
    return allowed


def command(
    name: str,
    runs_dir: Path,
    overlap: bool,
    iterations: int,
    sets: Sequence[str],
    pin: bool = False,
) -> list[str]:
    """The ``dataloop run`` of one benchmark run (held to core 1 with ``pin``)."""
    argv = ["taskset", "-c", "1"] if pin else []
    argv += [sys.executable, "-m", "dataloop.cli", "run", "--env", "arithmetic", "--quiet"]
    argv += ["--name", name, "--runs-dir", str(runs_dir), "--iterations", str(iterations)]
    for setting in [*SMALL, *(PIN if pin else []), *sets, f"overlap={str(overlap).lower()}"]:
        argv += ["--set", setting]
    return argv


def loop_seconds(run: Path) -> float | None:
    """Seconds from the reset's end to the last iteration's end, by ``run.log``'s
    ``iteration done`` records; None if there are fewer than two."""
    times = []
    for line in (run / "run.log").read_text().splitlines():
        record = json.loads(line)
        if record.get("message") == "iteration done":
            times.append(datetime.fromisoformat(record["time"]))
    return (times[-1] - times[0]).total_seconds() if len(times) > 1 else None


def measure(args: argparse.Namespace) -> list[dict]:
    """Run ``args.pairs`` pairs, appending each run's record to ``args.out``."""
    records = []
    runs_dir = Path(tempfile.mkdtemp(prefix="dataloop-overlap-"))
    try:
        for pair in range(args.pairs):
            order = (False, True) if pair % 2 == 0 else (True, False)
            for overlap in order:
                name = f"pair{pair}-{'on' if overlap else 'off'}"
                argv = command(name, runs_dir, overlap, args.iterations, args.set, args.pin)
                env = {**os.environ, "OMP_NUM_THREADS": "1"} if args.pin else None
                start = time.monotonic()
                teacher_cores: set[int] = set()
                with tempfile.TemporaryFile("w+") as err:
                    run = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env)
                    while run.poll() is None:
                        if args.pin:
                            teacher_cores |= pin_teacher(run.pid)
                        time.sleep(0.5)
                    wall = time.monotonic() - start
                    if run.returncode != 0:
                        err.seek(0)
                        sys.exit(f"{name} failed ({run.returncode}):\n{err.read()[-2000:]}")
                record = {
                    "label": args.label,
                    "pair": pair,
                    "overlap": overlap,
                    "wall_s": round(wall, 1),
                    "loop_s": loop_seconds(runs_dir / name),
                    "iterations": args.iterations,
                    "settings": [*SMALL, *(PIN if args.pin else []), *args.set],
                    "pinned": args.pin,
                    "teacher_cores": sorted(teacher_cores) if args.pin else None,
                    "commit": _commit(),
                    "date": datetime.now(UTC).isoformat(timespec="seconds"),
                }
                records.append(record)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                with args.out.open("a") as f:
                    f.write(json.dumps(record) + "\n")
                cores = f", teacher on cores {sorted(teacher_cores)}" if args.pin else ""
                print(f"{name}: {wall:.1f} s (loop {record['loop_s']} s{cores})", flush=True)
                if args.pin and teacher_cores != {0}:
                    sys.exit(f"{name}: the teacher was not held to core 0 ({teacher_cores})")
    finally:
        shutil.rmtree(runs_dir, ignore_errors=True)
    return records


def read(path: Path) -> list[dict]:
    """The records of ``path``; none if it does not exist."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def table(records: list[dict]) -> str:
    """Per label: pairs, median wall and loop seconds off and on, and the on/off ratio per
    pair (median and range), as a markdown table."""
    if not records:
        return (
            "Not measured yet: `python benchmarks/overlap.py --pairs 5` records runs in "
            "`benchmarks/results/overlap.jsonl`.\n"
        )
    lines = [
        "| label | pairs | off: wall / loop s (median) | on: wall / loop s (median) "
        "| on/off wall, median (range) | on/off loop, median (range) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label in dict.fromkeys(r["label"] for r in records):
        pairs: dict[int, dict[bool, dict]] = {}
        for r in records:
            if r["label"] == label:
                pairs.setdefault(r["pair"], {})[r["overlap"]] = r
        complete = [p for p in pairs.values() if len(p) == 2]
        off = [p[False] for p in complete]
        on = [p[True] for p in complete]
        lines.append(
            f"| {label} | {len(complete)} | {_medians(off)} | {_medians(on)} "
            f"| {_ratio(complete, 'wall_s')} | {_ratio(complete, 'loop_s')} |"
        )
    return "\n".join(lines) + "\n"


def _medians(runs: list[dict]) -> str:
    wall = statistics.median(r["wall_s"] for r in runs) if runs else None
    loops = [r["loop_s"] for r in runs if r["loop_s"] is not None]
    loop = statistics.median(loops) if loops else None
    return f"{_number(wall)} / {_number(loop)}"


def _ratio(pairs: list[dict[bool, dict]], key: str) -> str:
    ratios = [p[True][key] / p[False][key] for p in pairs if p[True][key] and p[False][key]]
    if not ratios:
        return "—"
    return f"{statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f})"


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}"


def docs_table() -> str:
    """docs/benchmarks.md's table: :func:`table` of the committed records."""
    return table(read(RESULTS))


def _commit() -> str | None:
    done = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return done.stdout.strip() or None


def _label() -> str:
    gpu = ""
    if shutil.which("nvidia-smi"):
        names = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
        ).stdout.splitlines()
        gpu = f", {names[0].strip()}" if names else ""
    return f"{os.cpu_count()} cores{gpu}"


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3, help="off/on pairs to run (default 3)")
    parser.add_argument("--iterations", type=int, default=3, help="iterations per run")
    parser.add_argument("--label", default=None, help="the machine (default: cores and GPU)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a config override"
    )
    parser.add_argument(
        "--pin", action="store_true", help="teacher on core 0, the run on core 1 (2+ cores)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="the records file")
    parser.add_argument("--table", action="store_true", help="print the table of --out only")
    args = parser.parse_args(argv)
    if args.pairs < 1 or args.iterations < 2:
        parser.error("--pairs must be >= 1 and --iterations >= 2 (one iteration overlaps nothing)")
    if args.pin and (os.cpu_count() or 1) < 2:
        parser.error("--pin needs two cores: the teacher on core 0, the run on core 1")
    args.label = (args.label or _label()) + (
        ", pinned: teacher core 0, student core 1" if args.pin else ""
    )
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(argv)
    if not args.table:
        measure(args)
    print(table(read(args.out)), end="")


if __name__ == "__main__":
    main()
