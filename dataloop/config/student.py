"""The ``student`` section: the model that learns, how it trains and is evaluated."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
)

from dataloop.config.base import _Section


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
