"""The data engine: strategies, filters, and the Engine that carries out a Plan."""

import warnings
from typing import Any

from dataloop.engine.benchmarks import BenchmarkIndex, load_benchmarks
from dataloop.engine.engine import Candidate, Engine, GenerationResult
from dataloop.engine.judge import Judge, Score
from dataloop.engine.strategies import (
    BUILTIN_STRATEGIES,
    LLM2LLM,
    STRATEGIES,
    AnswerAugmentation,
    Harder,
    NewQuestion,
    QuestionRephrase,
    Refine,
    resolve_solver,
    resolve_strategy,
)
from dataloop.engine.strategy import Prompt, RequestContext, Strategy

__all__ = [
    "BUILTIN_STRATEGIES",
    "LLM2LLM",
    "STRATEGIES",
    "AnswerAugmentation",
    "BenchmarkIndex",
    "Candidate",
    "Engine",
    "GenerationResult",
    "Harder",
    "Judge",
    "NewQuestion",
    "Prompt",
    "QuestionRephrase",
    "Refine",
    "RequestContext",
    "Score",
    "Strategy",
    "load_benchmarks",
    "resolve_solver",
    "resolve_strategy",
]


def __getattr__(name: str) -> Any:
    # Deprecated (removed in 0.3.0): the templates moved to dataloop.llm with the one Teacher.
    if name == "Templates":
        warnings.warn(
            "dataloop.engine.Templates is deprecated; import Templates from dataloop.llm "
            "(removed in 0.3.0)",
            DeprecationWarning,
            stacklevel=2,
        )
        from dataloop.llm.templates import Templates

        return Templates
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
