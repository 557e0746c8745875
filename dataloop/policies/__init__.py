"""Teacher policies: read an Observation, decide what data to make.

Built-ins (by name): ``uniform``, ``weakest-skills``, ``learning-progress``,
``dataenvgym-skill-list``, ``dataenvgym-open-ended``, ``dataenvgym-skill-tree``, ``llm2llm``,
``budget-ratio``, ``high-loss``, ``error-guided``, ``skill-tree``, ``llm-planner``, ``edge``.
Write your own by subclassing :class:`Policy` or by passing any function ``obs -> Plan``; name
it in YAML as ``path/to/file.py:MyPolicy`` or ``my_module:MyPolicy``.
"""

from dataloop.policies.active import HighLoss
from dataloop.policies.base import (
    STRUCTURES,
    FunctionPolicy,
    Policy,
    PolicyFunction,
    allocate,
    as_policy,
)
from dataloop.policies.builtin import (
    LLM2LLM,
    BudgetRatio,
    LearningProgress,
    Uniform,
    WeakestSkills,
)
from dataloop.policies.dataenvgym import DataEnvGymOpenEnded, DataEnvGymSkillList
from dataloop.policies.dataenvgym_tree import DataEnvGymSkillTree
from dataloop.policies.edge import DifficultyEdge, check_levels
from dataloop.policies.planner import InvalidPlan, LLMPlanner, check_plan, plan_schema
from dataloop.policies.registry import (
    BUILTIN_POLICIES,
    POLICIES,
    check_policy,
    check_structure,
    default_policy,
    make_policy,
    policies_for,
    resolve_policy,
)
from dataloop.policies.structured import ErrorGuided, SkillTreePolicy

__all__ = [
    "BUILTIN_POLICIES",
    "LLM2LLM",
    "POLICIES",
    "STRUCTURES",
    "BudgetRatio",
    "DataEnvGymOpenEnded",
    "DataEnvGymSkillList",
    "DataEnvGymSkillTree",
    "DifficultyEdge",
    "ErrorGuided",
    "FunctionPolicy",
    "HighLoss",
    "InvalidPlan",
    "LLMPlanner",
    "LearningProgress",
    "Policy",
    "PolicyFunction",
    "SkillTreePolicy",
    "Uniform",
    "WeakestSkills",
    "allocate",
    "as_policy",
    "check_levels",
    "check_plan",
    "check_policy",
    "check_structure",
    "default_policy",
    "make_policy",
    "plan_schema",
    "policies_for",
    "resolve_policy",
]
