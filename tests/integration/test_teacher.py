"""The real embedded teacher: llama-server serving Gemma 3 270M, through dataloop's client."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import BaseModel, Field

import dataloop
from dataloop import Example, load_task
from dataloop.engine import Engine
from dataloop.llm import Message, OpenAIClient, Sampling, Teacher, parse_json
from dataloop.llm.structured import json_schema
from dataloop.schema import GenerationRequest, Observation, Plan

pytestmark = pytest.mark.integration


def test_completion_and_concurrent_requests(llama: str) -> None:
    async def go() -> list:
        client = OpenAIClient("gemma", [llama], concurrency=4)
        prompt = "12+35=47\n21+13=34\n40+19=59\n"
        out = await asyncio.gather(
            *(client.complete(prompt, Sampling(max_tokens=16, seed=i)) for i in range(6))
        )
        assert client.budget.queries == 6
        assert client.budget.completion_tokens > 0 and client.budget.prompt_tokens > 0
        await client.aclose()
        return out

    completions = asyncio.run(go())
    assert all(c.texts[0].strip() for c in completions)


def test_generate_and_verify_through_the_engine(llama: str, arithmetic) -> None:
    async def go():
        client = OpenAIClient("gemma", [llama], concurrency=4)
        engine = Engine(Teacher(client), arithmetic, sampling=Sampling(max_tokens=96))
        obs = Observation(iteration=0, skills=arithmetic.skills(), accuracy={}, mean_accuracy=0)
        plan = Plan(requests=[GenerationRequest(skill=s, count=4) for s in ("add", "reverse")])
        result = await engine.generate(plan, obs, arithmetic.split("train"))
        await client.aclose()
        return result

    result = asyncio.run(go())
    by_skill = {c.skill: c for c in result.report.counts}
    assert by_skill["add"].accepted >= 1 and by_skill["reverse"].accepted >= 1
    for example in result.accepted:
        assert arithmetic.verify(example) is not None  # every accepted answer is right
        assert example.provenance.source == "generated" and example.provenance.teacher == "gemma"


def test_dataloop_run_with_the_real_teacher(llama: str, tmp_path) -> None:
    # The one-call entry point on the embedded arithmetic task, against the session's server.
    history = dataloop.run(
        {
            "name": "api",
            "runs_dir": str(tmp_path),
            "iterations": 1,
            "env": {"options": {"validation_per_skill": 8, "test_per_skill": 4}},
            "student": {"steps_per_iteration": 2},
            "policy": {"examples_per_iteration": 12},
            "teacher": {
                "backend": "openai",
                "model": "gemma",
                "base_urls": [llama],
                "concurrency": 4,  # the session's server has 4 slots
                "max_tokens": 96,
            },
        }
    )
    assert [h.iteration for h in history] == [0, 1] and history[1].queries > 0
    accepted = [json.loads(line) for line in (tmp_path / "api/iterations/1/accepted.jsonl").open()]
    assert sum(history[1].accepted.values()) == len(accepted) > 0
    task = load_task("arithmetic")
    assert all(task.verify(Example.model_validate(e)) is not None for e in accepted)


class Problem(BaseModel):
    question: str = Field(max_length=40)
    answer: int = Field(ge=0, le=999)


def test_chat_with_the_gemma_template_and_structured_output(llama: str) -> None:
    # The packaged GGUF has no chat template; the server manager gives it llama.cpp's `gemma`.
    async def go():
        client = OpenAIClient("gemma", [llama], flavor="llama.cpp")
        ask = [Message(role="user", content="Write one addition problem and its answer.")]
        plain = await client.chat(ask, Sampling(max_tokens=16, temperature=0.0))
        schema = json_schema(Problem)
        chat = await client.chat(ask, Sampling(max_tokens=64, temperature=0.0, json_schema=schema))
        completion = await client.complete(
            "An addition problem as JSON:\n", Sampling(max_tokens=64, json_schema=schema, seed=1)
        )
        await client.aclose()
        return plain, chat, completion

    plain, chat, completion = asyncio.run(go())
    # The template wraps the message in Gemma's turn markers: a bare prompt would be ~10 tokens.
    assert plain.prompt_tokens > 15 and plain.texts[0].strip()
    for reply in (chat, completion):
        # The grammar keeps even this weak model's output inside the schema.
        assert parse_json(reply.texts[0], Problem) is not None, reply


def test_serve_replicas_answer_side_by_side(llama_replicas: list[str]) -> None:
    # `dataloop serve --replicas 2` printed two base_urls; one client spreads over both.
    assert len(llama_replicas) == 2 and len(set(llama_replicas)) == 2

    async def go() -> OpenAIClient:
        client = OpenAIClient("gemma", llama_replicas, concurrency=2, flavor="llama.cpp")
        prompt = "12+35=47\n21+13=34\n40+19=59\n"
        out = await asyncio.gather(
            *(client.complete(prompt, Sampling(max_tokens=8, seed=i)) for i in range(8))
        )
        assert all(c.texts[0].strip() for c in out)
        await client.aclose()
        return client

    client = asyncio.run(go())
    answered = [e.answered for e in client.endpoints()]
    assert sum(answered) == client.budget.queries == 8 and min(answered) >= 2
