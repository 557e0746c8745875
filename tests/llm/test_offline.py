"""The offline vLLM client: batching, accounting and parameters, with a stand-in ``vllm`` module.

vLLM itself needs a GPU and is not part of the CPU install; the last test runs the real engine
where it is installed and a model is named in ``DATALOOP_VLLM_TEST_MODEL``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
import types
from dataclasses import dataclass, field
from typing import Any

import pytest

from dataloop.errors import BudgetExhausted, TeacherError
from dataloop.llm import Message, Sampling, VLLMOfflineClient
from dataloop.schema import Budget


@dataclass
class _Out:
    text: str
    token_ids: list[int]
    finish_reason: str = "stop"


@dataclass
class _RequestOutput:
    prompt_token_ids: list[int]
    outputs: list[_Out]


@dataclass
class FakeLLM:
    """Records every call; answers each prompt with its length, one token per character."""

    model: str
    kwargs: dict[str, Any]
    calls: list[tuple[str, int]] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def _answer(self, text: str, params: dict[str, Any]) -> _RequestOutput:
        reply = f"len {len(text)}"
        outs = [_Out(reply, list(range(len(reply)))) for _ in range(params["n"])]
        return _RequestOutput(list(range(len(text))), outs)

    def generate(self, prompts: list[str], params: list[Any], use_tqdm: bool) -> list[Any]:
        self.calls.append(("generate", len(prompts)))
        self.params += params
        return [self._answer(p, s) for p, s in zip(prompts, params, strict=True)]

    def chat(self, conversations: list[Any], params: list[Any], use_tqdm: bool) -> list[Any]:
        self.calls.append(("chat", len(conversations)))
        self.params += params
        texts = ["".join(m["content"] for m in c) for c in conversations]
        return [self._answer(t, s) for t, s in zip(texts, params, strict=True)]


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType("vllm")
    module.LLM = lambda model, **kwargs: FakeLLM(model, kwargs)  # type: ignore[attr-defined]
    module.SamplingParams = lambda **kwargs: kwargs  # type: ignore[attr-defined]
    sampling = types.ModuleType("vllm.sampling_params")
    sampling.StructuredOutputsParams = lambda json: {"json": json}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", sampling)
    return module


def test_requests_sent_together_run_as_one_batch_and_are_counted(fake_vllm) -> None:
    async def go(client: VLLMOfflineClient) -> list[Any]:
        prompts = [client.complete("x" * i, Sampling(seed=i)) for i in range(1, 9)]
        chats = [client.chat([Message(role="user", content="hey")], Sampling(n=2)) for _ in "abc"]
        out = await asyncio.gather(*prompts, *chats)
        await client.aclose()
        return out

    client = VLLMOfflineClient("teacher", tensor_parallel_size=2, max_model_len=4096)
    out = asyncio.run(go(client))
    llm: FakeLLM = client.llm
    assert llm.kwargs == {"tensor_parallel_size": 2, "seed": 0, "max_model_len": 4096}
    assert llm.calls == [("generate", 8), ("chat", 3)]  # 11 requests, 2 engine calls
    assert [c.texts for c in out[:8]] == [[f"len {i}"] for i in range(1, 9)]
    assert out[8].texts == ["len 3", "len 3"]
    assert client.budget.queries == 11
    assert client.budget.prompt_tokens == sum(range(1, 9)) + 3 * 3
    assert client.budget.completion_tokens == 8 * 5 + 3 * 2 * 5
    # No seed in Sampling: none passed, so vLLM draws one (its default).
    assert [p.get("seed") for p in llm.params] == [*range(1, 9), None, None, None]


def test_sampling_and_json_schema_become_vllm_parameters(fake_vllm) -> None:
    schema = {"type": "object"}
    client = VLLMOfflineClient("teacher")
    sampling = Sampling(temperature=0.2, top_p=0.5, max_tokens=7, stop=("\n",), json_schema=schema)
    asyncio.run(client.complete("q", sampling))
    (params,) = client.llm.params
    assert params == {
        "n": 1,
        "temperature": 0.2,
        "top_p": 0.5,
        "max_tokens": 7,
        "stop": ["\n"],
        "structured_outputs": {"json": schema},
    }


def test_budget_is_reserved_before_the_batch_runs(fake_vllm) -> None:
    async def go(client: VLLMOfflineClient) -> list[Any]:
        jobs = [client.complete(f"p{i}", Sampling()) for i in range(10)]
        return await asyncio.gather(*jobs, return_exceptions=True)

    client = VLLMOfflineClient("teacher", budget=Budget(max_queries=4))
    results = asyncio.run(go(client))
    assert sum(isinstance(r, BudgetExhausted) for r in results) == 6
    assert client.llm.calls == [("generate", 4)]
    assert client.budget.queries == 4


def test_an_engine_failure_fails_its_requests_not_the_client(fake_vllm) -> None:
    async def go(client: VLLMOfflineClient) -> tuple[list[Any], Any]:
        client.llm.generate = None  # calling it raises TypeError inside the worker thread
        failed = await asyncio.gather(client.complete("a", Sampling()), return_exceptions=True)
        client.llm.generate = FakeLLM("teacher", {}).generate
        return failed, await client.complete("b", Sampling())

    client = VLLMOfflineClient("teacher")
    failed, ok = asyncio.run(go(client))
    assert isinstance(failed[0], TeacherError) and "vLLM teacher 'teacher' failed" in str(failed[0])
    assert ok.texts == ["len 1"]
    assert client.budget.queries == 1  # the failed request cost nothing


def test_without_vllm_the_error_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    with pytest.raises(TeacherError, match=r"pip install 'dataloop\[vllm\]'"):
        VLLMOfflineClient("teacher")


@pytest.mark.skipif(
    importlib.util.find_spec("vllm") is None,
    reason="vllm is not installed (GPU extra: pip install 'dataloop[vllm]')",
)
@pytest.mark.skipif(
    not os.environ.get("DATALOOP_VLLM_TEST_MODEL"),
    reason="set DATALOOP_VLLM_TEST_MODEL to a local model directory to run real vLLM",
)
def test_real_vllm_engine_completes_and_counts_tokens() -> None:
    async def go(client: VLLMOfflineClient) -> list[Any]:
        return await asyncio.gather(
            *(client.complete(f"{i} + {i} =", Sampling(max_tokens=8, seed=i)) for i in range(4))
        )

    client = VLLMOfflineClient(
        os.environ["DATALOOP_VLLM_TEST_MODEL"],
        max_model_len=512,
        engine_args={"gpu_memory_utilization": 0.3},
    )
    out = asyncio.run(go(client))
    assert all(c.texts[0] for c in out)
    assert client.budget.queries == 4 and 0 < client.budget.completion_tokens <= 32
