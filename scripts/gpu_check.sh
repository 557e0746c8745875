#!/usr/bin/env bash
# The GPU check: the student tests, a LoRA and a full round on a model built here, and one loop
# iteration against a teacher on 127.0.0.1, with per-phase timings and peak memory. Ends with
# one verdict line, "gpu-check: PASS ..." or "gpu-check: FAIL ...". About 4 minutes on an H200.
#
#   scripts/gpu_check.sh              # on the GPU machine (the CPU where none is visible)
#   scripts/gpu_check.sh --download   # here, with network: fill .whl/ for a machine without
#   DEVICE=cpu scripts/gpu_check.sh   # the same, smaller, on a CPU (a smoke test of the check)
#
# Setup (the wheels in .whl/, no network, no weights: the model is built from a config) is
# scripts/gpu_setup.sh, shared with the GPU experiments.
# Env: DEVICE=cpu|auto, PYTHON (default: .venv/bin/python, else python3).
set -uo pipefail
cd "$(dirname "$0")/.."
GPU_SCRIPT=gpu-check source scripts/gpu_setup.sh "$@"

exec "$PYTHON" - <<'PY'
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import torch
import transformers

# Deprecation notices from inside TRL/transformers and progress bars would bury the table.
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)
transformers.utils.logging.disable_progress_bar()

began = time.monotonic() - int(os.environ.get("GPU_SETUP_SECONDS", "0"))
cuda = torch.cuda.is_available()
device = torch.cuda.get_device_name() if cuda else "cpu"
work = Path(tempfile.mkdtemp(prefix="dataloop-gpu-check-"))
print(f"device: {device}; torch {torch.__version__}; work dir {work}", flush=True)
results: list[tuple[str, bool]] = []


def rss_gib() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 2**20


class GpuSampler:
    """Peak GPU memory in use on the device (all processes), sampled by nvidia-smi."""

    def __init__(self) -> None:
        self.peak = 0.0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        query = ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"]
        while not self.done.wait(0.5):
            try:
                used = subprocess.run(query, capture_output=True, text=True, timeout=5).stdout
                self.peak = max(self.peak, float(used.split()[0]) / 1024)
            except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
                return

    def __enter__(self) -> "GpuSampler":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()


def phase(name: str, fn) -> object:
    """Run one phase: its time, peak memory, and whether it passed."""
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.monotonic()
    ok, result, note = True, None, ""
    with GpuSampler() if cuda else _nothing() as sampler:
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - the verdict names the phase and the error
            ok, note = False, f"  <- {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    gpu = ""
    if cuda:
        torch.cuda.synchronize()
        own = torch.cuda.max_memory_allocated() / 2**30
        gpu = f", peak GPU {own:.2f} GiB here, {sampler.peak:.2f} GiB on the device"
    print(
        f"{name:<28} {time.monotonic() - start:6.1f}s{gpu}, peak RSS {rss_gib():.2f} GiB{note}",
        flush=True,
    )
    results.append((name, ok))
    return result


class _nothing:
    peak = 0.0

    def __enter__(self) -> "_nothing":
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def run(command: list[str], log: Path, timeout: float) -> None:
    with log.open("w") as f:
        code = subprocess.run(command, stdout=f, stderr=subprocess.STDOUT, timeout=timeout).returncode
    if code != 0:
        tail = log.read_text(errors="replace").splitlines()[-3:]
        raise RuntimeError(f"exit {code} ({' | '.join(tail)}); see {log}")


# 1. The student tests, on the GPU where there is one: every test must pass there unchanged.
tests = ["tests/students", "tests/integration/test_student.py"]
selection = [] if cuda else ["-m", "not integration"]
phase(
    "student tests",
    lambda: run(
        [sys.executable, "-m", "pytest", *tests, *selection, "-q", "-p", "no:cacheprovider"],
        work / "pytest.log",
        timeout=240,
    ),
)

# 2. A LoRA and a full round on a model built here: random weights, the tiny tokenizer.
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

