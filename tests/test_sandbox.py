"""The sandbox stops runaway, hostile and careless programs, and reports them as failures."""

from __future__ import annotations

import socket
import subprocess
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from dataloop.sandbox import (
    NOBODY,
    SandboxLimits,
    SandboxUnavailable,
    guard_comparisons,
    isolate,
    run_python,
)

LIMITS = SandboxLimits(cpu_seconds=2, wall_seconds=3, memory_mb=256)


def test_a_plain_program_passes_and_a_failing_assert_fails() -> None:
    ok = run_python("import collections, math, json\nprint(math.factorial(5))", LIMITS)
    assert ok.passed and ok.stdout.strip() == "120"
    bad = run_python("assert 1 == 2", LIMITS)
    assert bad.status == "failed" and "AssertionError" in bad.stderr


def test_infinite_loop_is_stopped() -> None:
    result = run_python("while True:\n    pass\n", LIMITS)
    assert result.status in {"killed", "timeout"} and result.seconds < 10


def test_sleeping_program_hits_the_wall_clock() -> None:
    result = run_python("import time\ntime.sleep(60)", SandboxLimits(wall_seconds=1))
    assert result.status == "timeout" and result.seconds < 5


def test_fork_bomb_is_stopped() -> None:
    source = "import os\nwhile True:\n    os.fork()\n"
    result = run_python(source, LIMITS)
    assert result.status == "failed" and "not allowed" in result.stderr
    spawn = run_python("import subprocess\nsubprocess.run(['sh', '-c', 'echo hi'])", LIMITS)
    assert spawn.status == "failed" and "hi" not in spawn.stdout


def test_memory_hog_is_stopped() -> None:
    result = run_python("chunks = []\nwhile True:\n    chunks.append(' ' * 10**7)\n", LIMITS)
    assert result.status in {"failed", "killed"} and "MemoryError" in result.stderr


def test_socket_is_refused_even_to_localhost() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    accepted: list[object] = []
    server.settimeout(5)
    thread = threading.Thread(target=lambda: accepted.append(_accept(server)), daemon=True)
    thread.start()
    source = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
    result = run_python(source, LIMITS)
    thread.join(6)
    server.close()
    assert result.status == "failed" and accepted == [None]


def _accept(server: socket.socket) -> object:
    try:
        return server.accept()
    except OSError:
        return None


def test_writing_or_reading_outside_the_working_dir_is_refused(tmp_path) -> None:
    target = tmp_path / "escaped.txt"
    secret = tmp_path / "run" / "config.yaml"
    secret.parent.mkdir()
    secret.write_text("api_key: x")
    source = textwrap.dedent(f"""
        with open("inside.txt", "w") as f:
            f.write("fine")
        try:
            open({str(secret)!r}).read()
        except PermissionError:
            print("read refused")
        open({str(target)!r}, "w").write("escaped")
    """)
    result = run_python(source, LIMITS)
    assert result.status == "failed" and "read refused" in result.stdout
    assert not target.exists()


def test_each_run_gets_a_fresh_directory_that_is_removed() -> None:
    first = run_python("import os\nprint(os.getcwd())\nopen('left.txt', 'w').write('x')", LIMITS)
    second = run_python("import os\nprint(os.listdir('.'))", LIMITS)
    assert first.passed and second.passed
    assert not Path(first.stdout.strip()).exists() and "left.txt" not in second.stdout


def test_hostile_programs_do_not_stop_the_others() -> None:
    sources = ["while True: pass", "print('still here')", "import os; os.fork()"]
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda s: run_python(s, LIMITS), sources))
    assert [r.passed for r in results] == [False, True, False]
    assert results[1].stdout.strip() == "still here"


def test_report_says_what_is_enforced() -> None:
    result = run_python("import os\nprint(os.getuid())", LIMITS, report=True)
    assert result.passed and '"isolation": "namespaces"' in result.stderr
    assert result.stdout.strip() == str(NOBODY)  # root drops to nobody; a user is mapped to it


