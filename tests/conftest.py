"""Shared fixtures. Integration tests (marked ``integration``) run the real thing."""

from __future__ import annotations

import os
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
