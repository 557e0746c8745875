"""llm-planner with a scripted fake teacher: valid plans, retries, and the fallback."""

from __future__ import annotations

import asyncio
import json
import logging
import re

import pytest

from dataloop.errors import BudgetExhausted
from dataloop.llm.base import Completion, Message, Sampling
from dataloop.llm.teacher import Teacher
from dataloop.policies import InvalidPlan, LLMPlanner, check_plan, plan_schema
from dataloop.schema import (
    Budget,
    Example,
    Explore,
    Failure,
    GenerationRequest,
    HistoryEntry,
    Observation,
    Plan,
    SkillInfo,
    SkillNode,
    SkillTree,
    Subskill,
)

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


# open-ended and skill-tree


def _open_obs() -> Observation:
    return Observation(
        iteration=2,
        skills=[
            SkillInfo(name="add", description="add numbers"),
            SkillInfo(name="mul", description="multiply"),
        ],
        accuracy={},
        mean_accuracy=0.5,
        probes=[Failure(example=Example.make("mul", "7*34", "238"), prediction="218")],
        seed_counts={"add": 24, "mul": 24},
        history=[
            HistoryEntry(iteration=i, accuracy={}, mean_accuracy=m)
            for i, m in enumerate([0.3, 0.4, 0.5])
        ],
        structure="open-ended",
    )


def _tree_obs() -> Observation:
    add = SkillNode(
        name="add",
        description="add numbers",
        accuracy=0.9,
        data=40,
        subskills=[Subskill(name="carry", description="sums with a carry", accuracy=0.6, items=8)],
        candidates=[SkillInfo(name="negative", description="a negative addend")],
    )
    mul = SkillNode(name="mul", description="multiply", accuracy=0.1, data=30)
    return _open_obs().model_copy(
        update={
            "accuracy": {"add": 0.9, "mul": 0.1},
            "probes": [],
            "structure": "skill-tree",
            "tree": SkillTree(skills=[add, mul]),
        }
    )


def test_open_ended_plan_with_guidance_passes() -> None:
    reply = {
        "requests": [
            {
                "skill": "mul",
                "strategy": "new-question",
                "count": 3,
                "guidance": "two-digit\ntimes two-digit",
            },
            {"skill": "add", "strategy": "new-question", "count": 1, "guidance": ""},
        ],
        "rationale": "mul fails",
    }
    teacher = ScriptedClient(json.dumps(reply))
    planner = LLMPlanner(Teacher(teacher, "chat"), examples_per_iteration=40)
    plan = asyncio.run(planner.aplan(_open_obs()))
    assert [(r.skill, r.count, r.guidance) for r in plan.requests] == [
        ("mul", 30, "two-digit times two-digit"),
        ("add", 10, ""),
    ]
    schema = teacher.samplings[0].json_schema
    assert schema is not None
    item = schema["properties"]["requests"]["items"]  # type: ignore[index]
    assert item["required"] == ["skill", "strategy", "count", "guidance"]
    prompt = teacher.prompts[0]
    assert "Accuracy" not in prompt  # no per-skill accuracy in open-ended
    assert "Mean accuracy so far, by iteration: 30%, 40%, 50%." in prompt
    assert 'Wrong: "7*34" (expected "238", student said "218")' in prompt
    assert "For each request write guidance" in prompt


def test_open_ended_base_prompt_shows_the_probes_and_the_means() -> None:
    teacher = ScriptedClient(_plan_json(mul=1))
    asyncio.run(LLMPlanner(Teacher(teacher), examples_per_iteration=4).aplan(_open_obs()))
    observed = teacher.prompts[0].rsplit("Observation:", 1)[1]
    assert "mean accuracy 50% (so far: 30%, 40%, 50%)" in observed
    assert "- mul (multiply): 24 seed examples, 1 failed" in observed
    assert '"7*34" expected 238, student said 218' in observed
    assert "accuracy" not in observed.split("\n", 2)[2]  # the skill lines show none


def test_skill_list_schema_is_unchanged() -> None:
    schema = plan_schema(SKILLS, ["new-question"])
    assert schema["required"] == ["requests", "rationale"]
    item = schema["properties"]["requests"]["items"]  # type: ignore[index]
    assert list(item["properties"]) == ["skill", "strategy", "count"]


