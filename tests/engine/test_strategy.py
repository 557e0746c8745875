"""Prompt rendering and tolerant parsing of teacher output."""

from __future__ import annotations

from dataloop.engine.strategy import NewQuestion, RequestContext, Templates, parse_pairs
from dataloop.schema import GenerationRequest


def _ctx(task, guidance: str = "") -> RequestContext:
    skill = next(s for s in task.skills() if s.name == "add")
    return RequestContext(
        task=task,
        request=GenerationRequest(skill="add", count=6, guidance=guidance),
        skill=skill,
        seeds=[e for e in task.split("train") if e.skill == "add"],
        iteration=1,
        teacher="gemma",
        shots=4,
    )


def test_base_prompt_is_a_few_shot_list_ending_in_a_new_item(arithmetic) -> None:
    strategy = NewQuestion(Templates(), "base")
    prompt = strategy.prompt(_ctx(arithmetic, guidance="carry digits"), index=0, count=6)
    assert prompt.text.rstrip().endswith("Q:")
    assert prompt.text.count("\nA: ") == 4 and len(prompt.parents) == 4
    assert "carry digits" in prompt.text and prompt.template == "new_question/base.j2"
    for parent in prompt.parents:
        assert f"Q: {parent.question}\nA: {parent.answer}\n" in prompt.text
    other = strategy.prompt(_ctx(arithmetic), index=1, count=6)
    assert other.parents != prompt.parents  # a different sample of seeds per prompt


def test_chat_prompt_asks_for_json_lines(arithmetic) -> None:
    prompt = NewQuestion(Templates(), "chat").prompt(_ctx(arithmetic), index=0, count=5)
    assert "Write 5 new" in prompt.text and '{"question": "' in prompt.text


def test_parse_completion_continues_the_prompt(arithmetic) -> None:
    strategy = NewQuestion(Templates(), "base")
    ctx = _ctx(arithmetic)
    prompt = strategy.prompt(ctx, 0, 6)
    got = strategy.parse(" 11+22\nA: 33\nQ: 40+2\nA: 42\nQ: 99+", ctx, prompt)
    assert [(e.question, e.answer) for e in got] == [("11+22", "33"), ("40+2", "42")]
    assert got[0].provenance.strategy == "new-question"
    assert got[0].provenance.parent_ids == [p.id for p in prompt.parents]
    assert got[0].provenance.iteration == 1 and got[0].provenance.teacher == "gemma"


def test_parse_pairs_tolerates_junk_truncation_and_json() -> None:
    text = (
        "Sure! Here you go:\n"
        '{"question": "5+5", "answer": 10}\n'
        '{"question": "6+6", "answ\n'  # truncated JSON
        "Q: 1+2\nA: 3\n"
        "random words\n"
        "Q: 7+7\n"  # truncated: no answer line
    )
    assert parse_pairs(text) == [("1+2", "3"), ("5+5", "10")]
    assert parse_pairs("") == []
    assert parse_pairs("}{ not json {") == []
