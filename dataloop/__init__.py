"""dataloop: closed-loop synthetic data generation.

An environment trains and evaluates a student and reports its weak skills; a teacher — a
:class:`Policy` that writes a :class:`Plan` and an :class:`Engine` that carries it out with an
LLM — makes new training data aimed at them; the :class:`Loop` repeats.
"""

from dataloop.config import LoopConfig, load_config
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
    Observation,
    Plan,
    SkillInfo,
)

__all__ = [
    "DataloopError",
    "Engine",
    "Environment",
    "Example",
    "GenerationRequest",
    "Loop",
    "LoopConfig",
    "Observation",
    "Plan",
    "Policy",
    "SkillInfo",
    "Strategy",
    "TaskEnvironment",
    "Teacher",
    "load_config",
    "load_task",
]
