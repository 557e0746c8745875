"""Locks that let several workers (processes, Ray tasks, scheduler jobs) share one experiment.

- :class:`RunLock`: held by the worker that makes one (arm, seed) run, so that two workers never
  run one run folder at once. It is an ``flock`` (the ``filelock`` package), which the kernel
  drops when its process dies, however it dies: a crashed worker's lock is stale at once, and
  the next worker takes the run over and resumes it. Beside it, a note says who holds it (host,
  pid, start time), for the messages, and tells a takeover from a first start.
- :func:`results_lock`: held around each read-modify-write of the experiment's results file.

On a shared filesystem, ``flock`` needs NFSv4 (or NFSv3 with a lock manager) or Lustre mounted
with ``flock``; locks of a client that vanishes are dropped when its lease ends.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout
from pydantic import BaseModel, ValidationError

from dataloop.atomic import write_text


class Holder(BaseModel):
    """Who holds (or last held) a run's lock."""

    host: str
    pid: int
    started: datetime

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host} since {self.started:%Y-%m-%d %H:%M:%S} UTC"


class RunLock:
    """The lock of the run folder ``folder``: ``<folder>.lock``, with the holder's note in
    ``<folder>.worker`` (beside the folder, so that the folder's own lifecycle, a failed start
    that removes it, a ``--rerun`` that deletes it, never meets a held lock inside it)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder.with_name(folder.name + ".lock")
        self.note = folder.with_name(folder.name + ".worker")
        self._lock = FileLock(self.path)

    def holder(self) -> Holder | None:
        """The note of the worker that holds the lock, or held it last; None when there is none
        (or it cannot be read)."""
        try:
            return Holder.model_validate_json(self.note.read_text())
        except (OSError, ValidationError):
            return None

    def acquire(self) -> tuple[bool, Holder | None]:
        """Take the lock if it is free. Returns whether it was taken and, when it was, the note
        of a previous holder that died holding it (its run is being taken over), else None; when
        it was not, the note of the holder."""
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            return False, self.holder()
        stale = self.holder()  # a note still there was left by a holder that never released
        me = Holder(host=socket.gethostname(), pid=os.getpid(), started=datetime.now(UTC))
        write_text(self.note, me.model_dump_json() + "\n")
        return True, stale

    def release(self) -> None:
        """Remove the note, then drop the lock."""
        self.note.unlink(missing_ok=True)
        self._lock.release()

    def wait(self, poll: float = 0.5) -> None:
        """Block until no worker holds the lock (its run finished, failed, or its worker died)."""
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        self._lock.acquire(timeout=-1, poll_interval=poll)
        self._lock.release()


@contextmanager
def results_lock(results: Path) -> Iterator[None]:
    """Hold the lock of the results file ``results`` (``<results>.lock``) for the block."""
    results.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(results.with_name(results.name + ".lock")):
        yield
