"""The fleet's per-endpoint limits: cut on overload, grown while latency holds, dead ones out."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import weakref

import pytest

from dataloop.llm.fleet import Fleet, Outcome, Slot


def _fleet(n: int = 1, concurrency: int = 8, ceiling: int = 16, cooldown: float = 10.0) -> Fleet:
    return Fleet(
        [f"http://127.0.0.1:{8000 + i}/v1" for i in range(n)], concurrency, ceiling, cooldown
    )


def _limits(fleet: Fleet) -> list[int]:
    return [e.limit for e in fleet.stats()]


def _fill(fleet: Fleet, n: int) -> list[Slot]:
    async def go() -> list[Slot]:
        return [await fleet.acquire() for _ in range(n)]

    return asyncio.run(go())


def test_overload_halves_the_limit_once_per_round_of_requests() -> None:
    fleet = _fleet(concurrency=8)
    slots = _fill(fleet, 8)
    # Eight requests sent under the limit of 8 all come back 429: one cut, not eight.
    for slot in slots:
        fleet.release(slot, Outcome.OVERLOADED)
    assert _limits(fleet) == [4]
    # A request sent after the cut that times out cuts again; the floor is one.
    for _ in range(4):
        fleet.release(_fill(fleet, 1)[0], Outcome.TIMED_OUT)
    assert _limits(fleet) == [1]


_OUT: weakref.WeakKeyDictionary[Fleet, list[Slot]] = weakref.WeakKeyDictionary()
"""Each fleet's requests still out (acquired, not yet released)."""


def _answer(fleet: Fleet, seconds: float, in_flight: int) -> int:
    """One answer after ``seconds`` (10 tokens) with ``in_flight`` requests out; the new limit."""
    out = _OUT.setdefault(fleet, [])
    out += _fill(fleet, in_flight - len(out))
    slot = dataclasses.replace(out.pop(), started=time.monotonic() - seconds)
    fleet.release(slot, Outcome.ANSWERED, completion_tokens=10)
    return _limits(fleet)[0]


def test_the_limit_grows_by_one_a_round_while_in_use_up_to_the_ceiling() -> None:
    fleet = _fleet(concurrency=2, ceiling=4)
    # A round of answers (as many as the limit) while it is in use adds one.
    assert [_answer(fleet, 0.1, in_flight=2) for _ in range(2)] == [2, 3]
    assert [_answer(fleet, 0.1, in_flight=3) for _ in range(3)] == [3, 3, 4]
    assert [_answer(fleet, 0.1, in_flight=4) for _ in range(8)] == [4] * 8  # the ceiling
    assert fleet.stats()[0].peak_limit == 4


def test_the_limit_stops_growing_when_latency_rises_or_the_limit_is_not_used() -> None:
    fleet = _fleet(concurrency=1, ceiling=64)
    limit = 1
    for _ in range(10):  # fast answers while busy: it grows
        limit = _answer(fleet, 0.1, in_flight=limit)
    assert limit > 3
    # Answers five times slower: once the average passes twice the best, no more growth.
    for _ in range(3):
        limit = _answer(fleet, 0.5, in_flight=limit)
    for _ in range(30):
        assert _answer(fleet, 0.5, in_flight=limit) == limit
    # Fast again but one request out of many places: no evidence that more would help.
    fleet = _fleet(concurrency=4, ceiling=64)
    assert {_answer(fleet, 0.1, in_flight=1) for _ in range(30)} == {4}


def test_requests_go_to_the_endpoint_with_most_room_and_a_retry_avoids_the_last_one() -> None:
    fleet = _fleet(n=2, concurrency=4)
    slots = _fill(fleet, 4)
    assert sorted(s.index for s in slots) == [0, 0, 1, 1]

    async def retry() -> Slot:
        return await fleet.acquire(avoid=0)

    for slot in slots:
        fleet.release(slot, Outcome.FAILED)
    assert asyncio.run(retry()).index == 1


def test_an_unreachable_endpoint_is_left_out_then_probed_by_one_request() -> None:
    fleet = _fleet(n=2, concurrency=4, cooldown=0.2)
    fleet.release(_fill(fleet, 1)[0], Outcome.UNREACHABLE)  # endpoint 0 refused
    assert [s.out for s in fleet.stats()] == [True, False]
    assert {s.index for s in _fill(fleet, 4)} == {1}  # all to the other one
    time.sleep(0.25)
    probe = _fill(fleet, 1)[0]
    assert probe.index == 0 and fleet.stats()[0].limit == 1  # one request tries it again
    fleet.release(probe, Outcome.ANSWERED, completion_tokens=10)
    assert fleet.stats()[0].out is False


def test_with_every_endpoint_down_requests_still_go_out() -> None:
    # Holding them back would hide the outage from the client's retries and failure count.
    fleet = _fleet(n=2, concurrency=4, cooldown=60)
    a, b = _fill(fleet, 2)
    fleet.release(a, Outcome.UNREACHABLE)
    fleet.release(b, Outcome.UNREACHABLE)
    assert _fill(fleet, 1)[0].index in (0, 1)


def test_a_retry_after_pause_holds_requests_until_it_ends() -> None:
    fleet = _fleet(n=1, concurrency=4)

    async def go() -> float:
        fleet.release(await fleet.acquire(), Outcome.OVERLOADED, retry_after=0.3)
        start = time.monotonic()
        fleet.release(await fleet.acquire(), Outcome.ANSWERED)
        return time.monotonic() - start

    assert asyncio.run(go()) >= 0.29


def test_waiters_are_served_in_turn_as_places_free_up() -> None:
    fleet = _fleet(n=1, concurrency=2, ceiling=2)
    served: list[int] = []

    async def one(i: int) -> None:
        slot = await fleet.acquire()
        served.append(i)
        await asyncio.sleep(0.01)
        fleet.release(slot, Outcome.ANSWERED, completion_tokens=10)

    async def go() -> None:
        await asyncio.gather(*(one(i) for i in range(20)))

    asyncio.run(go())
    assert served == list(range(20))
    assert fleet.stats()[0].in_flight == 0


def test_a_ceiling_below_the_start_is_refused() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        _fleet(concurrency=8, ceiling=4)
