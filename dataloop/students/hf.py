"""A Hugging Face transformers student trained with TRL's SFTTrainer (full or PEFT LoRA).

Loss is on the completion only (TRL's prompt/completion datasets, plain or conversational).
Evaluation is batched ``generate`` on the training model, or a vLLM engine that serves each
iteration's checkpoint (:mod:`dataloop.students.vllm_eval`). The same code trains the
embedded tiny Llama and a real pretrained model.

``train_from: previous`` keeps training the same model (for LoRA: the same adapter, weights
and all); ``train_from: base`` starts every round from the base weights (for LoRA: the adapter
is removed and a fresh one, B = 0, is trained).
"""

from __future__ import annotations

import gc
import tempfile
from pathlib import Path
from typing import Any

import datasets
import torch
import transformers
from datasets import Dataset
from transformers import PrinterCallback, TrainerCallback
from trl import SFTConfig, SFTTrainer

from dataloop.config import StudentConfig
from dataloop.students.base import TrainRecord
from dataloop.students.launch import TrainJob, launch
from dataloop.students.loading import (
    chat_prompt,
    encode_prompts,
    load_checkpoint,
    load_model,
    load_tokenizer,
    resolve_dtype,
    student_device,
    use_cuda,
)
from dataloop.students.vllm_eval import Served, VLLMEvaluator, make_evaluator


