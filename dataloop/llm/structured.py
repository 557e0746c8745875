"""Structured output: ask the teacher for JSON that fits a pydantic model, and read it tolerantly.

Where the server supports it the schema constrains decoding (``response_format`` for chat;
vLLM's ``structured_outputs`` or llama-server's ``json_schema`` for plain completions). Where it
does not (OpenAI's legacy completions, a server without grammar support), the model may wrap its
JSON in prose or code fences, or stop half-way: :func:`parse_json` finds the first value that
validates and ignores the rest.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from dataloop.errors import TeacherError
from dataloop.llm.base import LLMClient, Message, Sampling

T = TypeVar("T", bound=BaseModel)


def json_schema(model: type[BaseModel]) -> dict[str, object]:
    """``model``'s JSON schema, closed (no extra keys) as OpenAI's strict mode requires."""

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                node["additionalProperties"] = False
                node["required"] = list(node["properties"])
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    schema = model.model_json_schema()
    close(schema)
    return schema


def parse_json(text: str, model: type[T]) -> T | None:
    """The first JSON value in ``text`` that validates as ``model``, or None.

    Every ``{`` or ``[`` is tried as the start of a value, so prose, code fences and a cut-off
    tail around the JSON do not matter.
    """
    decoder = json.JSONDecoder()
    for start, char in enumerate(text):
        if char not in "{[":
            continue
        try:
            value, _ = decoder.raw_decode(text, start)
            return model.model_validate(value)
        except (json.JSONDecodeError, ValidationError):
            continue
    return None


async def ask_json(
    client: LLMClient,
    messages: list[Message],
    model: type[T],
    sampling: Sampling | None = None,
) -> T:
    """Ask a chat teacher for one ``model``; raises TeacherError if no completion parses."""
    sampling = (sampling or Sampling(temperature=0.0, max_tokens=512)).model_copy(
        update={"json_schema": json_schema(model)}
    )
    completion = await client.chat(messages, sampling)
    for text in completion.texts:
        parsed = parse_json(text, model)
        if parsed is not None:
            return parsed
    raise TeacherError(
        f"teacher '{client.model}' did not answer with a valid {model.__name__}: "
        f"{completion.texts[0][:200]!r}"
    )
