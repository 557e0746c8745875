"""What every command shares: the typer app, the consoles, and how a DataloopError ends a command
(one line on stderr, exit status 2)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from dataloop.errors import DataloopError
from dataloop.redact import redact_keys

app = typer.Typer(
    help="Closed-loop synthetic data: a teacher LLM writes data where a student is weak.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def fail(exc: DataloopError) -> typer.Exit:
    """The exit for ``exc``, after its message on stderr: ``raise fail(exc) from None``."""
    # Escaped: a message's own brackets ('dataloop[vllm]') are text, not rich markup. A key
    # pasted where a name or URL belongs is not echoed.
    message = escape(redact_keys(str(exc)))
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


# Seconds before a discarded Ctrl-C is delivered again (a test sets 0, to land it in the hook).
REDELIVERY_DELAY = 0.01


@contextlib.contextmanager
def interrupts_not_lost() -> Iterator[None]:
    """Ctrl-C stops the command even when it lands in a finalizer.

    Python discards an exception raised in ``__del__`` or a weakref callback ("Exception ignored
    in ..."), so a Ctrl-C that arrives while one runs (``datasets.Dataset.__del__`` during garbage
    collection) was lost and the run went on to its end (CI, 2026-12-04). Here such a discarded
    KeyboardInterrupt is not printed but delivered again to the main thread, so that a blocking
    call there is interrupted as by Ctrl-C. A Ctrl-C that arrives while that delivery is being
    arranged is put off the same way, not raised where Python would discard it again. Outside
    the main thread, or where SIGINT has another handler than Python's default (ignored, say),
    nothing changes.
    """
    main = threading.main_thread()
    if threading.current_thread() is not main or (
        signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    # One byte in the pipe for each interrupt Python discarded (or that was put off); a thread
    # delivers each again. Writing to a pipe takes no lock a signal handler could wait on.
    read_end, write_end = os.pipe()

    def deliver() -> None:
        while data := os.read(read_end, 64):
            for _ in data:
                time.sleep(REDELIVERY_DELAY)
                signal.pthread_kill(main.ident, signal.SIGINT)  # type: ignore[arg-type]
        os.close(read_end)

    previous_hook = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            os.write(write_end, b"!")
            return
        previous_hook(unraisable)

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        while frame is not None:
            if frame.f_code is hook.__code__:  # raised here, it would be discarded
                os.write(write_end, b"!")
                return
            frame = frame.f_back
        raise KeyboardInterrupt

    threading.Thread(target=deliver, name="interrupts", daemon=True).start()
    sys.unraisablehook = hook
    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sys.unraisablehook = previous_hook
        os.close(write_end)
