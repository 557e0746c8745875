"""What every command shares: the typer app, the consoles, and how a DataloopError ends a command
(one line on stderr, exit status 2)."""

from __future__ import annotations

import contextlib
import os
import select
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


# Seconds from a Ctrl-C, or a discarded KeyboardInterrupt, to the first check.
REDELIVERY_DELAY = 0.01
# Seconds between checks, after a Ctrl-C, that its KeyboardInterrupt is still on its way out.
RECHECK_PERIOD = 0.5


@contextlib.contextmanager
def interrupts_not_lost() -> Iterator[None]:
    """Ctrl-C stops the command even where Python or a library throws its KeyboardInterrupt away.

    Python discards an exception raised in ``__del__`` or a weakref callback ("Exception ignored
    in ..."), so a Ctrl-C that arrived while one ran (``datasets.Dataset.__del__`` during
    garbage collection) was lost and the run went on to its end (CI, 2026-12-04); a `bench` run
    lost one once in ten tries under load, somewhere that printed nothing. Here, after a Ctrl-C,
    SIGINT is sent again to the main thread every :data:`RECHECK_PERIOD` seconds (at once when
    Python reports a discarded KeyboardInterrupt, which is then not printed) until the block is
    left. Each time, if the KeyboardInterrupt is still on its way out (the exception being
    handled, or in the context of the one being handled: cleanup under way) nothing happens;
    if it is gone, a new one is raised. Nothing is raised inside the hook itself, where Python
    would discard it again. Outside the main thread, or where SIGINT has another handler than
    Python's default (ignored, say), nothing changes.
    """
    main = threading.main_thread()
    if threading.current_thread() is not main or (
        signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    # A byte in the pipe wakes the thread that sends SIGINT again; closing it stops the thread.
    # Writing to a pipe takes no lock that a signal handler could wait on.
    read_end, write_end = os.pipe()
    raised: list[BaseException] = []  # the KeyboardInterrupts raised here
    is_open = True  # False once the block is left: nothing more goes into the pipe

    def wake() -> None:
        if is_open:
            os.write(write_end, b"!")

    def resend() -> None:
        requested = False
        while True:
            ready, _, _ = select.select([read_end], [], [], RECHECK_PERIOD if requested else None)
            if ready:
                if not os.read(read_end, 64):
                    break  # the block is left
                requested = True
                time.sleep(REDELIVERY_DELAY)
            signal.pthread_kill(main.ident, signal.SIGINT)  # type: ignore[arg-type]
        os.close(read_end)

    previous_hook = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            wake()
            return
        previous_hook(unraisable)

    def on_its_way_out() -> bool:
        exc: BaseException | None = sys.exc_info()[1]
        while exc is not None:
            if any(exc is r for r in raised):
                return True
            exc = exc.__context__
        return False

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        while frame is not None:
            if frame.f_code is hook.__code__:  # raised here, it would be discarded
                wake()
                return
            frame = frame.f_back
        if raised and on_its_way_out():
            return
        raised.append(KeyboardInterrupt())
        wake()
        raise raised[-1]

    thread = threading.Thread(target=resend, name="interrupts", daemon=True)
    thread.start()
    sys.unraisablehook = hook
    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        is_open = False  # first: a handler that runs from here on writes to no closed fd
        os.close(write_end)
        thread.join()  # its last SIGINT, if any, still meets on_sigint
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sys.unraisablehook = previous_hook
