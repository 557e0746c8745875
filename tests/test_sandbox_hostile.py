"""Targeted attacks on the sandbox: each one worked against an audit hook alone; each must fail.

No traffic leaves the machine: the only listener is on 127.0.0.1, in the test's own process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from dataloop import sandbox
from dataloop.sandbox import SandboxLimits, bwrap_argv, isolate, run_python

LIMITS = SandboxLimits(cpu_seconds=3, wall_seconds=6, memory_mb=256)
SECRET = "sk-dataloop-test-secret-41fe"


@pytest.fixture
def outside(tmp_path: Path) -> dict[str, str]:
    """A secret file and a target path outside the sandbox, as the attacks will name them."""
    secret = tmp_path / "run" / "config.yaml"
    secret.parent.mkdir()
    secret.write_text(f"api_key: {SECRET}\n")
    return {"secret": str(secret), "target": str(tmp_path / "escaped.txt")}


@pytest.fixture
def victim():
    """A process of the parent's user, holding a key, the sandbox must not signal or read."""
    env = {**os.environ, "DATALOOP_TEST_KEY": SECRET}
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env)
    yield process
    process.kill()
    process.wait()


@pytest.fixture
def listener():
    """A server on 127.0.0.1 that records whether anything connected."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.setblocking(False)
    yield server
    server.close()


def _connected(server: socket.socket) -> bool:
    try:
        server.accept()[0].close()
        return True
    except BlockingIOError:
        return False


# What turned the audit hook of 0d32482 off: it looked its names up in __main__ at each event.
DISABLE = (
    "import sys; vars(sys.modules['__main__']).update(DENY=('-',), deny=('-',), MUTATE=set(), "
    "mutate={}, LIST=set(), inside=lambda *a: True, read_ok=('/',), work='/')"
)


def _run(source: str) -> str:
    result = run_python(textwrap.dedent(source), LIMITS)
    return result.stdout + result.stderr


def test_rebinding_the_hooks_names_does_not_disable_it(outside, listener) -> None:
    port = listener.getsockname()[1]
    out = _run(f"""
        {DISABLE}
        import builtins, socket
        builtins.isinstance = lambda *a: True
        builtins.any = builtins.all = lambda *a: True
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=2)
            print("CONNECTED")
        except Exception as exc:
            print("refused", exc)
        try:
            open({outside["target"]!r}, "w").write("x")
        except Exception as exc:
            print("refused", exc)
    """)
    assert "CONNECTED" not in out and out.count("refused") == 2
    assert not _connected(listener) and not Path(outside["target"]).exists()


@pytest.mark.parametrize("unisolated", [False, True], ids=["namespaces", "unisolated"])
def test_dir_fd_rename_and_symlink_do_not_escape(outside, monkeypatch, unisolated) -> None:
    """Unisolated (the hook alone, as root here), ``os.open(rel, dir_fd=...)`` read a secret
    and wrote outside at 4df1ece: the open event does not carry ``dir_fd``. Directories cannot
    be opened now, so there is no ``dir_fd`` to be relative to."""
    if unisolated:
        monkeypatch.setattr(isolate, "isolation_problem", lambda: "bubblewrap is not installed")
    target, secret = outside["target"], outside["secret"]
    stdlib = os.path.dirname(os.__file__)
    source = textwrap.dedent(f"""
        import os
        attempts = []
        def attempt(name, action):
            try:
                attempts.append((name, action()))
            except Exception as exc:
                attempts.append((name, type(exc).__name__))
        fds = {{}}
        attempt("open dir", lambda: fds.setdefault("here", os.open(".", os.O_RDONLY)))
        attempt("open lib", lambda: fds.setdefault("lib", os.open({stdlib!r}, os.O_RDONLY)))
        here, lib = fds.get("here", 999), fds.get("lib", 999)  # 999: no such descriptor
        os.makedirs("a/b/c/d/e/f/g/h/i/j/k/l")
        os.chdir("a/b/c/d/e/f/g/h/i/j/k/l")
        rel = os.path.relpath({secret!r}, {stdlib!r})
        attempt("dir_fd read", lambda: os.read(os.open(rel, os.O_RDONLY, dir_fd=lib), 100))
        attempt("dir_fd write", lambda: os.open("os.py", os.O_WRONLY | os.O_TRUNC, dir_fd=lib))
        open("inside.txt", "w").write("x")
        attempt("rename", lambda: os.rename("inside.txt", {target!r}))
        attempt("rename dir_fd", lambda: os.rename("inside.txt", "evil.py", dst_dir_fd=lib))
        attempt("symlink", lambda: os.symlink({secret!r}, "link"))
        attempt("read link", lambda: open("link").read())
        attempt("listing", lambda: os.listdir({os.path.dirname(secret)!r}))
        print(attempts)
    """)
    result = run_python(source, LIMITS, unisolated=unisolated)
    out = result.stdout + result.stderr
    assert result.passed, out
    assert SECRET not in out and "config.yaml" not in out
    assert not Path(target).exists() and not Path(stdlib, "evil.py").exists()
    assert out.count("Error") >= 9 and "'open dir', 'PermissionError'" in out, out


def test_signals_cannot_reach_processes_outside(victim) -> None:
    out = _run(f"""
        import os
        for name, action in [
            ("kill", lambda: os.kill({victim.pid}, 9)),
            ("killpg", lambda: os.killpg(os.getpgid({victim.pid}), 9)),
            ("pidfd", lambda: os.pidfd_open({victim.pid})),
            ("signal", lambda: __import__("signal").pidfd_send_signal),
            ("_signal", lambda: __import__("_signal")),
        ]:
            try:
                print(name, action())
            except Exception as exc:
                print(name, "refused", type(exc).__name__)
    """)
    time.sleep(0.2)
    assert victim.poll() is None, out
    assert out.count("refused") == 5, out


def _fork_exec_source(marker: str) -> str:
    """A shell, and a detached (setsid) child, started below subprocess's audit event."""
    return f"""
        import _posixsubprocess, os, sys
        def spawn(args, setsid):
            r, w = os.pipe()
            return _posixsubprocess.fork_exec(
                args, [args[0]], True, (w,), None, None, -1, -1, -1, 1, -1, 2, r, w,
                False, setsid, -1, None, None, None, -1, None, False)
        for args, setsid in [([b"/bin/sh", b"-c", b"echo PWNED"], False),
                             ([sys.executable.encode(), b"-c",
                               b"import time; time.sleep(30)", b"{marker}"], True)]:
            try:
                print("started", spawn(args, setsid))
            except Exception as exc:
                print("refused", type(exc).__name__, exc)
        import time; time.sleep(0.5)
    """


