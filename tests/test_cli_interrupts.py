"""A Ctrl-C that lands in a finalizer still stops the command (CI, 2026-12-04: it landed in
``datasets.Dataset.__del__``, Python discarded it, and the run went on to exit 0)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import contextlib, sys, time
    from dataloop.cli.common import interrupts_not_lost

    class Finalizer:
        def __init__(self, exc):
            self.exc = exc
        def __del__(self):
            raise self.exc

    guard = interrupts_not_lost() if sys.argv[1] == "guarded" else contextlib.nullcontext()
    before = sys.unraisablehook
    with guard:
        Finalizer(ValueError("a finalizer's own error"))
        try:
            Finalizer(KeyboardInterrupt())
            time.sleep(float(sys.argv[2]))
        except KeyboardInterrupt:
            print("stopped")
        else:
            print("ran on")
    print("hook restored" if sys.unraisablehook is before else "hook left")
    """
)


def run(mode: str, sleep: float) -> subprocess.CompletedProcess[str]:
    # The guarded run sleeps 600 s: it ends within the timeout only if the sleep is interrupted.
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, mode, str(sleep)],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip


def test_a_ctrl_c_discarded_in_a_finalizer_is_delivered_again() -> None:
    done = run("guarded", 600)
    assert done.stdout.splitlines() == ["stopped", "hook restored"], done.stderr
    # Other errors in finalizers are still reported as Python reports them; the interrupt is not.
    assert "ValueError: a finalizer's own error" in done.stderr
    assert "KeyboardInterrupt" not in done.stderr


def test_without_the_guard_python_discards_it() -> None:
    """What the guard is for: this is the behaviour the CI run met."""
    done = run("bare", 0.5)
    assert done.stdout.splitlines() == ["ran on", "hook restored"]
    assert "KeyboardInterrupt" in done.stderr
