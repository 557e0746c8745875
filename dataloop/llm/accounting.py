"""What a teacher request costs: the budget guard, prices (:class:`~dataloop.schema.Price`, kept
importable from here), and the metered call every client uses.

Both clients (the OpenAI-compatible one and offline vLLM) send requests through a :class:`Meter`:
it answers from the response cache when it can, reserves the request's worst-case cost against the
budget *before* the request is sent (so concurrent requests can never overshoot it together), and
books what the request really cost once it is back. A request that fails costs nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from dataloop.errors import BudgetExhausted
from dataloop.llm.base import Completion, Sampling
from dataloop.llm.cache import ResponseCache
from dataloop.schema import Budget, Price


def budget_cost(budget: Budget, price: Price | None) -> float | None:
    """What ``budget`` has spent so far at ``price``, or None when the price is unknown."""
    if price is None:
        return None
    return price.cost(budget.prompt_tokens, budget.completion_tokens)


def worst_case_tokens(text: str, sampling: Sampling, messages: int = 0) -> tuple[int, int]:
    """An upper bound on (prompt, completion) tokens of a request, to reserve before sending."""
    # A byte-level tokenizer never makes more tokens than bytes; a few more for special tokens
    # and, for chat, for the template's markers around each message.
    return len(text.encode()) + 16 + 8 * messages, sampling.max_tokens * sampling.n


class BudgetGuard:
    """Reserves a request's worst-case cost before it is sent, so concurrency cannot overshoot.

    ``budget`` holds the query and token limits and what has been spent; ``max_cost`` (at
    ``price``) is a further limit in money.
    """

    def __init__(
        self, budget: Budget, price: Price | None = None, max_cost: float | None = None
    ) -> None:
        if max_cost is not None and price is None:
            raise ValueError("a max_cost needs the model's price")
        self.budget = budget
        self.price = price
        self.max_cost = max_cost
        self._queries = 0
        self._prompt = 0
        self._completion = 0
        self._lock = asyncio.Lock()

    async def reserve(self, prompt_tokens: int, completion_tokens: int) -> None:
        """Claim one query and this many tokens, or mark the budget exhausted and raise
        BudgetExhausted."""
        async with self._lock:
            refused = self._refusal(prompt_tokens, completion_tokens)
            if refused is not None:
                self.budget.exhausted = True
                raise BudgetExhausted(refused)
            self._queries += 1
            self._prompt += prompt_tokens
            self._completion += completion_tokens

    def _refusal(self, prompt_tokens: int, completion_tokens: int) -> str | None:
        """Why one more request of this size does not fit, or None if it does."""
        b = self.budget
        if b.max_queries is not None and b.queries + self._queries >= b.max_queries:
            return f"query budget of {b.max_queries} spent"
        prompt = b.prompt_tokens + self._prompt + prompt_tokens
        completion = b.completion_tokens + self._completion + completion_tokens
        if b.max_tokens is not None and prompt + completion > b.max_tokens:
            return f"token budget of {b.max_tokens} spent"
        if (
            self.max_cost is not None
            and self.price is not None
            and self.price.cost(prompt, completion) > self.max_cost
        ):
            return f"cost budget of {self.max_cost:g} spent"
        return None

    async def settle(
        self, prompt_tokens: int, completion_tokens: int, result: Completion | None
    ) -> None:
        """Replace a reservation with what the request really cost (nothing if it failed)."""
        async with self._lock:
            self._queries -= 1
            self._prompt -= prompt_tokens
            self._completion -= completion_tokens
            if result is not None:
                self.budget.queries += 1
                self.budget.prompt_tokens += result.prompt_tokens
                self.budget.completion_tokens += result.completion_tokens
                self.budget.cost = budget_cost(self.budget, self.price)


class Meter:
    """Cache, then budget, then send: the one path every request of every client takes."""

    def __init__(
        self,
        model: str,
        budget: Budget,
        cache: ResponseCache | None = None,
        price: Price | None = None,
        max_cost: float | None = None,
    ) -> None:
        self.model = model
        self.budget = budget
        self.cache = cache
        self.price = price
        # (A copy of a budget carries the guard along: only the budget's own guard counts.)
        if isinstance(budget._guard, BudgetGuard) and budget._guard.budget is budget:
            # A second client spending the same budget (a judge on its own endpoint): it
            # shares the first one's guard, and so its limits and price.
            self.guard = budget._guard
            return
        self.guard = budget._guard = BudgetGuard(budget, price, max_cost)
        # The budget shows the money side too, so an Observation (and a policy) can see it.
        budget.max_cost = max_cost
        budget.cost = budget_cost(budget, price)

    async def call(
        self,
        kind: str,
        payload: object,
        sampling: Sampling,
        worst: tuple[int, int],
        send: Callable[[], Awaitable[Completion]],
    ) -> Completion:
        """A cached answer, or ``send()`` under a budget reservation of ``worst`` tokens."""
        key = None
        if self.cache is not None:
            key = self.cache.key(self.model, kind, payload, sampling)
            hit = self.cache.get(key)
            if hit is not None:
                return hit
        await self.guard.reserve(*worst)
        result: Completion | None = None
        try:
            result = await send()
        finally:
            await self.guard.settle(*worst, result)
        if key is not None and self.cache is not None:
            self.cache.put(key, result)
        return result
