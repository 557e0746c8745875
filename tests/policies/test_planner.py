"""llm-planner with a scripted fake teacher: valid plans, retries, and the fallback."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from dataloop.errors import BudgetExhausted
from dataloop.llm.base import Completion, Message, Sampling
from dataloop.llm.teacher import Teacher
from dataloop.policies import LLMPlanner
from dataloop.schema import Budget, Example, Failure, Observation, SkillInfo

SKILLS = ["add", "mul"]


class ScriptedClient:
    """Replies with the scripted texts in order; records what it was asked."""

    def __init__(self, *replies: str | Exception) -> None:
        self.model = "scripted"
        self.budget = Budget()
        self.replies = list(replies)
        self.prompts: list[str] = []
        self.samplings: list[Sampling] = []

    async def _reply(self, prompt: str, sampling: Sampling) -> Completion:
        self.prompts.append(prompt)
        self.samplings.append(sampling)
        self.budget.queries += 1
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return Completion(texts=[reply])

    async def complete(self, prompt: str, sampling: Sampling) -> Completion:
        return await self._reply(prompt, sampling)

    async def chat(self, messages: list[Message], sampling: Sampling) -> Completion:
        return await self._reply(messages[-1].content, sampling)

    async def aclose(self) -> None:
        pass


def _obs() -> Observation:
    return Observation(
        iteration=2,
        skills=[
            SkillInfo(name="add", description="add numbers"),
            SkillInfo(name="mul", description="multiply"),
        ],
        accuracy={"add": 0.9, "mul": 0.1},
        mean_accuracy=0.5,
        failures=[Failure(example=Example.make("mul", "7*34", "238"), prediction="218")],
        seed_counts={"add": 24, "mul": 24},
        budget=Budget(max_queries=100, queries=40),
    )


def _plan_json(**counts: int) -> str:
    requests = [{"skill": s, "strategy": "new-question", "count": c} for s, c in counts.items()]
    return json.dumps({"requests": requests, "rationale": "mul is weak"})


def test_valid_plan_is_scaled_to_the_iteration_budget() -> None:
    teacher = ScriptedClient(" " + _plan_json(mul=8, add=2) + "\nObservation: junk")
    plan = asyncio.run(LLMPlanner(Teacher(teacher), examples_per_iteration=50).aplan(_obs()))
    assert {r.skill: r.count for r in plan.requests} == {"mul": 40, "add": 10}
    assert plan.rationale == "teacher: mul is weak"
    assert len(teacher.prompts) == 1
    prompt = teacher.prompts[0]  # the rendered observation: accuracy, failures, budget
    assert "mul (multiply): accuracy 10%" in prompt and '"7*34" expected 238' in prompt
    assert "60 teacher queries left" in prompt and prompt.endswith("Plan:")


def test_invalid_json_is_retried_with_a_new_seed() -> None:
    teacher = ScriptedClient("{not json", _plan_json(mul=5))
    plan = asyncio.run(LLMPlanner(Teacher(teacher), examples_per_iteration=10).aplan(_obs()))
    assert [(r.skill, r.count) for r in plan.requests] == [("mul", 10)]
    assert len(teacher.prompts) == 2
    assert teacher.samplings[0].seed != teacher.samplings[1].seed  # no cached replay


def test_invalid_plans_fall_back_to_weakest_skills_with_a_logged_reason(caplog) -> None:
    teacher = ScriptedClient(
        "I think mul needs more practice.",
        '{"requests": [{"skill": "div", "strategy": "new-question", "count": 3}], "rationale": ""}',
        '{"requests": [{"skill": "mul", "count": -1}], "rationale": ""}',
    )
    with caplog.at_level(logging.WARNING, logger="dataloop.policies.planner"):
        plan = asyncio.run(
            LLMPlanner(Teacher(teacher), examples_per_iteration=40, retries=2).aplan(_obs())
        )
    assert len(teacher.prompts) == 3
    assert plan.total == 40
    counts = {r.skill: r.count for r in plan.requests}
    assert counts["mul"] > counts["add"] >= 2  # weakest-skills, floor 5 %
    assert plan.rationale.startswith("fallback to weakest-skills (3 attempt(s) failed, last: ")
    assert "field 'requests.0.count'" in plan.rationale
    assert "fell back to weakest-skills" in caplog.text


def test_budget_spent_falls_back_at_once() -> None:
    teacher = ScriptedClient(BudgetExhausted("query budget of 40 spent"))
    plan = asyncio.run(LLMPlanner(Teacher(teacher), examples_per_iteration=10).aplan(_obs()))
    assert len(teacher.prompts) == 1
    assert "teacher unavailable: query budget of 40 spent" in plan.rationale
    assert plan.total == 10


def test_chat_teacher_gets_the_plan_schema() -> None:
    teacher = ScriptedClient(_plan_json(add=1, mul=1))
    planner = LLMPlanner(Teacher(teacher, "chat"), examples_per_iteration=4)
    plan = asyncio.run(planner.aplan(_obs()))
    assert plan.total == 4
    schema = teacher.samplings[0].json_schema
    assert schema is not None
    item = schema["properties"]["requests"]["items"]  # type: ignore[index]
    assert item["properties"]["skill"]["enum"] == SKILLS
    assert "Plan exactly 4 examples" in teacher.prompts[0]


def test_sync_plan_outside_an_event_loop() -> None:
    plan = LLMPlanner(Teacher(ScriptedClient(_plan_json(add=3))), examples_per_iteration=3).plan(
        _obs()
    )
    assert plan.total == 3


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "no JSON object"),
        ("Plan: none today", "no JSON object"),
        ("{", "not valid JSON"),
        ('{"requests": [], "rationale": "x"}', "asks for no examples"),
        ('{"requests": [{"skill": "add", "count": 0}]}', "asks for no examples"),
        ('{"requests": [{"skill": "add", "count": 1, "strategy": "magic"}]}', "strategy 'magic'"),
        ('{"requests": [{"skill": "add", "count": 1}], "extra": 1}', "field 'extra'"),
    ],
)
def test_an_unusable_plan_is_rejected_with_its_reason(text: str, reason: str) -> None:
    teacher = Teacher(ScriptedClient(text))
    planner = LLMPlanner(teacher, examples_per_iteration=10, retries=0, strategies=["new-question"])
    plan = asyncio.run(planner.aplan(_obs()))
    assert plan.rationale.startswith("fallback to weakest-skills") and reason in plan.rationale
