"""Where each teacher request goes, and how many go at once, per endpoint of ``base_urls``.

Every endpoint has its own concurrency limit, which adapts the way TCP's congestion window
and Netflix's ``concurrency-limits`` AIMD limit do: an overload signal (HTTP 429 or 503, or a
request that timed out) cuts the limit by half, at most once per round of requests sent under
the old limit; a round of answers while the limit is in use (at least half of it in flight)
adds one (each answer ``1 / limit``, as TCP's congestion avoidance does: growing faster, the
limit would outrun the latency that shows a queue, which comes back a round later), as long as
the endpoint's latency holds (its seconds per completion token, averaged over the last
answers, within :data:`LATENCY_TOLERANCE` times the best such average so far) and the limit is
below its ceiling. A ``Retry-After`` on a 429 or 503 keeps the endpoint out of rotation for
that long. An endpoint that refuses connections is taken out for ``cooldown`` seconds; then
one request tries it again, and an answer puts it back. Requests go to the open endpoint with
the most room left, so the requests of an endpoint that is down, paused or throttled go to the
others. When every endpoint is down, requests still go to the one that has been out longest:
the client's retries and its count of connection failures then decide, as they would with one
endpoint.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field

from pydantic import BaseModel

log = logging.getLogger(__name__)

BACKOFF = 0.5
"""Factor an overload signal cuts an endpoint's concurrency limit by."""

LATENCY_TOLERANCE = 2.0
"""The limit grows only while the endpoint's average seconds per completion token stay within
this many times its best average so far; above it the server is queueing rather than serving."""

SMOOTHING = 0.2
"""Weight of the newest answer in an endpoint's moving average of seconds per completion token:
one answer that happens to skip a server's queue does not make its latency look held."""

MAX_RETRY_AFTER = 60.0
"""Longest ``Retry-After`` honoured, in seconds (the ``openai`` package's own bound)."""


class Outcome(enum.Enum):
    """How one attempt on an endpoint ended, as far as its concurrency is concerned."""

    ANSWERED = "answered"
    OVERLOADED = "overloaded"  # 429 or 503
    TIMED_OUT = "timed out"
    UNREACHABLE = "unreachable"  # the connection itself failed
    FAILED = "failed"  # anything else: no signal about load


class EndpointStats(BaseModel):
    """One endpoint as the fleet sees it now, and what it has answered so far."""

    url: str
    limit: int
    """Requests it may have in flight now."""
    peak_limit: int
    """The highest limit it has had."""
    in_flight: int
    answered: int
    overloaded: int
    """429 and 503 answers."""
    timed_out: int
    unreachable: int
    out: bool
    """Taken out (unreachable) or paused (``Retry-After``) right now."""


@dataclass
class _Endpoint:
    url: str
    limit: int
    peak_limit: int = 0
    in_flight: int = 0
    paused_until: float = 0.0
    down_until: float | None = None  # set while taken out; cleared by an answer
    growth: float = 0.0  # answers' credit towards the next step up, in steps
    latency: float | None = None  # moving average of seconds per completion token
    best: float = math.inf  # its lowest value so far
    last_cut: float = -math.inf
    counts: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(Outcome, 0))

    def closed_until(self, now: float) -> float:
        """When it takes requests again (``now`` or earlier: open)."""
        return max(self.paused_until, self.down_until or 0.0)

    def room(self, now: float) -> int:
        return self.limit - self.in_flight if self.closed_until(now) <= now else 0


@dataclass(frozen=True)
class Slot:
    """One request's place on one endpoint, from :meth:`Fleet.acquire` to :meth:`Fleet.release`."""

    index: int
    started: float


