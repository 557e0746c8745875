"""The data engine: strategies, filters, and the Engine that carries out a Plan."""

from dataloop.engine.engine import Candidate, Engine, GenerationResult
from dataloop.engine.strategies import (
    BUILTIN_STRATEGIES,
    LLM2LLM,
    AnswerAugmentation,
    NewQuestion,
    QuestionRephrase,
    resolve_strategy,
)
from dataloop.engine.strategy import Prompt, RequestContext, Strategy

__all__ = [
    "BUILTIN_STRATEGIES",
    "LLM2LLM",
    "AnswerAugmentation",
    "Candidate",
    "Engine",
    "GenerationResult",
    "NewQuestion",
    "Prompt",
    "QuestionRephrase",
    "RequestContext",
    "Strategy",
    "resolve_strategy",
]
