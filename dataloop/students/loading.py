"""Loading a student's base model and tokenizer, and turning prompts into token ids.

Models come from ``tiny`` (built here), a local directory, a hub id, or a GGUF file read by
transformers. A local directory is read with ``local_files_only`` so nothing is fetched; with
``HF_HUB_OFFLINE=1`` hub ids resolve from the local cache only.

A GGUF's tokenizer follows the file's own metadata, whatever transformers version reads it:
BOS and EOS are added as ``tokenizer.ggml.add_bos_token``/``add_eos_token`` say (Gemma without
its BOS degenerates), and a Gemma 3 file without a chat template gets Gemma 3's turn format
(``gemma3_chat.jinja``), whose ``<end_of_turn>`` also ends generation, as in llama.cpp.

Prompt token ids are made exactly as TRL's ``SFTTrainer`` makes them for training (plain text
with the tokenizer's special tokens, or the chat template with a generation prompt), so every
evaluation backend sees the context the model was trained on.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from dataloop.config import StudentConfig
from dataloop.errors import ConfigError
from dataloop.students.gguf_header import GGUFTokenizerMetadata, read_gguf_metadata
from dataloop.students.tiny import build_model, build_tokenizer


def use_cuda() -> bool:
    """Whether the student trains and evaluates on CUDA: a GPU is visible and not refused.

    ``accelerate launch --cpu`` tells the launched process ``ACCELERATE_USE_CPU=True``.
    transformers' Trainer honours it only half-way (the model goes to the CPU, the batches to
    cuda:0), so the student reads it itself and passes it on as ``use_cpu``.
    """
    refused = os.environ.get("ACCELERATE_USE_CPU", "false").strip().lower()
    return torch.cuda.is_available() and refused not in ("1", "y", "yes", "t", "true", "on")


def student_device() -> torch.device:
    """Where the student's model and its inputs go for evaluation."""
    return torch.device("cuda" if use_cuda() else "cpu")


def resolve_dtype(name: str) -> torch.dtype:
    """``auto`` is bf16 where the student runs on a GPU and fp32 on a CPU; other names are
    torch dtypes."""
    if name == "auto":
        return torch.bfloat16 if use_cuda() else torch.float32
    dtype = getattr(torch, name)
    assert isinstance(dtype, torch.dtype)
    return dtype


def _dequantized(model: PreTrainedModel) -> PreTrainedModel:
    # transformers dequantizes GGUF tensors on load but keeps the quantizer attached, and
    # save_pretrained then refuses to write the (already plain) weights. Detach it.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.is_quantized = False  # type: ignore[assignment]
    return model


GEMMA3_CHAT_TEMPLATE = Path(__file__).with_name("gemma3_chat.jinja")
"""Gemma 3's chat template, for Gemma 3 GGUFs that carry none (the packaged 270M)."""

END_OF_TURN = "<end_of_turn>"
"""The token that ends a turn in :data:`GEMMA3_CHAT_TEMPLATE`."""


def _follow_gguf(tokenizer: Any, metadata: GGUFTokenizerMetadata) -> None:
    # transformers before 5.20 ignores add_bos_token in a GGUF, and a tokenizer reloaded from
    # tokenizer.json reports add_bos_token False whatever its post-processor does: set both
    # flags from the file, which rebuilds the post-processor that tokenizer.json then carries.
    if metadata.add_bos_token is not None:
        tokenizer.add_bos_token = metadata.add_bos_token
    if metadata.add_eos_token is not None:
        tokenizer.add_eos_token = metadata.add_eos_token
    if metadata.architecture == "gemma3" and not metadata.has_chat_template:
        tokenizer.chat_template = GEMMA3_CHAT_TEMPLATE.read_text()


def stop_token_ids(tokenizer: Any) -> list[int]:
    """Tokens that end a generation: EOS, and ``<end_of_turn>`` where the chat template ends
    turns with it (llama.cpp stops at both)."""
    ids = [tokenizer.eos_token_id]
    if END_OF_TURN in (tokenizer.chat_template or ""):
        ids.append(tokenizer.convert_tokens_to_ids(END_OF_TURN))
    return ids


