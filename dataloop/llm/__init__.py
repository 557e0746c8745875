"""Teacher LLMs: the client contract, the OpenAI-compatible and offline vLLM clients, budget,
prices, the response cache, structured output, prompt templates, the :class:`Teacher` every
caller asks through, local servers, and the backends that build a teacher from its config
(:mod:`dataloop.llm.backends`).

The clients are imported when first named (``dataloop.llm.OpenAIClient``): ``openai`` and
``httpx`` load only for a run that talks to a teacher, so ``import dataloop`` stays quick.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dataloop.llm.base import Completion, LLMClient, Message, Sampling
from dataloop.llm.cache import ResponseCache
from dataloop.llm.structured import InvalidReply, json_schema, parse_json
from dataloop.llm.teacher import Teacher, TeacherKind
from dataloop.llm.templates import Templates
from dataloop.schema import Price

if TYPE_CHECKING:
    from dataloop.llm.client import OpenAIClient
    from dataloop.llm.offline import VLLMOfflineClient

_LAZY = {
    "OpenAIClient": "dataloop.llm.client",
    "VLLMOfflineClient": "dataloop.llm.offline",
    "ask_json": "dataloop.llm.teacher",  # deprecated: Teacher.ask_json (removed in 0.3.0)
}

__all__ = [
    "Completion",
    "InvalidReply",
    "LLMClient",
    "Message",
    "OpenAIClient",
    "Price",
    "ResponseCache",
    "Sampling",
    "Teacher",
    "TeacherKind",
    "Templates",
    "VLLMOfflineClient",
    "json_schema",
    "parse_json",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
