"""How long the CLI takes to answer, against a bare ``python -c pass``.

Each command runs in a fresh interpreter, the commands one after another in every repeat (so a
noisy machine slows them alike); the table gives the median wall time of each and its ratio to
the median of ``python -c pass``. The config error is ``dataloop run --set iterations=[1``
(bad YAML in an override: it fails after the CLI and the config code are loaded).

    .venv/bin/python benchmarks/cli_startup.py --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "dataloop.cli"]
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "dataloop --help": [*CLI, "--help"],
    "dataloop envs": [*CLI, "envs"],
    "config error": [*CLI, "run", "--set", "iterations=[1"],
}


def _wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, capture_output=True, check=False)
    return time.perf_counter() - start


def main() -> None:
    """Print a markdown table: command, median seconds, ratio to ``python -c pass``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeats):
        for name, command in COMMANDS.items():
            times[name].append(_wall(command))
    base = statistics.median(times["python -c pass"])
    print(f"| command | median of {args.repeats} (s) | ratio to `python -c pass` |")
    print("|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| `{name}` | {median:.2f} | {median / base:.1f} |")


if __name__ == "__main__":
    main()
