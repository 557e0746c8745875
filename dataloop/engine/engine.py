"""The engine: carries out a Plan with the teacher LLM and keeps only trustworthy examples.

For each request it sends as many prompts at once as the strategy expects to need (about
``missing / per_query``), parses every completion, and passes each candidate through, in order:
the strategy's check (the task's ``verify``, and for some strategies an answer check), dedup
(batch and training set), decontamination (validation and test), length limits. It repeats for
up to ``max_rounds`` rounds while a request is short. Every candidate is kept with its verdict.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel

from dataloop.engine.filters import Decontaminator, Seen, within_length
from dataloop.engine.strategies import resolve_strategy
from dataloop.engine.strategy import (
    Prompt,
    RequestContext,
    Strategy,
    TeacherKind,
    Templates,
)
from dataloop.environments import TaskEnvironment
from dataloop.errors import BudgetExhausted, TeacherError
from dataloop.llm.base import Completion, LLMClient, Message, Sampling
from dataloop.schema import (
    Example,
    FilterCounts,
    GenerationReport,
    GenerationRequest,
    Observation,
    Plan,
)

log = logging.getLogger(__name__)

ProgressFn = Callable[[int], None]
"""Called with the number of examples just accepted."""


Verdict = Literal[
    "accepted",
    "unverified",
    "wrong-answer",
    "duplicate",
    "contaminated",
    "too-long",
    "surplus",
]


class Candidate(BaseModel):
    """One parsed teacher output and what the filters decided."""

    example: Example
    verdict: Verdict
    """``unverified``: the task's verify rejected it; ``wrong-answer``: a strategy that keeps
    the teacher's (or the seed's) answer found it wrong; ``surplus``: good, but the request was
    already met; the others name the filter that removed it."""


@dataclass
class GenerationResult:
    """Accepted examples, every candidate with its verdict, and the per-stage counts."""

    accepted: list[Example] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    report: GenerationReport = field(default_factory=GenerationReport)
    budget_exhausted: bool = False
    errors: list[str] = field(default_factory=list)


def _sampling_seed(base: int, *parts: object) -> int:
    digest = hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()
    return (base + int(digest[:8], 16)) % (2**31)


class Engine:
    """Turns a :class:`~dataloop.schema.Plan` into verified, deduplicated examples."""

    def __init__(
        self,
        client: LLMClient,
        task: TaskEnvironment,
        *,
        templates: Templates | None = None,
        kind: TeacherKind = "base",
        strategy: str | None = None,
        shots: int = 8,
        per_query: int = 6,
        max_rounds: int = 3,
        temperature: float = 0.9,
        max_tokens: int = 128,
        seed: int = 0,
        max_chars: int = 2000,
    ) -> None:
        self.client = client
        self.task = task
        self.templates = templates or Templates()
        self.kind: TeacherKind = kind
        self.strategy_override = strategy
        self.shots = shots
        self.per_query = per_query
        self.max_rounds = max_rounds
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.seed = seed
        self.max_chars = max_chars
        self._skills = {s.name: s for s in task.skills()}
        self._seeds = task.split("train")
        self._decontaminator = Decontaminator(task.split("validation") + task.split("test"))
        if strategy is not None:
            resolve_strategy(strategy)  # fail at construction on an unknown name

    def strategy(self, name: str) -> Strategy:
        """An instance of the named strategy, set up for this engine's teacher kind."""
        return resolve_strategy(name)(self.templates, self.kind)

    async def generate(
        self,
        plan: Plan,
        obs: Observation,
        train_set: list[Example],
        on_progress: ProgressFn | None = None,
    ) -> GenerationResult:
        """Carry out every request of ``plan`` concurrently; never raises on teacher trouble."""
        result = GenerationResult()
        seen = Seen(train_set)
        for request in plan.requests:
            if request.skill not in self._skills:
                known = ", ".join(self._skills)
                raise TeacherError(f"plan asks for unknown skill '{request.skill}'; known: {known}")
        await asyncio.gather(
            *(
                self._fulfil(request, obs, seen, result, on_progress)
                for request in plan.requests
                if request.count > 0
            )
        )
        return result

    async def _fulfil(
        self,
        request: GenerationRequest,
        obs: Observation,
        seen: Seen,
        result: GenerationResult,
        on_progress: ProgressFn | None,
    ) -> None:
        strategy = self.strategy(self.strategy_override or request.strategy)
        counts = FilterCounts(skill=request.skill, strategy=strategy.name, requested=request.count)
        result.report.counts.append(counts)
        ctx = RequestContext(
            task=self.task,
            request=request,
            skill=self._skills[request.skill],
            seeds=[e for e in self._seeds if e.skill == request.skill],
            failures=[f for f in obs.failures if f.example.skill == request.skill],
            iteration=obs.iteration + 1,
            teacher=self.client.model,
            shots=self.shots,
        )
        sent = 0
        for _ in range(self.max_rounds):
            missing = request.count - counts.accepted
            if missing <= 0 or result.budget_exhausted or not strategy.targets(ctx):
                break
            prompts = [
                strategy.prompt(ctx, sent + i, self.per_query)
                for i in range(math.ceil(missing / strategy.per_prompt(self.per_query)))
            ]
            replies = await asyncio.gather(
                *(self._ask(p, ctx, sent + i) for i, p in enumerate(prompts)),
                return_exceptions=True,
            )
            sent += len(prompts)
            for prompt, reply in zip(prompts, replies, strict=True):
                if isinstance(reply, BudgetExhausted):
                    result.budget_exhausted = True
                    continue
                if isinstance(reply, BaseException):
                    if not isinstance(reply, TeacherError):
                        raise reply
                    result.errors.append(str(reply))
                    continue
                result.report.queries += 0 if reply.cached else 1
                self._take(strategy, ctx, prompt, reply, seen, counts, result, on_progress)

    def _take(
        self,
        strategy: Strategy,
        ctx: RequestContext,
        prompt: Prompt,
        reply: Completion,
        seen: Seen,
        counts: FilterCounts,
        result: GenerationResult,
        on_progress: ProgressFn | None,
    ) -> None:
        """Parse every text of one reply and judge every candidate in it."""
        for i, text in enumerate(reply.texts):
            counts.generated += 1
            # A text stopped by the token limit may end mid-item: the strategy drops that item.
            cut = i < len(reply.finish_reasons) and reply.finish_reasons[i] == "length"
            parsed = strategy.parse(text, ctx, prompt, cut=cut)
            counts.dropped += parsed.dropped
            for candidate in parsed.examples:
                counts.parsed += 1
                verdict, example = self._judge(strategy, candidate, ctx, prompt, seen, counts)
                result.candidates.append(Candidate(example=example, verdict=verdict))
                if verdict == "accepted":
                    result.accepted.append(example)
                    if on_progress:
                        on_progress(1)

    async def _ask(self, prompt: Prompt, ctx: RequestContext, index: int) -> Completion:
        sampling = Sampling(
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            stop=prompt.stop,
            seed=_sampling_seed(
                self.seed, ctx.iteration, ctx.skill.name, ctx.request.strategy, index
            ),
        )
        if self.kind == "chat":
            return await self.client.chat([Message(role="user", content=prompt.text)], sampling)
        return await self.client.complete(prompt.text, sampling)

    def _judge(
        self,
        strategy: Strategy,
        candidate: Example,
        ctx: RequestContext,
        prompt: Prompt,
        seen: Seen,
        counts: FilterCounts,
    ) -> tuple[Verdict, Example]:
        check, example = strategy.check(candidate, ctx, prompt)
        if check != "verified":
            return check, example
        counts.verified += 1
        if seen.contains(example, with_answer=strategy.dedup_on_answer):
            return "duplicate", example
        seen.add(example)
        if self._decontaminator.contaminated(example):
            return "contaminated", example
        if not within_length(example, self.max_chars):
            return "too-long", example
        counts.deduplicated += 1
        if counts.accepted >= ctx.request.count:
            return "surplus", example
        counts.accepted += 1
        return "accepted", example
