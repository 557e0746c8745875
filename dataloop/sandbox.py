"""Run untrusted Python (student code, teacher solutions, generated tests) in a sandbox.

Each program runs as ``python -I -S`` (no environment variables, no site-packages: the standard
library only) in a fresh working directory that is gone after. The layers, outermost first:

- **namespaces** (bubblewrap, ``bwrap``): fresh mount, PID, network, IPC and UTS namespaces.
  The program sees a read-only Python installation and system libraries, its working directory
  (a tmpfs of ``disk_mb``: all it may write) and nothing else of the file system; its own
  ``/proc`` (no other process, no parent's environment); no network interface but its own
  loopback. Run as root, the program then drops to user ``nobody``; otherwise a user namespace
  maps it to ``nobody`` and the kernel sees the calling (unprivileged) user. When the process
  that runs the sandbox dies, the namespace's processes die with it.
- **limits** (``setrlimit``): CPU seconds, address space, size of written files, open files, no
  core dumps, no new processes or threads (``RLIMIT_NPROC`` 0); a wall-clock timeout in the
  parent kills the whole sandbox.
- **an audit hook** (PEP 578) refuses sockets, new processes, signals, ``ctypes``, native
  modules from outside the installation, writing or listing outside the working directory,
  opening directories (no ``dir_fd`` to be relative to), more than ``max_files`` new files,
  and every way to reach a stack frame (``sys._getframe``, tracebacks' frames, tracing,
  ``gc``, signal handlers), so that the program cannot reach the harness's state.

**Verdicts cannot be faked by the program**: a run passes only when the harness, after the
program (and its ``tests``) ran to their end, writes a per-run nonce to a pipe the parent holds;
exit statuses alone mean nothing. The ``tests`` run in their own namespace with their own
builtins and see of the program only the functions they call (never its other globals); what
those return reaches them copied to plain builtin data, so no method of the program's classes
runs in their arithmetic or comparisons; and every comparison in them refuses to let an object
that is not plain data stand for plain data (see :func:`guard_comparisons`).

Where namespaces are not available (no ``bwrap``, or the kernel refuses), :func:`run_python`
refuses with :class:`SandboxUnavailable` unless called with ``unisolated=True``: then only the
limits and the audit hook remain, a Python-level guard that native code could get around; the
program writes in a host directory, at most ``disk_mb // file_mb`` files that hold data.
"""

from __future__ import annotations

import ast
import builtins
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