class HFStudent:
    """A causal LM on transformers, trained by TRL, evaluated by transformers or vLLM."""

    def __init__(
        self,
        config: StudentConfig,
        seed: int = 0,
        callbacks: list[TrainerCallback] | None = None,
        evaluator: VLLMEvaluator | None = None,
        eval_log: Path | None = None,
    ) -> None:
        """Load the base model now (the slow part); a vLLM engine starts on first use.

        ``evaluator`` replaces the vLLM evaluator ``config.eval_backend: vllm`` would make;
        ``eval_log`` is where ``vllm serve`` writes its log (default: the temp folder).
        """
        datasets.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
        self.config = config
        self.seed = seed
        self.callbacks = callbacks or []
        # Before the slow model load, so a config vLLM cannot serve fails at once.
        if evaluator is None and config.eval_backend == "vllm":
            log_path = eval_log or Path(tempfile.gettempdir()) / "dataloop-student-vllm.log"
            evaluator = make_evaluator(config, log_path, seed=seed)
        self.evaluator = evaluator
        # Any: transformers' tokenizer and model unions are wider than what is used here.
        self.tokenizer: Any = load_tokenizer(config)
        self.model: Any = load_model(config, self.tokenizer, seed=seed)
        self.checkpoint: Path | None = None
        self._evaluator_ready = False

    def sft_config(self, output_dir: Path) -> SFTConfig:
        """The TRL ``SFTConfig`` a round of training uses: the student config's steps or
        epochs, batch, schedule, length and gradient checkpointing, the loss on the completion
        only, the CPU where CUDA is not used (``accelerate launch --cpu`` included), and
        ``output_dir`` as the trainer's folder."""
        c = self.config
        steps = -1 if c.epochs else c.steps_per_iteration
        return SFTConfig(
            output_dir=str(output_dir),
            max_steps=steps,
            num_train_epochs=c.epochs or 1.0,
            per_device_train_batch_size=c.batch_size,
            gradient_accumulation_steps=c.gradient_accumulation_steps,
            learning_rate=c.learning_rate,
            lr_scheduler_type=c.lr_scheduler,
            # A float below 1 is a share of the round's steps.
            warmup_steps=c.warmup_ratio,
            max_length=c.max_length,
            completion_only_loss=True,
            activation_checkpointing=c.gradient_checkpointing,
            bf16=resolve_dtype(c.dtype) == torch.bfloat16,
            save_strategy="no",
            report_to=c.report_to or "none",
            logging_steps=max(1, c.steps_per_iteration // 10),
            disable_tqdm=True,
            seed=self.seed,
            data_seed=self.seed,
            use_cpu=not use_cuda(),
            dataloader_num_workers=0,
        )

    def _peft_config(self) -> Any:
        from peft import LoraConfig

        lora = self.config.lora
        return LoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=lora.target_modules,
            task_type="CAUSAL_LM",
        )

    def sft_dataset(self, records: list[TrainRecord]) -> Dataset:
        """The rows ``SFTTrainer`` trains on: prompt and completion text, or chat messages
        (the prompt as the user's turn) when ``prompt_format`` is ``chat``."""
        if self.config.prompt_format == "chat":
            rows = [
                {
                    "prompt": chat_prompt(r.prompt),
                    "completion": [{"role": "assistant", "content": r.completion}],
                }
                for r in records
            ]
            return Dataset.from_list(rows)
        return Dataset.from_list([r.model_dump() for r in records])

    def _start_point(self) -> None:
        """Before a round: the model to train, per ``train_from``."""
        if self.config.train_from == "previous" or self.checkpoint is None:
            return
        if _is_peft(self.model):
            # LoRA leaves the base weights untouched: removing the adapter restores the base.
            self.model = self.model.unload()
        else:
            self.model = load_model(self.config, self.tokenizer, seed=self.seed)

    def train(self, records: list[TrainRecord], output_dir: Path) -> Path:
        """Train one round on ``records``; save the model or adapter to ``output_dir``."""
        if not records:
            raise ValueError("cannot train on an empty training set")
        if self.evaluator is not None:
            self.evaluator.sleep()
            self._evaluator_ready = False
        if self.config.launcher:
            self._train_launched(records, output_dir)
        else:
            self._train_here(records, output_dir)
        self.checkpoint = output_dir
        if self.evaluator is not None:
            # The engine serves from the saved checkpoint: hand it the GPU.
            self.model.to("cpu")
            _free_accelerator()
            self._serve()
        return output_dir

    def _train_launched(self, records: list[TrainRecord], output_dir: Path) -> None:
        previous = self.config.train_from == "previous" and self.checkpoint is not None
        launch(
            TrainJob(
                config=self.config,
                seed=self.seed,
                records=records,
                output_dir=output_dir,
                start_from=self.checkpoint if previous else None,
            )
        )
        # This process keeps a copy for transformers evaluation and the next round's start.
        self.model = load_checkpoint(self.config, output_dir, seed=self.seed, trainable=True)

    def _train_here(self, records: list[TrainRecord], output_dir: Path) -> None:
        self._start_point()
        new_adapter = self.config.method == "lora" and not _is_peft(self.model)
        trainer = SFTTrainer(
            model=self.model,
            args=self.sft_config(output_dir),
            train_dataset=self.sft_dataset(records),
            processing_class=self.tokenizer,
            # An existing PeftModel is trained as it is: the same adapter continues.
            peft_config=self._peft_config() if new_adapter else None,
            callbacks=self.callbacks,
        )
        # dataloop shows its own progress; the trainer's printed log dicts would bury it.
        trainer.remove_callback(PrinterCallback)
        trainer.train()
        self.model = trainer.model
        # save_model writes from the main rank only and gathers FSDP/DeepSpeed shards; for a
        # PeftModel it writes the adapter. The tokenizer (and chat template) goes along.
        trainer.save_model(str(output_dir))
        del trainer

    def load(self, checkpoint: Path) -> None:
        """Continue from a checkpoint ``train`` saved (a run being resumed)."""
        self.model = load_checkpoint(self.config, checkpoint, seed=self.seed, trainable=True)
        self.checkpoint = checkpoint
        self._evaluator_ready = False

    def _serve(self) -> None:
        assert self.evaluator is not None
        if self.checkpoint is None:
            self.evaluator.serve(Served(path=self.config.model))
        else:
            adapter = (self.checkpoint / "adapter_config.json").is_file()
            self.evaluator.serve(Served(path=str(self.checkpoint), adapter=adapter))
        self._evaluator_ready = True

    def predict(self, prompts: list[str]) -> list[str]:
        """Completions with the configured sampling (greedy by default), in order."""
        prompt_ids = encode_prompts(self.tokenizer, prompts, self.config.prompt_format)
        if self.evaluator is not None:
            if not self._evaluator_ready:
                self._serve()
            return self.evaluator.generate(prompt_ids)
        return self._generate(prompt_ids)

    def sample(self, prompts: list[str], n: int, temperature: float) -> list[list[str]]:
        """``n`` completions per prompt sampled at ``temperature`` (``eval_top_p`` applies),
        by the same backend as :meth:`predict`; seeded, so a rerun draws the same."""
        prompt_ids = encode_prompts(self.tokenizer, prompts, self.config.prompt_format)
        if self.evaluator is not None:
            if not self._evaluator_ready:
                self._serve()
            texts = self.evaluator.generate(prompt_ids, temperature=temperature, n=n)
        else:
            texts = self._generate(prompt_ids, temperature=temperature, n=n)
        return [texts[i * n : (i + 1) * n] for i in range(len(prompts))]

    # no_grad, not inference_mode: the model may move to the GPU here, and parameters moved
    # inside inference_mode become inference tensors that the next train() cannot use.
    @torch.no_grad()
    def _generate(
        self, prompt_ids: list[list[int]], temperature: float | None = None, n: int = 1
    ) -> list[str]:
        """``n`` completions per prompt (each prompt's together), at ``temperature`` or the
        configured ``eval_temperature``."""
        c = self.config
        device = student_device()
        # Every parameter, wherever it was loaded or trained: inputs and model on one device.
        self.model.to(device)
        self.model.eval()
        temperature = c.eval_temperature if temperature is None else temperature
        sampling: dict[str, Any] = {"do_sample": temperature > 0}
        if temperature > 0:
            sampling.update(temperature=temperature, top_p=c.eval_top_p)
            torch.manual_seed(self.seed)
        if n > 1:
            sampling.update(num_return_sequences=n)
        outputs: list[str] = []
        for start in range(0, len(prompt_ids), c.eval_batch_size):
            batch = prompt_ids[start : start + c.eval_batch_size]
            enc = self.tokenizer.pad({"input_ids": batch}, padding=True, return_tensors="pt").to(
                device
            )
            generated = self.model.generate(
                **enc,
                max_new_tokens=c.max_new_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
                **sampling,
            )
            new_tokens = generated[:, enc["input_ids"].shape[1] :]
            outputs.extend(self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
        return outputs

    @torch.no_grad()
    def losses(self, records: list[TrainRecord]) -> list[float]:
        """Per record, the mean cross-entropy over its completion's tokens given the prompt, as
        the SFT round would take it (same tokens, completion only), computed by the model in
        this process in batches of ``eval_batch_size`` (on the CPU when vLLM evaluates);
        nothing is trained."""
        rows = [self._loss_row(r) for r in records]
        # With a vLLM evaluator the GPU is the engine's: the copy here stays on the CPU.
        device = torch.device("cpu") if self.evaluator is not None else student_device()
        self.model.to(device)
        self.model.eval()
        out: list[float] = []
        pad = self.tokenizer.pad_token_id or 0
        for start in range(0, len(rows), self.config.eval_batch_size):
            batch = rows[start : start + self.config.eval_batch_size]
            width = max(len(ids) for ids, _ in batch)
            # Right-padded: every row's positions start at 0, as in training.
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            labels = torch.full((len(batch), width), -100, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for i, (row, prompt_len) in enumerate(batch):
                ids[i, : len(row)] = torch.tensor(row)
                labels[i, prompt_len : len(row)] = torch.tensor(row[prompt_len:])
                mask[i, : len(row)] = 1
            logits = self.model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            targets = labels[:, 1:].to(device)
            nll = torch.nn.functional.cross_entropy(
                logits[:, :-1].float().transpose(1, 2), targets, ignore_index=-100, reduction="none"
            )
            counted = (targets != -100).sum(dim=1).clamp(min=1)
            out.extend((nll.sum(dim=1) / counted).tolist())
        return out

    def _loss_row(self, record: TrainRecord) -> tuple[list[int], int]:
        """(token ids of prompt + completion, length of the prompt part), built as TRL builds
        a training row: the chat template for ``prompt_format: chat``, else the texts joined
        and an end-of-sequence token added; cut at ``max_length``."""
        tok = self.tokenizer
        if self.config.prompt_format == "chat":
            conversation = [
                *chat_prompt(record.prompt),
                {"role": "assistant", "content": record.completion},
            ]
            full = list(
                tok.apply_chat_template(conversation, tokenize=True, return_dict=True)["input_ids"]
            )
        else:
            full = list(tok(record.prompt + record.completion)["input_ids"])
            if tok.eos_token_id is not None and (not full or full[-1] != tok.eos_token_id):
                full.append(tok.eos_token_id)
        prompt_len = len(encode_prompts(tok, [record.prompt], self.config.prompt_format)[0])
        return full[: self.config.max_length], min(prompt_len, self.config.max_length)

    def close(self) -> None:
        """Stop the evaluation engine, if any."""
        if self.evaluator is not None:
            self.evaluator.close()
            self._evaluator_ready = False


def _is_peft(model: Any) -> bool:
    return hasattr(model, "peft_config")


def _free_accelerator() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