def test_exit_status_zero_alone_is_not_a_pass() -> None:
    for source in ("import sys\nsys.exit(0)", "import os\nos._exit(0)", "raise SystemExit"):
        assert run_python(source + "\nprint('end')", LIMITS).status == "failed", source
    bad_tests = "assert f(2) == 5"
    atexit = "import atexit, os\natexit.register(os._exit, 0)\ndef f(x):\n    return 2 * x\n"
    result = run_python(atexit, LIMITS, tests=bad_tests)
    assert result.returncode == 0 and result.status == "failed"


@pytest.mark.parametrize(
    ("program", "tests"),
    [
        (
            "class Yes:\n    def __eq__(self, other):\n        return True\n"
            "def f(x):\n    return Yes()\n",
            "assert f(2) == 4",
        ),
        (
            "class Yes(str):\n    __eq__ = str.__ne__\ndef f(x):\n    return Yes('no')\n",
            "assert f(2) == 'four'",
        ),
        (
            "class Yes(int):\n    def __eq__(self, other):\n        return True\n"
            "def f(x):\n    return [Yes(0)]\n",
            "assert f(2) == [4]",
        ),
        (
            "import builtins\nbuiltins.abs = lambda x: 0\ndef f(x):\n    return 0.0\n",
            "assert abs(f(2) - 4.0) < 1e-9",
        ),
    ],
)
def test_objects_that_claim_equality_do_not_pass_the_tests(program, tests) -> None:
    fooled = run_python(f"{program}\n{tests}\nprint('fooled')", LIMITS)
    assert fooled.passed and "fooled" in fooled.stdout  # unguarded, the trick works
    assert run_python(program, LIMITS, tests=tests).status == "failed"


def test_honest_values_pass_guarded_comparisons() -> None:
    program = (
        "from collections import namedtuple, defaultdict\nP = namedtuple('P', 'x y')\n"
        "def f(x):\n    d = defaultdict(int)\n    d['a'] += x\n    return [P(x, 1), d, 0.5]\n"
    )
    tests = "assert f(2) == [(2, 1), {'a': 2}, 0.5]\nassert 0 < f(1)[2] <= 1\nassert 3 not in f(1)"
    assert run_python(program, LIMITS, tests=tests).passed


def test_guard_rewrites_comparisons_but_not_identity() -> None:
    guarded = guard_comparisons("assert f(1) == 2\nassert f(1) is not None")
    assert "__dataloop_compare__(f(1), ('==',), (2,))" in guarded and "is not None" in guarded


@pytest.mark.parametrize("limit", [{"memory_mb": 1}, {"cpu_seconds": 0}])
def test_limits_are_validated(limit) -> None:
    with pytest.raises(ValueError):
        SandboxLimits(**limit)


def test_without_namespaces_it_refuses_unless_unisolated(monkeypatch) -> None:
    monkeypatch.setattr(isolate, "isolation_problem", lambda: "bubblewrap is not installed")
    with pytest.raises(SandboxUnavailable, match="bubblewrap is not installed; or allow"):
        run_python("pass", LIMITS)
    result = run_python("print(1)", LIMITS, unisolated=True, report=True)
    assert result.passed and '"isolation": "process"' in result.stderr
    assert run_python("import os\nos._exit(0)", LIMITS, unisolated=True).status == "failed"


def test_a_bubblewrap_without_size_limited_tmpfs_is_named(monkeypatch) -> None:
    """The work dir's tmpfs needs ``--size`` (bubblewrap 0.8.0); an older one says so."""
    old = subprocess.CompletedProcess([], 1, "", "bwrap: Unknown option --size\n")
    monkeypatch.setattr(isolate.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(isolate.subprocess, "run", lambda *a, **k: old)
    isolate.isolation_problem.cache_clear()
    try:
        assert isolate.isolation_problem() == (
            "bubblewrap 0.8.0 or newer is needed (--size): bwrap: Unknown option --size"
        )
    finally:
        isolate.isolation_problem.cache_clear()
