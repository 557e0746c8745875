"""The student contract: train on prompt/completion pairs, answer prompts."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from pydantic import BaseModel


class TrainRecord(BaseModel):
    """One supervised pair; the loss is taken on ``completion`` only."""

    prompt: str
    completion: str


@runtime_checkable
class Student(Protocol):
    """What :class:`dataloop.gym.Environment` needs from a model."""

    def train(self, records: list[TrainRecord], output_dir: Path) -> Path:
        """Train on ``records`` and save a checkpoint under ``output_dir``; return its path."""
        ...

    def predict(self, prompts: list[str]) -> list[str]:
        """Greedy completions for ``prompts``, in order."""
        ...

    def load(self, checkpoint: Path) -> None:
        """Continue from a checkpoint that ``train`` saved (used to resume a run)."""
        ...


@runtime_checkable
class LossStudent(Student, Protocol):
    """A student that can also say how badly it fits examples, without training on them.

    Needed only by a policy that reads the student's loss
    (:attr:`~dataloop.policies.base.Policy.observes_loss`, e.g. ``high-loss``).
    """

    def losses(self, records: list[TrainRecord]) -> list[float]:
        """Per record, in order, the SFT loss training would take on it: the mean
        cross-entropy over the ``completion``'s tokens given the ``prompt``."""


@runtime_checkable
class SamplingStudent(Student, Protocol):
    """A student that can also sample several answers per prompt: what measuring its solve
    rate on a question needs (``edge``). :class:`~dataloop.students.hf.HFStudent` is one."""

    def sample(self, prompts: list[str], n: int, temperature: float) -> list[list[str]]:
        """``n`` completions sampled at ``temperature`` for each prompt, in prompt order."""
        ...
