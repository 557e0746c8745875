"""benchmarks/overlap.py without running it (the lead runs it on an idle machine): its table
from made-up records, its docs block, its command line and the runs it would start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from benchscripts import load

from dataloop.assemble import check_run
from dataloop.config import load_config, parse_overrides

ROOT = Path(__file__).resolve().parent.parent
overlap = load("overlap")


def _record(label: str, pair: int, on: bool, wall: float, loop: float | None) -> dict:
    return {"label": label, "pair": pair, "overlap": on, "wall_s": wall, "loop_s": loop}


def test_the_table_gives_medians_and_the_ratio_per_pair_with_its_range() -> None:
    records = [
        _record("2 cores", 0, False, 100.0, 80.0),
        _record("2 cores", 0, True, 90.0, 60.0),  # ratios 0.90, 0.75
        _record("2 cores", 1, True, 85.0, 70.0),
        _record("2 cores", 1, False, 100.0, 70.0),  # 0.85, 1.00
        _record("2 cores", 2, False, 110.0, 90.0),
        _record("2 cores", 2, True, 88.0, 63.0),  # 0.80, 0.70
        _record("2 cores", 3, False, 500.0, 400.0),  # a pair cut short: left out
        _record("16 cores, H200", 0, False, 60.0, None),
        _record("16 cores, H200", 0, True, 30.0, None),
    ]
    lines = overlap.table(records).splitlines()
    assert lines[2] == "| 2 cores | 3 | 100 / 80 | 88 / 63 | 0.85 (0.80–0.90) | 0.75 (0.70–1.00) |"
    assert lines[3] == "| 16 cores, H200 | 1 | 60 / — | 30 / — | 0.50 (0.50–0.50) | — |"


def test_the_docs_block_is_the_table_of_the_committed_records() -> None:
    docs = (ROOT / "docs/benchmarks.md").read_text()
    assert "<!-- perf: overlap -->\n" + overlap.docs_table() + "<!-- /perf -->" in docs, (
        "run: python benchmarks/docs_tables.py"
    )


def test_the_loop_time_runs_from_the_reset_to_the_last_iteration(tmp_path: Path) -> None:
    lines = [
        {"time": "2026-12-03T10:00:00", "message": "starting"},
        {"time": "2026-12-03T10:00:20", "message": "iteration done", "iteration": 0},
        {"time": "2026-12-03T10:00:50", "message": "generation", "iteration": 1},
        {"time": "2026-12-03T10:01:05", "message": "iteration done", "iteration": 1},
        {"time": "2026-12-03T10:01:40", "message": "iteration done", "iteration": 2},
    ]
    (tmp_path / "run.log").write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert overlap.loop_seconds(tmp_path) == 80.0


def test_the_command_line_and_the_runs_it_would_start(tmp_path: Path) -> None:
    args = overlap.parse(["--pairs", "2", "--label", "here", "--set", "seed=3"])
    assert (args.pairs, args.iterations, args.label, args.set) == (2, 3, "here", ["seed=3"])
    with pytest.raises(SystemExit):
        overlap.parse(["--iterations", "1"])  # one iteration overlaps nothing
    for on in (False, True):
        argv = overlap.command("r", tmp_path, on, 3, ["seed=3"])
        assert argv[argv.index("--iterations") + 1] == "3"
        sets = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--set"]
        config = load_config(None, {"env.name": "arithmetic", **parse_overrides(sets)})
        assert config.overlap is on and config.seed == 3
        check_run(config)  # every check a run makes before it starts the teacher


def test_pinned_runs_hold_the_run_to_core_1_and_the_teacher_to_core_0(tmp_path: Path) -> None:
    args = overlap.parse(["--pairs", "1", "--pin"])
    assert args.pin and args.label.endswith(", pinned: teacher core 0, student core 1")
    argv = overlap.command("r", tmp_path, True, 3, [], pin=True)
    assert argv[:3] == ["taskset", "-c", "1"]
    sets = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--set"]
    config = load_config(None, {"env.name": "arithmetic", **parse_overrides(sets)})
    assert config.teacher.threads == 1
    check_run(config)
    labelled = overlap.parse(["--pin", "--label", "here"])  # pinned runs never share a label
    assert labelled.label == "here, pinned: teacher core 0, student core 1"
    assert overlap.command("r", tmp_path, True, 3, [])[0] == sys.executable  # unpinned


def test_pin_teacher_moves_every_thread_of_a_llama_server_below_the_run(tmp_path: Path) -> None:
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two cores")
    # A stand-in process named llama-server, with a thread, below a parent that is not.
    script, ready = tmp_path / "llama-server", tmp_path / "ready"
    script.write_text(
        "import pathlib, sys, threading, time\n"
        "threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"
        "pathlib.Path(sys.argv[1]).touch()\n"
        "time.sleep(30)\n"
    )
    other = f"{sys.executable} -c 'import time; time.sleep(30)'"
    parent = subprocess.Popen(["sh", "-c", f"{sys.executable} {script} {ready} & {other}"])
    try:
        deadline = time.monotonic() + 20
        while not ready.exists() and time.monotonic() < deadline:  # both its threads started
            time.sleep(0.05)
        cores = overlap.pin_teacher(parent.pid, core=1)
        assert cores == {1}
        teacher = [
            c
            for c in overlap._children(parent.pid)
            if "llama-server" in Path(f"/proc/{c}/cmdline").read_text()
        ]
        threads = list(Path(f"/proc/{teacher[0]}/task").iterdir())
        assert len(threads) == 2
        assert all(os.sched_getaffinity(int(t.name)) == {1} for t in threads)
        others = [c for c in overlap._children(parent.pid) if c not in teacher]
        assert all(os.sched_getaffinity(c) != {1} for c in others)  # only the teacher moved
    finally:
        for child in overlap._children(parent.pid):
            os.kill(child, 9)
        parent.kill()
        parent.wait()
