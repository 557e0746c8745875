"""A Ctrl-C stops the command even where its KeyboardInterrupt is thrown away (CI, 2026-12-04:
it landed in ``datasets.Dataset.__del__``, Python discarded it, and the run went on to exit 0).

Each case runs in a subprocess, with SIGINT at Python's default whatever the test inherits (a
background job ignores it). A case that loses the interrupt sleeps 600 s and times out."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import contextlib, signal, sys, time
    from dataloop.cli import common

    signal.signal(signal.SIGINT, signal.default_int_handler)
    case = sys.argv[1]

    class Finalizer:
        def __init__(self, exc):
            self.exc = exc
        def __del__(self):
            raise self.exc

    def ctrl_c_while_reporting(unraisable):
        signal.getsignal(signal.SIGINT)(signal.SIGINT, sys._getframe())

    if case == "in-hook":
        sys.unraisablehook = ctrl_c_while_reporting
    before = sys.unraisablehook
    try:
        with contextlib.nullcontext() if case == "bare" else common.interrupts_not_lost():
            if case in ("finalizer", "bare"):
                Finalizer(ValueError("a finalizer's own error"))
                Finalizer(KeyboardInterrupt())
            elif case == "in-hook":
                Finalizer(ValueError())  # the hook reports it, and a Ctrl-C arrives meanwhile
            elif case == "swallowed":
                try:
                    signal.raise_signal(signal.SIGINT)
                    time.sleep(600)
                except BaseException:  # dropped, once the first recheck has found it here
                    time.sleep(2 * common.RECHECK_PERIOD)
                    print("swallowed")
            elif case == "cleanup":
                try:
                    signal.raise_signal(signal.SIGINT)
                    time.sleep(600)
                finally:
                    time.sleep(3 * common.RECHECK_PERIOD)  # resent meanwhile: not raised
                    print("cleaned up")
            time.sleep(0.5 if case == "bare" else 600)
            print("ran on")
    except KeyboardInterrupt:
        print("stopped")
    time.sleep(3 * common.RECHECK_PERIOD)  # nothing is sent after the block
    print("hook restored" if sys.unraisablehook is before else "hook left")
    """
)


def run(case: str) -> tuple[list[str], str]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, case], capture_output=True, text=True, timeout=300, cwd=REPO
    )
    return done.stdout.splitlines(), done.stderr


def test_a_ctrl_c_discarded_in_a_finalizer_is_raised_again() -> None:
    out, err = run("finalizer")
    assert out == ["stopped", "hook restored"], err
    # Other errors in finalizers are still reported as Python reports them; the interrupt is not.
    assert "ValueError: a finalizer's own error" in err
    assert "KeyboardInterrupt" not in err


def test_a_ctrl_c_caught_and_dropped_is_raised_again() -> None:
    """The bench run that lost one printed nothing: wherever it went, the next check finds it
    gone and raises a new one."""
    out, err = run("swallowed")
    assert out == ["swallowed", "stopped", "hook restored"], err


def test_a_ctrl_c_that_arrives_in_the_hook_is_put_off_not_lost() -> None:
    """Raised in sys.unraisablehook, Python would discard it too ("Exception ignored in
    sys.unraisablehook"): an earlier version of the guard lost a Ctrl-C there."""
    out, err = run("in-hook")
    assert out == ["stopped", "hook restored"], err
    assert "KeyboardInterrupt" not in err


def test_cleanup_on_the_way_out_is_not_interrupted_again() -> None:
    out, err = run("cleanup")
    assert out == ["cleaned up", "stopped", "hook restored"], err
    assert "Traceback" not in err


def test_without_the_guard_python_discards_it() -> None:
    """What the guard is for: this is the behaviour the CI run met."""
    out, err = run("bare")
    assert out == ["ran on", "hook restored"]
    assert "KeyboardInterrupt" in err
