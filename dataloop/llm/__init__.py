"""Teacher LLMs: the client contract, the OpenAI-compatible and offline vLLM clients, budget,
prices, the response cache, structured output, prompt templates, the :class:`Teacher` every
caller asks through, and local servers."""

from dataloop.llm.accounting import Price
from dataloop.llm.base import Completion, LLMClient, Message, Sampling
from dataloop.llm.cache import ResponseCache
from dataloop.llm.client import OpenAIClient
from dataloop.llm.offline import VLLMOfflineClient
from dataloop.llm.structured import InvalidReply, json_schema, parse_json
from dataloop.llm.teacher import Teacher, TeacherKind
from dataloop.llm.templates import Templates

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
