"""The teacher contract: an async LLM client that counts what it spends."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from dataloop.schema import Budget


class Message(BaseModel):
    """One chat message."""

    role: str
    content: str


class Sampling(BaseModel):
    """Sampling parameters of one request; part of the cache key."""

    model_config = ConfigDict(frozen=True)

    temperature: float = 0.9
    max_tokens: int = 128
    top_p: float = 1.0
    n: int = Field(1, ge=1)
    stop: tuple[str, ...] = ()
    seed: int | None = None
    json_schema: dict[str, object] | None = None
    """Ask for structured output (``response_format`` json_schema) where the server supports it."""

    def fields(self) -> dict[str, Any]:
        """The sampling fields every backend takes under these names (OpenAI API, vLLM's
        ``SamplingParams``): n, temperature, top_p, max_tokens, and stop and seed when set."""
        out: dict[str, Any] = {
            "n": self.n,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
        }
        if self.stop:
            out["stop"] = list(self.stop)
        if self.seed is not None:
            out["seed"] = self.seed
        return out


class Completion(BaseModel):
    """What came back for one request: ``n`` texts and the tokens it cost."""

    texts: list[str] = Field(min_length=1)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reasons: list[str] = Field(default_factory=list)
    cached: bool = False


@runtime_checkable
class LLMClient(Protocol):
    """A teacher LLM. Implementations enforce ``budget`` before sending a request."""

    model: str
    budget: Budget

    async def complete(self, prompt: str, sampling: Sampling) -> Completion:
        """Plain text completion (base models, few-shot prompts)."""
        ...

    async def chat(self, messages: list[Message], sampling: Sampling) -> Completion:
        """Chat completion (instruct models)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