class Fleet:
    """Per-endpoint adaptive concurrency over ``urls`` (already redacted, for logs).

    Each limit starts at ``concurrency`` and stays between 1 and ``max_concurrency``.
    """

    def __init__(
        self, urls: list[str], concurrency: int, max_concurrency: int, cooldown: float
    ) -> None:
        if not 1 <= concurrency <= max_concurrency:
            raise ValueError("need 1 <= concurrency <= max_concurrency")
        self.max_concurrency = max_concurrency
        self.cooldown = cooldown
        self._endpoints = [_Endpoint(url, concurrency, concurrency) for url in urls]
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due = 0.0
        self._timer_loop: asyncio.AbstractEventLoop | None = None

    def stats(self) -> list[EndpointStats]:
        """Every endpoint's limit, load and counts of outcomes."""
        now = time.monotonic()
        return [
            EndpointStats(
                url=e.url,
                limit=e.limit,
                peak_limit=e.peak_limit,
                in_flight=e.in_flight,
                answered=e.counts[Outcome.ANSWERED],
                overloaded=e.counts[Outcome.OVERLOADED],
                timed_out=e.counts[Outcome.TIMED_OUT],
                unreachable=e.counts[Outcome.UNREACHABLE],
                out=e.closed_until(now) > now,
            )
            for e in self._endpoints
        ]

    async def acquire(self, avoid: int | None = None) -> Slot:
        """A free place on the open endpoint with the most room (``avoid``, the endpoint a
        request's last attempt failed on, only when no other has room); waits for one."""
        while True:
            index = self._pick(avoid)
            if index is not None:
                self._endpoints[index].in_flight += 1
                return Slot(index, time.monotonic())
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            self._arm_timer()
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake(1)  # it was woken for a free place: hand that on
                elif waiter in self._waiters:
                    self._waiters.remove(waiter)
                raise

    def release(
        self,
        slot: Slot,
        outcome: Outcome,
        completion_tokens: int = 0,
        retry_after: float | None = None,
    ) -> None:
        """Give the place back and adapt the endpoint's limit to how the attempt ended."""
        e = self._endpoints[slot.index]
        now = time.monotonic()
        e.counts[outcome] += 1
        if outcome is Outcome.ANSWERED:
            if e.down_until is not None:
                log.info("teacher endpoint %s answers again; back in rotation", e.url)
                e.down_until = None
            per_token = (now - slot.started) / max(1, completion_tokens)
            e.latency = per_token if e.latency is None else e.latency
            e.latency += SMOOTHING * (per_token - e.latency)
            e.best = min(e.best, e.latency)
            held = e.latency <= LATENCY_TOLERANCE * e.best
            if held and 2 * e.in_flight >= e.limit and e.limit < self.max_concurrency:
                e.growth += 1 / e.limit
                if e.growth >= 1:
                    e.growth = 0.0
                    e.limit += 1
                    e.peak_limit = max(e.peak_limit, e.limit)
                    self._wake(1)
        elif outcome in (Outcome.OVERLOADED, Outcome.TIMED_OUT):
            # One cut per round: requests sent before the last cut saw the old limit.
            if slot.started >= e.last_cut and e.limit > 1:
                e.limit = max(1, int(e.limit * BACKOFF))
                e.growth = 0.0
                e.last_cut = now
                log.info(
                    "teacher endpoint %s %s: concurrency now %d", e.url, outcome.value, e.limit
                )
            if retry_after is not None and retry_after > 0:
                e.paused_until = max(e.paused_until, now + min(retry_after, MAX_RETRY_AFTER))
        elif outcome is Outcome.UNREACHABLE:
            if e.down_until is None:
                log.info(
                    "teacher endpoint %s unreachable: out of rotation for %gs", e.url, self.cooldown
                )
            e.down_until = now + self.cooldown
            e.limit, e.growth = 1, 0.0  # when it is tried again, one request probes it
        e.in_flight -= 1
        self._wake(1)

    def _pick(self, avoid: int | None) -> int | None:
        now = time.monotonic()
        open_ = [i for i, e in enumerate(self._endpoints) if e.room(now) > 0]
        if not open_:
            open_ = self._all_down_fallback(now)
        if not open_:
            return None
        # Most room left first (relative to its limit); the endpoint to avoid last.
        return min(
            open_,
            key=lambda i: (
                i == avoid,
                self._endpoints[i].in_flight / self._endpoints[i].limit,
                -self._endpoints[i].limit,
            ),
        )

    def _all_down_fallback(self, now: float) -> list[int]:
        # With every endpoint taken out, holding requests back would only hide the outage:
        # the one out longest takes them, within its limit, and the client's retries and
        # connection-failure count decide. A Retry-After pause is always honoured.
        if any(e.down_until is None for e in self._endpoints):
            return []
        candidates = [
            i
            for i, e in enumerate(self._endpoints)
            if e.paused_until <= now and e.in_flight < e.limit
        ]
        if not candidates:
            return []
        return [min(candidates, key=lambda i: self._endpoints[i].down_until or 0.0)]

    def _wake(self, n: int) -> None:
        while n > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                n -= 1

    def _arm_timer(self) -> None:
        # Waiters are woken when a place is given back; a pause or cooldown that ends frees
        # places with nothing given back, so a timer wakes them then.
        now = time.monotonic()
        reopen = [t for e in self._endpoints if (t := e.closed_until(now)) > now]
        if not reopen:
            return
        loop = asyncio.get_running_loop()
        if self._timer is not None and self._timer_loop is loop:
            if self._timer_due <= min(reopen):
                return
            self._timer.cancel()

        def fire() -> None:
            self._timer = None
            self._wake(sum(e.room(time.monotonic()) for e in self._endpoints) or 1)
            if self._waiters:
                self._arm_timer()

        self._timer_due = min(reopen)
        self._timer_loop = loop  # a client can outlive one event loop and serve the next
        self._timer = loop.call_later(self._timer_due - now, fire)
