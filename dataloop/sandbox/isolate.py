"""Running one program in namespaces (bubblewrap), under limits and the harness's audit hook:
see :mod:`dataloop.sandbox` for the layers."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from dataloop.errors import DataloopError
from dataloop.sandbox.guard import free_names, guard_comparisons
from dataloop.sandbox.harness import BOOT

Status = Literal["passed", "failed", "timeout", "killed"]
NOBODY = 65534


class SandboxUnavailable(DataloopError):
    """The machine cannot isolate programs (no bubblewrap, or no namespaces)."""


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
    disk_mb: int = Field(64, ge=1)
    """All it may write in its working directory together: in namespaces the directory is a
    memory file system (tmpfs) of this size, gone with the sandbox."""
    max_files: int = Field(256, ge=1)
    """Files, directories and links it may create (counted by the audit hook)."""
    output_chars: int = Field(2000, ge=0)
    """Characters of stdout/stderr kept in the result (the tail)."""


class SandboxResult(BaseModel):
    """How a sandboxed program ended."""

    status: Status
    """``passed``: the harness reported that the program and its tests ran to their end, and it
    exited with status 0; ``failed``: anything else that ended by itself (an assertion, an
    exception, a refused operation, an exit before the end); ``timeout``: wall clock ran out;
    ``killed``: a signal (CPU limit, file size; in namespaces, any exit status above 128)."""
    returncode: int | None
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """True when the harness saw the program (and its tests) through to the end."""
        return self.status == "passed"


def _interpreter() -> Path:
    """The base interpreter (not a virtual environment's link to it): it runs with ``-I -S``."""
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    base = Path(sys.base_exec_prefix) / "bin" / version
    return (base if base.exists() else Path(sys.executable)).resolve()


def bwrap_argv(work: Path, disk_mb: int) -> list[str]:
    """bubblewrap's command line: namespaces, a read-only system and Python, the work dir as a
    tmpfs of ``disk_mb`` (writable by ``nobody``)."""
    python = _interpreter()
    argv = ["bwrap", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"]
    argv += ["--unshare-cgroup-try", "--die-with-parent", "--new-session", "--clearenv"]
    if os.geteuid() != 0:
        argv += ["--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY)]
    binds: list[Path] = []
    for top in ("/usr/lib", "/usr/lib64", "/usr/lib32", "/lib", "/lib64", "/lib32"):
        path = Path(top)
        if path.is_symlink():
            argv += ["--symlink", os.readlink(path), top]
        elif path.is_dir():
            binds.append(path)
    prefixes = {Path(sys.base_prefix).resolve(), Path(sys.base_exec_prefix).resolve()}
    binds += [p for p in prefixes if p != Path("/usr")] + [python]
    made: set[Path] = set()
    for path in [*binds, work]:
        for parent in reversed(path.parents[:-1]):
            if parent not in made:
                # bwrap would create it 0700: user nobody could not reach what lies below.
                argv += ["--perms", "0755", "--dir", str(parent)]
                made.add(parent)
        if path != work:
            argv += ["--ro-bind", str(path), str(path)]
    argv += ["--size", str(disk_mb << 20), "--perms", "0777", "--tmpfs", str(work)]
    argv += ["--chdir", str(work), "--dev", "/dev"]
    argv += ["--proc", "/proc", "--setenv", "LANG", "C.UTF-8", "--setenv", "HOME", str(work)]
    return [*argv, "--remount-ro", "/", str(python)]


@functools.cache
def isolation_problem() -> str | None:
    """Why programs cannot run in namespaces on this machine; ``None`` when they can."""
    if shutil.which("bwrap") is None:
        return "bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    with tempfile.TemporaryDirectory(prefix="dataloop-sandbox-") as tmp:
        try:
            done = subprocess.run(
                [*bwrap_argv(Path(tmp), 1), "-I", "-S", "-c", "pass"],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bwrap could not start: {exc}"
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        if "--size" in lines[-1]:  # bubblewrap before 0.8.0: no size-limited tmpfs
            return f"bubblewrap 0.8.0 or newer is needed (--size): {lines[-1]}"
        return f"bwrap cannot create namespaces here: {lines[-1]}"
    return None


@functools.cache
def _stdlib_public() -> bool:
    """Whether user ``nobody`` could read the interpreter's standard library in place."""
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
    source: str,
    limits: SandboxLimits | None = None,
    *,
    tests: str | None = None,
    setup: str = "",
    names: Sequence[str] | None = None,
    unisolated: bool = False,
    report: bool = False,
) -> SandboxResult:
    """Run ``source`` as ``main.py`` in a fresh sandbox, then ``tests`` (if given) against what
    it defined; never raises for the program's faults.

    The tests run in a namespace of their own: first ``setup`` (trusted code they build on,
    such as a HumanEval prompt's helper functions), then they get of the program only
    ``names`` (default: :func:`free_names` of the tests), each function among them wrapped so
    that what it returns reaches the tests as plain builtin data (copied; anything else fails).

    ``unisolated`` runs it with limits and the audit hook only where namespaces are not
    available (otherwise :class:`SandboxUnavailable`). ``report`` makes the child print what it
    enforced (user id, isolation) on stderr.
    """
    limits = limits or SandboxLimits()
    problem = isolation_problem()
    if problem is not None and not unisolated:
        raise SandboxUnavailable(
            f"cannot isolate generated code: {problem}; or allow running it without "
            "namespaces (code environment option allow_unisolated: true) on a throwaway machine"
        )
    root = Path(tempfile.mkdtemp(prefix="dataloop-sandbox-"))
    work = root / "work"  # in namespaces, only where the tmpfs is mounted
    work.mkdir()
    root_user = os.geteuid() == 0
    drop = root_user and (problem is None or _stdlib_public())
    if drop:
        os.chown(work, NOBODY, NOBODY)
    python = [str(_interpreter())] if problem is not None else bwrap_argv(work, limits.disk_mb)
    nonce = secrets.token_hex(16)
    read_end, write_end = os.pipe()
    config = {
        "nonce": nonce,
        "report_fd": write_end,
        "drop": drop,
        "cpu": limits.cpu_seconds,
        "mem": limits.memory_mb,
        "fsize": limits.file_mb,
        "files": limits.max_files,
        # Without a tmpfs, what is written is bounded by the count of files of at most file_mb.
        "data_files": limits.max_files
        if problem is None
        else min(limits.max_files, max(1, limits.disk_mb // limits.file_mb)),
        "source": source,
        "setup": setup,
        "tests": None if tests is None else guard_comparisons(tests),
        "names": list(free_names(tests, setup) if names is None and tests else names or ()),
        "report": report,
        "isolation": "process" if problem is not None else "namespaces",
    }
    started = time.monotonic()
    try:
        with (root / "stdout").open("wb") as out, (root / "stderr").open("wb") as err:
            process = subprocess.Popen(
                [*python, "-I", "-S", "-c", BOOT],
                cwd=work,
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=err,
                env={"LANG": "C.UTF-8", "HOME": str(work)},
                start_new_session=True,
                pass_fds=(write_end,),
            )
            os.close(write_end)
            write_end = -1
            returncode = _wait(process, json.dumps(config).encode(), limits.wall_seconds)
        # Written after the tests returned; the pipe holds at most what fits in its buffer.
        os.set_blocking(read_end, False)
        reported = b""
        with contextlib.suppress(BlockingIOError):
            reported = os.read(read_end, 4096)
        status: Status
        if returncode is None:
            status = "timeout"
        elif returncode < 0 or (problem is None and returncode > 128):
            status = "killed"  # bwrap reports its program's death by signal N as 128 + N
        elif returncode == 0 and reported == f"{nonce}\n".encode():
            status = "passed"
        else:
            status = "failed"
        return SandboxResult(
            status=status,
            returncode=returncode,
            stdout=_tail(root / "stdout", limits.output_chars),
            stderr=_tail(root / "stderr", limits.output_chars),
            seconds=round(time.monotonic() - started, 3),
        )
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
        shutil.rmtree(root, ignore_errors=True)


def _wait(process: subprocess.Popen[bytes], config: bytes, wall_seconds: float) -> int | None:
    """Send the child its configuration, wait; ``None`` when the wall clock ran out."""
    try:
        process.communicate(config, timeout=wall_seconds)
        return process.returncode
    except subprocess.TimeoutExpired:
        return None
    finally:
        # The whole session; in namespaces, the PID namespace dies with bwrap.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
