"""The engine's filters and counts, with a scripted client (the real teacher is in integration)."""

from __future__ import annotations

import asyncio

from dataloop.engine import Engine
from dataloop.errors import BudgetExhausted
from dataloop.llm.base import Completion, Message, Sampling
from dataloop.schema import Budget, GenerationRequest, Observation, Plan


class ScriptedClient:
    """Answers every prompt with the same text; can run out of budget after ``limit`` calls."""

    model = "scripted"

    def __init__(self, text: str, limit: int | None = None) -> None:
        self.text = text
        self.limit = limit
        self.budget = Budget()
        self.prompts: list[str] = []

    async def complete(self, prompt: str, sampling: Sampling) -> Completion:
        if self.limit is not None and len(self.prompts) >= self.limit:
            raise BudgetExhausted("query budget of 1 spent")
        self.prompts.append(prompt)
        return Completion(texts=[self.text])

    async def chat(self, messages: list[Message], sampling: Sampling) -> Completion:
        return await self.complete(messages[0].content, sampling)

    async def aclose(self) -> None:
        pass


def _obs(task) -> Observation:
    return Observation(iteration=0, skills=task.skills(), accuracy={}, mean_accuracy=0.0)


def test_filters_verify_dedup_decontaminate_and_count(arithmetic) -> None:
    seed = next(e for e in arithmetic.split("train") if e.skill == "add")
    held_out = next(e for e in arithmetic.split("validation") if e.skill == "add")
    text = (
        " 11+22\nA: 0\n"  # wrong answer: relabelled to 33
        "Q: 11 + 22\nA: 33\n"  # duplicate of the first after normalising
        f"Q: {seed.question}\nA: {seed.answer}\n"  # already in the training set
        f"Q: {held_out.question}\nA: {held_out.answer}\n"  # validation question: contaminated
        "Q: 12-\nA: 1\n"  # malformed: fails verification
        "Q: 45+45\nA: 90\n"
    )
    client = ScriptedClient(text)
    engine = Engine(client, arithmetic, per_query=10, max_rounds=1)
    plan = Plan(requests=[GenerationRequest(skill="add", count=5)])
    result = asyncio.run(engine.generate(plan, _obs(arithmetic), arithmetic.split("train")))
    assert [(e.question, e.answer) for e in result.accepted] == [("11+22", "33"), ("45+45", "90")]
    assert result.accepted[0].provenance.relabelled
    verdicts = [c.verdict for c in result.candidates]
    assert verdicts == [
        "accepted",
        "duplicate",
        "duplicate",
        "contaminated",
        "unverified",
        "accepted",
    ]
    counts = result.report.counts[0]
    assert (counts.requested, counts.generated, counts.parsed) == (5, 1, 6)
    assert (counts.verified, counts.deduplicated, counts.accepted) == (5, 2, 2)
    assert len(client.prompts) == 1


def test_rounds_stop_when_the_request_is_met_and_surplus_is_kept_out(arithmetic) -> None:
    client = ScriptedClient(" 10+11\nA: 21\nQ: 10+12\nA: 22\nQ: 10+13\nA: 23\n")
    engine = Engine(client, arithmetic, per_query=1, max_rounds=3)
    plan = Plan(requests=[GenerationRequest(skill="add", count=2)])
    result = asyncio.run(engine.generate(plan, _obs(arithmetic), []))
    assert len(result.accepted) == 2
    assert [c.verdict for c in result.candidates].count("surplus") >= 1


def test_budget_exhaustion_ends_generation_without_raising(arithmetic) -> None:
    client = ScriptedClient(" 10+11\nA: 21\n", limit=1)
    engine = Engine(client, arithmetic, per_query=1, max_rounds=3)
    plan = Plan(requests=[GenerationRequest(skill="add", count=4)])
    result = asyncio.run(engine.generate(plan, _obs(arithmetic), []))
    assert result.budget_exhausted
    assert len(result.accepted) == 1
