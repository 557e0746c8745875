"""Teacher LLMs: the client contract, the OpenAI-compatible and offline vLLM clients, budget,
prices, the response cache, structured output and local servers."""

from dataloop.llm.accounting import Price
from dataloop.llm.base import Completion, LLMClient, Message, Sampling
from dataloop.llm.cache import ResponseCache
from dataloop.llm.client import OpenAIClient
from dataloop.llm.offline import VLLMOfflineClient
from dataloop.llm.structured import ask_json, parse_json

__all__ = [
    "Completion",
    "LLMClient",
    "Message",
    "OpenAIClient",
    "Price",
    "ResponseCache",
    "Sampling",
    "VLLMOfflineClient",
    "ask_json",
    "parse_json",
]
