"""Shared fixtures. Integration tests (marked ``integration``) run the real thing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def arithmetic():
    """The arithmetic task with small splits and every skill it has (the default mix and the
    opt-in add/sub/mul the unit tests use)."""
    from dataloop.environments import load_task

    return load_task(
        "arithmetic",
        options={"validation_per_skill": 20, "test_per_skill": 20, "skills": ALL_ARITHMETIC},
    )


ALL_ARITHMETIC = ["first", "last", "len", "add", "sub", "mul", "max", "sort", "reverse"]


@pytest.fixture(scope="session")
def llama() -> Iterator[str]:
    """A real llama-server with the packaged Gemma 3 270M; yields its base URL."""
    from dataloop.llm.server import default_gguf, llama_server

    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"dataloop-test-llama-{os.getpid()}.log"
    with llama_server(default_gguf(), log, parallel=4) as server:
        yield server.base_url


@pytest.fixture(scope="session")
def llama_replicas(tmp_path_factory) -> Iterator[list[str]]:
    """Two real llama-servers with the packaged Gemma 3 270M, started by ``dataloop serve
    --replicas 2``; yields the ``base_urls`` it prints. Stopped with Ctrl-C (SIGINT)."""
    from dataloop.llm.server import free_port

    folder = tmp_path_factory.mktemp("replicas")
    command = [sys.executable, "-m", "dataloop.cli", "serve", "--replicas", "2"]
    command += ["--port", str(free_port()), "--parallel", "2", "--threads", "1"]
    command += ["--log", str(folder / "llama.log")]
    serve = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert serve.stdout is not None
    lines = []
    for line in serve.stdout:  # blocks until the replicas are healthy and listed
        lines.append(line)
        if line.startswith("teacher.base_urls: ["):
            break
    else:
        pytest.fail(f"dataloop serve exited with {serve.wait()}:\n{''.join(lines)}")
    try:
        yield line.removeprefix("teacher.base_urls: [").strip().removesuffix("]").split(", ")
    finally:
        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=30) == 0, serve.stdout.read()


@pytest.fixture(scope="session")
def local_ray() -> Iterator[None]:
    """A Ray instance on this machine for the whole session (2 CPUs), started as ``dataloop
    bench --executor ray`` starts one (on 127.0.0.1 only, no token under ~/.ray), then shut
    down. Without Ray the tests that use it skip, except in CI, where they fail."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:  # not imported: Ray reads its settings then
        if os.environ.get("CI"):
            pytest.fail("Ray is missing: `make install` installs the [ray] extra for CI")
        pytest.skip("Ray is not installed (pip install 'dataloop[ray]')")
    from dataloop.bench.workers import start_local_ray

    start_local_ray(num_cpus=2)
    yield
    import ray

    ray.shutdown()
