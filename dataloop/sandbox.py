"""Run untrusted Python (student code, teacher solutions, generated tests) in a sandbox.

Each program runs in its own process, started as ``python -I -S`` (no environment variables, no
site-packages: the standard library only) in a fresh working directory that is deleted after.
What is enforced, in the child, before the program's first line:

- **limits** (``setrlimit``): CPU seconds, address space (memory), size of written files, open
  files, no core dumps, no new processes (``RLIMIT_NPROC`` 0); a wall-clock timeout in the
  parent kills the whole process group.
- **as root** (containers, CI): a new, empty network namespace (``unshare(CLONE_NEWNET)``: no
  interface but a downed loopback, so no connection anywhere, not even 127.0.0.1), then the
  process drops to user ``nobody`` (file permissions then protect everything it does not own,
  and ``RLIMIT_NPROC``, which root ignores, applies) — unless the standard library is not
  readable by others (a pyenv Python under ``/root``): then it stays root, and only the audit
  hook stops new processes.
  Not root: a user+network namespace is tried; if the kernel refuses it, only the audit hook
  below keeps the program off the network.
- **an audit hook** (PEP 578) refuses sockets, new processes (fork, exec, subprocess, spawn),
  ``ctypes`` library loading, opening files for writing (or deleting, renaming, chmod …)
  outside the working directory, and reading files outside it and the standard library — the
  run directory included.

An audit hook is a Python-level guard; native code could get around it. The rlimits, the
namespace and the unprivileged user are enforced by the kernel. This is a sandbox for buggy or
careless code, not for a determined attacker: run untrusted models' code on a throwaway machine.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# The child's first code: drop privileges, set limits, install the audit hook, run main.py.
# It is run with ``-c`` so the program cannot replace it.
_BOOT = r"""
import ctypes, json, os, resource, sys
cfg = json.loads(sys.argv[1])
work = os.getcwd()
net = "audit hook only"
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET, CLONE_NEWUSER = 0x40000000, 0x10000000
if os.geteuid() == 0:
    if libc.unshare(CLONE_NEWNET) == 0:
        net = "network namespace"
    if cfg["drop"]:
        os.setgroups([])
        os.setgid(cfg["uid"])
        os.setuid(cfg["uid"])
elif libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0:
    net = "network namespace"
del libc
mb = 1 << 20
for name, soft in (("RLIMIT_CPU", cfg["cpu"]), ("RLIMIT_AS", cfg["mem"] * mb),
                   ("RLIMIT_FSIZE", cfg["fsize"] * mb), ("RLIMIT_NOFILE", 64),
                   ("RLIMIT_CORE", 0), ("RLIMIT_NPROC", 0)):
    kind = getattr(resource, name)
    hard = soft + 1 if name == "RLIMIT_CPU" else soft
    resource.setrlimit(kind, (soft, hard))
if cfg["report"]:
    print(json.dumps({"uid": os.getuid(), "network": net}), file=sys.stderr)
real = os.path.realpath
read_ok = tuple(real(p) for p in sys.path if p) + (work, "/dev/null")
def inside(path, roots):
    try:
        p = real(os.fsdecode(path))
    except (TypeError, ValueError):
        return False
    return any(p == r or p.startswith(r.rstrip("/") + "/") for r in roots)
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
DENY = ("socket.", "os.fork", "os.forkpty", "os.exec", "os.posix_spawn", "os.spawn",
        "os.system", "subprocess.", "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata",
        "os.kill", "os.killpg", "pty.", "resource.setrlimit", "os.setuid")
MUTATE = {"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown",
          "os.truncate", "os.symlink", "os.link", "os.utime", "shutil.rmtree", "os.chdir"}
LIST = {"os.listdir", "os.scandir", "glob.glob", "os.walk"}
def hook(event, args):
    if event.startswith(DENY):
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event == "open":
        path, flags = args[0], args[2]
        if path is None or isinstance(path, int):
            return
        roots = (work,) if (flags or 0) & WRITE_FLAGS else read_ok
        if not inside(path, roots):
            raise PermissionError(f"sandbox: access to {path} is not allowed")
    elif event in MUTATE and args and not isinstance(args[0], int) and not inside(args[0], (work,)):
        raise PermissionError(f"sandbox: {event} on {args[0]} is not allowed")
    elif event in LIST and args and not inside(args[0] or ".", read_ok):
        raise PermissionError(f"sandbox: listing {args[0]} is not allowed")
