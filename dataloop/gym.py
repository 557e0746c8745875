"""The gym-shaped environment: a task, a student, and the growing training set.

    obs = env.reset()
    while not done:
        obs, reward, done, info = env.step(examples)

``reset`` trains on the seed set (unless disabled) and evaluates; ``step`` adds accepted examples
to the training set, trains, evaluates. The reward is the change in mean validation accuracy.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from dataloop.environments import Split, TaskEnvironment
from dataloop.schema import (
    EvalResult,
    Example,
    Failure,
    HistoryEntry,
    Observation,
    SkillResult,
)
from dataloop.students.base import Student, TrainRecord


class Environment:
    """Trains and evaluates a student on a task; observations say where it is weak."""

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
    ) -> None:
        self.task = task
        self.student = student
        self.checkpoints_dir = checkpoints_dir
        self.max_iterations = max_iterations
        self.target_accuracy = target_accuracy
        self.train_on_seed = train_on_seed
        self.max_failures = max_failures
        self.seed_set = task.split("train")
        self.train_set: list[Example] = []
        self.iteration = 0
        self.history: list[HistoryEntry] = []
        self.last_eval: EvalResult | None = None

    def reset(self) -> Observation:
        """Start over from the seed set: train on it (if enabled), evaluate, observe."""
        self.iteration = 0
        self.train_set = list(self.seed_set)
        self.history = []
        if self.train_on_seed:
            self._train()
        return self._observe(accepted={})

    def step(self, examples: list[Example]) -> tuple[Observation, float, bool, dict[str, Any]]:
        """Add ``examples`` to the training set, train, evaluate.

        Returns (observation, reward, done, info); info holds the checkpoint and eval result.
        """
        before = self.history[-1].mean_accuracy if self.history else 0.0
        self.iteration += 1
        known = {e.id for e in self.train_set}
        added = [e for e in examples if e.id not in known]
        self.train_set.extend(added)
        checkpoint = self._train()
        obs = self._observe(accepted=dict(Counter(e.skill for e in added)))
        reward = obs.mean_accuracy - before
        done = self.iteration >= self.max_iterations or (
            self.target_accuracy is not None and obs.mean_accuracy >= self.target_accuracy
        )
        return (
            obs,
            reward,
            done,
            {"checkpoint": checkpoint, "eval": self.last_eval, "added": len(added)},
        )

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

    def _train(self) -> Path:
        return self.student.train(
            self.records(self.train_set), self.checkpoints_dir / f"iteration-{self.iteration}"
        )

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

    def _observe(self, accepted: dict[str, int]) -> Observation:
        result, _ = self.evaluate("validation")
        _, failures = self.evaluate("train")
        self.last_eval = result
        self.history.append(
            HistoryEntry(
                iteration=self.iteration,
                accuracy=result.accuracy(),
                mean_accuracy=result.mean_accuracy,
                accepted=accepted,
            )
        )
        return Observation(
            iteration=self.iteration,
            skills=self.task.skills(),
            accuracy=result.accuracy(),
            mean_accuracy=result.mean_accuracy,
            failures=failures[: self.max_failures],  # None keeps all
            seed_counts=dict(Counter(e.skill for e in self.seed_set)),
            train_size=len(self.train_set),
            history=list(self.history),
        )
