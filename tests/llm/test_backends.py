"""A teacher built from its config section: checked before anything starts, then its client."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest
from fakeserver import FakeOpenAI

from dataloop.config import teacher_config
from dataloop.errors import BudgetExhausted, ConfigError
from dataloop.llm import Sampling
from dataloop.llm.backends import check_teacher, teacher_client, teacher_servers
from dataloop.runs import RunDir

URL = "http://127.0.0.1:9/v1"


def test_an_openai_teacher_answers_caches_and_keeps_to_its_budget(tmp_path) -> None:
    section = {"backend": "openai", "model": "fake", "max_queries": 1, "concurrency": 2}

    async def go(client):
        first = await client.complete("q", Sampling(seed=1))
        again = await client.complete("q", Sampling(seed=1))
        with pytest.raises(BudgetExhausted):
            await client.complete("another question", Sampling(seed=1))
        await client.aclose()
        return first, again

    with FakeOpenAI() as server:
        config = teacher_config({**section, "base_urls": [server.base_url]})
        log = tmp_path / "t.log"
        with teacher_client(config, cache_dir=tmp_path / "cache", server_log=log) as client:
            first, again = asyncio.run(go(client))
    assert first.texts == [" echo 1"] and not first.cached
    assert again.cached and server.requests == 1
    assert list((tmp_path / "cache").iterdir())  # on disk: a rerun does not pay again
    assert not log.exists()  # a running server: nothing started


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"backend": "openai", "model": "m"}, "'teacher.base_urls': the openai backend needs"),
        ({"backend": "vllm"}, "'teacher.model': the vllm backend needs a model"),
        ({"model": "/nowhere/m.gguf"}, "'teacher.model': GGUF file /nowhere/m.gguf does not"),
        (
            {"backend": "openai", "model": "m", "base_urls": [URL], "max_cost": 1.0},
            "'teacher.max_cost': teacher.prices has no entry for model 'm'",
        ),
        (
            {"backend": "openai", "model": "m", "base_urls": [URL], "api_key_env": "DL_NO_KEY"},
            "'teacher.api_key_env': environment variable DL_NO_KEY is not set",
        ),
        (
            {"backend": "vllm", "model": "org/m", "served_model": "sk-proj-9Zx7TopSecret12345678"},
            "'teacher.served_model': this looks like an API key",
        ),
    ],
)
def test_what_a_backend_lacks_is_named_before_anything_starts(
    section, message, monkeypatch
) -> None:
    monkeypatch.delenv("DL_NO_KEY", raising=False)
    with pytest.raises(ConfigError, match=message) as err:
        check_teacher(teacher_config(section))
    assert "sk-proj" not in str(err.value)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed")
def test_an_offline_vllm_teacher_without_vllm_is_refused() -> None:
    with pytest.raises(ConfigError, match="'vllm-offline' needs vLLM"):
        check_teacher(teacher_config({"backend": "vllm-offline", "model": "org/m"}))


def test_only_llama_server_and_vllm_start_servers(tmp_path) -> None:
    config = teacher_config({"backend": "openai", "model": "m", "base_urls": [URL]})
    with pytest.raises(ConfigError, match="'openai' starts no server; known: llama-server, vllm"):
        teacher_servers(config, tmp_path / "t.log")


def test_the_names_assemble_once_held_still_work_with_a_warning(tmp_path) -> None:
    import dataloop.assemble as assemble

    config = teacher_config({"backend": "openai", "model": "m", "api_key_env": "DL_NO_KEY"})
    with pytest.warns(DeprecationWarning, match=r"dataloop\.llm\.backends\.check_teacher"):
        old_check = assemble.check_teacher
    with pytest.raises(ConfigError, match="needs at least one URL"):
        old_check(config)
    with pytest.warns(DeprecationWarning, match=r"dataloop\.llm\.backends\.teacher_servers"):
        assert assemble.teacher_servers is teacher_servers
    with pytest.warns(DeprecationWarning, match="cache_dir=run.cache"):
        old_client = assemble.teacher_client
    with (
        pytest.raises(ConfigError, match="needs at least one URL"),
        old_client(config, RunDir(tmp_path)),
    ):
        pass
    with pytest.warns(DeprecationWarning, match=r"dataloop\.environments\.SPLITS"):
        assert assemble.SPLITS == ("train", "validation", "test")
    with pytest.raises(AttributeError):
        assemble.no_such_name  # noqa: B018
