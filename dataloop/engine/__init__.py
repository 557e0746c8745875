"""The data engine: strategies, filters, and the Engine that carries out a Plan."""

from dataloop.engine.engine import Candidate, Engine, GenerationResult
from dataloop.engine.strategy import (
    BUILTIN_STRATEGIES,
    NewQuestion,
    Prompt,
    RequestContext,
    Strategy,
    Templates,
    resolve_strategy,
)

__all__ = [
    "BUILTIN_STRATEGIES",
    "Candidate",
    "Engine",
    "GenerationResult",
    "NewQuestion",
    "Prompt",
    "RequestContext",
    "Strategy",
    "Templates",
    "resolve_strategy",
]
