"""The teacher as every caller uses it: one client, its prompt kind, the templates and a seed.

The engine, the LLM planner and skill discovery all ask through a :class:`Teacher`, so the
chat-or-completion choice, structured output and the sampling seed are decided in one place::

    teacher = Teacher(OpenAIClient("gemma", ["http://127.0.0.1:8080/v1"]), kind="base")
    reply = await teacher.ask(teacher.render("new_question", **values), Sampling())
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from pydantic import BaseModel

from dataloop.deprecation import deprecated
from dataloop.errors import TeacherError
from dataloop.llm.base import Completion, LLMClient, Message, Sampling
from dataloop.llm.structured import InvalidReply, json_schema, parse_json
from dataloop.llm.templates import Templates
from dataloop.schema import Budget

TeacherKind = Literal["base", "chat"]
"""``base``: few-shot completion prompts; ``chat``: one user message to an instruct model."""

T = TypeVar("T", bound=BaseModel)


@dataclass
class Teacher:
    """A teacher LLM: ``client`` answers, ``kind`` says how it is prompted, ``templates`` hold
    the prompts (``<folder>/<kind>.j2``) and ``seed`` makes every sampling seed reproducible."""

    client: LLMClient
    kind: TeacherKind = "base"
    templates: Templates = field(default_factory=Templates)
    seed: int = 0

    @property
    def model(self) -> str:
        """The model name requests use (recorded in each example's provenance)."""
        return self.client.model

    @property
    def budget(self) -> Budget:
        """The client's budget: its limits and what has been spent."""
        return self.client.budget

    def render(self, folder: str, **values: object) -> str:
        """The template ``<folder>/<kind>.j2`` rendered with ``values``."""
        return self.templates.render(f"{folder}/{self.kind}.j2", **values)

    def sampling_seed(self, *parts: object) -> int:
        """A seed fixed by this teacher's seed and ``parts`` (iteration, skill, index, ...):
        a rerun sends the same seeds, so the response cache answers it."""
        digest = hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()
        return (self.seed + int(digest[:8], 16)) % (2**31)

    async def ask(self, prompt: str, sampling: Sampling) -> Completion:
        """One request: ``prompt`` as a chat user message (chat) or as text to complete (base).

        A ``json_schema`` in ``sampling`` is sent to a chat teacher only: a base teacher's
        few-shot prompt shows the format itself.
        """
        if self.kind == "chat":
            return await self.client.chat([Message(role="user", content=prompt)], sampling)
        return await self.client.complete(prompt, sampling.model_copy(update={"json_schema": None}))

    async def ask_json(
        self,
        prompt: str,
        model: type[T],
        sampling: Sampling,
        schema: dict[str, object] | None = None,
    ) -> T:
        """Ask for one ``model`` as JSON and read the first value that fits it.

        A chat teacher is constrained by ``schema`` (default: ``model``'s own, closed) where the
        server supports it. Raises :class:`~dataloop.llm.structured.InvalidReply`, naming what
        is wrong, when the reply holds no value that validates.
        """
        constrained = sampling.model_copy(update={"json_schema": schema or json_schema(model)})
        reply = await self.ask(prompt, constrained)
        return parse_json(reply.texts[0], model)


async def ask_json(
    client: LLMClient, messages: list[Message], model: type[T], sampling: Sampling | None = None
) -> T:
    """Deprecated (removed in 0.3.0): call :meth:`Teacher.ask_json` on
    ``Teacher(client, kind="chat")``.

    Asks a chat teacher for one ``model`` (``dataloop.llm.ask_json`` before the one Teacher)
    and returns the first completion that parses; raises :class:`TeacherError` if none does.
    """
    deprecated(
        "dataloop.llm.ask_json(client, messages, Model) is deprecated; call "
        "Teacher(client, kind='chat').ask_json(prompt, Model, sampling)"
    )
    sampling = (sampling or Sampling(temperature=0.0, max_tokens=512)).model_copy(
        update={"json_schema": json_schema(model)}
    )
    completion = await client.chat(messages, sampling)
    reasons = []
    for text in completion.texts:
        try:
            return parse_json(text, model)
        except InvalidReply as exc:
            reasons.append(str(exc))
    raise TeacherError(
        f"teacher '{client.model}' did not answer with a valid {model.__name__}: "
        f"{reasons[0] if reasons else 'no completion'}"
    )
