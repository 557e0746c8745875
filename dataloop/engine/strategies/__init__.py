"""The built-in strategies, and the registry that finds a strategy by name or path."""

from __future__ import annotations

import inspect

from dataloop.engine.strategies.answer_augmentation import AnswerAugmentation
from dataloop.engine.strategies.harder import Harder
from dataloop.engine.strategies.llm2llm import LLM2LLM
from dataloop.engine.strategies.new_question import NewQuestion
from dataloop.engine.strategies.question_rephrase import QuestionRephrase
from dataloop.engine.strategies.refine import Refine
from dataloop.engine.strategy import Strategy
from dataloop.errors import RegistryError
from dataloop.plugins import is_reference, load_reference

BUILTIN_STRATEGIES: dict[str, type[Strategy]] = {
    s.name: s for s in (NewQuestion, AnswerAugmentation, QuestionRephrase, LLM2LLM, Refine, Harder)
}


def resolve_strategy(spec: str) -> type[Strategy]:
    """A strategy class by registered name or ``path/to/file.py:Class``."""
    if is_reference(spec):
        obj = load_reference(spec)
        if not (inspect.isclass(obj) and issubclass(obj, Strategy)) or inspect.isabstract(obj):
            raise RegistryError(f"'{spec}' is not a Strategy subclass with prompt() and read()")
        return obj
    if spec not in BUILTIN_STRATEGIES:
        known = ", ".join(BUILTIN_STRATEGIES)
        raise RegistryError(f"unknown strategy '{spec}'; known: {known} (or path/to/file.py:Class)")
    return BUILTIN_STRATEGIES[spec]


__all__ = [
    "BUILTIN_STRATEGIES",
    "LLM2LLM",
    "AnswerAugmentation",
    "Harder",
    "NewQuestion",
    "QuestionRephrase",
    "Refine",
    "resolve_strategy",
]
