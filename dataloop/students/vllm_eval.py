"""vLLM as the student's evaluator: one vLLM engine for the whole run, adapters hot-swapped.

Two evaluators with one contract (:class:`VLLMEvaluator`):

- :class:`VLLMServer` runs ``vllm serve BASE --enable-lora`` (through
  :func:`dataloop.llm.server.vllm_server`) and loads each iteration's adapter by name with
  ``POST /v1/load_lora_adapter``; evaluation is ``/v1/completions`` on token ids.
- :class:`VLLMOffline` holds a ``vllm.LLM(enable_lora=True)`` in this process and passes a
  ``LoRARequest`` per iteration.

While the student trains, the engine sleeps (level 1: weights copied to CPU RAM, KV cache
dropped) so the trainer has the GPU to itself. A full fine-tune changes the weights, so the
engine is stopped instead and started again on the new checkpoint. ``vllm`` is imported only
when an engine starts: nothing here needs it installed to import or to type-check.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import logging
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel

from dataloop.config import StudentConfig
from dataloop.errors import ConfigError, DataloopError, TeacherError
from dataloop.llm.server import (
    SLEEP_REFUSED,
    VLLM_MAX_LORA_RANKS,
    ManagedServer,
    vllm_command,
    vllm_server,
)

log = logging.getLogger(__name__)


class StudentEvalError(DataloopError):
    """The student's evaluation engine (vLLM) failed to start, load an adapter or answer."""


class Served(BaseModel):
    """What the engine should serve: the base model, a LoRA adapter on it, or a full model."""

    path: str
    """Model directory (base or full checkpoint) or adapter directory."""
    adapter: bool = False
    """``path`` is a PEFT adapter to load on the base model."""


class VLLMEvaluator(Protocol):
    """A vLLM engine that serves one student checkpoint at a time."""

    def serve(self, target: Served) -> None:
        """Make ``target`` the model that :meth:`generate` uses (waking or starting the engine)."""
        ...

    def sleep(self) -> None:
        """Release the GPU before training: sleep (LoRA) or stop (full fine-tuning)."""
        ...

    def generate(
        self, prompt_ids: list[list[int]], temperature: float | None = None, n: int = 1
    ) -> list[str]:
        """``n`` completions per token-id prompt (each prompt's together), in order, at
        ``temperature`` or the configured ``eval_temperature``."""
        ...

    def close(self) -> None:
        """Stop the engine for good."""
        ...


def check_vllm_config(config: StudentConfig) -> None:
    """Fail early, naming the field, when a config cannot be evaluated through vLLM."""
    if config.model == "tiny" or config.gguf_file:
        raise ConfigError(
            "config field 'student.eval_backend': vllm needs student.model to be a transformers "
            "model directory (for a GGUF, convert it first: "
            "dataloop.students.loading.convert_gguf) or use eval_backend: transformers"
        )
    if config.method == "lora" and config.vllm.max_lora_rank not in VLLM_MAX_LORA_RANKS:
        raise ConfigError(
            f"config field 'student.vllm.max_lora_rank': vllm serve accepts only "
            f"{', '.join(map(str, VLLM_MAX_LORA_RANKS))}, not {config.vllm.max_lora_rank}"
        )
    if config.method == "lora" and config.lora.r > config.vllm.max_lora_rank:
        raise ConfigError(
            f"config field 'student.vllm.max_lora_rank': {config.vllm.max_lora_rank} is below "
            f"student.lora.r ({config.lora.r}); raise it"
        )
    if config.vllm.mode == "server":
        try:
            vllm_command(config.model, config.vllm.python)
        except TeacherError as exc:
            field = "student.vllm.python" if config.vllm.python else "student.eval_backend"
            raise ConfigError(
                f"config field '{field}': {exc}; or use eval_backend: transformers"
            ) from None
    if config.vllm.mode == "offline" and importlib.util.find_spec("vllm") is None:
        raise ConfigError(
            "config field 'student.vllm.mode': offline needs the vllm package; install the "
            "[vllm] extra on a GPU machine or use eval_backend: transformers"
        )


def make_evaluator(config: StudentConfig, log_path: Path, seed: int = 0) -> VLLMEvaluator:
    """The engine ``config.vllm.mode`` names, after :func:`check_vllm_config`."""
    check_vllm_config(config)
    if config.vllm.mode == "offline":
        return VLLMOffline(config, seed=seed)
    return VLLMServer(config, log_path, seed=seed)


