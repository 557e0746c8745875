"""Misbehaving teacher servers: faults under the engine (the generation step finishes), and a
fleet of endpoints of which one is down, one slow and one throttling (nothing lost or repeated)."""

from __future__ import annotations

import asyncio
import itertools
import socket

import pytest
from fakeserver import FakeOpenAI

from dataloop.config import EngineConfig
from dataloop.engine import Engine
from dataloop.llm import OpenAIClient, Sampling, Teacher
from dataloop.schema import Budget, GenerationRequest, Observation, Plan


def test_generation_survives_faults_reports_failures_and_keeps_to_budget(arithmetic) -> None:
    numbers = itertools.cycle(range(10, 100))

    def reply(prompt: str) -> str:
        a, b = next(numbers), next(numbers)
        return f" {a}+{b}\nA: {a + b}\nQ: {b}+{a}\nA: 0\n"  # the second answer is wrong

    async def go(client: OpenAIClient):
        engine = Engine(Teacher(client), arithmetic, EngineConfig(per_query=2, max_rounds=3))
        obs = Observation(iteration=0, skills=arithmetic.skills(), accuracy={}, mean_accuracy=0)
        plan = Plan(requests=[GenerationRequest(skill="add", count=30)])
        try:
            return await engine.generate(plan, obs, arithmetic.split("train"))
        finally:
            await client.aclose()

    with FakeOpenAI(fault_rate=0.35, slow_seconds=1.2, seed=5, reply=reply) as server:
        budget = Budget(max_queries=14)
        client = OpenAIClient(
            "fake", [server.base_url], timeout=1.0, retries=1, backoff_max=0.05, budget=budget
        )
        result = asyncio.run(go(client))
        assert sum(server.faults.values()) >= 5
    assert result.errors, "with one retry at 35% faults some requests must fail"
    assert all(e.startswith("teacher 'fake'") for e in result.errors)
    assert budget.queries <= 14 and result.report.queries == budget.queries
    assert result.budget_exhausted
    counts = result.report.counts[0]
    assert counts.generated == budget.queries
    # Each answered request gave one right pair and one relabelled pair.
    assert counts.parsed == counts.verified == 2 * budget.queries
    assert 0 < len(result.accepted) == counts.accepted


def _dead_port() -> int:
    with socket.socket() as probe:  # a port nobody listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _gather(client: OpenAIClient, prompts: list[str]) -> list[object]:
    async def go() -> list[object]:
        jobs = [client.complete(p, Sampling()) for p in prompts]
        out = await asyncio.gather(*jobs, return_exceptions=True)
        await client.aclose()
        return out

    return asyncio.run(go())


def test_a_fleet_with_one_endpoint_down_one_slow_one_throttling_loses_and_repeats_nothing() -> None:
    prompts = [f"prompt number {i:03d}" for i in range(150)]
    with (
        FakeOpenAI(latency=0.02) as fast,
        FakeOpenAI(latency=0.3) as slow,
        FakeOpenAI(latency=0.02, capacity=2, retry_after=0.2) as throttling,
    ):
        down = f"http://127.0.0.1:{_dead_port()}/v1"
        budget = Budget(max_queries=1000)
        urls = [fast.base_url, slow.base_url, throttling.base_url, down]
        client = OpenAIClient(
            "fake", urls, concurrency=4, max_concurrency=8, retries=6, backoff_max=0.05,
            timeout=5.0, budget=budget, cooldown=600.0,  # no re-probe, however slow the machine
        )  # fmt: skip
        results = _gather(client, prompts)
        servers = [fast, slow, throttling]
        served = [b["prompt"] for s in servers for b in s.bodies]
    assert [r.texts for r in results] == [[f" echo {len(p)}"] for p in prompts]  # type: ignore[union-attr]
    # Every request was answered exactly once, and the budget counts each answer once.
    assert sorted(served) == prompts
    assert budget.queries == 150 and budget.completion_tokens == 150 * 10
    stats = {s.url: s for s in client.endpoints()}
    # The dead endpoint was tried by the first requests only, then left out.
    assert 1 <= stats[down].unreachable <= 4 and stats[down].answered == 0 and stats[down].out
    # The throttling one was asked to slow down and never held more than it can. (Its limit at
    # the end depends on how long the run took: a cut limit grows back while latency holds; the
    # cut itself is tested in tests/llm/test_fleet.py.)
    assert throttling.throttled >= 1 and stats[throttling.base_url].overloaded >= 1
    assert throttling.max_concurrent <= 2
    # The slow one answered, but the fast one took most of the work.
    assert 0 < slow.requests < fast.requests
    assert sum(s.requests for s in servers) == 150


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_keeps_requests_off_the_endpoint_until_it_ends(status: int) -> None:
    with FakeOpenAI(latency=0.3, capacity=1, retry_after=0.5, throttle_status=status) as server:
        client = OpenAIClient("fake", [server.base_url], concurrency=2, backoff_max=0.01)
        results = _gather(client, ["a", "b"])
        arrivals = list(server.times)
    assert all(not isinstance(r, BaseException) for r in results)
    assert server.throttled == 1 and len(arrivals) == 3
    # The retry of the refused request came only after the pause the server asked for.
    assert arrivals[2] - arrivals[1] >= 0.49


def test_an_endpoint_that_comes_back_is_used_again() -> None:
    port = _dead_port()
    with FakeOpenAI(latency=0.01) as up:
        client = OpenAIClient(
            "fake", [up.base_url, f"http://127.0.0.1:{port}/v1"], concurrency=2, cooldown=1.0,
            backoff_max=0.01,
        )  # fmt: skip

        async def go() -> None:
            await asyncio.gather(*(client.complete(f"a{i}", Sampling()) for i in range(10)))
            assert client.endpoints()[1].out
            with FakeOpenAI(latency=0.01, port=port) as back:
                await asyncio.sleep(1.05)
                await asyncio.gather(*(client.complete(f"b{i}", Sampling()) for i in range(20)))
                assert back.requests > 0
            await client.aclose()

        asyncio.run(go())
    assert client.endpoints()[1].answered > 0 and not client.endpoints()[1].out


def test_a_server_that_queues_without_429_gets_more_requests_up_to_the_ceiling() -> None:
    # A vLLM server batches what is in flight and never says 429: the limit grows past its start.
    with FakeOpenAI(latency=0.05) as server:
        client = OpenAIClient("fake", [server.base_url], concurrency=2, max_concurrency=12)
        results = _gather(client, [f"p{i}" for i in range(200)])
        assert server.max_concurrent > 2
    assert all(not isinstance(r, BaseException) for r in results)
    assert 2 < client.endpoints()[0].peak_limit <= 12


def test_growth_stops_where_a_queueing_server_starts_to_queue() -> None:
    # It serves 4 at a time and queues the rest (vLLM at its batch limit): with 0.2 s a request
    # (~0.25 s with HTTP here), past about 10 in flight an answer takes more than twice as long
    # as the best, and the limit stops growing, far below the ceiling.
    with FakeOpenAI(latency=0.2, slots=4) as server:
        client = OpenAIClient("fake", [server.base_url], concurrency=2, max_concurrency=64)
        results = _gather(client, [f"p{i}" for i in range(160)])
    assert all(not isinstance(r, BaseException) for r in results)
    assert 4 < client.endpoints()[0].peak_limit <= 16
