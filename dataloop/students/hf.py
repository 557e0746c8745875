"""A Hugging Face transformers student trained with TRL's SFTTrainer (full or PEFT LoRA).

Loss is on the completion only (TRL's prompt/completion datasets); evaluation is batched greedy
``generate`` with left padding. The same code trains the embedded tiny Llama and a real
pretrained model.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import datasets
import torch
import transformers
from datasets import Dataset
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PrinterCallback,
    TrainerCallback,
)
from trl import SFTConfig, SFTTrainer

from dataloop.config import StudentConfig
from dataloop.students.base import TrainRecord
from dataloop.students.tiny import build_model, build_tokenizer

log = logging.getLogger(__name__)


def _dtype(name: str) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if torch.cuda.is_available() else torch.float32
    return getattr(torch, name)


class HFStudent:
    """A causal LM on transformers; ``train`` continues from the last checkpoint by default."""

    def __init__(
        self,
        config: StudentConfig,
        seed: int = 0,
        callbacks: list[TrainerCallback] | None = None,
    ) -> None:
        datasets.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
        self.config = config
        self.seed = seed
        self.callbacks = callbacks or []
        # Any: transformers' tokenizer and model unions are wider than what is used here.
        self.tokenizer: Any
        self.model: Any
        self.tokenizer, self.model = self._load_base()
        self.checkpoint: Path | None = None

    def _load_base(self) -> tuple[Any, PreTrainedModel]:
        tokenizer: Any
        if self.config.model == "tiny":
            tokenizer = build_tokenizer()
            return tokenizer, build_model(tokenizer, seed=self.seed)
        kwargs: dict[str, Any] = {"dtype": _dtype(self.config.dtype)}
        if self.config.gguf_file:
            kwargs["gguf_file"] = self.config.gguf_file
        tokenizer = AutoTokenizer.from_pretrained(
            self.config.model, gguf_file=self.config.gguf_file, padding_side="left"
        )
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(self.config.model, **kwargs)
        return tokenizer, model

    def _sft_config(self, output_dir: Path) -> SFTConfig:
        c = self.config
        return SFTConfig(
            output_dir=str(output_dir),
            max_steps=c.steps_per_iteration,
            per_device_train_batch_size=c.batch_size,
            learning_rate=c.learning_rate,
            lr_scheduler_type="constant_with_warmup",
            warmup_steps=min(20, c.steps_per_iteration // 10),
            max_length=c.max_length,
            completion_only_loss=True,
            bf16=_dtype(c.dtype) == torch.bfloat16,
            save_strategy="no",
            report_to="none",
            logging_steps=max(1, c.steps_per_iteration // 10),
            disable_tqdm=True,
            seed=self.seed,
            data_seed=self.seed,
            use_cpu=not torch.cuda.is_available(),
            dataloader_num_workers=0,
        )

    def _peft_config(self) -> Any:
        if self.config.method != "lora":
            return None
        from peft import LoraConfig

        lora = self.config.lora
        return LoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=lora.target_modules,
            task_type="CAUSAL_LM",
        )

    def train(self, records: list[TrainRecord], output_dir: Path) -> Path:
        """Train for ``steps_per_iteration`` steps on ``records``; save to ``output_dir``."""
        if not records:
            raise ValueError("cannot train on an empty training set")
        if self.config.train_from == "base" and self.checkpoint is not None:
            self.tokenizer, self.model = self._load_base()
        dataset = Dataset.from_list([r.model_dump() for r in records])
        trainer = SFTTrainer(
            model=self.model,
            args=self._sft_config(output_dir),
            train_dataset=dataset,
            processing_class=self.tokenizer,
            peft_config=self._peft_config() if not _is_peft(self.model) else None,
            callbacks=self.callbacks,
        )
        # dataloop shows its own progress; the trainer's printed log dicts would bury it.
        trainer.remove_callback(PrinterCallback)
        trainer.train()
        self.model = trainer.model
        output_dir.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(output_dir)
        self.tokenizer.save_pretrained(output_dir)
        self.checkpoint = output_dir
        return output_dir

    @torch.inference_mode()
    def predict(self, prompts: list[str]) -> list[str]:
        """Greedy completions, ``eval_batch_size`` prompts per ``generate`` call."""
        self.model.eval()
        device = next(self.model.parameters()).device
        outputs: list[str] = []
        for start in range(0, len(prompts), self.config.eval_batch_size):
            batch = prompts[start : start + self.config.eval_batch_size]
            enc = self.tokenizer(
                batch, return_tensors="pt", padding=True, add_special_tokens=False
            ).to(device)
            generated = self.model.generate(
                **enc,
                max_new_tokens=self.config.max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.tokenizer.eos_token_id,
            )
            new_tokens = generated[:, enc["input_ids"].shape[1] :]
            outputs.extend(self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
        return outputs


def _is_peft(model: PreTrainedModel) -> bool:
    return hasattr(model, "peft_config")
