"""A coroutine run on a shared event loop in a worker thread, while the caller's thread works.

The loop's ``overlap`` makes the next iteration's data (async: the teacher is an HTTP server)
while the student trains (a blocking call in the caller's thread). The coroutine runs on the
run's own :class:`asyncio.Runner` — its teacher client's connections belong to that event
loop — so the caller must not use the runner until :meth:`InFlight.result` or
:meth:`InFlight.cancel` has returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class InFlight(Generic[T]):
    """``coro`` started on ``runner``'s event loop in a thread of its own.

    :meth:`result` waits for it and returns its value (or raises what it raised);
    :meth:`cancel` cancels it (Ctrl-C, an error, the run ended) and waits until it has stopped.
    """

    def __init__(self, runner: asyncio.Runner, coro: Coroutine[Any, Any, T]) -> None:
        self._runner = runner
        self._lock = threading.Lock()
        self._task: asyncio.Task[T] | None = None
        self._cancelled = False
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dataloop-overlap")
        self._future = self._pool.submit(runner.run, self._tracked(coro))

    async def _tracked(self, coro: Coroutine[Any, Any, T]) -> T:
        with self._lock:
            if self._cancelled:  # cancelled before the thread got to it
                coro.close()
                raise asyncio.CancelledError
            self._task = asyncio.current_task()
        return await coro

    def result(self) -> T:
        """The coroutine's value, once it has finished."""
        try:
            return self._future.result()
        finally:
            self._pool.shutdown()

    def cancel(self) -> None:
        """Cancel the coroutine and wait for its thread to end; what it raised is dropped."""
        with self._lock:
            self._cancelled = True
            task = self._task
        if task is not None:
            self._runner.get_loop().call_soon_threadsafe(task.cancel)
        try:
            with contextlib.suppress(Exception, asyncio.CancelledError):  # over, either way
                self._future.result()
        finally:
            self._pool.shutdown()