# The child's harness: drop privileges, set limits, install the audit hook, run main.py, then
# the tests, then report. Run with ``-c`` so the program cannot replace it. Everything it needs
# later is bound in local variables before the program's first line: the program may rebind
# builtins and module attributes, but cannot reach these frames (the hook denies frame access).
_BOOT = r"""
import builtins
# The harness's functions look builtins up in this copy, taken before the program's first line:
# the program may rebind builtins.isinstance; what the harness calls stays the real one.
__builtins__ = dict(builtins.__dict__)


def _run():
    import _operator, json, os, resource, sys
    cfg = json.loads(sys.stdin.buffer.read())  # not argv: sys.orig_argv is readable
    os.dup2(os.open("/dev/null", os.O_RDONLY), 0)
    nonce, fd, write = cfg.pop("nonce").encode(), cfg["report_fd"], os.write
    if cfg["drop"]:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    mb = 1 << 20
    for name, soft in (("RLIMIT_CPU", cfg["cpu"]), ("RLIMIT_AS", cfg["mem"] * mb),
                       ("RLIMIT_FSIZE", cfg["fsize"] * mb), ("RLIMIT_NOFILE", 64),
                       ("RLIMIT_CORE", 0), ("RLIMIT_NPROC", 0)):
        kind = getattr(resource, name)
        resource.setrlimit(kind, (soft, soft + 1 if name == "RLIMIT_CPU" else soft))
    if cfg["report"]:
        print(json.dumps({"uid": os.getuid(), "isolation": cfg["isolation"]}), file=sys.stderr)
    source = compile(cfg["source"], "main.py", "exec")
    setup = compile(cfg["setup"], "setup.py", "exec")
    tests = None if cfg["tests"] is None else compile(cfg["tests"], "tests.py", "exec")
    clean = dict(builtins.__dict__)
    real, fspath, startswith = os.path.realpath, os.fspath, str.startswith
    work = real(os.getcwd())
    install = tuple(real(p) for p in sys.path if p)
    read_ok = (*install, work, "/dev/null")
    # A signal handler receives the current frame: no handlers at all.
    sys.modules.pop("_signal", None)
    deny = ("socket.", "os.fork", "os.forkpty", "os.exec", "os.posix_spawn", "os.spawn",
            "os.system", "os.kill", "os.killpg", "subprocess.", "ctypes.", "pty.", "_thread.",
            "resource.setrlimit", "os.setuid", "os.setgid", "sys.settrace", "sys.setprofile",
            "sys._current_frames", "sys.addaudithook", "gc.get_", "cpython.PyInterpreterState")
    frame_attrs = ("tb_frame", "gi_frame", "cr_frame", "ag_frame")
    # Audited operations that change the file system, and how many dir_fd arguments end theirs.
    mutate = {"os.remove": 1, "os.rename": 2, "os.rmdir": 1, "os.mkdir": 1, "os.chmod": 1,
              "os.chown": 1, "os.truncate": 0, "os.symlink": 1, "os.link": 2, "os.utime": 1,
              "shutil.rmtree": 1, "os.chdir": 0}
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    exists, isdir = os.path.lexists, os.path.isdir
    # Files, directories and links made; files that hold data, each at most fsize.
    limit, created = {"files": cfg["files"], "data files": cfg["data_files"]}, {}

    def create(what, kind="files"):
        created[kind] = created.get(kind, 0) + 1
        if created[kind] > limit[kind]:
            raise PermissionError(f"sandbox: {what}: more than {limit[kind]} {kind} created")

    def inside(path, roots):
        try:
            path = fspath(path)
            p = real(path.decode() if isinstance(path, bytes) else path)
        except (TypeError, ValueError):
            return False
        return any(p == r or startswith(p, r.rstrip("/") + "/") for r in roots)

    def hook(event, args):
        if startswith(event, deny):
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event in ("sys._getframe", "sys._getframemodulename"):
            raise ValueError("sandbox: frames are not available")  # what its callers catch
        if event == "object.__getattr__" and args[1] in frame_attrs:
            raise PermissionError(f"sandbox: {args[1]} is not available")
        if event == "import" and args[0] in ("_signal", "signal"):
            raise PermissionError("sandbox: signal handlers are not allowed")
        if event == "import" and args[1] is not None and not inside(args[1], install):
            raise PermissionError(f"sandbox: native module {args[1]} is not allowed")
        if event == "open":
            path, flags = args[0], args[2]
            if path is None or isinstance(path, int):
                return
            if not inside(path, (work,) if (flags or 0) & write_flags else read_ok):
                raise PermissionError(f"sandbox: access to {path} is not allowed")
            # A directory's descriptor would let a later open (whose audit event does not
            # carry dir_fd) name a path relative to it: outside, while it looks inside.
            if isdir(path):
                raise PermissionError(f"sandbox: opening the directory {path} is not allowed")
            if (flags or 0) & os.O_CREAT and not exists(path):
                create(path)
                create(path, "data files")
        elif event in ("os.listdir", "os.scandir"):
            if isinstance(args[0], (str, bytes)) and not inside(args[0], read_ok):
                raise PermissionError(f"sandbox: listing {args[0]} is not allowed")
        elif event in mutate:
            count = mutate[event]
            # Relative to a directory descriptor, a path that looks inside can lie outside.
            if any(d not in (None, -1) for d in args[len(args) - count :]):
                raise PermissionError(f"sandbox: {event} with dir_fd is not allowed")
            paths = [a for a in args if not isinstance(a, (int, type(None), tuple))]
            if not all(inside(p, (work,)) for p in paths):
                raise PermissionError(f"sandbox: {event} outside the working directory")
            if event in ("os.mkdir", "os.symlink", "os.link"):
                create(paths[-1])

    plain_types = (bool, int, float, complex, str, bytes, type(None), list, tuple, dict, set,
                   frozenset)
    slots = ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__contains__")
    # The class's real MRO and each class's own __dict__: a metaclass can stand a property
    # named __eq__ in front of type.__getattribute__, not in front of these.
    mro_of, dict_of = type.__dict__["__mro__"].__get__, type.__dict__["__dict__"].__get__
    name_of = type.__dict__["__name__"].__get__

    def slot(tp, name):
        for klass in mro_of(tp):
            own = dict_of(klass)
            if name in own:
                return own[name]
        return None

    def plain(value):
        # Builtin data all the way down; a subclass only if it compares as its builtin does.
        stack, seen = [value], set()
        while stack:
            item = stack.pop()
            if id(item) in seen:
                continue
            seen.add(id(item))
            tp = type(item)
            base = next((b for b in plain_types if tp is b or issubclass(tp, b)), None)
            if base is None or any(slot(tp, n) is not slot(base, n) for n in slots):
                return False
            if base is dict:
                stack.extend(dict.keys(item))
                stack.extend(dict.values(item))
            elif base in (list, tuple, set, frozenset):
                stack.extend(base.__iter__(item))
        return True

    ops = {"==": _operator.eq, "!=": _operator.ne, "<": _operator.lt, "<=": _operator.le,
           ">": _operator.gt, ">=": _operator.ge, "in": lambda a, b: _operator.contains(b, a),
           "not in": lambda a, b: not _operator.contains(b, a)}

    atoms = (bool, int, float, complex, str, bytes, type(None))
    as_atom = {int: int.__int__, float: float.__float__, complex: complex.__complex__,
               str: str.__str__, bytes: bytes.__bytes__}

    def copy_plain(value):
        # The builtin types exactly, read from each builtin's own storage: no method of the
        # value's class runs, and the tests' arithmetic and comparisons are the builtins'.
        tp = type(value)
        if tp in atoms:
            return value
        base = next((b for b in plain_types if issubclass(tp, b)), None)
        if base is None:
            raise TypeError(f"sandbox: a {name_of(tp)} was returned, not plain data")
        if base in as_atom:
            return as_atom[base](value)
        if base is dict:
            return {copy_plain(k): copy_plain(v) for k, v in dict.items(value)}
        items = [copy_plain(v) for v in base.__iter__(value)]
        return items if base is list else base(items)

    def exported(value, name):
        # What the tests get of the program: its functions, whose results are copied to plain
        # data; a module it imported is the tests' own import of that name; other values copied.
        if type(value) is type(sys):
            return __import__(name)
        if not callable(value):
            return copy_plain(value)

        def call(*args, **kwargs):
            return copy_plain(value(*args, **kwargs))

        return call

    def compare(left, names, rights):
        for name, right in zip(names, rights):
            if plain(left) != plain(right) or not ops[name](left, right):
                return False
            left = right
        return True

    vars(sys.modules["__main__"])["__builtins__"] = builtins  # the copy stays out of reach
    sys.addaudithook(hook)
    sys.argv = ["main.py"]
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    exec(source, namespace)
    if tests is not None:
        # Their own namespace and builtins: the program cannot rebind what the tests call, and
        # gives them only the names they take from it, never its other globals.
        checks = {"__name__": "__main__", "__builtins__": clean, "__dataloop_compare__": compare}
        exec(setup, checks)
        for name in cfg["names"]:
            if name in namespace:
                checks[name] = exported(namespace[name], name)
        exec(tests, checks)
    write(fd, nonce + b"\n")


_run()
"""

