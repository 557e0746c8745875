"""One OpenAI-compatible async client for vLLM's server, OpenAI and llama.cpp's llama-server.

It adds what a generation loop needs on top of ``openai.AsyncOpenAI``: several endpoints, each
with a concurrency limit that adapts to how it answers (:mod:`dataloop.llm.fleet`), retries with
jittered exponential backoff on errors that can pass (429, 5xx, timeouts, lost connections,
malformed bodies), a budget checked *before* each request is sent, and an on-disk response cache.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import openai
from tenacity import (
    AsyncRetrying,
    before_sleep_log,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from dataloop.errors import TeacherError, TeacherUnavailable
from dataloop.llm.accounting import Meter, worst_case_tokens
from dataloop.llm.base import Completion, Message, Sampling
from dataloop.llm.cache import ResponseCache
from dataloop.llm.fleet import EndpointStats, Fleet, Outcome, Slot
from dataloop.redact import redact_url
from dataloop.schema import Budget, Price

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


Flavor = Literal["openai", "vllm", "llama.cpp"]
"""The server behind an endpoint; it decides how a JSON schema travels with a plain completion."""


def _completion_schema(flavor: Flavor, schema: dict[str, object]) -> dict[str, object]:
    # /v1/chat/completions takes ``response_format`` everywhere; /v1/completions has no standard
    # field: vLLM reads ``structured_outputs``, llama-server ``json_schema``, OpenAI nothing.
    if flavor == "vllm":
        return {"structured_outputs": {"json": schema}}
    if flavor == "llama.cpp":
        return {"json_schema": schema}
    return {}


class OpenAIClient:
    """An :class:`~dataloop.llm.base.LLMClient` over one or more OpenAI-compatible endpoints.

    ``flavor`` names the server (``openai``, ``vllm`` or ``llama.cpp``) so that a JSON schema can
    constrain plain completions too; chat requests use ``response_format`` on every server.
    ``price`` (per million tokens) makes :attr:`cost` known and ``max_cost`` enforceable.
    Each endpoint starts at ``concurrency`` requests in flight; the limit falls on 429, 503 and
    timeouts and grows back, up to ``max_concurrency`` (default: ``concurrency``), while latency
    holds. An endpoint that refuses connections is left out for ``cooldown`` seconds
    (:class:`~dataloop.llm.fleet.Fleet`). After ``max_connection_failures`` requests in a row
    that could not connect (each after its retries), every request raises
    :class:`~dataloop.errors.TeacherUnavailable`.
    """

    def __init__(
        self,
        model: str,
        base_urls: list[str],
        api_key: str | None = None,
        *,
        concurrency: int = 8,
        max_concurrency: int | None = None,
        cooldown: float = 10.0,
        timeout: float = 120.0,
        retries: int = 4,
        budget: Budget | None = None,
        cache: ResponseCache | None = None,
        backoff_max: float = 20.0,
        flavor: Flavor = "openai",
        price: Price | None = None,
        max_cost: float | None = None,
        max_connection_failures: int = 3,
    ) -> None:
        if not base_urls:
            raise ValueError("OpenAIClient needs at least one base URL")
        self.model = model
        self.budget = budget or Budget()
        self.retries = retries
        self.backoff_max = backoff_max
        self.flavor: Flavor = flavor
        self.max_connection_failures = max_connection_failures
        self._connection_failures = 0
        self._last_connection_error = ""
        self._urls = [redact_url(url) for url in base_urls]
        self._meter = Meter(model, self.budget, cache, price, max_cost)
        self._fleet = Fleet(self._urls, concurrency, max_concurrency or concurrency, cooldown)
        # openai's own retries are off: tenacity decides, so every attempt is visible here.
        self._endpoints = [
            openai.AsyncOpenAI(
                base_url=url, api_key=api_key or "none", timeout=timeout, max_retries=0
            )
            for url in base_urls
        ]

    async def complete(self, prompt: str, sampling: Sampling) -> Completion:
        """A plain completion (``/v1/completions``)."""
        params = sampling.fields()
        if sampling.json_schema is not None:
            params["extra_body"] = _completion_schema(self.flavor, sampling.json_schema)
        constrained = bool(params.get("extra_body"))

        async def send(api: openai.AsyncOpenAI) -> Completion:
            resp = await api.completions.create(model=self.model, prompt=prompt, **params)
            completion = _completion(resp, lambda choice: choice.text)
            if constrained:
                self._check_constrained(completion, api)
            return completion

        worst = worst_case_tokens(prompt, sampling)
        return await self._meter.call("completion", prompt, sampling, worst, self._sender(send))

    async def chat(self, messages: list[Message], sampling: Sampling) -> Completion:
        """A chat completion (``/v1/chat/completions``)."""
        payload = [m.model_dump() for m in messages]
        params = sampling.fields()
        if sampling.json_schema is not None:
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": sampling.json_schema, "strict": True},
            }

        async def send(api: openai.AsyncOpenAI) -> Completion:
            resp = await api.chat.completions.create(
                model=self.model,
                messages=payload,  # type: ignore[arg-type]
                **params,
            )
            return _completion(resp, lambda choice: choice.message.content or "")

        text = "".join(m.content for m in messages)
        worst = worst_case_tokens(text, sampling, messages=len(messages))
        return await self._meter.call("chat", payload, sampling, worst, self._sender(send))

    def endpoints(self) -> list[EndpointStats]:
        """Each endpoint's concurrency limit, load and what it has answered so far."""
        return self._fleet.stats()

    def _check_constrained(self, completion: Completion, api: openai.AsyncOpenAI) -> None:
        # A server that does not know the schema field answers 200 with unconstrained text
        # (vLLM ignores llama-server's json_schema, and its own old guided_json): a schema for
        # an object makes every constrained reply start with "{", even one cut off by max_tokens.
        if all(text.lstrip().startswith(("{", "[")) for text in completion.texts):
            return
        field = next(iter(_completion_schema(self.flavor, {})))
        url = self._urls[self._endpoints.index(api)]
        raise TeacherError(
            f"teacher '{self.model}' at {url} ignored the JSON schema sent as '{field}' (its "
            f"reply is not JSON); config field 'teacher.flavor' is probably wrong: it says "
            f"'{self.flavor}', the server may be another (vllm reads structured_outputs, "
            "llama.cpp json_schema)"
        )

    def _sender(
        self, send: Callable[[openai.AsyncOpenAI], Awaitable[Completion]]
    ) -> Callable[[], Awaitable[Completion]]:
        return lambda: self._send_with_retries(send)

    async def _send_with_retries(
        self, send: Callable[[openai.AsyncOpenAI], Awaitable[Completion]]
    ) -> Completion:
        self._check_reachable()
        index: int | None = None
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(is_transient),
                stop=stop_after_attempt(self.retries + 1),
                wait=wait_random_exponential(multiplier=0.5, max=self.backoff_max),
                before_sleep=before_sleep_log(log, logging.INFO),
                reraise=True,
            ):
                with attempt:
                    self._check_reachable()
                    # A retry goes to another endpoint when one has room.
                    slot = await self._fleet.acquire(avoid=index)
                    index = slot.index
                    completion = await self._attempt(send, slot)
                    self._connection_failures = 0
                    return completion
        except openai.APIConnectionError as exc:
            self._connection_failures += 1
            self._last_connection_error = _describe(exc)
            self._check_reachable()
            raise TeacherError(
                f"teacher '{self.model}' at {self._url(index)}: {self._last_connection_error}"
            ) from exc
        except openai.APIStatusError as exc:
            raise TeacherError(
                f"teacher '{self.model}' at {self._url(index)} answered HTTP "
                f"{exc.status_code}: {exc.message}"
            ) from exc
        except (openai.APIError, MalformedResponse, json.JSONDecodeError) as exc:
            raise TeacherError(
                f"teacher '{self.model}' at {self._url(index)} failed: {_describe(exc)}"
            ) from exc
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _attempt(
        self, send: Callable[[openai.AsyncOpenAI], Awaitable[Completion]], slot: Slot
    ) -> Completion:
        """One try on the slot's endpoint; the fleet learns how it went."""
        try:
            completion = await send(self._endpoints[slot.index])
        except BaseException as exc:
            self._fleet.release(slot, _outcome(exc), retry_after=_retry_after(exc))
            raise
        self._fleet.release(slot, Outcome.ANSWERED, completion.completion_tokens)
        return completion

    def _url(self, index: int | None) -> str:
        return ", ".join(self._urls) if index is None else self._urls[index]

    async def probe(self, timeout: float) -> None:
        """Ask every endpoint for its model list (``GET /models``: no tokens, no budget) and
        raise :class:`~dataloop.errors.TeacherUnavailable` for one that cannot be reached,
        does not answer within ``timeout`` seconds, or refuses the key. An endpoint that
        answers with any other HTTP error (a server without ``/models``) is up."""
        for url, api in zip(self._urls, self._endpoints, strict=True):
            try:
                await api.with_options(timeout=timeout, max_retries=0).models.list()
            except openai.APITimeoutError:
                raise TeacherUnavailable(
                    f"teacher at {url} did not answer within {timeout:g} s "
                    "(teacher.probe_timeout): is the server up and not stuck?"
                ) from None
            except openai.APIConnectionError as exc:
                raise TeacherUnavailable(
                    f"teacher at {url} cannot be reached: {_describe(exc)}"
                ) from None
            except openai.AuthenticationError as exc:
                raise TeacherUnavailable(
                    f"teacher at {url} refused the key (HTTP {exc.status_code}); check "
                    "teacher.api_key_env"
                ) from None
            except openai.APIStatusError:
                continue

    def _check_reachable(self) -> None:
        failures = self._connection_failures
        if failures >= self.max_connection_failures:
            raise TeacherUnavailable(
                f"teacher at {', '.join(self._urls)} cannot be reached: {failures} requests in "
                f"a row failed after {self.retries} retries each (teacher.max_connection_failures"
                f"); last: {self._last_connection_error}"
            )

    async def aclose(self) -> None:
        """Close every endpoint's connection pool."""
        for api in self._endpoints:
            await api.close()


