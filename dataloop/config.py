"""Run configuration: typed, documented, loaded from YAML.

Every field has a default, so ``dataloop run --env arithmetic`` needs no file at all. Errors name
the field (``config field 'student.learning_rate': Input should be a valid number``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dataloop.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class EnvConfig(_Section):
    """Which task the student learns."""

    name: str = "arithmetic"
    """Built-in or entry-point name, or ``path/to/env.py[:Class]``."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments for the task's constructor (e.g. ``train_per_skill: 16``)."""


class LoraSettings(_Section):
    """PEFT LoRA settings, used when ``student.method`` is ``lora``."""

    r: int = Field(8, ge=1)
    """Rank of the update matrices."""
    alpha: int = Field(16, ge=1)
    """Scaling numerator (``lora_alpha``)."""
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    """Dropout on the LoRA path."""
    target_modules: list[str] | str = "all-linear"
    """Module names to adapt, or ``all-linear``."""


class StudentConfig(_Section):
    """The model being taught and how it is trained and evaluated."""

    model: str = "tiny"
    """``tiny`` (a ~1M-parameter Llama built locally) or a model directory / hub id."""
    gguf_file: str | None = None
    """GGUF file name inside ``model`` to load through transformers (e.g. Gemma 3 270M)."""
    method: Literal["full", "lora"] = "full"
    """Full fine-tuning or PEFT LoRA."""
    lora: LoraSettings = Field(default_factory=LoraSettings)
    """LoRA settings (used when ``method`` is ``lora``)."""
    train_from: Literal["previous", "base"] = "previous"
    """Continue from the last checkpoint, or retrain the base model each iteration (LLM2LLM)."""
    learning_rate: float = Field(1e-3, gt=0)
    """Peak learning rate (constant schedule after warm-up)."""
    batch_size: int = Field(64, ge=1)
    """Examples per optimiser step."""
    steps_per_iteration: int = Field(400, ge=1)
    """Optimiser steps each time the student trains (reset and every iteration)."""
    max_length: int = Field(64, ge=8)
    """Longest prompt + answer in tokens; longer examples are truncated."""
    max_new_tokens: int = Field(8, ge=1)
    """Greedy decoding length at evaluation."""
    eval_batch_size: int = Field(256, ge=1)
    """Prompts per generate call at evaluation."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """Weights dtype: ``auto`` is bf16 on a GPU and fp32 on a CPU."""
    train_on_seed: bool = True
    """Train on the seed set in ``reset`` before the first evaluation."""


class TeacherConfig(_Section):
    """The LLM that writes new data."""

    backend: Literal["llama-server", "openai"] = "llama-server"
    """``llama-server``: start the packaged Gemma 3 270M locally; ``openai``: any
    OpenAI-compatible endpoint already running (vLLM, OpenAI, llama.cpp)."""
    model: str | None = None
    """Model name sent to the server; for ``llama-server`` a GGUF path (default: packaged Gemma)."""
    base_urls: list[str] = Field(default_factory=list)
    """Endpoints for ``openai`` (e.g. ``http://127.0.0.1:8000/v1``); several are load-balanced."""
    api_key_env: str | None = None
    """Name of the environment variable holding the API key; the key itself is never stored."""
    kind: Literal["base", "chat"] = "base"
    """``base`` models get few-shot completion prompts; ``chat`` models get chat messages."""
    temperature: float = Field(0.9, ge=0)
    """Sampling temperature for generation."""
    max_tokens: int = Field(128, ge=1)
    """Completion tokens per request."""
    concurrency: int = Field(8, ge=1)
    """Requests in flight at once."""
    timeout: float = Field(120.0, gt=0)
    """Seconds before one request is abandoned (and retried)."""
    retries: int = Field(4, ge=0)
    """Retries of a failed request (429, 5xx, timeouts, lost connections)."""
    max_queries: int | None = Field(None, ge=0)
    """Budget: requests the whole run may send (None = unlimited)."""
    max_total_tokens: int | None = Field(None, ge=0)
    """Budget: prompt + completion tokens the whole run may spend (None = unlimited)."""
    cache: bool = True
    """Cache responses on disk in the run directory, so a rerun does not pay twice."""
    parallel: int = Field(8, ge=1)
    """``llama-server`` parallel slots (``-np``)."""
    threads: int = Field(2, ge=1)
    """``llama-server`` CPU threads (``-t``)."""
    seed: int = 0
    """Sampling seed sent with each request (offset by the request's index)."""


class PolicyConfig(_Section):
    """How the teacher decides what to generate."""

    name: str = "weakest-skills"
    """A built-in policy (uniform, weakest-skills) or ``path/to/file.py:Class``."""
    examples_per_iteration: int = Field(240, ge=0)
    """Examples the policy asks for in each iteration."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Extra keyword arguments for the policy's constructor."""


class EngineConfig(_Section):
    """How a plan becomes examples."""

    strategy: str | None = None
    """Force one strategy for every request (overrides the policy's choice)."""
    prompts_dir: Path | None = None
    """A folder of your own templates, searched before the built-in ``prompts/``."""
    shots: int = Field(8, ge=1)
    """Examples shown to the teacher in each few-shot prompt."""
    per_query: int = Field(6, ge=1)
    """Candidates one request is expected to yield (sets how many requests are sent)."""
    max_rounds: int = Field(3, ge=1)
    """Rounds of requests per plan while accepted examples fall short of the request."""


class LoopConfig(_Section):
    """A whole run: task, student, teacher, policy, engine and the loop around them."""

    name: str | None = None
    """Run name: the folder ``runs_dir/name`` (default: env name + timestamp)."""
    runs_dir: Path = Path("runs")
    """Where run folders are created."""
    iterations: int = Field(3, ge=0)
    """Generate-train-evaluate rounds after ``reset``."""
    target_accuracy: float | None = Field(None, gt=0, le=1)
    """Stop early once mean validation accuracy reaches this."""
    seed: int = 0
    """Seed for the task's splits, the student's initialisation and sampling."""
    env: EnvConfig = Field(default_factory=EnvConfig)
    student: StudentConfig = Field(default_factory=StudentConfig)
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)


def _field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def validate_config(data: dict[str, Any], origin: str = "config") -> LoopConfig:
    """Build a LoopConfig from plain data; the first problem becomes a one-line ConfigError."""
    try:
        return LoopConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        raise ConfigError(
            f"config field '{_field_path(err['loc'])}': {msg}{more} (in {origin})"
        ) from None


def load_config(path: Path, overrides: dict[str, Any] | None = None) -> LoopConfig:
    """Read a YAML run config, apply dotted overrides (``{"student.batch_size": 32}``)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of config fields")
    return validate_config(apply_overrides(data, overrides or {}), origin=str(path))


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Set dotted keys in nested config data, creating sections as needed."""
    for dotted, value in overrides.items():
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return data


def dump_config(config: LoopConfig) -> str:
    """The resolved config as YAML (what ``runs/<name>/config.yaml`` holds)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
