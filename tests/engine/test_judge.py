"""The LLM judge as a filter stage: a scripted judge, on the teacher's client and on an endpoint
of its own (tests/fakeserver.py), spending the teacher's budget."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from fakeserver import FakeOpenAI
from test_engine import ScriptedClient, _obs, _Permissive

from dataloop.assemble import check_run
from dataloop.config import EngineConfig, validate_config
from dataloop.engine import Engine
from dataloop.engine.judge import Judge
from dataloop.errors import ConfigError
from dataloop.llm.client import OpenAIClient
from dataloop.llm.teacher import Teacher
from dataloop.llm.templates import Templates
from dataloop.runs import RunDir
from dataloop.schema import Budget, GenerationRequest, Plan

TEXT = " 2+2\nA: 4\nQ: 3+3\nA: 7\nQ: 9+1\nA: 10\n"  # three candidates; 3+3=7 is wrong


def scripted_judgement(prompt: str) -> str:
    """A judge's JSON: 5 for a right sum, 1 for a wrong one, junk for 9+1."""
    question = re.search(r"Question:\n(.+)\n", prompt)[1]
    answer = re.search(r"Answer:\n(.+)\n", prompt)[1]
    if question == "9+1":
        return "I cannot decide."
    right = eval(question) == int(answer)  # the scripted questions are sums
    reason = "the sum is right" if right else f"{question} is not {answer}"
    return json.dumps({"score": 5 if right else 1, "reason": reason})


class ScriptedJudge(ScriptedClient):
    """A chat client that answers every judge prompt with :func:`scripted_judgement`."""

    model = "judge"

    async def chat(self, messages, sampling):
        self.samplings.append(sampling)
        self.prompts.append(messages[0].content)
        from dataloop.llm.base import Completion

        return Completion(texts=[scripted_judgement(messages[0].content)])


def _engine(judge_client, teacher_client=None, **judge_options) -> Engine:
    task = _Permissive(skills=["add"])
    judge = Judge(Teacher(judge_client, "chat"), **judge_options)
    teacher = Teacher(teacher_client or ScriptedClient(TEXT))
    return Engine(teacher, task, EngineConfig(per_query=3, max_rounds=1), judge=judge)


def test_the_judge_keeps_scores_at_the_threshold_and_records_score_and_reason() -> None:
    judge_client = ScriptedJudge("")
    engine = _engine(judge_client, threshold=4)
    plan = Plan(requests=[GenerationRequest(skill="add", count=3)])
    result = asyncio.run(engine.generate(plan, _obs(engine.task), []))
    verdicts = [(c.example.question, c.verdict) for c in result.candidates]
    assert verdicts == [("2+2", "accepted"), ("3+3", "low-score"), ("9+1", "low-score")]
    provenance = [c.example.provenance for c in result.candidates]
    scores = [(p.judge_score, p.judge_reason) for p in provenance]
    assert scores[0] == (5, "the sum is right") and scores[1] == (1, "3+3 is not 7")
    assert scores[2][0] is None and "the judge's reply could not be read" in scores[2][1]
    assert result.accepted[0].provenance.judge_score == 5
    counts = result.report.counts[0]
    assert (counts.verified, counts.judged_out, counts.accepted) == (3, 2, 1)
    assert result.report.queries == 1 + 3  # one generation, three judgements
    # the chat judge asks for the score's JSON schema, at temperature 0
    assert judge_client.samplings[0].json_schema["properties"]["score"]["enum"] == [1, 2, 3, 4, 5]
    assert "Skill it should teach: add" in judge_client.prompts[0]
    # the judge is the last stage: a candidate the request no longer needs costs no query
    one = _engine(counted := ScriptedJudge(""), threshold=4)
    single = Plan(requests=[GenerationRequest(skill="add", count=1)])
    result = asyncio.run(one.generate(single, _obs(one.task), []))
    assert [c.verdict for c in result.candidates] == ["accepted", "surplus", "surplus"]
    assert len(counted.prompts) == 1 and result.report.queries == 2
    low = _engine(ScriptedJudge(""), threshold=1)
    result = asyncio.run(low.generate(plan, _obs(low.task), []))
    assert [c.verdict for c in result.candidates] == ["accepted", "accepted", "low-score"]
    with pytest.raises(ValueError, match="threshold must be a score from 1 to 5"):
        Judge(Teacher(judge_client), threshold=6)


def test_a_judge_on_its_own_endpoint_spends_the_teachers_budget() -> None:
    teacher = ScriptedClient(TEXT)
    teacher.budget = Budget(max_queries=3)
    OpenAIClient("teacher", ["http://127.0.0.1:9/v1"], budget=teacher.budget)  # the guard
    teacher.budget.queries = 1  # the generation query, as the teacher's client books it

    with FakeOpenAI(reply=scripted_judgement) as server:
        judge = OpenAIClient("judge", [server.base_url], budget=teacher.budget)
        engine = _engine(judge, teacher_client=teacher, threshold=4)
        plan = Plan(requests=[GenerationRequest(skill="add", count=3)])

        async def generate_and_close():
            try:
                return await engine.generate(plan, _obs(engine.task), [])
            finally:
                await judge.aclose()

        result = asyncio.run(generate_and_close())
    assert server.requests == 2 and teacher.budget.queries == 3  # the limit, not past it
    assert result.budget_exhausted and teacher.budget.exhausted
    reasons = [c.example.provenance.judge_reason for c in result.candidates]
    assert sum("budget is spent" in r for r in reasons) == 1
    body = server.bodies[0]
    assert body["model"] == "judge" and body["response_format"]["type"] == "json_schema"


