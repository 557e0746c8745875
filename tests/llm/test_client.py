"""The OpenAI-compatible client against a loopback server that misbehaves on purpose."""

from __future__ import annotations

import asyncio

import pytest
from fakeserver import FakeOpenAI

from dataloop.errors import BudgetExhausted, TeacherError
from dataloop.llm import Message, OpenAIClient, ResponseCache, Sampling
from dataloop.schema import Budget


def _client(url: str, **kw: object) -> OpenAIClient:
    kw.setdefault("backoff_max", 0.05)
    return OpenAIClient("fake", [url], timeout=1.0, **kw)  # type: ignore[arg-type]


def test_completion_and_chat_return_text_and_count_usage() -> None:
    async def go(client: OpenAIClient) -> None:
        c = await client.complete("12+35=", Sampling())
        assert c.texts == [" echo 6"]
        chat = await client.chat([Message(role="user", content="hi")], Sampling(n=2))
        assert chat.texts == [" echo 2", " echo 2"]
        assert client.budget.queries == 2
        assert client.budget.completion_tokens == 30
        await client.aclose()

    with FakeOpenAI() as server:
        asyncio.run(go(_client(server.base_url)))


def test_faults_are_retried_until_every_request_finishes() -> None:
    async def go(client: OpenAIClient) -> list[object]:
        jobs = [client.complete(f"prompt {i}", Sampling()) for i in range(60)]
        out = await asyncio.gather(*jobs, return_exceptions=True)
        await client.aclose()
        return out

    with FakeOpenAI(fault_rate=0.3, slow_seconds=1.5, seed=1) as server:
        results = asyncio.run(go(_client(server.base_url, retries=8, concurrency=8)))
        assert sum(server.faults.values()) >= 10, server.faults
        assert all(v > 0 for v in server.faults.values()), server.faults
    failed = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(r, TeacherError) for r in failed)
    assert len(failed) == 0, failed


def test_client_errors_are_not_retried_and_are_reported() -> None:
    async def go(client: OpenAIClient) -> None:
        with pytest.raises(TeacherError, match="HTTP 500"):
            await client.complete("x", Sampling())
        await client.aclose()

    with FakeOpenAI(fault_rate=1.0, seed=0) as server:
        server.FAULTS = ("500",)  # type: ignore[misc]
        asyncio.run(go(_client(server.base_url, retries=2)))
        assert server.requests == 3  # one try + two retries


def test_budget_is_never_overshot_by_concurrency() -> None:
    async def go(client: OpenAIClient) -> list[object]:
        jobs = [client.complete(f"p{i}", Sampling()) for i in range(40)]
        out = await asyncio.gather(*jobs, return_exceptions=True)
        await client.aclose()
        return out

    with FakeOpenAI(latency=0.05) as server:
        client = _client(server.base_url, concurrency=16, budget=Budget(max_queries=10))
        results = asyncio.run(go(client))
        assert server.requests == 10
        assert server.max_concurrent <= 16
    assert client.budget.queries == 10
    assert sum(isinstance(r, BudgetExhausted) for r in results) == 30


def test_token_budget_refuses_a_request_that_could_overshoot() -> None:
    async def go(client: OpenAIClient) -> None:
        await client.complete("abc", Sampling(max_tokens=10))
        with pytest.raises(BudgetExhausted, match="token budget"):
            await client.complete("abc", Sampling(max_tokens=10))
        await client.aclose()

    with FakeOpenAI() as server:
        # worst case per request: 3 bytes + 16 + 10 tokens = 29; the first really costs 10,
        # so the second could reach 10 + 29 = 39 > 35 and is refused before it is sent.
        asyncio.run(go(_client(server.base_url, budget=Budget(max_tokens=35))))


def test_cache_answers_a_repeated_request_without_sending_it(tmp_path) -> None:
    async def go(client: OpenAIClient) -> tuple[bool, bool]:
        first = await client.complete("same", Sampling(seed=3))
        again = await client.complete("same", Sampling(seed=3))
        other = await client.complete("same", Sampling(seed=4))
        await client.aclose()
        return first.cached or other.cached, again.cached

    with FakeOpenAI() as server:
        client = _client(server.base_url, cache=ResponseCache(tmp_path))
        fresh_cached, repeat_cached = asyncio.run(go(client))
        assert server.requests == 2
    assert (fresh_cached, repeat_cached) == (False, True)
    assert client.budget.queries == 2


def test_load_is_spread_over_several_endpoints() -> None:
    async def go(client: OpenAIClient) -> None:
        await asyncio.gather(*(client.complete(f"p{i}", Sampling()) for i in range(20)))
        await client.aclose()

    with FakeOpenAI(latency=0.05) as a, FakeOpenAI(latency=0.05) as b:
        client = OpenAIClient("fake", [a.base_url, b.base_url], concurrency=8)
        asyncio.run(go(client))
        assert a.requests + b.requests == 20
        assert min(a.requests, b.requests) >= 5