ServerFactory = Callable[..., ManagedServer]


class _Lifecycle(ABC):
    """The serve/sleep state machine both engines share; subclasses start, wake, sleep, stop.

    One engine runs one model (the base, for adapters); serving another model restarts it.
    Each adapter load gets a fresh name: vLLM refuses to load a name twice, and caches adapters
    by name and id, so a retrained checkpoint folder must not be served from its stale entry.
    """

    def __init__(self, config: StudentConfig) -> None:
        self.config = config
        self.running: str | None = None
        self.sleeping = False
        self.adapter_count = 0
        self.sleep_mode = config.vllm.sleep
        """Whether the engine sleeps while the student trains: ``student.vllm.sleep``, turned
        off where the platform has no sleep mode."""

    @abstractmethod
    def _start(self, model: str) -> None: ...

    @abstractmethod
    def _wake(self) -> None: ...

    @abstractmethod
    def _sleep(self) -> None: ...

    @abstractmethod
    def _stop(self) -> None: ...

    @abstractmethod
    def _use(self, name: str | None, adapter_path: str | None) -> None:
        """Point later requests at adapter ``name`` (just loaded from ``adapter_path``), or at
        the running model itself (both None)."""

    def serve(self, target: Served) -> None:
        """Start or wake the engine; point later requests at ``target``."""
        wanted = self.config.model if target.adapter else target.path
        if self.running is not None and self.running != wanted:
            self.close()
        if self.running is None:
            self._start(wanted)
            self.running = wanted
        elif self.sleeping:
            self._wake()
        self.sleeping = False
        if target.adapter:
            self.adapter_count += 1
            self._use(f"{Path(target.path).name}-{self.adapter_count}", target.path)
        else:
            self._use(None, None)

    def sleep(self) -> None:
        """Level-1 sleep for LoRA (the base weights stay valid); stop for full fine-tuning."""
        if self.running is None or self.sleeping:
            return
        if self.config.method == "full":
            self.close()
        elif self.sleep_mode:
            self._sleep()
            self.sleeping = True

    def close(self) -> None:
        """Stop the engine (it starts again on the next :meth:`serve`)."""
        if self.running is not None:
            self._stop()
        self.running, self.sleeping = None, False