def _processes_with(marker: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if marker.encode() in (entry / "cmdline").read_bytes():
                found.append(entry.name)
        except OSError:
            continue
    return found


def test_fork_exec_runs_nothing_and_leaves_nothing_behind(tmp_path) -> None:
    marker = f"dataloop-marker-{os.getpid()}-{time.monotonic_ns()}"
    source = textwrap.dedent(_fork_exec_source(marker))
    with (tmp_path / "control.txt").open("w") as log:  # a file: the detached child keeps it
        subprocess.run([sys.executable, "-c", source], stdout=log, stderr=log, timeout=30)
    control = (tmp_path / "control.txt").read_text()
    assert "PWNED" in control and _processes_with(marker)  # unsandboxed, it works
    for pid in _processes_with(marker):
        os.kill(int(pid), 9)
    out = _run(_fork_exec_source(marker))
    time.sleep(0.5)
    assert "PWNED" not in out and out.count("refused") == 2, out
    assert not _processes_with(marker)


def test_the_parents_environment_is_out_of_reach(victim) -> None:
    out = _run(f"""
        {DISABLE}
        import os
        print(dict(os.environ))
        for pid in ["self", "1", "2", str(os.getppid()), "{victim.pid}"]:
            try:
                print(open(f"/proc/{{pid}}/environ").read())
            except Exception as exc:
                print(pid, type(exc).__name__)
    """)
    assert SECRET not in out and "DATALOOP_TEST_KEY" not in out


def test_the_namespaces_hold_without_the_audit_hook(tmp_path, outside, victim, listener) -> None:
    """The kernel's layer alone (no harness, no hook; privileges dropped as the harness does):
    no host network even after setns, no other process, no parent environment, no host files."""
    port = listener.getsockname()[1]
    work = tmp_path / "work"
    work.mkdir()
    if os.geteuid() == 0:
        os.chown(work, 65534, 65534)  # the program runs as nobody and writes there
    source = textwrap.dedent(f"""
        import ctypes, os, socket
        if os.geteuid() == 0:
            os.setgroups([]); os.setgid(65534); os.setuid(65534)
        libc = ctypes.CDLL(None, use_errno=True)
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
        print("pids", pids)
        for pid in pids:
            try:
                fd = os.open(f"/proc/{{pid}}/ns/net", os.O_RDONLY)
                print("setns", pid, libc.setns(fd, 0x40000000))
            except OSError as exc:
                print("setns", pid, exc)
            try:
                print("environ", open(f"/proc/{{pid}}/environ").read())
            except OSError as exc:
                print("environ", pid, exc)
        for name, action in [
            ("connect", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=2)),
            ("read", lambda: open({outside["secret"]!r}).read()),
            ("write", lambda: open({outside["target"]!r}, "w").write("x")),
            ("write /usr", lambda: open("/usr/lib/evil", "w").write("x")),
            ("kill", lambda: os.kill({victim.pid}, 9)),
        ]:
            try:
                print(name, action())
            except OSError as exc:
                print(name, "DENIED", exc)
        print("env", dict(os.environ))
    """)
    done = subprocess.run(
        [*bwrap_argv(work, 16), "-I", "-S", "-c", source],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DATALOOP_TEST_KEY": SECRET},  # bwrap clears it for the program
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "pids ['1', '2']" in out  # bwrap's init and the program: nothing of the host
    assert out.count("DENIED") == 5 and SECRET not in out, out
    assert not _connected(listener) and victim.poll() is None
    assert not Path(outside["target"]).exists()


# Fake passes found at 4df1ece: each passed the guarded tests there.
METACLASS = """
class Meta(type):
    # type.__getattribute__ gives a metaclass's data descriptor precedence: a guard that asks
    # it for Yes.__eq__ got str.__eq__ back and took Yes for a faithful str.
    __eq__ = property(lambda cls: str.__eq__)
    __ne__ = property(lambda cls: str.__ne__)
class Yes(str, metaclass=Meta):
    __hash__ = str.__hash__
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
def f(x):
    return Yes("no")
"""
ARITHMETIC = """
class Zero:
    def __sub__(self, other):
        return 0
    __rsub__ = __sub__
def f(x):
    return Zero()
"""
FLOAT_ZERO = """
class Zero(float):
    def __sub__(self, other):
        return 0.0
    __rsub__ = __sub__
def f(x):
    return Zero(7.0)
"""
FAKES = {
    "metaclass property __eq__": (METACLASS, "assert f(2) == 'four'\nassert 'four' == f(2)"),
    "global abs": (
        "abs = lambda *a: 0\ndef f(x):\n    return x\n",
        "assert abs(f(1.33) - 0.33) < 1e-6",
    ),
    "global tuple": (
        "tuple = lambda *a: ()\ndef f(x):\n    return x\n",
        "assert tuple(f([3, 1])) == tuple([1, 3])",
    ),
    "global sorted": (
        "sorted = lambda *a, **k: [1, 3]\ndef f(x):\n    return [9]\n",
        "assert sorted(f([3, 1])) == [1, 3]",
    ),
    "global set": (
        "set = lambda *a: {1, 3}\ndef f(x):\n    return [9]\n",
        "assert set(f([3, 1])) == {1, 3}",
    ),
    "arithmetic returns 0": (ARITHMETIC, "assert abs(f([1.0, 2.0]) - 2.0 / 3.0) < 1e-6"),
    "float subclass arithmetic": (FLOAT_ZERO, "assert abs(f(1) - 0.5) < 1e-6"),
}


@pytest.mark.parametrize("fake", FAKES)
def test_new_fake_passes_fail(fake) -> None:
    program, tests = FAKES[fake]
    result = run_python(program, LIMITS, tests=tests)
    assert result.status == "failed", (fake, result.stderr)


def test_tests_see_only_the_functions_they_call() -> None:
    program = "import math\nhidden = 1\ndef f(x):\n    return {'a': (x, 2.5), 'b': [None, b'x']}\n"
    tests = "assert f(1) == {'a': (1, 2.5), 'b': [None, b'x']}\nassert math.pi > 3\n"
    assert run_python(program, LIMITS, tests=tests).passed
    only_f = run_python(program, LIMITS, tests="assert f(0) and hidden == 1", names=["f"])
    assert only_f.status == "failed" and "NameError: name 'hidden'" in only_f.stderr
    assert sandbox.free_names("assert f(x) == sorted(y)", "x = y = 1") == ("f",)


def test_returned_objects_reach_the_tests_as_plain_data() -> None:
    program = "class C:\n    pass\ndef f():\n    return [C()]\n"
    result = run_python(program, LIMITS, tests="assert len(f()) == 1")
    assert result.status == "failed" and "a C was returned, not plain data" in result.stderr


def _bytes_written(source: str, limits: SandboxLimits, unisolated: bool = False) -> int:
    result = run_python(source, limits, unisolated=unisolated)
    assert result.passed, result.stderr
    return int(result.stdout.split()[-1])


# 48 files of 16 MB each (each under RLIMIT_FSIZE) filled the host's temp folder at 4df1ece.
FILL_DISK = """
import os
written = 0
for i in range(48):
    try:
        with open(f"f{i}", "wb") as f:
            for _ in range(16):
                f.write(b"x" * (1 << 20))
                f.flush()
                written += 1 << 20
    except OSError as exc:
        print(type(exc).__name__)
print(written)
"""


@pytest.mark.parametrize("unisolated", [False, True], ids=["namespaces", "unisolated"])
def test_total_bytes_written_are_bounded(monkeypatch, unisolated) -> None:
    if unisolated:
        monkeypatch.setattr(isolate, "isolation_problem", lambda: "bubblewrap is not installed")
    limits = LIMITS.model_copy(update={"disk_mb": 32})
    written = _bytes_written(FILL_DISK, limits, unisolated)
    assert 0 < written <= 32 << 20


@pytest.mark.parametrize("unisolated", [False, True], ids=["namespaces", "unisolated"])
def test_files_created_are_counted(monkeypatch, unisolated) -> None:
    if unisolated:
        monkeypatch.setattr(isolate, "isolation_problem", lambda: "bubblewrap is not installed")
    many = "import os\nfor i in range(300):\n    open(f'f{i}', 'w').close()\nprint('made all')\n"
    dirs = "import os\nfor i in range(300):\n    os.mkdir(f'd{i}')\nprint('made all')\n"
    limits = LIMITS.model_copy(update={"max_files": 100})
    for source in (many, dirs):
        result = run_python(source, limits, unisolated=unisolated)
        assert result.status == "failed" and "made all" not in result.stdout
        assert "files created" in result.stderr
    rewrite = "for i in range(300):\n    open('same', 'w').write(str(i))\n"
    assert run_python(rewrite, limits, unisolated=unisolated).passed