def _outcome(exc: BaseException) -> Outcome:
    """What a failed attempt says about its endpoint's load."""
    if isinstance(exc, openai.APIStatusError) and exc.status_code in (429, 503):
        return Outcome.OVERLOADED
    if isinstance(exc, openai.APITimeoutError):
        return Outcome.TIMED_OUT
    if isinstance(exc, openai.APIConnectionError) and _refused(exc):
        return Outcome.UNREACHABLE
    return Outcome.FAILED


def _refused(exc: BaseException) -> bool:
    # A connection that could not be opened (refused, no route, unknown host), as opposed to
    # one that broke mid-answer (a truncated body), which says nothing about the server's life.
    seen: BaseException | None = exc
    for _ in range(16):  # a chain of causes is short; this bounds a cyclic one
        if seen is None:
            return False
        if isinstance(seen, ConnectionError) or type(seen).__name__ == "ConnectError":
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _retry_after(exc: BaseException) -> float | None:
    """Seconds a 429 or 503 asks to wait (``retry-after-ms``, or ``Retry-After`` in seconds or
    as an HTTP date), or None."""
    if not isinstance(exc, openai.APIStatusError):
        return None
    headers = exc.response.headers
    try:
        if "retry-after-ms" in headers:
            return float(headers["retry-after-ms"]) / 1000
        if "retry-after" in headers:
            value = headers["retry-after"]
            try:
                return float(value)
            except ValueError:
                return parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError):
        pass
    return None


def _describe(exc: BaseException) -> str:
    """``Type: message``, with the lower-level cause of a connection error (``Connection
    refused``), which openai's own message (``Connection error.``) leaves out."""
    text = f"{type(exc).__name__}: {exc}"
    cause = exc.__cause__
    while cause is not None and cause.__cause__ is not None:
        cause = cause.__cause__
    if isinstance(exc, openai.APIConnectionError) and cause is not None and str(cause):
        text += f" ({redact_url(str(cause))})"
    return text


def _completion(resp: Any, text_of: Callable[[Any], str]) -> Completion:
    # The openai package builds response objects without validating them, so a 200 answer of
    # the wrong shape shows up here as missing or odd attributes: that is a malformed response.
    try:
        choices = list(resp.choices)
        usage = getattr(resp, "usage", None)
        return Completion(
            texts=[text_of(c) for c in choices],
            prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
            finish_reasons=[c.finish_reason or "" for c in choices],
        )
    except (AttributeError, TypeError, ValueError) as exc:
        raise MalformedResponse(f"response is not a completion: {exc}") from exc