def test_the_rubric_is_a_template_the_user_overrides(tmp_path) -> None:
    (tmp_path / "judge").mkdir()
    (tmp_path / "judge" / "chat.j2").write_text(
        "Strict rubric for {{ skill.name }}: {{ question }}"
    )
    judge = Judge(Teacher(ScriptedJudge(""), "chat", Templates(tmp_path)))
    example = _Permissive(skills=["add"]).split("train")[0]
    assert judge.prompt(example, _Permissive(skills=["add"]).skills()[0]) == (
        f"Strict rubric for add: {example.question}"
    )
    base = Judge(Teacher(ScriptedJudge(""), "base")).prompt(example, _Permissive().skills()[0])
    assert base.endswith("Judgement:") and f"Question: {example.question}" in base


def test_the_judge_config_is_checked_before_anything_starts(tmp_path) -> None:
    with pytest.raises(ConfigError, match="judge's endpoint must be a server already running"):
        validate_config({"engine": {"judge": {"endpoint": {"backend": "llama-server"}}}})
    with pytest.raises(ConfigError, match=r"engine\.judge\.threshold"):
        validate_config({"engine": {"judge": {"threshold": 0}}})
    endpoint = {"backend": "openai", "model": "judge"}
    config = validate_config({"engine": {"judge": {"endpoint": endpoint}}})
    with pytest.raises(ConfigError, match=r"'engine\.judge\.endpoint\.base_urls'"):
        check_run(config, RunDir(tmp_path / "run"))
    (tmp_path / "mine" / "judge").mkdir(parents=True)
    (tmp_path / "mine" / "judge" / "chat.j2").write_text("{{ no_such_value }}")
    config = validate_config({"engine": {"judge": {}, "prompts_dir": str(tmp_path / "mine")}})
    with pytest.raises(Exception, match="no_such_value"):
        check_run(config, RunDir(tmp_path / "run"))


def test_the_run_builds_a_judge_on_its_endpoint_with_the_teachers_budget(tmp_path) -> None:
    from dataloop.assemble import open_loop

    def engine_of(judge: dict | None, teacher_url: str) -> Engine:
        engine = {} if judge is None else {"judge": judge}
        teacher = {"backend": "openai", "model": "teacher", "base_urls": [teacher_url]}
        runs = tmp_path / str(len(list(tmp_path.iterdir())))
        config = validate_config(
            {"iterations": 0, "runs_dir": str(runs), "teacher": teacher, "engine": engine}
        )
        with open_loop(config) as loop:
            assert isinstance(loop.engine, Engine)
            return loop.engine

    with FakeOpenAI(reply=scripted_judgement) as server:
        endpoint = {"backend": "openai", "model": "judge-9b", "base_urls": [server.base_url]}
        engine = engine_of({"endpoint": endpoint, "threshold": 5}, server.base_url)
        judge = engine.judge
        assert judge is not None and judge.threshold == 5 and judge.teacher.kind == "chat"
        assert judge.teacher.model == "judge-9b" and judge.teacher.budget is engine.teacher.budget
        assert engine_of(None, server.base_url).judge is None
        plain = engine_of({}, server.base_url)  # no endpoint: the teacher's own client
        assert plain.judge is not None and plain.judge.teacher.client is plain.teacher.client


def test_the_judges_endpoint_credentials_are_redacted_in_the_saved_config() -> None:
    from dataloop.config import dump_config

    endpoint = {"backend": "openai", "model": "j", "base_urls": ["https://u:pw@judge.io/v1"]}
    saved = dump_config(validate_config({"engine": {"judge": {"endpoint": endpoint}}}))
    assert "https://***@judge.io/v1" in saved and "pw" not in saved


def _scored(score: int | None, reason: str | None, n: int) -> list:
    from dataloop.schema import Example, Provenance

    provenance = Provenance(source="generated", judge_score=score, judge_reason=reason)
    return [
        Example(
            id=f"x{i}", skill="add", question=f"{i}+1", answer=str(i + 1), provenance=provenance
        )
        for i in range(n)
    ]


def test_a_judge_that_gives_everything_one_score_and_reason_is_flagged() -> None:
    from dataloop.engine.judge import copying_warning

    copied = _scored(4, "one sentence on what decided the score", 12)
    unscored = _scored(None, "not judged: the budget is spent", 5)  # not counted either way
    warning = copying_warning(copied + unscored)
    assert warning is not None
    assert "all 12 candidates it scored a 4" in warning
    assert "'one sentence on what decided the score'" in warning
    # Too few to tell, or a judge that varies its score or its reason: no warning.
    assert copying_warning(copied[:9]) is None
    assert copying_warning(copied + _scored(5, "one sentence on what decided the score", 1)) is None
    assert copying_warning(copied + _scored(4, "the sum is right", 1)) is None
    assert copying_warning([]) is None
