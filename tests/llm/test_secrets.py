"""The teacher's API key comes from the environment and is never written to the run or its logs."""

from __future__ import annotations

import asyncio
import logging

import pytest
from fakeserver import FakeOpenAI

from dataloop.config import dump_config, validate_config
from dataloop.errors import ConfigError
from dataloop.llm import Sampling
from dataloop.llm.backends import teacher_client
from dataloop.logs import attach_run_log, detach
from dataloop.redact import redact_keys
from dataloop.runs import RunDir

SECRET = "sk-test-7f3a9c1e5b"


def test_api_key_is_used_but_never_written_to_the_run_or_logs(
    tmp_path, monkeypatch, caplog
) -> None:
    monkeypatch.setenv("DATALOOP_TEST_KEY", SECRET)
    caplog.set_level(logging.DEBUG)  # everything: dataloop, openai, httpx
    run = RunDir(tmp_path / "run")
    with FakeOpenAI(fault_rate=0.5, seed=4, slow_seconds=0.1) as server:
        config = validate_config(
            {
                "teacher": {
                    "backend": "openai",
                    "model": "fake",
                    "base_urls": [server.base_url],
                    "api_key_env": "DATALOOP_TEST_KEY",
                    "retries": 8,
                }
            }
        )
        run.path.mkdir(parents=True)
        run.write_config(dump_config(config))
        handler = attach_run_log(run.log_file)
        try:
            with teacher_client(
                config.teacher, cache_dir=run.cache, server_log=run.teacher_log
            ) as client:

                async def go() -> None:
                    for i in range(6):
                        await client.complete(f"q{i}", Sampling(seed=i))
                    await client.aclose()

                asyncio.run(go())
        finally:
            detach(handler)
    assert server.auth and all(a == f"Bearer {SECRET}" for a in server.auth)  # the key was sent
    assert sum(server.faults.values()) > 0  # and retries were logged
    assert "api_key_env: DATALOOP_TEST_KEY" in (run.path / "config.yaml").read_text()
    written = [p for p in run.path.rglob("*") if p.is_file()]
    assert len(written) >= 3  # config, log, cache entries
    for path in written:
        assert SECRET not in path.read_text(errors="replace"), path
    assert "Retrying" in caplog.text and "/completions" in caplog.text  # the logs were captured
    assert SECRET not in caplog.text


def test_a_missing_key_variable_is_named(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("DATALOOP_TEST_KEY", raising=False)
    config = validate_config(
        {
            "teacher": {
                "backend": "openai",
                "model": "m",
                "base_urls": ["http://127.0.0.1:9/v1"],
                "api_key_env": "DATALOOP_TEST_KEY",
            }
        }
    )
    with (
        pytest.raises(ConfigError, match="DATALOOP_TEST_KEY is not set"),
        teacher_client(config.teacher, cache_dir=tmp_path, server_log=tmp_path / "t.log"),
    ):
        pass


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("no model folder at sk-proj-9Zx7TopSecretKey1234567890", "no model folder at ***"),
        ("'hf_aBcDeFgHiJkLmNoPqRsTuVwXyZ012345' is not a URL", "'***' is not a URL"),
        ("token aB3dE5gH7jK9mN1pQ3sT5vW7yZ here", "token *** here"),
        # Names and paths are not keys: shown as they are.
        ("Meta-Llama-3-8B-Instruct", "Meta-Llama-3-8B-Instruct"),
        ("Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-0.5B-Instruct"),
        (
            "/tmp/pytest-of-root/pytest-4/test_a_teacher_mid_0",
            "/tmp/pytest-of-root/pytest-4/test_a_teacher_mid_0",
        ),
        (
            "lists-bc241ead7287 OPENAI_API_KEY_FOR_THE_TEACHER",
            "lists-bc241ead7287 OPENAI_API_KEY_FOR_THE_TEACHER",
        ),
    ],
)
def test_keys_in_messages_are_redacted_and_names_are_not(text, shown) -> None:
    assert redact_keys(text) == shown