from dataloop.config import LoraSettings, StudentConfig  # noqa: E402
from dataloop.environments import load_task  # noqa: E402
from dataloop.gym import Environment  # noqa: E402
from dataloop.students.hf import HFStudent  # noqa: E402
from dataloop.students.tiny import build_tokenizer  # noqa: E402


def build_base() -> Path:
    tokenizer = build_tokenizer()
    width, layers = (768, 8) if cuda else (128, 2)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=width,
        intermediate_size=width * 8 // 3,
        num_hidden_layers=layers,
        num_attention_heads=width // 64,
        num_key_value_heads=width // 64,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(work / "base")
    tokenizer.save_pretrained(work / "base")
    print(f"  base model: {params / 1e6:.1f}M parameters ({layers} layers x {width})")
    return work / "base"


base = phase("build base model", build_base)
task = load_task(
    "arithmetic",
    options={"skills": ["add", "max"], "train_per_skill": 256, "validation_per_skill": 64},
)
steps = 100 if cuda else 3
common = dict(
    model=str(base), steps_per_iteration=steps, batch_size=32 if cuda else 8,
    max_length=64, max_new_tokens=8, eval_batch_size=128,
)
for method, extra in (
    ("lora", dict(method="lora", lora=LoraSettings(r=16, alpha=32), learning_rate=2e-3)),
    ("full", dict(method="full", learning_rate=1e-3)),
):
    if base is None:
        results.append((f"{method} round", False))
        continue
    student = phase(f"load student ({method})", lambda: HFStudent(StudentConfig(**common, **extra)))
    if student is None:
        continue
    env = Environment(task, student, checkpoints_dir=work / method, max_iterations=1)
    records = env.records(env.seed_set)
    phase(f"train {method} ({steps} steps)", lambda: student.train(records, work / method / "it"))
    scored = phase(f"evaluate {method}", lambda: env.evaluate("validation"))
    # Evaluation then training again: an evaluation must leave the model trainable.
    phase(f"train {method} again", lambda: student.train(records, work / method / "it2"))
    if scored is not None:
        print(f"  validation accuracy: {scored[0].mean_accuracy:.1%}")
    del student, env
    if cuda:
        torch.cuda.empty_cache()

# 3. One loop iteration through the CLI: the HFStudent on the device, the scripted teacher
# stand-in of the tests on 127.0.0.1 (the embedded llama-server is not on a GPU image).
sys.path[:0] = ["tests", "tests/integration"]
from fakeserver import FakeOpenAI  # noqa: E402
from test_resume import _reply  # noqa: E402


def loop_iteration() -> None:
    with FakeOpenAI(reply=_reply) as teacher:
        settings = {
            "teacher.backend": "openai",
            "teacher.model": "fake",
            "teacher.base_urls": f"[{teacher.base_url}]",
            "env.options": "{validation_per_skill: 32, test_per_skill: 32}",
            "policy.examples_per_iteration": "64",
            "engine.per_query": "4",
            "student.model": str(base),
            "student.steps_per_iteration": str(steps),
            "student.batch_size": str(common["batch_size"]),
        }
        command = [sys.executable, "-m", "dataloop.cli", "run", "--env", "arithmetic"]
        command += ["--name", "loop", "--runs-dir", str(work / "runs"), "--iterations", "1"]
        command += ["--quiet"] + [a for k, v in settings.items() for a in ("--set", f"{k}={v}")]
        run(command, work / "loop.log", timeout=180)
    state = json.loads((work / "runs" / "loop" / "state.json").read_text())
    print(f"  run state: {json.dumps(state)[:160]}")


phase("loop iteration (CLI)", loop_iteration)

failed = [name for name, ok in results if not ok]
summary = (
    f"{len(results) - len(failed)}/{len(results)} phases on {device} "
    f"in {time.monotonic() - began:.0f}s"
)
if failed:
    print(f"gpu-check: FAIL {summary}; failed: {', '.join(failed)}")
    sys.exit(1)
print(f"gpu-check: PASS {summary}")
PY
