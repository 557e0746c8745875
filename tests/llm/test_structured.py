"""Structured output: schemas for strict servers, tolerant parsing, and Teacher.ask_json."""

from __future__ import annotations

import asyncio
import json

import pytest
from fakeserver import FakeOpenAI
from pydantic import BaseModel

from dataloop.llm import InvalidReply, OpenAIClient, Sampling, Teacher, json_schema, parse_json


class Item(BaseModel):
    question: str
    answer: int


class Batch(BaseModel):
    items: list[Item]


def test_schema_is_closed_for_strict_mode() -> None:
    schema = json_schema(Batch)
    assert schema["additionalProperties"] is False and schema["required"] == ["items"]
    item = schema["$defs"]["Item"]  # type: ignore[index]
    assert item["additionalProperties"] is False and item["required"] == ["question", "answer"]


@pytest.mark.parametrize(
    "text",
    [
        '{"question": "2+2", "answer": 4}',
        'Sure! Here it is:\n```json\n{"question": "2+2", "answer": 4}\n```\nAnything else?',
        '{"question": 1} then {"question": "2+2", "answer": 4} and {"question": "cut',
    ],
)
def test_parse_json_finds_the_first_valid_value_among_junk(text: str) -> None:
    assert parse_json(text, Item) == Item(question="2+2", answer=4)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "no JSON object"),
        ("no json here", "no JSON object"),
        ('{"question": "2+2", "answer": "four"', "not valid JSON"),
        ('{"question": "2+2", "answer": "four"}', "not a Item: field 'answer'"),
    ],
)
def test_parse_json_says_why_nothing_fits(text: str, reason: str) -> None:
    with pytest.raises(InvalidReply, match=reason):
        parse_json(text, Item)


def test_ask_json_sends_the_schema_and_parses_a_wrapped_answer() -> None:
    reply = 'The item: {"question": "3*3", "answer": 9} -- done'

    async def go(client: OpenAIClient) -> Item:
        try:
            return await Teacher(client, "chat").ask_json("one item", Item, Sampling())
        finally:
            await client.aclose()

    with FakeOpenAI(reply=lambda prompt: reply) as server:
        item = asyncio.run(go(OpenAIClient("fake", [server.base_url])))
    assert item == Item(question="3*3", answer=9)
    sent = server.bodies[0]["response_format"]["json_schema"]["schema"]
    assert sent == json.loads(json.dumps(json_schema(Item)))


def test_ask_json_reports_an_answer_that_does_not_fit() -> None:
    async def go(client: OpenAIClient) -> Item:
        try:
            return await Teacher(client).ask_json("one item:", Item, Sampling())
        finally:
            await client.aclose()

    with (
        FakeOpenAI(reply=lambda prompt: "I cannot do that") as server,
        pytest.raises(InvalidReply, match="no JSON object"),
    ):
        asyncio.run(go(OpenAIClient("fake", [server.base_url])))
    assert "json_schema" not in server.bodies[0]  # a base teacher's prompt shows the format


def test_the_deprecated_ask_json_function_still_asks_and_warns() -> None:
    """``dataloop.llm.ask_json(client, messages, Model)``, as docs/teachers.md once said."""
    import dataloop.llm
    from dataloop.errors import TeacherError
    from dataloop.llm import Message

    async def go(client: OpenAIClient) -> Item:
        try:
            messages = [Message(role="user", content="one item")]
            return await dataloop.llm.ask_json(client, messages, Item)  # type: ignore[attr-defined]
        finally:
            await client.aclose()

    reply = iter(['{"question": "3*3", "answer": 9}', "no item here"])
    with FakeOpenAI(reply=lambda prompt: next(reply)) as server:
        with pytest.warns(DeprecationWarning, match=r"Teacher\(client, kind='chat'\)\.ask_json"):
            item = asyncio.run(go(OpenAIClient("fake", [server.base_url])))
        assert item == Item(question="3*3", answer=9)
        assert "json_schema" in server.bodies[0]["response_format"]
        with (
            pytest.warns(DeprecationWarning),
            pytest.raises(TeacherError, match="did not answer with a valid Item: no JSON"),
        ):
            asyncio.run(go(OpenAIClient("fake", [server.base_url])))
