"""The vLLM student engine's protocol, against a stand-in ``vllm serve`` (no GPU, no vllm)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from dataloop.config import LoraSettings, StudentConfig, VLLMSettings
from dataloop.errors import ConfigError
from dataloop.llm.server import ManagedServer, free_port
from dataloop.students.vllm_engine import Served, StudentEngineError, VLLMServer, make_engine

FAKE = Path(__file__).with_name("fake_vllm.py")


def fake_factory(calls: Path):
    """A server factory with vllm_server's signature that starts the stand-in."""

    def factory(model, log_path, *, tensor_parallel_size, max_model_len, enable_lora, extra_args):
        port = free_port()
        command = [sys.executable, str(FAKE), "--model", model, "--port", str(port)]
        command += ["--calls", str(calls), "--tensor-parallel-size", str(tensor_parallel_size)]
        command += (["--enable-lora"] if enable_lora else []) + extra_args
        return ManagedServer(command, port, log_path, startup_timeout=60)

    return factory


def events(calls: Path) -> list[dict]:
    return [json.loads(line) for line in calls.read_text().splitlines()]


def test_lora_adapters_are_hot_swapped_on_one_sleeping_server(tmp_path) -> None:
    calls = tmp_path / "calls.jsonl"
    config = StudentConfig(model="/models/base", method="lora", eval_batch_size=2)
    engine = VLLMServer(config, tmp_path / "vllm.log", server_factory=fake_factory(calls))
    try:
        engine.serve(Served(path="/models/base"))
        assert engine.generate([[1, 2], [3], [4, 5, 6]]) == [
            "/models/base|2",
            "/models/base|1",
            "/models/base|3",
        ]
        for iteration in (0, 1):
            engine.sleep()
            with pytest.raises(StudentEngineError, match="503"):
                engine.generate([[1]])  # a sleeping engine holds no GPU and answers nothing
            engine.serve(Served(path=str(tmp_path / f"iteration-{iteration}"), adapter=True))
            assert engine.generate([[1, 2, 3]]) == [f"iteration-{iteration}-{iteration + 1}|3"]
    finally:
        engine.close()
    log = events(calls)
    starts = [e for e in log if e["event"] == "start"]
    assert len(starts) == 1 and starts[0]["lora"]
    assert "--max-lora-rank" in starts[0]["argv"] and "--enable-sleep-mode" in starts[0]["argv"]
    kinds = [e["event"] for e in log if e["event"] != "/v1/completions"]
    assert kinds == [
        "start",
        "/sleep",
        "/wake_up",
        "/v1/load_lora_adapter",
        "/sleep",
        "/wake_up",
        "/v1/load_lora_adapter",
        "/v1/unload_lora_adapter",
    ]
    assert [e["query"] for e in log if e["event"] == "/sleep"] == [{"level": ["1"]}] * 2
    unloaded = [e["body"] for e in log if e["event"] == "/v1/unload_lora_adapter"]
    assert unloaded == [{"lora_name": "iteration-0-1"}]


def test_full_checkpoints_are_served_by_restarting(tmp_path) -> None:
    calls = tmp_path / "calls.jsonl"
    config = StudentConfig(model="/models/base", method="full")
    engine = VLLMServer(config, tmp_path / "vllm.log", server_factory=fake_factory(calls))
    try:
        engine.serve(Served(path="/models/base"))
        engine.sleep()  # weights are about to change: the server goes away while training
        assert engine.server is None
        engine.serve(Served(path="/ckpt/iteration-1"))
        assert engine.generate([[7, 7]]) == ["/ckpt/iteration-1|2"]
    finally:
        engine.close()
    assert [e["model"] for e in events(calls) if e["event"] == "start"] == [
        "/models/base",
        "/ckpt/iteration-1",
    ]


def test_without_sleep_mode_the_engine_stays_awake(tmp_path) -> None:
    calls = tmp_path / "calls.jsonl"
    config = StudentConfig(model="/m", method="lora", vllm=VLLMSettings(sleep=False))
    engine = VLLMServer(config, tmp_path / "vllm.log", server_factory=fake_factory(calls))
    try:
        engine.serve(Served(path="/m"))
        engine.sleep()
        assert engine.generate([[1]]) == ["/m|1"]
    finally:
        engine.close()
    assert "/sleep" not in [e["event"] for e in events(calls)]


@pytest.mark.parametrize(
    ("config", "field"),
    [
        (StudentConfig(eval_backend="vllm"), "student.eval_backend"),
        (StudentConfig(model="/m", gguf_file="m.gguf", eval_backend="vllm"), "eval_backend"),
        (
            StudentConfig(
                model="/m",
                method="lora",
                lora=LoraSettings(r=16),
                eval_backend="vllm",
                vllm=VLLMSettings(max_lora_rank=8),
            ),
            "student.vllm.max_lora_rank",
        ),
    ],
)
def test_configs_vllm_cannot_serve_are_refused_naming_the_field(config, field, tmp_path) -> None:
    with pytest.raises(ConfigError, match=re.escape(field)):
        make_engine(config, tmp_path / "log")


def test_missing_vllm_is_a_config_error_not_an_import_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    config = StudentConfig(model="/m", eval_backend="vllm")
    with pytest.raises(ConfigError, match="'vllm' is not on PATH"):
        make_engine(config, tmp_path / "log")
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    offline = config.model_copy(update={"vllm": VLLMSettings(mode="offline")})
    with pytest.raises(ConfigError, match=r"student\.vllm\.mode"):
        make_engine(offline, tmp_path / "log")
