"""A misbehaving teacher server (>= 20% faults) under the engine: the generation step finishes."""

from __future__ import annotations

import asyncio
import itertools

from fakeserver import FakeOpenAI

from dataloop.engine import Engine
from dataloop.llm import OpenAIClient, Teacher
from dataloop.schema import Budget, GenerationRequest, Observation, Plan


def test_generation_survives_faults_reports_failures_and_keeps_to_budget(arithmetic) -> None:
    numbers = itertools.cycle(range(10, 100))

    def reply(prompt: str) -> str:
        a, b = next(numbers), next(numbers)
        return f" {a}+{b}\nA: {a + b}\nQ: {b}+{a}\nA: 0\n"  # the second answer is wrong

    async def go(client: OpenAIClient):
        engine = Engine(Teacher(client), arithmetic, per_query=2, max_rounds=3)
        obs = Observation(iteration=0, skills=arithmetic.skills(), accuracy={}, mean_accuracy=0)
        plan = Plan(requests=[GenerationRequest(skill="add", count=30)])
        try:
            return await engine.generate(plan, obs, arithmetic.split("train"))
        finally:
            await client.aclose()

    with FakeOpenAI(fault_rate=0.35, slow_seconds=1.2, seed=5, reply=reply) as server:
        budget = Budget(max_queries=14)
        client = OpenAIClient(
            "fake", [server.base_url], timeout=1.0, retries=1, backoff_max=0.05, budget=budget
        )
        result = asyncio.run(go(client))
        assert sum(server.faults.values()) >= 5
    assert result.errors, "with one retry at 35% faults some requests must fail"
    assert all(e.startswith("teacher 'fake'") for e in result.errors)
    assert budget.queries <= 14 and result.report.queries == budget.queries
    assert result.budget_exhausted
    counts = result.report.counts[0]
    assert counts.generated == budget.queries
    # Each answered request gave one right pair and one relabelled pair.
    assert counts.parsed == counts.verified == 2 * budget.queries
    assert 0 < len(result.accepted) == counts.accepted
