"""The data engine: strategies, filters, and the Engine that carries out a Plan."""

from dataloop.deprecation import moved_names
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


# The templates moved to dataloop.llm with the one Teacher.
__getattr__ = moved_names(__name__, {"Templates": "dataloop.llm"})
