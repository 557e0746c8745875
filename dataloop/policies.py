"""Teacher policies: read an Observation, decide what data to make.

Write your own by subclassing :class:`Policy` (``plan(obs) -> Plan``) or by passing any callable
with that signature; name it in YAML as ``path/to/file.py:MyPolicy``.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from dataloop.errors import RegistryError
from dataloop.plugins import is_reference, load_reference
from dataloop.schema import GenerationRequest, Observation, Plan


class Policy(ABC):
    """Decides, each iteration, how many examples of which skill to generate, and how."""

    name: str = "custom"

    def __init__(self, examples_per_iteration: int = 240, strategy: str = "new-question") -> None:
        self.examples_per_iteration = examples_per_iteration
        self.strategy = strategy

    @abstractmethod
    def plan(self, obs: Observation) -> Plan:
        """The generation plan for the next iteration."""

    def _requests(self, allocation: dict[str, int]) -> list[GenerationRequest]:
        return [
            GenerationRequest(skill=skill, strategy=self.strategy, count=count)
            for skill, count in allocation.items()
            if count > 0
        ]


def allocate(total: int, weights: dict[str, float]) -> dict[str, int]:
    """Split ``total`` in proportion to ``weights``; the parts are integers that sum to ``total``.

    Largest-remainder rounding; ties go to the skill listed first.
    """
    if not weights:
        return {}
    mass = sum(weights.values())
    if mass <= 0:
        weights, mass = {k: 1.0 for k in weights}, float(len(weights))
    exact = {k: total * w / mass for k, w in weights.items()}
    parts = {k: int(v) for k, v in exact.items()}
    order = sorted(weights, key=lambda k: exact[k] - parts[k], reverse=True)
    for k in order[: total - sum(parts.values())]:
        parts[k] += 1
    return parts


class Uniform(Policy):
    """The same number of examples for every skill: the baseline."""

    name = "uniform"

    def plan(self, obs: Observation) -> Plan:
        allocation = allocate(self.examples_per_iteration, {s.name: 1.0 for s in obs.skills})
        return Plan(requests=self._requests(allocation), rationale="equal share per skill")


class WeakestSkills(Policy):
    """Examples in proportion to each skill's validation error, with a floor per skill.

    As a DataEnvGym skill-list teacher: the weaker the skill, the more data it gets; ``floor``
    (a fraction of the iteration's examples) keeps a nearly-solved skill from being forgotten.
    """

    name = "weakest-skills"

    def __init__(
        self, examples_per_iteration: int = 240, strategy: str = "new-question", floor: float = 0.05
    ) -> None:
        super().__init__(examples_per_iteration, strategy)
        if not 0 <= floor <= 1:
            raise ValueError("floor must be between 0 and 1")
        self.floor = floor

    def plan(self, obs: Observation) -> Plan:
        skills = [s.name for s in obs.skills]
        total = self.examples_per_iteration
        floor_each = min(int(total * self.floor), total // max(1, len(skills)))
        rest = total - floor_each * len(skills)
        errors = {s: 1.0 - obs.accuracy.get(s, 0.0) for s in skills}
        extra = allocate(rest, errors)
        allocation = {s: floor_each + extra[s] for s in skills}
        weakest = sorted(skills, key=lambda s: errors[s], reverse=True)[:3]
        worst = ", ".join(f"{s} {obs.accuracy.get(s, 0.0):.0%}" for s in weakest)
        return Plan(requests=self._requests(allocation), rationale=f"by error; weakest: {worst}")


class FunctionPolicy(Policy):
    """Wraps a plain function ``obs -> Plan``."""

    def __init__(self, fn: Callable[[Observation], Plan]) -> None:
        super().__init__()
        self.fn = fn
        self.name = getattr(fn, "__name__", "function")

    def plan(self, obs: Observation) -> Plan:
        return self.fn(obs)


BUILTIN_POLICIES: dict[str, type[Policy]] = {p.name: p for p in (Uniform, WeakestSkills)}


def make_policy(spec: str, **options: Any) -> Policy:
    """A policy from a built-in name or ``path/to/file.py:Name`` (a Policy class or a function)."""
    if is_reference(spec):
        obj = load_reference(spec)
        if inspect.isclass(obj) and issubclass(obj, Policy):
            cls: type[Policy] = obj
        elif callable(obj) and not inspect.isclass(obj):
            return FunctionPolicy(obj)
        else:
            raise RegistryError(f"'{spec}' is neither a Policy subclass nor a function obs -> Plan")
    elif spec in BUILTIN_POLICIES:
        cls = BUILTIN_POLICIES[spec]
    else:
        known = ", ".join(BUILTIN_POLICIES)
        raise RegistryError(f"unknown policy '{spec}'; known: {known} (or path/to/file.py:Class)")
    try:
        return cls(**options)
    except TypeError as exc:
        raise RegistryError(f"policy '{spec}': bad option: {exc}") from exc


def as_policy(policy: Policy | Callable[[Observation], Plan]) -> Policy:
    """Accept a Policy or a plain function."""
    return policy if isinstance(policy, Policy) else FunctionPolicy(policy)