Status = Literal["passed", "failed", "timeout", "killed"]
NOBODY = 65534
_COMPARE = "__dataloop_compare__"
_OPS = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
}


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


class _Guard(ast.NodeTransformer):
    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        if not all(type(op) in _OPS for op in node.ops):
            return node  # ``is`` cannot be fooled
        call = ast.Call(
            func=ast.Name(id=_COMPARE, ctx=ast.Load()),
            args=[
                node.left,
                ast.Tuple([ast.Constant(_OPS[type(op)]) for op in node.ops], ast.Load()),
                ast.Tuple(list(node.comparators), ast.Load()),
            ],
            keywords=[],
        )
        return ast.copy_location(call, node)


def guard_comparisons(tests: str) -> str:
    """``tests`` with each comparison (``==``, ``<``, ``in`` …) made through the harness: when one
    side is plain data (builtin values, recursively), the other must be too — an object whose
    ``__eq__`` always says yes does not pass for ``'b a'``. Chained comparisons evaluate all
    their operands. Code that does not parse is returned as is (it fails when run)."""
    try:
        tree = ast.parse(tests)
    except SyntaxError:
        return tests
    return ast.unparse(ast.fix_missing_locations(_Guard().visit(tree)))


def free_names(tests: str, setup: str = "") -> tuple[str, ...]:
    """The names ``tests`` read but neither they nor ``setup`` bind, builtins excepted: what
    they take from the program (MBPP's asserts: the function under test). Code that does not
    parse has none."""
    try:
        read, bound = ast.parse(tests), ast.parse(setup)
    except SyntaxError:
        return ()
    loaded: list[str] = []
    binds = set(dir(builtins))
    for tree in (read, bound):
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                if not isinstance(node.ctx, ast.Load):
                    binds.add(node.id)
                elif tree is read:
                    loaded.append(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                binds.add(node.name)
            elif isinstance(node, ast.arg):
                binds.add(node.arg)
            elif isinstance(node, ast.alias):
                binds.add((node.asname or node.name).partition(".")[0])
            elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
                binds.add(node.name)
    return tuple(dict.fromkeys(n for n in loaded if n not in binds))


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
                [*python, "-I", "-S", "-c", _BOOT],
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
