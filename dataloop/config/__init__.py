"""Run configuration: typed, documented, loaded from YAML.

Every field has a default, so ``dataloop run --env arithmetic`` needs no file at all. Errors name
the field (``config field 'student.learning_rate': Input should be a valid number``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from dataloop.config.base import DuplicateKey, _Section, parse_yaml
from dataloop.config.engine import (
    Benchmark,
    DatasetsBenchmark,
    EngineConfig,
    FileBenchmark,
    HumanEvalBenchmark,
    JudgeConfig,
)
from dataloop.config.student import LoraSettings, StudentConfig, VLLMSettings
from dataloop.config.teacher import (
    _BACKENDS,
    AnyTeacherConfig,
    HTTPTeacherConfig,
    LlamaServerTeacherConfig,
    OpenAITeacherConfig,
    ServedTeacherConfig,
    TeacherBackend,
    TeacherConfig,
    VLLMOfflineTeacherConfig,
    VLLMTeacherConfig,
    teacher_config,
)
from dataloop.errors import ConfigError
from dataloop.redact import redact_url
from dataloop.schema import DEFAULT_POLICY


class EnvConfig(_Section):
    """Which task the student learns."""

    name: str = "arithmetic"
    """Built-in or entry-point name, or ``path/to/env.py[:Class]``."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments for the task's constructor (e.g. ``train_per_skill: 16``)."""
    discover_skills: bool = False
    """Before reset, have the teacher propose a few skills from a sample of the questions and
    label every example with one (DataEnvGym's skill discovery). The result is ``skills.json``
    in the run folder, read back by ``resume`` and ``export``; edit it and pass it to a new
    run as ``options.skills_file`` to change the skills. Needs a task with a ``skills_file``
    option (math, multiple_choice, code); its queries count against ``teacher.max_queries``."""
    max_skills: int = Field(6, ge=2, le=50)
    """Most skills discovery may propose (an ``other`` skill is added for unplaceable ones)."""
    structure: Literal["open-ended", "skill-list", "skill-tree"] = "skill-list"
    """How much structure the teacher's observation has (DataEnvGym's three teacher
    environments; docs/environments.md): ``open-ended``: mean accuracy and failed feedback
    probes, no per-skill numbers, plans may carry free-text guidance; ``skill-list``: per-skill
    accuracy; ``skill-tree``: per-skill accuracy and a tree of subskills the policy grows
    (explore) and budgets (exploit)."""
    feedback_per_skill: int = Field(0, ge=0)
    """Examples per skill in the feedback split: probes the student is scored on after every
    training round, shown to the teacher when it gets them wrong (``Observation.probes``),
    never trained on and kept out of generated data. Drawn fresh when the task can sample its
    own problems (arithmetic), else held out of the seed set (at most half of each skill's
    seeds). With ``structure: open-ended`` the default is 20."""
    probes_shown: int | None = Field(None, ge=0)
    """Failed probes an observation carries: all of them (None), or this many drawn at random,
    so that each skill's share of them still follows its failures."""

    @model_validator(mode="after")
    def _probes_for_open_ended(self) -> EnvConfig:
        # An open-ended teacher sees the student's errors on feedback probes: it needs some.
        if self.structure == "open-ended" and "feedback_per_skill" not in self.model_fields_set:
            self.feedback_per_skill = 20
        if self.structure == "open-ended" and self.feedback_per_skill == 0:
            raise ValueError(
                "structure open-ended shows the teacher failed feedback probes: set "
                "env.feedback_per_skill above 0"
            )
        return self


class PolicyConfig(_Section):
    """How the teacher decides what to generate."""

    name: str = Field(
        default_factory=lambda: DEFAULT_POLICY[EnvConfig.model_fields["structure"].default]
    )
    """A built-in policy (uniform, weakest-skills, learning-progress, dataenvgym-skill-list,
    dataenvgym-open-ended, dataenvgym-skill-tree, llm2llm, budget-ratio, high-loss,
    error-guided, skill-tree, llm-planner), an entry point in
    the group ``dataloop.policies``, or ``path/to/file.py:Name`` / ``module:Name`` naming a
    Policy subclass or a function ``obs -> Plan`` (see docs/policies.md). The default follows
    ``env.structure``: the built-in that declares itself the structure's default
    (``error-guided`` for open-ended, ``skill-tree`` for skill-tree, ``weakest-skills``
    otherwise)."""
    examples_per_iteration: int = Field(150, ge=0)
    """Examples the policy asks for in each iteration."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Extra keyword arguments for the policy's constructor, e.g. ``{floor: 0.1}`` for
    weakest-skills, ``{per_failure: 2}`` for llm2llm, ``{answer_augmentation_below: 17.6,
    rephrase_below: 30}`` for budget-ratio, ``{retries: 2, strategies: [new-question]}`` for
    llm-planner; each policy's options are listed in docs/policies.md."""


