"""One OpenAI-compatible async client for vLLM's server, OpenAI and llama.cpp's llama-server.

It adds what a generation loop needs on top of ``openai.AsyncOpenAI``: bounded concurrency,
several endpoints (least-loaded first), retries with jittered exponential backoff on errors that
can pass (429, 5xx, timeouts, lost connections, malformed bodies), a budget checked *before*
each request is sent, and an on-disk response cache.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import openai
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from dataloop.errors import BudgetExhausted, TeacherError
from dataloop.llm.base import Completion, Message, Sampling
from dataloop.llm.cache import ResponseCache
from dataloop.schema import Budget

log = logging.getLogger(__name__)


def is_transient(exc: BaseException) -> bool:
    """Errors worth retrying: the same request may succeed a moment later."""
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return isinstance(
        exc,
        (
            openai.APIConnectionError,  # includes APITimeoutError
            openai.APIResponseValidationError,
            json.JSONDecodeError,
            MalformedResponse,
        ),
    )


class MalformedResponse(Exception):
    """The server answered 200 with a body that is not a usable completion."""


class BudgetGuard:
    """Reserves a request's worst-case cost before it is sent, so concurrency cannot overshoot."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self._reserved_queries = 0
        self._reserved_tokens = 0
        self._lock = asyncio.Lock()

    async def reserve(self, worst_case_tokens: int) -> None:
        """Claim one query and ``worst_case_tokens``, or raise BudgetExhausted."""
        async with self._lock:
            b = self.budget
            if b.max_queries is not None and b.queries + self._reserved_queries >= b.max_queries:
                raise BudgetExhausted(f"query budget of {b.max_queries} spent")
            if b.max_tokens is not None:
                spent = b.prompt_tokens + b.completion_tokens + self._reserved_tokens
                if spent + worst_case_tokens > b.max_tokens:
                    raise BudgetExhausted(f"token budget of {b.max_tokens} spent")
            self._reserved_queries += 1
            self._reserved_tokens += worst_case_tokens

    async def settle(self, worst_case_tokens: int, result: Completion | None) -> None:
        """Replace a reservation with what the request really cost (nothing if it failed)."""
        async with self._lock:
            self._reserved_queries -= 1
            self._reserved_tokens -= worst_case_tokens
            if result is not None:
                self.budget.queries += 1
                self.budget.prompt_tokens += result.prompt_tokens
                self.budget.completion_tokens += result.completion_tokens


def _worst_case_tokens(text: str, sampling: Sampling) -> int:
    # A byte-level tokenizer never makes more tokens than bytes; a few more for special tokens.
    return len(text.encode()) + 16 + sampling.max_tokens * sampling.n


class OpenAIClient:
    """An :class:`~dataloop.llm.base.LLMClient` over one or more OpenAI-compatible endpoints."""

    def __init__(
        self,
        model: str,
        base_urls: list[str],
        api_key: str | None = None,
        *,
        concurrency: int = 8,
        timeout: float = 120.0,
        retries: int = 4,
        budget: Budget | None = None,
        cache: ResponseCache | None = None,
        backoff_max: float = 20.0,
    ) -> None:
        if not base_urls:
            raise ValueError("OpenAIClient needs at least one base URL")
        self.model = model
        self.budget = budget or Budget()
        self.cache = cache
        self.retries = retries
        self.backoff_max = backoff_max
        self._guard = BudgetGuard(self.budget)
        self._slots = asyncio.Semaphore(concurrency)
        # openai's own retries are off: tenacity decides, so every attempt is visible here.
        self._endpoints = [
            openai.AsyncOpenAI(
                base_url=url, api_key=api_key or "none", timeout=timeout, max_retries=0
            )
            for url in base_urls
        ]
        self._in_flight = [0] * len(self._endpoints)

    async def complete(self, prompt: str, sampling: Sampling) -> Completion:
        """A plain completion (``/v1/completions``)."""

        async def send(api: openai.AsyncOpenAI) -> Completion:
            resp = await api.completions.create(
                model=self.model, prompt=prompt, **self._params(sampling)
            )
            texts = [c.text for c in resp.choices]
            return _completion(resp, texts, [c.finish_reason or "" for c in resp.choices])

        return await self._request("completion", prompt, prompt, sampling, send)

    async def chat(self, messages: list[Message], sampling: Sampling) -> Completion:
        """A chat completion (``/v1/chat/completions``)."""
        payload = [m.model_dump() for m in messages]

        async def send(api: openai.AsyncOpenAI) -> Completion:
            params = self._params(sampling)
            if sampling.json_schema is not None:
                params["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {
                        "name": "output",
                        "schema": sampling.json_schema,
                        "strict": True,
                    },
                }
            resp = await api.chat.completions.create(
                model=self.model,
                messages=payload,  # type: ignore[arg-type]
                **params,
            )
            texts = [c.message.content or "" for c in resp.choices]
            return _completion(resp, texts, [c.finish_reason or "" for c in resp.choices])

        text = "".join(m.content for m in messages)
        return await self._request("chat", payload, text, sampling, send)

    @staticmethod
    def _params(sampling: Sampling) -> dict[str, Any]:
        params: dict[str, Any] = {
            "temperature": sampling.temperature,
            "max_tokens": sampling.max_tokens,
            "top_p": sampling.top_p,
            "n": sampling.n,
        }
        if sampling.stop:
            params["stop"] = list(sampling.stop)
        if sampling.seed is not None:
            params["seed"] = sampling.seed
        return params

    async def _request(
        self,
        kind: str,
        payload: object,
        text: str,
        sampling: Sampling,
        send: Callable[[openai.AsyncOpenAI], Awaitable[Completion]],
    ) -> Completion:
        key = None
        if self.cache is not None:
            key = self.cache.key(self.model, kind, payload, sampling)
            hit = self.cache.get(key)
            if hit is not None:
                return hit
        worst = _worst_case_tokens(text, sampling)
        await self._guard.reserve(worst)
        result: Completion | None = None
        try:
            async with self._slots:
                result = await self._send_with_retries(send)
        finally:
            await self._guard.settle(worst, result)
        if self.cache is not None and key is not None:
            self.cache.put(key, result)
        return result

    async def _send_with_retries(
        self, send: Callable[[openai.AsyncOpenAI], Awaitable[Completion]]
    ) -> Completion:
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(is_transient),
                stop=stop_after_attempt(self.retries + 1),
                wait=wait_random_exponential(multiplier=0.5, max=self.backoff_max),
                reraise=True,
            ):
                with attempt:
                    index = self._in_flight.index(min(self._in_flight))
                    self._in_flight[index] += 1
                    try:
                        return await send(self._endpoints[index])
                    finally:
                        self._in_flight[index] -= 1
        except openai.APIStatusError as exc:
            raise TeacherError(
                f"teacher '{self.model}' answered HTTP {exc.status_code}: {exc.message}"
            ) from exc
        except (openai.APIError, MalformedResponse, json.JSONDecodeError) as exc:
            raise TeacherError(
                f"teacher '{self.model}' failed: {type(exc).__name__}: {exc}"
            ) from exc
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def aclose(self) -> None:
        """Close every endpoint's connection pool."""
        for api in self._endpoints:
            await api.close()


def _completion(resp: Any, texts: list[str], finish: list[str]) -> Completion:
    if not texts:
        raise MalformedResponse("response has no choices")
    usage = getattr(resp, "usage", None)
    return Completion(
        texts=texts,
        prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
        completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
        finish_reasons=finish,
    )
