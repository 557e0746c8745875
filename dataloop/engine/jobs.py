"""The engine's bookkeeping for one request being carried out (:class:`Job`) and for one reply
read and checked (:class:`Settled`)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from dataloop.engine.strategy import Check, Prompt, RequestContext, Strategy
from dataloop.schema import Example, FilterCounts

Checked = Check | Literal["error"]
"""A strategy's check, or ``error``: it raised (the task's ``verify``, say)."""


def parent_uses(train_set: list[Example]) -> dict[str, Counter[str]]:
    """Per strategy, how often each example is a parent of a generated training example."""
    uses: dict[str, Counter[str]] = {}
    for example in train_set:
        strategy = example.provenance.strategy
        if strategy is not None:
            uses.setdefault(strategy, Counter()).update(example.provenance.parent_ids)
    return uses


@dataclass
class Settled:
    """One reply, read and checked: (check, example as checked) per candidate, in order."""

    queries: int
    checked: list[tuple[Checked, Example]]
    exhausted: bool = False
    """The budget ran out while asking for votes."""
    errors: list[str] = field(default_factory=list)


@dataclass
class Job:
    """One request being carried out: its strategy, context, counts and prompts sent."""

    strategy: Strategy
    ctx: RequestContext
    counts: FilterCounts
    per_query: int
    sent: int = 0
    reached: set[str] = field(default_factory=set)

    def next(self) -> list[tuple[Job, Prompt, int]]:
        """This round's prompts (with their indices): enough to fill what is still missing."""
        missing = self.ctx.request.count - self.counts.accepted
        if missing <= 0 or not self.strategy.targets(self.ctx):
            return []
        each = self.strategy.per_prompt(self.per_query)
        n = math.ceil(missing / each)
        prompts = [
            (self, self.strategy.prompt(self.ctx, self.sent + i, each), self.sent + i)
            for i in range(n)
        ]
        self.sent += n
        for _, prompt, _ in prompts:
            for parent in prompt.parents:
                if parent.id not in self.reached:
                    self.reached.add(parent.id)
                    self.counts.seeds.append(parent.id)
        return prompts
