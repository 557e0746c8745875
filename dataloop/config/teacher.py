"""The ``teacher`` section: one config model per backend, told apart by ``backend``."""

from __future__ import annotations

import warnings
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    field_validator,
    model_validator,
)

from dataloop.config.base import _Section
from dataloop.deprecation import deprecated
from dataloop.redact import looks_like_key, redact_url
from dataloop.schema import Price

TeacherBackend = Literal["llama-server", "vllm", "vllm-offline", "openai"]
"""How the teacher is reached; each has its own config model (:data:`AnyTeacherConfig`)."""


class TeacherConfig(_Section):
    """The LLM that writes new data: the fields every backend has.

    The ``teacher`` section is one backend's model, picked by ``backend`` (default
    ``llama-server``): :class:`LlamaServerTeacherConfig`, :class:`VLLMTeacherConfig`,
    :class:`VLLMOfflineTeacherConfig` or :class:`OpenAITeacherConfig`. A field of another
    backend (as every run folder an older dataloop saved lists) is dropped, with a
    FutureWarning when it is not that field's default. ``TeacherConfig(backend=..., ...)``
    still builds the backend's model, with a DeprecationWarning: call that model instead.
    """

    backend: TeacherBackend = "llama-server"
    """``llama-server``: start llama.cpp's server with a GGUF (default: the packaged Gemma 3
    270M); ``vllm``: start ``vllm serve model`` (GPU); ``vllm-offline``: ``vllm.LLM`` inside the
    loop's process (GPU); ``openai``: any OpenAI-compatible endpoint already running (OpenAI, a
    vLLM or llama.cpp server, ...)."""
    model: str | None = None
    """Model name sent to the server (``openai``), a model directory or hub id (``vllm``,
    ``vllm-offline``), or a GGUF path (``llama-server``; default: the packaged Gemma)."""
    kind: Literal["base", "chat"] = "base"
    """``base`` models get few-shot completion prompts; ``chat`` models get chat messages."""
    temperature: float = Field(0.9, ge=0)
    """Sampling temperature for generation."""
    max_tokens: int = Field(128, ge=1)
    """Completion tokens per request."""
    max_queries: int | None = Field(None, ge=0)
    """Budget: requests the whole run may send (None = unlimited)."""
    max_total_tokens: int | None = Field(None, ge=0)
    """Budget: prompt + completion tokens the whole run may spend (None = unlimited)."""
    prices: dict[str, Price] = Field(default_factory=dict)
    """Price table: model name -> price per million prompt and completion tokens, e.g.
    ``{gpt-4o-mini: {prompt: 0.15, completion: 0.6}}``; the teacher's entry prices its tokens."""
    max_cost: float | None = Field(None, ge=0)
    """Budget: money the whole run may spend at the teacher's price (needs its ``prices`` entry)."""
    cache: bool = True
    """Cache responses on disk in the run directory, so a rerun does not pay twice."""
    seed: int = 0
    """Sampling seed sent with each request (offset by the request's index)."""

    def __new__(cls, *args: Any, **data: Any) -> TeacherConfig:
        if cls is not TeacherConfig:
            return super().__new__(cls)
        # TeacherConfig was once one flat model for every backend.
        deprecated(
            "TeacherConfig(...) is deprecated: build the backend's own model "
            "(LlamaServerTeacherConfig, VLLMTeacherConfig, VLLMOfflineTeacherConfig, "
            "OpenAITeacherConfig) or validate data with teacher_config()"
        )
        return teacher_config(data)

    @property
    def request_model(self) -> str | None:
        """The model name requests use (``served_model`` where a backend has one); for
        ``llama-server`` the GGUF's stem, known once the file is (see ``check_teacher``)."""
        return self.model

    @model_validator(mode="before")
    @classmethod
    def _other_backends_fields(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        own = cls.model_fields
        backend = data.get("backend", own["backend"].default)
        data = dict(data)
        for key in [k for k in data if k not in own and k in _BACKEND_FIELDS]:
            value = data.pop(key)
            if value == _BACKEND_FIELDS[key]:
                continue  # a run folder an older dataloop saved lists every backend's fields
            if key in ("replicas", "devices"):
                raise ValueError(
                    f"replicas and devices start servers, which backend '{backend}' does not: "
                    "use llama-server or vllm, or list running servers in base_urls"
                )
            if key == "served_model" and backend in ("openai", "vllm-offline"):
                # Older dataloop sent served_model in place of model on every backend.
                data["model"] = value
                warnings.warn(
                    f"teacher field 'served_model' is for backend vllm: backend '{backend}' "
                    "uses it as 'model'; write it as model (a later version refuses it)",
                    FutureWarning,
                    stacklevel=2,
                )
                continue
            warnings.warn(
                f"teacher field '{key}' is not used by backend '{backend}' and is ignored: "
                "remove it (a later version refuses it)",
                FutureWarning,
                stacklevel=2,
            )
        return data


class HTTPTeacherConfig(TeacherConfig):
    """A teacher spoken to over HTTP (``llama-server``, ``vllm``, ``openai``): how requests are
    sent, retried and spread."""

    concurrency: int = Field(8, ge=1)
    """Requests in flight at once on each endpoint, to start with: an endpoint's limit halves on
    429, 503 and timeouts and grows by one per round of answers again while its latency holds."""
    max_concurrency: int | None = Field(None, ge=1)
    """Most requests in flight on one endpoint: the limit grows towards it while latency holds
    (default: ``concurrency``, so it only grows back after a cut). Set it high for a vLLM
    server, which queues what it cannot batch instead of answering 429."""
    endpoint_cooldown: float = Field(10.0, gt=0)
    """Seconds an endpoint that refused a connection stays out of rotation, its requests going
    to the others; then one request tries it again."""
    timeout: float = Field(120.0, gt=0)
    """Seconds before one request is abandoned (and retried)."""
    retries: int = Field(4, ge=0)
    """Retries of a failed request (429, 5xx, timeouts, lost connections)."""
    max_connection_failures: int = Field(3, ge=1)
    """Requests in a row that cannot reach the teacher (after their ``retries``) before the
    run stops with an error naming the URL; the run can be resumed once the teacher is back."""

    @model_validator(mode="after")
    def _concurrency_range(self) -> HTTPTeacherConfig:
        if self.max_concurrency is not None and self.max_concurrency < self.concurrency:
            raise ValueError(
                f"max_concurrency {self.max_concurrency} is below concurrency "
                f"{self.concurrency}: raise max_concurrency or lower concurrency"
            )
        return self


class ServedTeacherConfig(HTTPTeacherConfig):
    """A teacher whose servers dataloop starts (``llama-server``, ``vllm``): how many, on
    which GPUs, with which extra flags."""

    replicas: int = Field(1, ge=1)
    """Servers to start, each on its own port (and its share of ``devices``); requests are
    spread over them as over several ``base_urls``."""
    devices: list[int] = Field(default_factory=list)
    """GPU indices the replicas split in order, the same number each (``CUDA_VISIBLE_DEVICES``),
    e.g. ``[0, 1, 2, 3]`` with 2 replicas and ``tensor_parallel_size: 2``; default: every
    replica sees the GPUs the environment allows."""
    server_args: list[str] = Field(default_factory=list)
    """More flags for the started server (``llama-server`` or ``vllm serve``), passed as they
    are, e.g. ``[--gpu-memory-utilization, "0.5"]``; for ``vllm-offline`` use ``engine_args``."""

    @model_validator(mode="after")
    def _even_devices(self) -> ServedTeacherConfig:
        share, left = divmod(len(self.devices), self.replicas)
        if self.devices and (left or not share):
            raise ValueError(
                f"devices {self.devices} do not split evenly over {self.replicas} replicas: "
                "give the same number of GPUs to each"
            )
        return self


class LlamaServerTeacherConfig(ServedTeacherConfig):
    """``backend: llama-server`` (the default): llama.cpp's server started with a GGUF."""

    backend: Literal["llama-server"] = "llama-server"
    """``llama-server``: start llama.cpp's server with ``model`` (default: the packaged Gemma 3
    270M)."""
    parallel: int = Field(8, ge=1)
    """``llama-server`` parallel slots (``-np``)."""
    threads: int = Field(2, ge=1)
    """``llama-server`` CPU threads (``-t``)."""
    chat_template: str | None = None
    """``llama-server`` chat template: a llama.cpp built-in name (``gemma``, ``chatml``,
    ``llama3``, ...) or a ``.jinja`` file; default: the GGUF's own (``gemma`` for the packaged
    Gemma, which has none)."""


class VLLMTeacherConfig(ServedTeacherConfig):
    """``backend: vllm``: ``vllm serve model`` started by dataloop (GPU, or vLLM's CPU build)."""

    backend: Literal["vllm"] = "vllm"
    """``vllm``: start ``vllm serve model``."""
    tensor_parallel_size: int = Field(1, ge=1)
    """GPUs the teacher is split across."""
    max_model_len: int | None = Field(None, ge=16)
    """Context length to reserve KV cache for (default: the model's)."""
    lora_modules: dict[str, str] = Field(default_factory=dict)
    """LoRA adapters to serve on top of ``model``, name -> folder (``--lora-modules``); the
    teacher uses one by naming it in ``served_model``."""
    served_model: str | None = None
    """The name requests use, e.g. one of ``lora_modules`` (default: ``model``)."""
    max_lora_rank: int | None = Field(None, ge=1)
    """Largest adapter rank to accept (``--max-lora-rank``)."""
    vllm_python: str | None = None
    """The Python of an environment that has vLLM (e.g. the CPU build that ``make vllm-venv``
    puts in ``.cache/venv-vllm/bin/python``), started as ``PYTHON -m
    vllm.entrypoints.openai.api_server``; default: ``vllm serve`` from PATH."""

    @property
    def request_model(self) -> str | None:
        """``served_model``, else ``model``."""
        return self.served_model or self.model

    @model_validator(mode="after")
    def _devices_per_replica(self) -> VLLMTeacherConfig:
        share = len(self.devices) // self.replicas
        if self.devices and share != self.tensor_parallel_size:
            raise ValueError(
                f"devices give each of the {self.replicas} vllm replicas {share} GPUs, but "
                f"tensor_parallel_size is {self.tensor_parallel_size}: make them agree"
            )
        return self


class VLLMOfflineTeacherConfig(TeacherConfig):
    """``backend: vllm-offline``: ``vllm.LLM`` inside the loop's process (GPU)."""

    backend: Literal["vllm-offline"] = "vllm-offline"
    """``vllm-offline``: load ``model`` with ``vllm.LLM``."""
    tensor_parallel_size: int = Field(1, ge=1)
    """GPUs the teacher is split across."""
    max_model_len: int | None = Field(None, ge=16)
    """Context length to reserve KV cache for (default: the model's)."""
    engine_args: dict[str, Any] = Field(default_factory=dict)
    """More keyword arguments for ``vllm.LLM``."""


class OpenAITeacherConfig(HTTPTeacherConfig):
    """``backend: openai``: any OpenAI-compatible endpoint already running (OpenAI, a vLLM or
    llama.cpp server, ...)."""

    backend: Literal["openai"] = "openai"
    """``openai``: send requests to ``base_urls``."""
    base_urls: list[str] = Field(default_factory=list)
    """Endpoints (e.g. ``http://127.0.0.1:8000/v1``); several are load-balanced."""
    flavor: Literal["openai", "vllm", "llama.cpp"] = "openai"
    """The server behind ``base_urls``: it decides how a JSON schema is sent with plain
    completions."""
    api_key_env: str | None = None
    """Name of the environment variable holding the API key; the key itself is never stored.
    A value that looks like a key rather than a name (not ``[A-Za-z_][A-Za-z0-9_]*``, longer
    than 64 characters, starting ``sk-``, ``hf_``, ...) is refused without being echoed."""
    probe_timeout: float = Field(10.0, gt=0)
    """Seconds each endpoint has to answer its model list when a run starts or resumes, before
    anything trains; one that is down, or hangs, is reported then."""

    @field_validator("base_urls")
    @classmethod
    def _http_urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            # A saved run's URL whose credentials were redacted ("https://***@host") reads
            # back: export and report never contact the teacher; using it is refused then.
            parts = urlsplit(url)
            try:
                ok = parts.scheme in ("http", "https") and bool(parts.hostname)
                ok = ok and (parts.port is None or parts.port > 0)  # .port raises if not a number
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(
                    f"'{redact_url(url)}' is not an http:// or https:// URL with a host, "
                    "e.g. http://127.0.0.1:8000/v1"
                )
        return urls

    @field_validator("api_key_env")
    @classmethod
    def _variable_name(cls, name: str | None) -> str | None:
        if name is not None and looks_like_key(name):
            raise ValueError(
                "expected the name of an environment variable (e.g. OPENAI_API_KEY), and "
                "this looks like a key itself; the value is not shown or saved: export the key "
                "in a variable and give its name"
            )
        return name


_BACKENDS: dict[str, type[TeacherConfig]] = {
    "llama-server": LlamaServerTeacherConfig,
    "vllm": VLLMTeacherConfig,
    "vllm-offline": VLLMOfflineTeacherConfig,
    "openai": OpenAITeacherConfig,
}
_BACKEND_FIELDS = {
    name: field.get_default(call_default_factory=True)
    for model in _BACKENDS.values()
    for name, field in model.model_fields.items()
    if name not in TeacherConfig.model_fields
}
"""Every backend's own fields and their defaults (what an old flat teacher section may hold)."""


def _backend_of(data: Any) -> str:
    if isinstance(data, dict):
        return str(data.get("backend", "llama-server"))
    return str(getattr(data, "backend", "llama-server"))


AnyTeacherConfig = Annotated[
    Annotated[LlamaServerTeacherConfig, Tag("llama-server")]
    | Annotated[VLLMTeacherConfig, Tag("vllm")]
    | Annotated[VLLMOfflineTeacherConfig, Tag("vllm-offline")]
    | Annotated[OpenAITeacherConfig, Tag("openai")],
    Discriminator(
        _backend_of,
        custom_error_type="teacher_backend",
        custom_error_message="Input should be 'llama-server', 'vllm', 'vllm-offline' or 'openai'",
    ),
]
"""A ``teacher`` section: one backend's config model, told apart by ``backend``."""

_TEACHER: TypeAdapter[AnyTeacherConfig] = TypeAdapter(AnyTeacherConfig)


def teacher_config(data: dict[str, Any]) -> AnyTeacherConfig:
    """The teacher config model ``data`` describes (a ``teacher`` section, ``backend`` picking
    the model); raises pydantic's ValidationError."""
    return _TEACHER.validate_python(data)
