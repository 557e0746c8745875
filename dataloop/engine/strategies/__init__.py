"""The built-in strategies, and the registry that finds a strategy by name or path."""

from __future__ import annotations

import inspect
from typing import Any

from dataloop.engine.strategies.answer_augmentation import AnswerAugmentation
from dataloop.engine.strategies.harder import Harder
from dataloop.engine.strategies.llm2llm import LLM2LLM
from dataloop.engine.strategies.new_question import NewQuestion
from dataloop.engine.strategies.question_rephrase import QuestionRephrase
from dataloop.engine.strategies.refine import Refine
from dataloop.engine.strategy import Strategy
from dataloop.errors import RegistryError
from dataloop.plugins import Registry

BUILTIN_STRATEGIES: dict[str, type[Strategy]] = {
    s.name: s for s in (NewQuestion, AnswerAugmentation, QuestionRephrase, LLM2LLM, Refine, Harder)
}

ENTRY_POINT_GROUP = "dataloop.strategies"
"""The entry-point group a package registers its strategies in (``name = "module:Class"``)."""


def _strategy_class(obj: Any, spec: str) -> type[Strategy] | None:
    if inspect.isclass(obj) and issubclass(obj, Strategy) and not inspect.isabstract(obj):
        return obj
    return None


STRATEGIES: Registry[type[Strategy]] = Registry(
    "strategy",
    ENTRY_POINT_GROUP,
    "a Strategy subclass with prompt() and read()",
    _strategy_class,
    BUILTIN_STRATEGIES,
)
"""Strategies by built-in name, entry point (``dataloop.strategies``) or
``path/to/file.py:Class``."""


def resolve_strategy(spec: str) -> type[Strategy]:
    """A strategy class by built-in name, entry point or ``path/to/file.py:Class``."""
    return STRATEGIES.resolve(spec)


def resolve_solver(spec: str) -> type[Strategy]:
    """The strategy ``spec`` names, refused unless it can answer a question on its own
    (:attr:`~dataloop.engine.strategy.Strategy.solves`): the self-consistency votes' solver."""
    found = resolve_strategy(spec)
    if not found.solves:
        raise RegistryError(
            f"strategy '{spec}' cannot answer a question (its class does not set solves); "
            "name one that can, e.g. answer-augmentation"
        )
    return found


__all__ = [
    "BUILTIN_STRATEGIES",
    "ENTRY_POINT_GROUP",
    "LLM2LLM",
    "STRATEGIES",
    "AnswerAugmentation",
    "Harder",
    "NewQuestion",
    "QuestionRephrase",
    "Refine",
    "resolve_solver",
    "resolve_strategy",
]
