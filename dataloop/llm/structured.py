"""Structured output: a closed JSON schema for strict servers, and a tolerant reader.

Where the server supports it the schema constrains decoding (``response_format`` for chat;
vLLM's ``structured_outputs`` or llama-server's ``json_schema`` for plain completions). Where it
does not, the model may wrap its JSON in prose or code fences, or stop half-way:
:func:`parse_json` finds the first value that validates and ignores the rest. The teacher asks
through :meth:`dataloop.llm.teacher.Teacher.ask_json`.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

T = TypeVar("T", bound=BaseModel)


class InvalidReply(ValueError):
    """The teacher's reply holds no JSON value of the wanted model; the message says why."""


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


def parse_json(text: str, model: type[T]) -> T:
    """The first JSON value in ``text`` that validates as ``model``.

    Every ``{`` or ``[`` is tried as the start of a value, so prose, code fences and a cut-off
    tail around the JSON do not matter. Raises :class:`InvalidReply` with the reason the first
    candidate failed (no JSON at all, not valid JSON, or the first field that does not fit).
    """
    decoder = json.JSONDecoder()
    reason = "no JSON object in the reply"
    decoded = False
    for start, char in enumerate(text):
        if char not in "{[":
            continue
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError as exc:
            if reason.startswith("no JSON"):
                reason = f"reply is not valid JSON: {exc.msg}"
            continue
        try:
            return model.model_validate(value)
        except ValidationError as exc:
            if not decoded:
                err = exc.errors()[0]
                where = ".".join(str(p) for p in err["loc"]) or model.__name__
                reason = f"not a {model.__name__}: field '{where}': {err['msg']}"
                decoded = True
    raise InvalidReply(reason)
