"""Where a Loop's new examples come from: the teacher engine, or one of two controls.

A :class:`DataSource` is what :class:`~dataloop.loop.Loop` asks for new data each iteration.
:class:`~dataloop.engine.engine.Engine` is the real one (a teacher LLM). The two here are not
teachers; they are the controls an experiment measures a teacher against:

- :class:`TaskSampler` (``engine.source: oracle``): new examples drawn and solved by the task
  itself (a task that implements :meth:`~dataloop.environments.TaskEnvironment.sample`, such as
  arithmetic). It follows the policy's plan exactly, so comparing policies under it isolates
  the allocation from teacher noise; it is the ceiling a teacher is measured against.
- :class:`NoNewData` (``engine.source: none``, the ``seed-only`` arm): the plan is recorded
  but nothing is added, so the student trains the same steps on the seed set — the floor.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Protocol

from dataloop.engine.filters import Decontaminator, Seen
from dataloop.engine.results import Candidate, GenerationResult, ProgressFn
from dataloop.environments import TaskEnvironment, belongs
from dataloop.errors import ConfigError
from dataloop.schema import Budget, Example, FilterCounts, GenerationRequest, Observation, Plan

ORACLE = "oracle"
"""The ``strategy`` and ``teacher`` recorded in the provenance of task-sampled examples."""


class DataSource(Protocol):
    """What a Loop draws new examples from, and what that has cost."""

    @property
    def budget(self) -> Budget:
        """Teacher queries and tokens spent so far, with their limits."""
        ...

    async def generate(
        self,
        plan: Plan,
        obs: Observation,
        train_set: list[Example],
        on_progress: ProgressFn | None = None,
    ) -> GenerationResult:
        """New examples for ``plan``; never examples already in ``train_set``."""
        ...


class NoNewData:
    """No new examples, ever: the seed-only control (the student keeps training on the seeds)."""

    def __init__(self) -> None:
        self._budget = Budget()

    @property
    def budget(self) -> Budget:
        """Nothing is spent."""
        return self._budget

    async def generate(
        self,
        plan: Plan,
        obs: Observation,
        train_set: list[Example],
        on_progress: ProgressFn | None = None,
    ) -> GenerationResult:
        """An empty result (the plan's requests are counted as requested, none accepted)."""
        result = GenerationResult()
        result.report.counts = [
            FilterCounts(skill=r.skill, strategy="none", requested=r.count) for r in plan.requests
        ]
        return result


class TaskSampler:
    """New examples sampled and solved by the task itself: the oracle control, not a teacher.

    ``max_examples`` is its budget (an experiment gives it as many examples as a teacher arm is
    expected to make with its query budget); when it is spent the result says the budget is
    exhausted, as a teacher's would. Examples already in the training set, or in validation or
    test, are drawn again, so the student never trains on what it is scored on.
    """

    def __init__(
        self,
        task: TaskEnvironment,
        *,
        max_examples: int | None = None,
        seed: int = 0,
        held_out: list[Example] | None = None,
    ) -> None:
        probe = task.sample(task.skills()[0].name, 1, random.Random(0)) if task.skills() else None
        if probe is None:
            raise ConfigError(
                f"config field 'engine.source': 'oracle' needs a task that samples and solves "
                f"its own problems; environment '{task.name}' does not (implement "
                "TaskEnvironment.sample, as arithmetic does)"
            )
        self.task = task
        self.max_examples = max_examples
        self.seed = seed
        self._budget = Budget()
        self._held_out = Decontaminator(
            task.split("validation") + task.split("test") + list(held_out or [])
        )

    @property
    def budget(self) -> Budget:
        """No teacher queries are spent; the example budget is :attr:`max_examples`, and
        ``exhausted`` says when it is spent."""
        return self._budget

    async def generate(
        self,
        plan: Plan,
        obs: Observation,
        train_set: list[Example],
        on_progress: ProgressFn | None = None,
    ) -> GenerationResult:
        """Exactly the plan's counts (as far as the example budget allows), in plan order."""
        result = GenerationResult()
        seen = Seen(train_set)
        iteration = obs.iteration + 1
        # Counted from the training set, not kept as state, so a resumed run spends no more.
        drawn = sum(e.provenance.strategy == ORACLE for e in train_set)
        for index, request in enumerate(plan.requests):
            counts = FilterCounts(skill=request.skill, strategy=ORACLE, requested=request.count)
            result.report.counts.append(counts)
            wanted = request.count
            if self.max_examples is not None:
                wanted = min(wanted, self.max_examples - drawn)
            if wanted < request.count:
                result.budget_exhausted = self._budget.exhausted = True
            rng = random.Random(f"{self.seed}/{iteration}/{index}/{request.skill}")
            fits = self._fits(request, obs)
            for example in self._fresh(request.skill, wanted, rng, seen, fits):
                example = example.model_copy(
                    update={
                        "provenance": example.provenance.model_copy(
                            update={
                                "source": "generated",
                                "strategy": ORACLE,
                                "teacher": ORACLE,
                                "iteration": iteration,
                                "subskill": request.subskill,
                                "level": request.level,
                            }
                        )
                    }
                )
                counts.generated += 1
                counts.parsed += 1
                counts.verified += 1
                counts.deduplicated += 1
                counts.accepted += 1
                result.accepted.append(example)
                result.candidates.append(Candidate(example=example, verdict="accepted"))
                if on_progress:
                    on_progress(1)
            drawn += counts.accepted
        if self.max_examples is not None and drawn >= self.max_examples:
            result.budget_exhausted = self._budget.exhausted = True
        return result

    def _fits(self, request: GenerationRequest, obs: Observation) -> Callable[[Example], bool]:
        """Which sampled examples a request takes: all, or those in its subskill (by the
        task's rule; the sampler cannot serve a subskill only the teacher can label) and at
        its difficulty level (by the task's ``level_of``)."""
        tree = obs.tree
        sub = tree.subskill(request.skill, request.subskill) if tree is not None else None
        ruled = sub if sub is not None and sub.labelled_by == "task" else None
        level = request.level

        def fits(example: Example) -> bool:
            if ruled is not None and not belongs(self.task, ruled, example):
                return False
            return level is None or self.task.level_of(example) == level

        return fits

    def _fresh(
        self,
        skill: str,
        n: int,
        rng: random.Random,
        seen: Seen,
        fits: Callable[[Example], bool] = lambda example: True,
    ) -> list[Example]:
        """``n`` new examples of ``skill`` that ``fits`` (fewer if it runs out of distinct
        ones)."""
        fresh: list[Example] = []
        for _ in range(100):  # rounds: each draws what is still missing
            if len(fresh) >= n:
                break
            for example in self.task.sample(skill, n - len(fresh), rng) or []:
                if not fits(example):
                    continue
                if seen.contains(example) or self._held_out.contaminated(example):
                    continue
                seen.add(example)
                fresh.append(example)
        return fresh
