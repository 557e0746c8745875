"""dataloop: closed-loop synthetic data generation.

An environment trains and evaluates a student and reports its weak skills; a teacher — a
:class:`Policy` that writes a :class:`Plan` and an :class:`Engine` that carries it out with an
LLM — makes new training data aimed at them; the :class:`Loop` repeats. :func:`run` does all of
it from a config in one call.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataloop.config import LoopConfig, StudentConfig, load_config
from dataloop.engine import Engine, Strategy
from dataloop.environments import TaskEnvironment, load_task
from dataloop.errors import DataloopError
from dataloop.gym import Environment
from dataloop.llm.teacher import Teacher
from dataloop.loop import Loop
from dataloop.policies import Policy
from dataloop.schema import (
    Example,
    GenerationRequest,
    HistoryEntry,
    Observation,
    Plan,
    SkillInfo,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from dataloop.display import Display
    from dataloop.llm.client import OpenAIClient
    from dataloop.students.hf import HFStudent

# Loaded on first use, so that ``import dataloop`` stays instant: torch (the student) and the
# HTTP client load only where they are used.
_LAZY = {"HFStudent": "dataloop.students.hf", "OpenAIClient": "dataloop.llm.client"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dataloop' has no attribute '{name}'")


def run(
    config: LoopConfig | Mapping[str, Any] | str | Path, display: Display | None = None
) -> list[HistoryEntry]:
    """Run the whole loop a config describes and return its history.

    ``config`` is a :class:`LoopConfig`, the same fields as a dict
    (``{"env": {"name": "arithmetic"}, "iterations": 2}``) or the path of a YAML run config.
    Everything ``dataloop run`` does happens here (checks, run folder, teacher server, student),
    and everything is written to the run folder; the history has one
    :class:`~dataloop.schema.HistoryEntry` per observation, the reset's first. Nothing is shown
    unless a :class:`~dataloop.display.Display` is given. Errors are one-line
    :class:`DataloopError` subclasses.
    """
    from dataloop.assemble import run_loop  # the teacher servers and clients load only now

    return run_loop(config, display)


__all__ = [
    "DataloopError",
    "Engine",
    "Environment",
    "Example",
    "GenerationRequest",
    "HFStudent",
    "HistoryEntry",
    "Loop",
    "LoopConfig",
    "Observation",
    "OpenAIClient",
    "Plan",
    "Policy",
    "SkillInfo",
    "Strategy",
    "StudentConfig",
    "TaskEnvironment",
    "Teacher",
    "load_config",
    "load_task",
    "run",
]
