"""Teacher LLMs: the client contract, the OpenAI-compatible client, the cache and servers."""

from dataloop.llm.base import Completion, LLMClient, Message, Sampling
from dataloop.llm.cache import ResponseCache
from dataloop.llm.client import OpenAIClient

__all__ = ["Completion", "LLMClient", "Message", "OpenAIClient", "ResponseCache", "Sampling"]