class VLLMServer(_Lifecycle):
    """``vllm serve`` for the run; LoRA adapters loaded by name, full checkpoints by restart."""

    def __init__(
        self,
        config: StudentConfig,
        log_path: Path,
        seed: int = 0,
        server_factory: ServerFactory = vllm_server,
    ) -> None:
        super().__init__(config)
        self.log_path = log_path
        self.seed = seed
        self.server_factory = server_factory
        self.server: ManagedServer | None = None
        self.model_name: str | None = None

    def _start(self, model: str) -> None:
        vllm = self.config.vllm
        lora = self.config.method == "lora"
        extra = ["--gpu-memory-utilization", str(vllm.gpu_memory_utilization)]
        extra += ["--seed", str(self.seed)]
        for sleep_mode in (self.sleep_mode, False):
            self.server = self.server_factory(
                model,
                self.log_path,
                tensor_parallel_size=vllm.tensor_parallel_size,
                max_model_len=vllm.max_model_len,
                enable_lora=lora,
                max_lora_rank=vllm.max_lora_rank if lora else None,
                enable_sleep_mode=sleep_mode,
                extra_args=extra + vllm.extra_args,
                python=vllm.python,
            )
            try:
                self.server.start()
                return
            except TeacherError:
                if not sleep_mode or SLEEP_REFUSED not in self.server.log_tail(40):
                    raise
            # vLLM has sleep mode on CUDA only: stay awake here rather than not start.
            log.warning(
                "student.vllm.sleep: vLLM has no sleep mode on this platform (CPU); the engine "
                "stays awake while the student trains"
            )
            self.sleep_mode = False

    def _post(self, path: str, payload: dict[str, Any] | None = None) -> None:
        assert self.server is not None
        root = self.server.base_url.removesuffix("/v1")
        data = json.dumps(payload).encode() if payload is not None else b""
        request = urllib.request.Request(
            root + path, data=data, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            raise StudentEvalError(
                f"vllm {path} answered {exc.code}: {detail}; see {self.log_path}"
            ) from None
        except OSError as exc:
            raise StudentEvalError(f"vllm {path} failed: {exc}; see {self.log_path}") from None

    def _wake(self) -> None:
        self._post("/wake_up")

    def _sleep(self) -> None:
        self._post("/sleep?level=1")

    def _use(self, name: str | None, adapter_path: str | None) -> None:
        if name is None:
            self.model_name = self.running
            return
        self._post("/v1/load_lora_adapter", {"lora_name": name, "lora_path": adapter_path})
        if self.model_name not in (None, self.config.model):
            self._post("/v1/unload_lora_adapter", {"lora_name": self.model_name})
        self.model_name = name

    def _stop(self) -> None:
        assert self.server is not None
        self.server.stop()
        self.server, self.model_name = None, None

    def generate(
        self, prompt_ids: list[list[int]], temperature: float | None = None, n: int = 1
    ) -> list[str]:
        """``/v1/completions`` on token ids, ``eval_batch_size`` prompts per request, ``n``
        completions each (vLLM's ``n``: one request, each prompt's choices together)."""
        from openai import OpenAI, OpenAIError

        assert self.server is not None and self.model_name is not None, "serve() first"
        c = self.config
        client = OpenAI(base_url=self.server.base_url, api_key="EMPTY", timeout=600, max_retries=2)
        texts: list[str] = []
        for start in range(0, len(prompt_ids), c.eval_batch_size):
            batch = prompt_ids[start : start + c.eval_batch_size]
            try:
                response = client.completions.create(
                    model=self.model_name,
                    prompt=batch,
                    max_tokens=c.max_new_tokens,
                    temperature=c.eval_temperature if temperature is None else temperature,
                    top_p=c.eval_top_p,
                    seed=self.seed,
                    n=n,
                )
            except OpenAIError as exc:
                raise StudentEvalError(
                    f"vllm completions failed: {exc}; see {self.log_path}"
                ) from None
            texts.extend(choice.text for choice in sorted(response.choices, key=lambda x: x.index))
        return texts


class VLLMOffline(_Lifecycle):
    """``vllm.LLM`` in this process: a ``LoRARequest`` per adapter, a new engine per full model."""

    def __init__(self, config: StudentConfig, seed: int = 0) -> None:
        super().__init__(config)
        self.seed = seed
        self.llm: Any = None
        self.lora_request: Any = None

    def _start(self, model: str) -> None:
        from vllm import LLM

        v = self.config.vllm
        lora = self.config.method == "lora"
        self.llm = LLM(
            model=model,
            tensor_parallel_size=v.tensor_parallel_size,
            gpu_memory_utilization=v.gpu_memory_utilization,
            max_model_len=v.max_model_len,
            enable_lora=lora,
            max_lora_rank=v.max_lora_rank if lora else None,
            enable_sleep_mode=v.sleep,
            seed=self.seed,
        )

    def _wake(self) -> None:
        self.llm.wake_up()

    def _sleep(self) -> None:
        self.llm.sleep(level=1)

    def _use(self, name: str | None, adapter_path: str | None) -> None:
        self.lora_request = None
        if name is not None:
            from vllm.lora.request import LoRARequest

            # vLLM caches adapters by integer id: a new id per load serves the new weights.
            self.lora_request = LoRARequest(name, self.adapter_count, adapter_path)

    def _stop(self) -> None:
        engine = getattr(self.llm, "llm_engine", None)
        shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
        if callable(shutdown):
            shutdown()
        self.llm, self.lora_request = None, None
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def generate(
        self, prompt_ids: list[list[int]], temperature: float | None = None, n: int = 1
    ) -> list[str]:
        """``LLM.generate`` on token-id prompts, ``n`` samples each, at ``temperature`` or the
        configured sampling."""
        from vllm import SamplingParams

        assert self.llm is not None, "serve() first"
        c = self.config
        params = SamplingParams(
            temperature=c.eval_temperature if temperature is None else temperature,
            top_p=c.eval_top_p,
            max_tokens=c.max_new_tokens,
            seed=self.seed,
            n=n,
        )
        outputs = self.llm.generate(
            [{"prompt_token_ids": ids} for ids in prompt_ids],
            params,
            lora_request=self.lora_request,
            use_tqdm=False,
        )
        return [sample.text for out in outputs for sample in out.outputs]
