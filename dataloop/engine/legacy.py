"""The settings the engine once took one by one as keyword arguments (``Engine(teacher, task,
shots=4, temperature=0.7)``): where each now lives, and how an old call is mapped onto
:class:`~dataloop.config.EngineConfig` and :class:`~dataloop.llm.base.Sampling`, with a
DeprecationWarning."""

from __future__ import annotations

from typing import Any

from dataloop.config import EngineConfig
from dataloop.deprecation import deprecated
from dataloop.llm.base import Sampling

SETTINGS = {
    "strategy_override": "config.strategy",
    "shots": "config.shots",
    "per_query": "config.per_query",
    "max_rounds": "config.max_rounds",
    "votes": "config.votes",
    "max_chars": "config.max_chars",
    "novelty": "config.novelty",
    "near_duplicates": "config.near_duplicates",
    "show_student_answer": "config.show_student_answer",
    "temperature": "sampling.temperature",
    "max_tokens": "sampling.max_tokens",
}
"""The keyword arguments (and attributes) the engine once took one by one -> where they are."""


def from_settings(
    config: EngineConfig | None, sampling: Sampling | None, settings: dict[str, Any]
) -> tuple[EngineConfig, Sampling]:
    """``config`` and ``sampling`` with the settings once passed as keyword arguments (the
    old constructor's ``strategy``, ``shots``, ``temperature`` ...) applied, with a
    DeprecationWarning; TypeError for a name the engine never took."""
    keys = {**SETTINGS, "strategy": "config.strategy"}
    del keys["strategy_override"]  # an attribute only
    unknown = sorted(set(settings) - set(keys))
    if unknown:
        raise TypeError(f"Engine() got an unexpected keyword argument {unknown[0]!r}")
    deprecated(
        f"Engine({', '.join(f'{k}=...' for k in settings)}) is deprecated: pass "
        "Engine(teacher, task, EngineConfig(...), sampling=Sampling(temperature=..., "
        "max_tokens=...))",
        stacklevel=3,
    )
    parts: dict[str, dict[str, Any]] = {"config": {}, "sampling": {}}
    for key, value in settings.items():
        part, field_name = keys[key].split(".")
        parts[part][field_name] = value
    # Unvalidated, as the settings were: the checks below (strategy, thresholds) still run.
    config = (config or EngineConfig()).model_copy(update=parts["config"])
    sampling = (sampling or Sampling()).model_copy(update=parts["sampling"])
    return config, sampling