def load_tokenizer(config: StudentConfig) -> Any:
    """The student's tokenizer, left-padded, with a pad token and the configured chat template.

    A GGUF's tokenizer adds BOS and EOS as the file's metadata says and, for a Gemma 3 file
    without a chat template, gets :data:`GEMMA3_CHAT_TEMPLATE`.
    """
    if config.model == "tiny":
        tokenizer: Any = build_tokenizer()
    else:
        local = Path(config.model).is_dir()
        try:
            tokenizer = AutoTokenizer.from_pretrained(
                config.model,
                gguf_file=config.gguf_file,
                padding_side="left",
                local_files_only=local,
            )
        except (OSError, ValueError) as exc:  # not a model, not on the hub, hub unreachable
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(
                f"config field 'student.model': cannot load '{config.model}': {first}"
            ) from None
        if config.gguf_file:
            # The file transformers just read (a local folder's, or the hub cache's).
            gguf = transformers.utils.cached_file(
                config.model, config.gguf_file, local_files_only=local
            )
            _follow_gguf(tokenizer, read_gguf_metadata(Path(str(gguf))))
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if config.chat_template is not None:
        try:
            tokenizer.chat_template = config.chat_template.read_text()
        except OSError as exc:
            raise ConfigError(
                f"config field 'student.chat_template': cannot read {config.chat_template}: "
                f"{exc.strerror}"
            ) from None
    if config.prompt_format == "chat" and not tokenizer.chat_template:
        raise ConfigError(
            f"config field 'student.prompt_format': 'chat' needs a chat template and the "
            f"tokenizer of {config.model} has none; set student.chat_template to a .jinja file "
            "or use prompt_format: plain"
        )
    return tokenizer


# _NO_HUB_KERNELS: transformers >=5.24 kernelizes every model it loads by default, fetching layer
# code (e.g. kernels-community/rotary for Llama) from the Hugging Face Hub on a GPU. Offline, as
# on a cluster node without the Hub, that fails the first training step with "not available in
# the local cache"; online it runs code downloaded at training time. Students load without it.


def load_model(config: StudentConfig, tokenizer: Any, seed: int = 0) -> PreTrainedModel:
    """The base model in the configured dtype (GGUF weights dequantized and detached; a GGUF
    model stops generating at :func:`stop_token_ids`)."""
    if config.model == "tiny":
        return build_model(tokenizer, seed=seed)
    model = AutoModelForCausalLM.from_pretrained(
        config.model,
        gguf_file=config.gguf_file,
        dtype=resolve_dtype(config.dtype),
        local_files_only=Path(config.model).is_dir(),
        use_kernels=False,  # see _NO_HUB_KERNELS
    )
    if not config.gguf_file:
        return model
    model.generation_config.eos_token_id = stop_token_ids(tokenizer)
    return _dequantized(model)


def convert_gguf(model_dir: Path, gguf_file: str, output_dir: Path) -> Path:
    """Write a GGUF model as a plain transformers checkpoint (safetensors + tokenizer).

    Loading a GGUF through transformers dequantizes every tensor (~60 s for Gemma 3 270M);
    the converted folder loads in under a second and is what vLLM needs as a LoRA base. The
    tokenizer keeps the GGUF's BOS/EOS rules in ``tokenizer.json``'s post-processor, the chat
    template goes to ``chat_template.jinja`` and the stop tokens to ``generation_config.json``,
    so transformers, vLLM and llama-server on the GGUF see the same token ids.
    """
    transformers.utils.logging.disable_progress_bar()
    config = StudentConfig(model=str(model_dir), gguf_file=gguf_file, dtype="float32")
    tokenizer = load_tokenizer(config)
    model = load_model(config, tokenizer)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return output_dir


def load_checkpoint(
    config: StudentConfig, checkpoint: Path, seed: int = 0, trainable: bool = False
) -> PreTrainedModel:
    """A model saved by :meth:`HFStudent.train`: a LoRA adapter on the base, or a full model.

    ``trainable`` keeps the adapter's weights trainable, so training continues the same adapter.
    The adapter is loaded onto the base model's device: left to itself PEFT reads it onto the
    GPU whenever one is visible, whatever the base's device.
    """
    if (checkpoint / "adapter_config.json").is_file():
        from peft import PeftModel

        base = load_model(config, load_tokenizer(config), seed=seed)
        return PeftModel.from_pretrained(  # type: ignore[return-value]
            base, checkpoint, is_trainable=trainable, torch_device=str(base.device)
        )
    return AutoModelForCausalLM.from_pretrained(
        checkpoint, dtype=resolve_dtype(config.dtype), local_files_only=True, use_kernels=False
    )


def chat_prompt(prompt: str) -> list[dict[str, str]]:
    """A task prompt as the one user turn of a conversation."""
    return [{"role": "user", "content": prompt}]


def encode_prompts(tokenizer: Any, prompts: list[str], prompt_format: str) -> list[list[int]]:
    """Token ids of each prompt, as TRL's SFTTrainer builds the prompt part of a training row."""
    if prompt_format == "chat":
        return [
            list(
                tokenizer.apply_chat_template(
                    chat_prompt(p), add_generation_prompt=True, tokenize=True, return_dict=True
                )["input_ids"]
            )
            for p in prompts
        ]
    return [list(ids) for ids in tokenizer(prompts)["input_ids"]]
