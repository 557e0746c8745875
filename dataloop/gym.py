"""The environment, Gymnasium-shaped: a task, a student, and the growing training set.

    obs, info = env.reset()
    while not (terminated or truncated):
        obs, reward, terminated, truncated, info = env.step(examples)

``reset`` trains on the seed set (unless disabled) and evaluates; ``step`` adds the teacher's
examples (the action) to the training set, trains, evaluates. The reward is the change in mean
validation accuracy. An episode *terminates* when the teacher's budget is spent (it can make no
more data) or the target accuracy is reached, and is *truncated* at the iteration limit.

``info`` holds ``eval`` (the validation :class:`~dataloop.schema.EvalResult`), ``checkpoint``
(the student's, or None when reset did not train), ``added`` (new examples trained on),
``queries`` (teacher queries spent since the previous observation: planning, generation, and
for reset skill discovery) and, once the episode is over, ``test`` (the test EvalResult).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from dataloop.environments import Split, TaskEnvironment
from dataloop.schema import (
    Budget,
    EvalResult,
    Example,
    Failure,
    HistoryEntry,
    Observation,
    SkillResult,
)
from dataloop.students.base import Student, TrainRecord


class Environment:
    """Trains and evaluates a student on a task; observations say where it is weak.

    ``budget`` is the teacher's (``engine.budget``), read as it is spent: each observation
    shows what is left, each step's ``info`` what it cost, and a spent budget terminates the
    episode. Without one the teacher is unlimited.
    """

    def __init__(
        self,
        task: TaskEnvironment,
        student: Student,
        *,
        checkpoints_dir: Path,
        max_iterations: int = 3,
        target_accuracy: float | None = None,
        train_on_seed: bool = True,
        max_failures: int | None = None,
        budget: Budget | None = None,
    ) -> None:
        self.task = task
        self.student = student
        self.checkpoints_dir = checkpoints_dir
        self.max_iterations = max_iterations
        self.target_accuracy = target_accuracy
        self.train_on_seed = train_on_seed
        self.max_failures = max_failures
        self.budget = budget if budget is not None else Budget()
        self.seed_set = task.split("train")
        self.train_set: list[Example] = []
        self.iteration = 0
        self.history: list[HistoryEntry] = []
        """One entry per observation so far (the reset's first)."""

    def reset(self) -> tuple[Observation, dict[str, Any]]:
        """Start over from the seed set: train on it (if enabled), evaluate, observe."""
        self.iteration = 0
        self.train_set = list(self.seed_set)
        self.history = []
        checkpoint = self._train() if self.train_on_seed else None
        obs, info = self._observe(accepted={})
        info["checkpoint"] = checkpoint
        if self._terminated(obs) or self._truncated():
            info["test"] = self.evaluate("test")[0]
        return obs, info

    def step(
        self, examples: list[Example]
    ) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        """Add ``examples`` to the training set, train, evaluate.

        Returns (observation, reward, terminated, truncated, info); see the module docstring.
        """
        before = self.history[-1].mean_accuracy if self.history else 0.0
        self.iteration += 1
        known = {e.id for e in self.train_set}
        added = [e for e in examples if e.id not in known]
        self.train_set.extend(added)
        checkpoint = self._train()
        obs, info = self._observe(accepted=dict(Counter(e.skill for e in added)))
        info.update(checkpoint=checkpoint, added=len(added))
        terminated, truncated = self._terminated(obs), self._truncated()
        if terminated or truncated:
            info["test"] = self.evaluate("test")[0]
        return obs, obs.mean_accuracy - before, terminated, truncated, info

    def restore(
        self,
        iteration: int,
        accepted: list[Example],
        history: list[HistoryEntry],
        checkpoint: Path,
    ) -> None:
        """Return to the end of ``iteration``: its training set, history and student checkpoint.

        Without a checkpoint (reset did not train) the student stays as built.
        """
        self.iteration = iteration
        self.train_set = list(self.seed_set) + list(accepted)
        self.history = list(history)
        if checkpoint.is_dir():
            self.student.load(checkpoint)

    def records(self, examples: list[Example]) -> list[TrainRecord]:
        """Examples as the student's prompt/completion pairs."""
        return [
            TrainRecord(prompt=self.task.prompt(e.question), completion=self.task.target(e))
            for e in examples
        ]

    def evaluate(self, split: Split) -> tuple[EvalResult, list[Failure]]:
        """Score the student on a split; also return the examples it got wrong."""
        examples = self.task.split(split)
        predictions = self.student.predict([self.task.prompt(e.question) for e in examples])
        correct: Counter[str] = Counter()
        total: Counter[str] = Counter()
        failures: list[Failure] = []
        scores = self.task.score_many(examples, predictions)
        for example, prediction, right in zip(examples, predictions, scores, strict=True):
            total[example.skill] += 1
            if right:
                correct[example.skill] += 1
            else:
                failures.append(Failure(example=example, prediction=prediction))
        skills = [s.name for s in self.task.skills()]
        result = EvalResult(
            split=split,
            skills=[SkillResult(skill=s, correct=correct[s], total=total[s]) for s in skills],
        )
        return result, failures

    def _train(self) -> Path:
        return self.student.train(
            self.records(self.train_set), self.checkpoints_dir / f"iteration-{self.iteration}"
        )

    def _terminated(self, obs: Observation) -> bool:
        reached = self.target_accuracy is not None and obs.mean_accuracy >= self.target_accuracy
        return self.budget.exhausted or reached

    def _truncated(self) -> bool:
        return self.iteration >= self.max_iterations

    def _observe(self, accepted: dict[str, int]) -> tuple[Observation, dict[str, Any]]:
        result, _ = self.evaluate("validation")
        _, failures = self.evaluate("train")
        queries = self.budget.queries - sum(h.queries for h in self.history)
        self.history.append(
            HistoryEntry(
                iteration=self.iteration,
                accuracy=result.accuracy(),
                mean_accuracy=result.mean_accuracy,
                accepted=accepted,
                queries=queries,
            )
        )
        obs = Observation(
            iteration=self.iteration,
            skills=self.task.skills(),
            accuracy=result.accuracy(),
            mean_accuracy=result.mean_accuracy,
            failures=failures[: self.max_failures],  # None keeps all
            seed_counts=dict(Counter(e.skill for e in self.seed_set)),
            train_size=len(self.train_set),
            budget=self.budget.model_copy(),
            history=list(self.history),
        )
        return obs, {"eval": result, "queries": queries}
