"""What every command shares: the typer app, the consoles, and how a DataloopError ends a command
(one line on stderr, exit status 2)."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
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


@contextlib.contextmanager
def interrupts_not_lost() -> Iterator[None]:
    """Ctrl-C stops the command even when it lands in a finalizer.

    Python discards an exception raised in ``__del__`` or a weakref callback ("Exception ignored
    in ..."), so a Ctrl-C that arrives while one runs (``datasets.Dataset.__del__`` during garbage
    collection) was lost and the run went on to its end (CI, 2026-12-04). Here such a discarded
    KeyboardInterrupt is delivered again from a timer thread, to be raised in the main thread's
    own code, and not printed as an ignored exception.
    """
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            # At the main thread, so that a blocking call there is interrupted as by Ctrl-C.
            main = threading.main_thread().ident
            timer = threading.Timer(0.01, signal.pthread_kill, (main, signal.SIGINT))
            timer.daemon = True
            timer.start()
            return
        previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous
