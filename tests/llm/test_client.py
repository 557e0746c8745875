"""The OpenAI-compatible client against a loopback server that misbehaves on purpose."""

from __future__ import annotations

import asyncio

import pytest
from fakeserver import FakeOpenAI

from dataloop.errors import BudgetExhausted, TeacherError, TeacherUnavailable
from dataloop.llm import Message, OpenAIClient, Price, ResponseCache, Sampling
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


def _gather(client: OpenAIClient, n: int, **sampling: object) -> list[object]:
    async def go() -> list[object]:
        jobs = [client.complete(f"prompt {i}", Sampling(**sampling)) for i in range(n)]  # type: ignore[arg-type]
        out = await asyncio.gather(*jobs, return_exceptions=True)
        await client.aclose()
        return out

    return asyncio.run(go())


@pytest.mark.parametrize("retries", [0, 1])
def test_under_faults_every_request_finishes_or_is_reported_failed(retries: int) -> None:
    # Few retries at a 30% fault rate: some requests must fail, and each one that does is a
    # TeacherError (which the engine records), never another exception, a hang or a lost request.
    with FakeOpenAI(fault_rate=0.3, slow_seconds=1.5, seed=2) as server:
        results = _gather(_client(server.base_url, retries=retries, concurrency=8), 80)
    answered = [r for r in results if not isinstance(r, BaseException)]
    failed = [r for r in results if isinstance(r, BaseException)]
    assert len(results) == 80
    assert failed and answered
    assert all(isinstance(r, TeacherError) for r in failed), failed
    assert all(r.texts == [" echo 8"] or r.texts == [" echo 9"] for r in answered)  # type: ignore[union-attr]


def test_under_faults_the_budget_is_never_exceeded() -> None:
    with FakeOpenAI(fault_rate=0.3, slow_seconds=1.5, seed=3, latency=0.01) as server:
        budget = Budget(max_queries=25, max_tokens=25 * 200)
        client = _client(server.base_url, retries=3, concurrency=12, budget=budget)
        results = _gather(client, 60, max_tokens=10)
    answered = [r for r in results if not isinstance(r, BaseException)]
    assert {type(r) for r in results if isinstance(r, BaseException)} <= {
        BudgetExhausted,
        TeacherError,
    }
    assert budget.queries == len(answered) <= 25
    assert budget.prompt_tokens + budget.completion_tokens <= 25 * 200
    assert sum(isinstance(r, BudgetExhausted) for r in results) >= 60 - 25


def test_a_json_reply_that_is_not_a_completion_is_retried() -> None:
    with FakeOpenAI(fault_rate=1.0) as server:
        server.FAULTS = ("empty",)  # type: ignore[misc]
        results = _gather(_client(server.base_url, retries=2), 1)
        assert server.requests == 3
    assert isinstance(results[0], TeacherError)
    assert "not a completion" in str(results[0])


SCHEMA = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}


@pytest.mark.parametrize(
    ("flavor", "field", "value"),
    [
        ("llama.cpp", "json_schema", SCHEMA),
        ("vllm", "structured_outputs", {"json": SCHEMA}),
        ("openai", None, None),
    ],
)
def test_a_json_schema_reaches_each_server_in_its_own_field(
    flavor: str, field: str | None, value: object
) -> None:
    async def go(client: OpenAIClient) -> None:
        await client.complete("x", Sampling(json_schema=SCHEMA))
        await client.chat([Message(role="user", content="x")], Sampling(json_schema=SCHEMA))
        await client.aclose()

    with FakeOpenAI(reply=lambda prompt: '{"answer": 1}') as server:
        asyncio.run(go(_client(server.base_url, flavor=flavor)))
    completion, chat = server.bodies
    extra = {"json_schema", "structured_outputs", "response_format"} & set(completion)
    assert extra == ({field} if field else set())
    if field:
        assert completion[field] == value
    assert chat["response_format"]["type"] == "json_schema"
    assert chat["response_format"]["json_schema"]["schema"] == SCHEMA


@pytest.mark.parametrize("flavor", ["llama.cpp", "vllm"])
def test_a_server_that_ignores_the_schema_field_names_the_flavor_setting(flavor: str) -> None:
    # vLLM answers llama.cpp's json_schema (and its own old guided_json) with a 200 and
    # unconstrained text, as this server does.
    async def go(client: OpenAIClient) -> None:
        try:
            await client.complete("x", Sampling(json_schema=SCHEMA))
        finally:
            await client.aclose()

    with FakeOpenAI(reply=lambda prompt: " The answer is 4.") as server:
        with pytest.raises(TeacherError, match=r"config field 'teacher\.flavor' is probably wrong"):
            asyncio.run(go(_client(server.base_url, flavor=flavor)))
        assert server.requests == 1  # not retried: the same request would be ignored again


def test_cost_follows_the_price_and_a_cost_budget_stops_requests() -> None:
    async def one_by_one(client: OpenAIClient) -> list[object]:
        out: list[object] = []
        for i in range(6):
            try:
                out.append(await client.complete(f"prompt {i}", Sampling(max_tokens=10)))
            except BudgetExhausted as exc:
                out.append(exc)
        await client.aclose()
        return out

    # Each answer costs 10 completion tokens and len(prompt) // 4 = 2 prompt tokens: 0.022.
    price = Price(prompt=1000.0, completion=2000.0)
    with FakeOpenAI() as server:
        client = _client(server.base_url, price=price, max_cost=0.1)
        results = asyncio.run(one_by_one(client))
        assert server.requests == 3
    # Worst case per request: (8 + 16) prompt + 10 completion tokens = 0.044. After 3 answers
    # (0.066) a fourth could reach 0.11 > 0.1, so it is refused before it is sent.
    assert [isinstance(r, BudgetExhausted) for r in results] == [False] * 3 + [True] * 3
    assert "cost budget of 0.1" in str(results[3])
    # The budget an Observation carries shows the money too.
    assert client.budget.cost == pytest.approx(3 * 0.022)
    assert client.budget.max_cost == 0.1
    assert _client(server.base_url).budget.cost is None  # no price, no cost


def test_a_teacher_that_cannot_be_reached_stops_after_a_few_requests() -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = _client(f"http://user:pw@127.0.0.1:{port}/v1", retries=1, max_connection_failures=2)

    async def go() -> list[BaseException]:
        errors = []
        for i in range(4):
            with pytest.raises((TeacherError, TeacherUnavailable)) as err:
                await client.complete(f"q{i}", Sampling())
            errors.append(err.value)
        await client.aclose()
        return errors

    errors = asyncio.run(go())
    assert [type(e) for e in errors] == [TeacherError, *[TeacherUnavailable] * 3]
    for e in errors:
        assert f"http://***@127.0.0.1:{port}/v1" in str(e) and "pw" not in str(e)
    assert "2 requests in a row" in str(errors[1])


def test_an_answer_resets_the_count_of_connection_failures() -> None:
    import time

    def reply(prompt: str) -> str:  # q1 is answered; the others time out (a lost connection)
        if prompt != "q1":
            time.sleep(2.0)
        return "ok"

    async def go(client: OpenAIClient) -> BaseException:
        with pytest.raises(TeacherError):  # one failure in a row
            await client.complete("q0", Sampling())
        await client.complete("q1", Sampling())  # answered: the count starts again
        with pytest.raises(TeacherError) as err:  # one failure in a row, not two
            await client.complete("q2", Sampling())
        await client.aclose()
        return err.value

    with FakeOpenAI(reply=reply) as server:
        client = OpenAIClient(
            "fake", [server.base_url], timeout=1.0, retries=0, max_connection_failures=2,
            cooldown=0.01, backoff_max=0.05,
        )  # fmt: skip
        assert not isinstance(asyncio.run(go(client)), TeacherUnavailable)
