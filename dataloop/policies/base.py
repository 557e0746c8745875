"""The policy contract: read an Observation, return a Plan.

Write your own by subclassing :class:`Policy` (``plan(obs) -> Plan``, or ``async aplan`` when
the decision itself awaits something, like a teacher LLM) or by passing any function with that
signature; name it in YAML as ``path/to/file.py:MyPolicy`` or ``my_module:MyPolicy``.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import ClassVar, TypeVar, cast, get_args

from dataloop.deprecation import deprecated
from dataloop.schema import GenerationRequest, Observation, Plan, Structure

PolicyFunction = Callable[[Observation], Plan] | Callable[[Observation], Awaitable[Plan]]
"""A plain (or ``async``) function ``obs -> Plan`` used as a policy."""

STRUCTURES: tuple[str, ...] = get_args(Structure)
"""The observation structures (``env.structure``), from the least to the most the teacher sees:
``open-ended``, ``skill-list``, ``skill-tree``."""

_Key = TypeVar("_Key", bound=Hashable)


class Policy(ABC):
    """Decides, each iteration, how many examples of which skill to generate, and how.

    ``examples_per_iteration`` is the iteration's budget of examples (``policy.
    examples_per_iteration`` in a config); ``strategy`` the generation strategy a request names
    unless the policy chooses one itself.
    """

    name: str = "custom"
    uses_teacher: ClassVar[bool] = False
    """Whether the policy asks the teacher LLM itself (``llm-planner`` does). A class that
    sets it takes the run's :class:`~dataloop.llm.teacher.Teacher` (client, prompt kind,
    templates and seed) as its first constructor argument, ``teacher``; ``make_policy`` passes
    it."""
    uses_seed: ClassVar[bool] = False
    """Whether the policy draws at random. A class that sets it takes the run's seed
    (``seed`` in a config) as its ``seed`` keyword, which ``make_policy`` passes (unless
    ``policy.options`` set one), so that its draws differ between the seeds of an experiment
    and repeat for one seed."""
    structures: ClassVar[frozenset[str]] = frozenset(STRUCTURES)
    """The observation structures (``env.structure``) the policy can plan for: a policy that
    reads per-skill accuracy cannot plan from an ``open-ended`` observation, one that reads the
    skill tree needs ``skill-tree``. Default: all; see
    :func:`~dataloop.policies.registry.check_structure`."""
    observes_loss: ClassVar[bool] = False
    """Whether the policy reads the student's loss on each seed example
    (``Observation.losses``): a run then has the environment compute it at every observation
    (one forward pass over the seed set), and the student must have
    :meth:`~dataloop.students.base.LossStudent.losses`. Other policies pay nothing for it."""
    needs_levels: ClassVar[bool] = False
    """Whether the policy plans by the task's difficulty levels (``edge``): a run of a task
    that declares none is refused before it starts
    (:func:`~dataloop.policies.edge.check_levels`)."""

    def __init__(self, examples_per_iteration: int = 240, strategy: str = "new-question") -> None:
        if examples_per_iteration < 0:
            raise ValueError("examples_per_iteration must be >= 0")
        self.examples_per_iteration = examples_per_iteration
        self.strategy = strategy

    @abstractmethod
    def plan(self, obs: Observation) -> Plan:
        """The generation plan for the next iteration."""

    async def aplan(self, obs: Observation) -> Plan:
        """The plan, awaited: the Loop calls this. Override it when deciding awaits I/O."""
        return self.plan(obs)

    def requests_for(
        self, allocation: dict[str, int], strategy: str | None = None
    ) -> list[GenerationRequest]:
        """One request per skill with a positive count in ``allocation`` (skill -> examples),
        all by ``strategy`` (default: the policy's own); see :func:`allocate`."""
        return [
            GenerationRequest(skill=skill, strategy=strategy or self.strategy, count=count)
            for skill, count in allocation.items()
            if count > 0
        ]

    def _requests(
        self, allocation: dict[str, int], strategy: str | None = None
    ) -> list[GenerationRequest]:
        """Deprecated alias of :meth:`requests_for` (its name until 0.1.0's redesign, which
        earlier docs told users to call); removed in 0.3.0."""
        deprecated("Policy._requests is deprecated; call Policy.requests_for")
        return self.requests_for(allocation, strategy)


def allocate(total: int, weights: Mapping[_Key, float], floor: float = 0.0) -> dict[_Key, int]:
    """Split ``total`` in proportion to ``weights``; the parts are integers that sum to ``total``.

    With a ``floor``, every key first gets ``int(total * floor)`` (at most an equal share), and
    the rest is split by weight. Largest-remainder rounding; ties go to the key listed first.
    All-zero weights split evenly.
    """
    if not weights:
        return {}
    floor_each = min(int(total * floor), total // len(weights))
    rest = total - floor_each * len(weights)
    mass = sum(weights.values())
    if mass <= 0:
        weights, mass = {k: 1.0 for k in weights}, float(len(weights))
    exact = {k: rest * w / mass for k, w in weights.items()}
    parts = {k: int(v) for k, v in exact.items()}
    order = sorted(weights, key=lambda k: exact[k] - parts[k], reverse=True)
    for k in order[: rest - sum(parts.values())]:
        parts[k] += 1
    return {k: floor_each + part for k, part in parts.items()}


def check_fraction(name: str, value: float) -> float:
    """``value`` if it lies in [0, 1]; raises ValueError naming the option otherwise."""
    if not 0 <= value <= 1:
        raise ValueError(f"{name} must be between 0 and 1")
    return value


class FunctionPolicy(Policy):
    """Wraps a plain function ``obs -> Plan``; an ``async def`` function is awaited."""

    def __init__(self, fn: PolicyFunction) -> None:
        super().__init__()
        self.fn = fn
        self.name = getattr(fn, "__name__", "function")

    def plan(self, obs: Observation) -> Plan:
        if inspect.iscoroutinefunction(self.fn):
            raise TypeError(f"policy '{self.name}' is async: the Loop awaits it through aplan()")
        return cast(Plan, self.fn(obs))

    async def aplan(self, obs: Observation) -> Plan:
        result = self.fn(obs)
        return await result if inspect.isawaitable(result) else result


def as_policy(policy: Policy | PolicyFunction) -> Policy:
    """Accept a Policy or a plain (or async) function ``obs -> Plan``."""
    return policy if isinstance(policy, Policy) else FunctionPolicy(policy)