def test_tree_plan_with_explore_and_subskill_requests_passes() -> None:
    reply = {
        "explore": [
            {"skill": "mul", "name": "Times Tables", "description": "one-digit products"},
            {"skill": "add", "name": "negative", "description": ""},  # the task's candidate
            {"skill": "add", "name": "carry", "description": "again"},  # there: dropped
        ],
        "requests": [
            {"skill": "mul", "subskill": "times-tables", "strategy": "new-question", "count": 6},
            {"skill": "add", "subskill": "carry", "strategy": "new-question", "count": 2},
            {"skill": "add", "subskill": "negative", "strategy": "new-question", "count": 1},
            {"skill": "mul", "subskill": None, "strategy": "new-question", "count": 1},
        ],
        "rationale": "mul is weak",
    }
    teacher = ScriptedClient(json.dumps(reply))
    planner = LLMPlanner(Teacher(teacher, "chat"), examples_per_iteration=20)
    plan = asyncio.run(planner.aplan(_tree_obs()))
    assert plan.explore == [
        Explore(skill="mul", name="times-tables", description="one-digit products"),
        Explore(skill="add", name="negative", description=""),
    ]
    assert [(r.skill, r.subskill, r.count) for r in plan.requests] == [
        ("mul", "times-tables", 12),
        ("add", "carry", 4),
        ("add", "negative", 2),
        ("mul", None, 2),
    ]
    schema = teacher.samplings[0].json_schema
    assert schema is not None
    assert schema["required"] == ["explore", "requests", "rationale"]
    explore = schema["properties"]["explore"]["items"]  # type: ignore[index]
    assert explore["properties"]["skill"]["enum"] == SKILLS
    prompt = teacher.prompts[0]
    assert "- subskill carry: sums with a carry. Accuracy 60.0% on 8 validation items" in prompt
    assert "Subskills the task offers to add: negative (a negative addend)." in prompt


def test_unknown_subskill_is_an_invalid_plan_and_retried() -> None:
    bad = {
        "requests": [
            {"skill": "add", "subskill": "division", "strategy": "new-question", "count": 3}
        ],
        "rationale": "",
    }
    good = {
        "requests": [{"skill": "add", "subskill": "carry", "strategy": "new-question", "count": 3}],
        "rationale": "carry",
    }
    teacher = ScriptedClient(json.dumps(bad), json.dumps(good))
    plan = asyncio.run(LLMPlanner(Teacher(teacher), examples_per_iteration=6).aplan(_tree_obs()))
    assert len(teacher.prompts) == 2
    assert [(r.subskill, r.count) for r in plan.requests] == [("carry", 6)]
    assert plan.rationale == "teacher: carry"


def _tree() -> SkillTree:
    tree = _tree_obs().tree
    assert tree is not None
    return tree


@pytest.mark.parametrize(
    ("plan", "tree", "reason"),
    [
        (
            Plan(requests=[GenerationRequest(skill="add", subskill="division", count=1)]),
            _tree(),
            "subskill 'division' is not under skill 'add' in the tree nor explored by the plan; "
            "its subskills: carry",
        ),
        (
            Plan(
                requests=[GenerationRequest(skill="mul", subskill="carry", count=1)],
                explore=[Explore(skill="add", name="zero", description="a zero addend")],
            ),
            _tree(),
            "subskill 'carry' is not under skill 'mul' in the tree nor explored by the plan; "
            "its subskills: none",
        ),
        (
            Plan(
                requests=[GenerationRequest(skill="add", count=1)],
                explore=[Explore(skill="div", name="x", description="y")],
            ),
            _tree(),
            "explore: unknown skill 'div'",
        ),
        (
            Plan(
                requests=[GenerationRequest(skill="add", count=1)],
                explore=[Explore(skill="add", name="zero")],
            ),
            _tree(),
            "explore: new subskill 'zero' of 'add' needs a description",
        ),
        (
            Plan(requests=[GenerationRequest(skill="add", subskill="carry", count=1)]),
            None,
            "names subskill 'carry', but this run has no skill tree",
        ),
        (
            Plan(
                requests=[GenerationRequest(skill="add", count=1)],
                explore=[Explore(skill="add", name="zero", description="a zero")],
            ),
            None,
            "the plan explores subskills, but this run has no skill tree",
        ),
    ],
)
def test_check_plan_rejects_what_the_tree_does_not_allow(
    plan: Plan, tree: SkillTree | None, reason: str
) -> None:
    with pytest.raises(InvalidPlan, match=re.escape(reason)):
        check_plan(plan, SKILLS, ["new-question"], 10, tree)


@pytest.mark.parametrize(
    ("obs", "fallback"),
    [(_open_obs(), "error-guided"), (_obs(), "weakest-skills"), (_tree_obs(), "skill-tree")],
)
def test_fallback_follows_the_structure(obs: Observation, fallback: str, caplog) -> None:
    teacher = ScriptedClient("no plan today")
    planner = LLMPlanner(Teacher(teacher), examples_per_iteration=30, retries=0)
    with caplog.at_level(logging.WARNING, logger="dataloop.policies.planner"):
        plan = asyncio.run(planner.aplan(obs))
    assert plan.rationale.startswith(f"fallback to {fallback} (1 attempt(s) failed, last: ")
    assert f"fell back to {fallback}" in caplog.text
    assert plan.total == 30
    if fallback == "error-guided":  # the failed probe is mul's: it gets most, with guidance
        mul = next(r for r in plan.requests if r.skill == "mul")
        assert mul.count == 29 and '"7*34"' in mul.guidance
    if fallback == "skill-tree":  # mul has no subskills and no candidates: exploited whole
        assert plan.explore == [] and {r.subskill for r in plan.requests} == {"carry", None}
