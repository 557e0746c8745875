"""Offline vLLM: the teacher model inside this process (``vllm.LLM``), behind the same protocol.

No server and no HTTP: requests that arrive together (the engine sends a whole round at once)
are gathered into one ``LLM.generate`` / ``LLM.chat`` call, which vLLM batches on the GPU. The
engine runs in a worker thread so the event loop stays free. Budget and cache work exactly as for
the OpenAI-compatible client. ``vllm`` is imported only when a client is built: it is an optional
extra (``pip install 'dataloop[vllm]'``) that needs a GPU.
"""

from __future__ import annotations

import asyncio
import importlib
from dataclasses import dataclass
from typing import Any

from dataloop.errors import TeacherError
from dataloop.llm.accounting import Meter, worst_case_tokens
from dataloop.llm.base import Completion, Message, Sampling
from dataloop.llm.cache import ResponseCache
from dataloop.schema import Budget, Price


def import_vllm() -> Any:
    """The ``vllm`` module, or a TeacherError that says how to get it."""
    try:
        return importlib.import_module("vllm")
    except ImportError as exc:
        raise TeacherError(
            f"teacher backend 'vllm-offline' needs vLLM ({exc}): pip install 'dataloop[vllm]' "
            "on a machine with a GPU"
        ) from None


@dataclass
class _Pending:
    prompt: str | None
    messages: list[dict[str, str]] | None
    sampling: Sampling
    future: asyncio.Future[Completion]


class VLLMOfflineClient:
    """An :class:`~dataloop.llm.base.LLMClient` running ``vllm.LLM`` in this process.

    ``engine_args`` go to ``vllm.LLM`` as they are (e.g. ``gpu_memory_utilization``).
    ``batch_window`` is how long the first request of a batch waits for others to join it.
    """

    def __init__(
        self,
        model: str,
        *,
        tensor_parallel_size: int = 1,
        max_model_len: int | None = None,
        seed: int = 0,
        budget: Budget | None = None,
        cache: ResponseCache | None = None,
        price: Price | None = None,
        max_cost: float | None = None,
        engine_args: dict[str, Any] | None = None,
        batch_window: float = 0.01,
    ) -> None:
        self._vllm = import_vllm()
        self.model = model
        self.budget = budget or Budget()
        self.batch_window = batch_window
        self._meter = Meter(model, self.budget, cache, price, max_cost)
        args: dict[str, Any] = {"tensor_parallel_size": tensor_parallel_size, "seed": seed}
        if max_model_len is not None:
            args["max_model_len"] = max_model_len
        self.llm = self._vllm.LLM(model=model, **args, **(engine_args or {}))
        self._pending: list[_Pending] = []
        self._worker: asyncio.Task[None] | None = None

    async def complete(self, prompt: str, sampling: Sampling) -> Completion:
        """A plain completion of ``prompt``."""
        worst = worst_case_tokens(prompt, sampling)
        return await self._meter.call(
            "completion", prompt, sampling, worst, lambda: self._submit(prompt, None, sampling)
        )

    async def chat(self, messages: list[Message], sampling: Sampling) -> Completion:
        """A chat completion; vLLM applies the model's chat template."""
        payload = [m.model_dump() for m in messages]
        text = "".join(m.content for m in messages)
        worst = worst_case_tokens(text, sampling, messages=len(messages))
        return await self._meter.call(
            "chat", payload, sampling, worst, lambda: self._submit(None, payload, sampling)
        )

    async def aclose(self) -> None:
        """Wait for the batch in progress; the engine itself is freed with the client."""
        if self._worker is not None:
            await asyncio.gather(self._worker, return_exceptions=True)

    async def _submit(
        self, prompt: str | None, messages: list[dict[str, str]] | None, sampling: Sampling
    ) -> Completion:
        future: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(prompt, messages, sampling, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            await asyncio.sleep(self.batch_window)  # let requests sent together join one batch
            batch, self._pending = self._pending, []
            try:
                results = await asyncio.to_thread(self._run, batch)
            except Exception as exc:  # a failed batch fails its requests, never the worker
                error = TeacherError(f"vLLM teacher '{self.model}' failed: {exc}")
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(error)
                continue
            for item, result in zip(batch, results, strict=True):
                if not item.future.done():
                    item.future.set_result(result)

    def _run(self, batch: list[_Pending]) -> list[Completion]:
        """One generate call for the plain prompts and one chat call for the conversations."""
        results: dict[int, Completion] = {}
        plain = [i for i, item in enumerate(batch) if item.prompt is not None]
        chats = [i for i, item in enumerate(batch) if item.messages is not None]
        if plain:
            outputs = self.llm.generate(
                [batch[i].prompt for i in plain],
                [self._params(batch[i].sampling) for i in plain],
                use_tqdm=False,
            )
            results.update(zip(plain, map(_completion, outputs), strict=True))
        if chats:
            outputs = self.llm.chat(
                [batch[i].messages for i in chats],
                [self._params(batch[i].sampling) for i in chats],
                use_tqdm=False,
            )
            results.update(zip(chats, map(_completion, outputs), strict=True))
        return [results[i] for i in range(len(batch))]

    def _params(self, sampling: Sampling) -> Any:
        args = sampling.fields()
        if sampling.json_schema is not None:
            args.update(self._structured(sampling.json_schema))
        return self._vllm.SamplingParams(**args)

    def _structured(self, schema: dict[str, object]) -> dict[str, Any]:
        module = importlib.import_module("vllm.sampling_params")
        # vLLM 0.12 renamed guided decoding to structured outputs.
        if hasattr(module, "StructuredOutputsParams"):
            return {"structured_outputs": module.StructuredOutputsParams(json=schema)}
        return {"guided_decoding": module.GuidedDecodingParams(json=schema)}


def _completion(output: Any) -> Completion:
    return Completion(
        texts=[o.text for o in output.outputs],
        prompt_tokens=len(output.prompt_token_ids or []),
        completion_tokens=sum(len(o.token_ids) for o in output.outputs),
        finish_reasons=[o.finish_reason or "" for o in output.outputs],
    )
