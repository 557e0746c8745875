"""Policies by name: the built-ins, an entry point (``dataloop.policies``), or user code named
``path/to/file.py:Name`` / ``module:Name``; and what a structure implies for them: the
structures each policy class declares it plans for
(:attr:`~dataloop.policies.base.Policy.structures`) and each structure's default
(:data:`dataloop.schema.DEFAULT_POLICY`)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, cast

from dataloop.errors import RegistryError
from dataloop.llm.teacher import Teacher
from dataloop.plugins import Registry, origin, raised
from dataloop.policies.active import HighLoss
from dataloop.policies.base import STRUCTURES, FunctionPolicy, Policy
from dataloop.policies.builtin import (
    LLM2LLM,
    BudgetRatio,
    LearningProgress,
    Uniform,
    WeakestSkills,
)
from dataloop.policies.dataenvgym import DataEnvGymOpenEnded, DataEnvGymSkillList
from dataloop.policies.dataenvgym_tree import DataEnvGymSkillTree
from dataloop.policies.edge import DifficultyEdge
from dataloop.policies.planner import LLMPlanner
from dataloop.policies.structured import ErrorGuided, SkillTreePolicy
from dataloop.schema import DEFAULT_POLICY

BUILTIN_POLICIES: dict[str, type[Policy]] = {
    p.name: p
    for p in (
        Uniform,
        WeakestSkills,
        LearningProgress,
        DataEnvGymSkillList,
        DataEnvGymOpenEnded,
        DataEnvGymSkillTree,
        LLM2LLM,
        BudgetRatio,
        HighLoss,
        ErrorGuided,
        SkillTreePolicy,
        LLMPlanner,
        DifficultyEdge,
    )
}

ENTRY_POINT_GROUP = "dataloop.policies"
"""The entry-point group a package registers its policies in (``name = "module:Class"``)."""

PolicySpec = type[Policy] | Callable[..., Any]
"""What a policy name resolves to: a Policy class or a plain function ``obs -> Plan``."""


def _policy(obj: Any, spec: str) -> PolicySpec | None:
    if inspect.isclass(obj):
        return obj if issubclass(obj, Policy) else None
    return cast(Callable[..., Any], obj) if callable(obj) else None


POLICIES: Registry[PolicySpec] = Registry(
    "policy",
    ENTRY_POINT_GROUP,
    "a Policy subclass or a function obs -> Plan",
    _policy,
    BUILTIN_POLICIES,
)
"""Policies by built-in name, entry point (``dataloop.policies``) or
``path/to/file.py:Name``."""

# What a structure shows that the one before it (in STRUCTURES) does not.
_SHOWS = {"skill-list": "per-skill accuracy", "skill-tree": "the skill tree"}


def resolve_policy(spec: str) -> PolicySpec:
    """The Policy class or plain function that ``spec`` names; raises RegistryError if none.

    Cheap (no client needed), so a run checks its policy name before any slow set-up.
    """
    return POLICIES.resolve(spec)


def default_policy(structure: str) -> str:
    """The built-in policy a config with ``env.structure: structure`` runs unless it names
    one (:data:`dataloop.schema.DEFAULT_POLICY`)."""
    try:
        return DEFAULT_POLICY[structure]
    except KeyError:
        raise RegistryError(
            f"unknown structure '{structure}'; known: {', '.join(DEFAULT_POLICY)}"
        ) from None


def policies_for(structure: str) -> list[str]:
    """The built-in policies that can plan from ``structure`` observations."""
    return [name for name, cls in BUILTIN_POLICIES.items() if structure in cls.structures]


def make_policy(
    spec: str, *, teacher: Teacher | None = None, run_seed: int = 0, **options: Any
) -> Policy:
    """A policy from a built-in name or ``path/to/file.py:Name`` (a Policy class or a function).

    ``options`` are the class's constructor keywords. A class that sets
    :attr:`~dataloop.policies.base.Policy.uses_teacher` (``llm-planner``) is also given the
    run's ``teacher``, as its ``teacher`` argument; one that sets
    :attr:`~dataloop.policies.base.Policy.uses_seed` is given ``run_seed`` as its ``seed``
    unless ``options`` set one; any other class gets neither.
    """
    found = resolve_policy(spec)
    if not inspect.isclass(found):
        return FunctionPolicy(found)
    cls = cast(type[Policy], found)
    if cls.uses_teacher:
        if teacher is None:
            raise RegistryError(f"policy '{spec}' asks the teacher LLM: pass teacher=Teacher(...)")
        options = {"teacher": teacher, **options}
    if cls.uses_seed:
        options = {"seed": run_seed, **options}
    try:
        return cls(**options)
    except (TypeError, ValueError) as exc:
        raise RegistryError(f"policy '{spec}': bad option: {exc}{_teacher_hint(cls)}") from exc
    except Exception as exc:
        raise RegistryError(f"policy {origin(cls)}: __init__ raised {raised(exc)}") from exc


_OLD_TEACHER_PARAMETERS = {"client", "teacher", "teacher_kind", "templates"}
"""What a policy that asked the teacher took before the redesign (0.1): it now declares
``uses_teacher`` and is given ``teacher``."""


def _teacher_hint(cls: type[Policy]) -> str:
    """For a class written to the old contract (it takes the client, the teacher's kind or its
    templates, and does not declare ``uses_teacher``): what to change."""
    if cls.uses_teacher:
        return ""
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return ""
    old = [
        p.name
        for p in parameters
        if p.name in _OLD_TEACHER_PARAMETERS and p.default is inspect.Parameter.empty
    ]
    if not old:
        return ""
    return (
        f" (it takes {', '.join(old)}: a policy that asks the teacher sets uses_teacher = True "
        "and is given teacher=Teacher(...); see docs/policies.md)"
    )


def check_policy(spec: str, **options: Any) -> None:
    """Raise RegistryError if ``make_policy(spec, **options)`` would fail, before a run starts.

    A policy that asks the teacher (``llm-planner``) cannot be built without one, so only its
    option names are checked; any other is built and dropped.
    """
    found = resolve_policy(spec)
    if not inspect.isclass(found):
        return
    if not cast(type[Policy], found).uses_teacher:
        make_policy(spec, **options)
        return
    try:
        inspect.signature(found).bind_partial(**options)
    except TypeError as exc:
        raise RegistryError(f"policy '{spec}': bad option: {exc}") from None


def check_structure(spec: str, structure: str) -> None:
    """Raise RegistryError if the policy ``spec`` cannot plan from ``structure`` observations
    (``env.structure``), naming what it needs and the built-ins that can.

    A class says what it can plan for in :attr:`~dataloop.policies.base.Policy.structures`;
    a plain function, or a class without the attribute, is taken to plan for all.
    """
    if structure not in STRUCTURES:
        raise RegistryError(f"unknown structure '{structure}'; known: {', '.join(STRUCTURES)}")
    found = resolve_policy(spec)
    supported = getattr(found, "structures", STRUCTURES) if inspect.isclass(found) else STRUCTURES
    if structure in supported:
        return
    able = ", ".join(policies_for(structure))
    article = "an" if structure[0] in "aeiou" else "a"
    least = min(supported, key=STRUCTURES.index, default=structure)
    if STRUCTURES.index(least) > STRUCTURES.index(structure):
        reason = f"needs {_SHOWS[least]}, which {article} {structure} observation does not show"
    else:
        reason = f"plans for {', '.join(sorted(supported, key=STRUCTURES.index))} only"
    raise RegistryError(f"policy '{spec}' {reason}; use one of: {able}")
