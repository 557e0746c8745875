"""A real pretrained student on CPU: Gemma 3 270M from the packaged GGUF, LoRA, one loop step.

The GGUF is converted once per session (``gemma_dir`` in tests/conftest.py, ~2-3 min) to
safetensors; the students below load that in under a second. Batches and lengths stay small:
the 262k-token vocabulary makes the logits the biggest tensor in memory.
"""

from __future__ import annotations

import resource
import time

import pytest
import torch
from openai import OpenAI
from transformers import AutoTokenizer, GenerationConfig, TrainerCallback

from dataloop.config import LoraSettings, StudentConfig
from dataloop.environments import load_task
from dataloop.gym import Environment
from dataloop.llm.server import default_gguf
from dataloop.students.gguf_header import read_gguf_metadata
from dataloop.students.hf import HFStudent
from dataloop.students.loading import END_OF_TURN, load_checkpoint

pytestmark = pytest.mark.integration

# Prompts whose greedy continuation has a clear winner at each of its first words: on near ties
# llama.cpp's quantized activations and transformers' fp32 may pick differently.
AGREEING_PROMPTS = [
    "The capital of France is",
    "Q: What is 12 + 7?\nA: 19\nQ: What is 30 + 5?\nA:",
    "def fibonacci(n):\n",
    "Monday, Tuesday, Wednesday,",
]


def test_the_converted_tokenizer_keeps_what_the_gguf_says(gemma_dir):
    metadata = read_gguf_metadata(default_gguf())
    assert metadata.add_bos_token is True and metadata.add_eos_token is False
    tokenizer = AutoTokenizer.from_pretrained(gemma_dir)
    ids = tokenizer("The capital of France is")["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and ids[-1] != tokenizer.eos_token_id
    assert "<start_of_turn>model" in tokenizer.chat_template
    stops = GenerationConfig.from_pretrained(gemma_dir).eos_token_id
    assert stops == [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(END_OF_TURN)]


def test_greedy_continuations_agree_with_llama_server_on_the_same_gguf(gemma_dir, llama):
    student = HFStudent(StudentConfig(model=str(gemma_dir), max_new_tokens=16, eval_batch_size=1))
    ours = student.predict(AGREEING_PROMPTS)
    server = OpenAI(base_url=llama, api_key="none")
    for prompt, text in zip(AGREEING_PROMPTS, ours, strict=True):
        theirs = (
            server.completions.create(model="gemma", prompt=prompt, max_tokens=16, temperature=0)
            .choices[0]
            .text
        )
        # Without BOS, transformers gives " France. The The The ..." for the first prompt.
        assert text.split()[:5] == theirs.split()[:5], (prompt, text, theirs)


class LoraAtStart(TrainerCallback):
    """Size of the LoRA B matrices when each training round starts (0 = a fresh adapter)."""

    def __init__(self) -> None:
        self.b_norms: list[float] = []

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.b_norms.append(
            sum(p.abs().sum().item() for n, p in model.named_parameters() if "lora_B" in n)
        )


# ~2-3 min on a quiet 2-core machine; the limit leaves room for a busy one.
@pytest.mark.timeout(1800)
def test_gemma_lora_student_runs_the_loop_from_previous_and_from_base(gemma_dir, tmp_path):
    task = load_task(
        "arithmetic",
        options={
            "skills": ["max", "add"],
            "train_per_skill": 4,
            "validation_per_skill": 2,
            "test_per_skill": 1,
        },
    )
    extra = task.split("validation")[:4]  # stands in for the teacher's accepted examples
    for train_from in ("previous", "base"):
        seen = LoraAtStart()
        config = StudentConfig(
            model=str(gemma_dir),
            method="lora",
            lora=LoraSettings(r=8, alpha=16, target_modules=["q_proj", "v_proj"]),
            train_from=train_from,
            steps_per_iteration=2,  # the first step is warm-up (learning rate 0)
            batch_size=8,
            learning_rate=1e-3,
            max_length=32,
            max_new_tokens=4,
            eval_batch_size=8,
        )
        started = time.monotonic()
        student = HFStudent(config, callbacks=[seen])
        env = Environment(task, student, checkpoints_dir=tmp_path / train_from, max_iterations=1)
        obs, _ = env.reset()
        assert 0.0 <= obs.mean_accuracy <= 1.0 and obs.train_size == 8
        obs, reward, _, truncated, info = env.step(extra)
        assert truncated and obs.train_size == 12
        assert reward == pytest.approx(obs.mean_accuracy - env.history[0].mean_accuracy)
        # one adapter per iteration, each reloadable onto the base
        for iteration in (0, 1):
            assert (
                tmp_path / train_from / f"iteration-{iteration}" / "adapter_config.json"
            ).is_file()
        reloaded = load_checkpoint(config, info["checkpoint"])
        prompt = torch.tensor([student.tokenizer(task.prompt(extra[0].question))["input_ids"]])
        with torch.inference_mode():
            assert torch.allclose(reloaded(prompt).logits, student.model(prompt).logits, atol=1e-4)
        assert seen.b_norms[0] == 0.0
        if train_from == "previous":
            assert seen.b_norms[1] > 0.0  # the same adapter continues
        else:
            assert seen.b_norms[1] == 0.0  # a fresh adapter on the base weights
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(
            f"train_from={train_from}: {time.monotonic() - started:.1f}s, peak RSS {peak:.1f} GiB"
        )