sys.addaudithook(hook)
del cfg, ctypes
with open("main.py") as f:
    source = f.read()
sys.argv = ["main.py"]
exec(compile(source, "main.py", "exec"), {"__name__": "__main__"})
"""

Status = Literal["passed", "failed", "timeout", "killed"]
NOBODY = 65534


class SandboxLimits(BaseModel):
    """What one sandboxed program may use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cpu_seconds: int = Field(5, ge=1)
    """CPU time before the kernel kills it (SIGXCPU)."""
    wall_seconds: float = Field(10.0, gt=0)
    """Elapsed time before the parent kills it (sleeping, blocked programs)."""
    memory_mb: int = Field(512, ge=64)
    """Address-space limit; allocations beyond it raise MemoryError."""
    file_mb: int = Field(16, ge=1)
    """Largest file it may write (stdout and stderr included)."""
    output_chars: int = Field(2000, ge=0)
    """Characters of stdout/stderr kept in the result (the tail)."""


class SandboxResult(BaseModel):
    """How a sandboxed program ended."""

    status: Status
    """``passed``: exit 0; ``failed``: non-zero exit (an assertion, an exception, a refused
    operation); ``timeout``: wall clock ran out; ``killed``: a signal (CPU limit, file size)."""
    returncode: int | None
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """True when the program exited normally with status 0."""
        return self.status == "passed"


@functools.cache
def _stdlib_public() -> bool:
    """Whether user ``nobody`` could read the interpreter's standard library."""
    for top in (sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib")):
        path = Path(top).resolve()
        for part in (path, *path.parents):
            if part.stat().st_mode & 0o005 != 0o005:
                return False
    return True


def _tail(path: Path, chars: int) -> str:
    data = path.read_bytes()
    return data[-4 * chars :].decode("utf-8", "replace")[-chars:] if chars else ""


def run_python(
    source: str, limits: SandboxLimits | None = None, *, report: bool = False
) -> SandboxResult:
    """Run ``source`` as ``main.py`` in a fresh sandbox; never raises for the program's faults.

    ``report`` makes the child print what it enforced (user id, network isolation) on stderr.
    """
    limits = limits or SandboxLimits()
    root = Path(tempfile.mkdtemp(prefix="dataloop-sandbox-"))
    work = root / "work"
    work.mkdir()
    (work / "main.py").write_text(source)
    drop = os.geteuid() == 0 and _stdlib_public()
    if drop:
        for path in (root, work, work / "main.py"):
            os.chown(path, NOBODY, NOBODY)
    config = {
        "uid": NOBODY,
        "drop": drop,
        "cpu": limits.cpu_seconds,
        "mem": limits.memory_mb,
        "fsize": limits.file_mb,
        "report": report,
    }
    started = time.monotonic()
    try:
        with (root / "stdout").open("wb") as out, (root / "stderr").open("wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _BOOT, json.dumps(config)],
                cwd=work,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(work)},
                start_new_session=True,
            )
            try:
                returncode: int | None = process.wait(timeout=limits.wall_seconds)
            except subprocess.TimeoutExpired:
                returncode = None
            finally:
                # The whole session: anything it started (should a fork get through) dies too.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        status: Status
        if returncode is None:
            status = "timeout"
        elif returncode < 0:
            status = "killed"
        else:
            status = "passed" if returncode == 0 else "failed"
        return SandboxResult(
            status=status,
            returncode=returncode,
            stdout=_tail(root / "stdout", limits.output_chars),
            stderr=_tail(root / "stderr", limits.output_chars),
            seconds=round(time.monotonic() - started, 3),
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_many(
    sources: list[str], limits: SandboxLimits | None = None, workers: int | None = None
) -> list[SandboxResult]:
    """Run several programs, each in its own sandbox, a few at a time; results in order."""
    workers = workers or max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda s: run_python(s, limits), sources))
