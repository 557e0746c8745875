"""A small ``dataloop run`` in a subprocess against the embedded teacher (llama-server and the
packaged Gemma): the integration tests of the CLI with the real teacher share it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SMALL = [
    "--set", "student.steps_per_iteration=10",
    "--set", "teacher.parallel=4",
    "--set", "teacher.max_tokens=96",
]  # fmt: skip
"""A tiny student's round and a teacher request short enough for a CPU."""


def dataloop(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``dataloop ARGS`` in a subprocess, its output captured."""
    command = [sys.executable, "-m", "dataloop.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def small_run(runs_dir: Path, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``dataloop run`` named ``name`` under ``runs_dir`` with ``args`` and :data:`SMALL`."""
    return dataloop("run", "--name", name, "--runs-dir", str(runs_dir), "--quiet", *args, *SMALL)
