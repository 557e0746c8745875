"""The real embedded teacher: llama-server serving Gemma 3 270M, through dataloop's client."""

from __future__ import annotations

import asyncio

import pytest

from dataloop.engine import Engine
from dataloop.llm import OpenAIClient, Sampling
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
        engine = Engine(client, arithmetic, max_tokens=96)
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