class LoopConfig(_Section):
    """A whole run: task, student, teacher, policy, engine and the loop around them."""

    name: str | None = None
    """Run name: the folder ``runs_dir/name`` (default: env name + timestamp)."""
    runs_dir: Path = Path("runs")
    """Where run folders are created."""
    iterations: int = Field(4, ge=0)
    """Generate-train-evaluate rounds after ``reset``."""
    target_accuracy: float | None = Field(None, gt=0, le=1)
    """Stop early once mean validation accuracy reaches this."""
    overlap: bool = False
    """Generate iteration k+1's data while the student trains on iteration k's: its plan is
    made from iteration k-1's observation, one iteration staler than without it
    (``HistoryEntry.planned_from`` records it). Refused with ``env.structure: skill-tree``;
    see docs/architecture.md, "Overlapping generation with training"."""
    seed: int = 0
    """Seed for the task's splits, the student's initialisation and sampling."""
    env: EnvConfig = Field(default_factory=EnvConfig)
    student: StudentConfig = Field(default_factory=StudentConfig)
    teacher: AnyTeacherConfig = Field(default_factory=LlamaServerTeacherConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)

    @model_validator(mode="after")
    def _paper_presets(self) -> LoopConfig:
        # Defaults a paper's policy implies, unless the user set the field; the dumped config
        # then states them, so resume agrees. llm2llm: LLM2LLM fine-tunes the base model afresh
        # every iteration (``--model_name_or_path {base_model}`` in its GSM8K/templates_gsm.py).
        # budget-ratio: the Balancing paper spends one teacher query per generated example.
        # Each structure's own rule policy, unless the user named one.
        # (Assigned only when it changes: an assignment marks the field as set by the user.)
        own = DEFAULT_POLICY[self.env.structure]
        if own != self.policy.name and "name" not in self.policy.model_fields_set:
            self.policy.name = own
        # DataEnvGym's skill-list and open-ended teachers show the student's failed feedback
        # probes: they need some.
        if self.policy.name in ("dataenvgym-skill-list", "dataenvgym-open-ended"):
            if "feedback_per_skill" not in self.env.model_fields_set:
                self.env.feedback_per_skill = 20
            if self.env.feedback_per_skill == 0:
                raise ValueError(
                    f"policy {self.policy.name} shows the teacher failed feedback probes: set "
                    "env.feedback_per_skill above 0"
                )
        if self.policy.name == "llm2llm" and "train_from" not in self.student.model_fields_set:
            self.student.train_from = "base"
        if self.policy.name == "budget-ratio" and "per_query" not in self.engine.model_fields_set:
            self.engine.per_query = 1
        return self


def _field_path(loc: tuple[int | str, ...], error_type: str) -> str:
    # pydantic puts the backend's tag after a teacher section's name ('teacher.vllm.model');
    # the user wrote 'teacher.model'. An unknown backend is reported at the section.
    parts = [
        str(part)
        for i, part in enumerate(loc)
        if not (i and loc[i - 1] in ("teacher", "endpoint") and part in _BACKENDS)
    ]
    if error_type == "teacher_backend":
        parts.append("backend")
    return ".".join(parts)


def validate_config(data: dict[str, Any], origin: str = "config") -> LoopConfig:
    """Build a LoopConfig from plain data; the first problem becomes a one-line ConfigError."""
    try:
        return LoopConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        msg = msg.removeprefix("Value error, ")
        raise ConfigError(
            f"config field '{_field_path(err['loc'], err['type'])}': {msg}{more} (in {origin})"
        ) from None


def load_config(path: Path | None, overrides: dict[str, Any] | None = None) -> LoopConfig:
    """Read a YAML run config, apply dotted overrides (``{"student.batch_size": 32}``).

    Without a ``path`` the overrides are applied to the defaults.
    """
    if path is None:
        return validate_config(apply_overrides({}, overrides or {}), origin="--set")
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    data = parse_yaml(text, str(path)) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of config fields")
    return validate_config(apply_overrides(data, overrides or {}), origin=str(path))


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``key.path=value`` pairs (``--set``) as dotted overrides; each value is read as a YAML
    scalar (``3``, ``true``, ``1e-3``, ``[a, b]``)."""
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set '{pair}': expected key.path=value")
        overrides[key] = parse_yaml(value, f"--set {key}")
    return overrides


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Set dotted keys in nested config data, creating sections as needed."""
    for dotted, value in overrides.items():
        node = data
        *parents, leaf = dotted.split(".")
        for depth, part in enumerate(parents):
            node = node.setdefault(part, {})
            if node is None:  # a YAML section left empty (``student:``)
                node = data_at(data, parents[:depth])[part] = {}
            if not isinstance(node, dict):
                where = ".".join(parents[: depth + 1])
                raise ConfigError(
                    f"config field '{where}': is not a section, cannot set '{dotted}'"
                )
        node[leaf] = value
    return data


def data_at(data: dict[str, Any], path: list[str]) -> dict[str, Any]:
    """The nested mapping at ``path`` inside config data."""
    for part in path:
        data = data[part]
    return data


def dump_config(config: LoopConfig) -> str:
    """The resolved config as YAML (what ``runs/<name>/config.yaml`` holds), with credentials
    in URLs redacted."""
    data = config.model_dump(mode="json")
    if isinstance(config.teacher, OpenAITeacherConfig):
        data["teacher"]["base_urls"] = [redact_url(u) for u in config.teacher.base_urls]
    judge = config.engine.judge
    if judge is not None and isinstance(judge.endpoint, OpenAITeacherConfig):
        urls = [redact_url(u) for u in judge.endpoint.base_urls]
        data["engine"]["judge"]["endpoint"]["base_urls"] = urls
    return yaml.safe_dump(data, sort_keys=False)


__all__ = [
    "AnyTeacherConfig",
    "Benchmark",
    "DatasetsBenchmark",
    "DuplicateKey",
    "EngineConfig",
    "EnvConfig",
    "FileBenchmark",
    "HTTPTeacherConfig",
    "HumanEvalBenchmark",
    "JudgeConfig",
    "LlamaServerTeacherConfig",
    "LoopConfig",
    "LoraSettings",
    "OpenAITeacherConfig",
    "PolicyConfig",
    "ServedTeacherConfig",
    "StudentConfig",
    "TeacherBackend",
    "TeacherConfig",
    "VLLMOfflineTeacherConfig",
    "VLLMSettings",
    "VLLMTeacherConfig",
    "apply_overrides",
    "data_at",
    "dump_config",
    "load_config",
    "parse_overrides",
    "parse_yaml",
    "teacher_config",
    "validate_config",
]
