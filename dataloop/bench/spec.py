"""An experiment's definition: base config, arms, seeds, one budget, and what it registers in
advance (hypothesis, primary comparison, smallest effect of interest, manipulation check).

Definition only: nothing here runs anything (:mod:`dataloop.bench.execute` does) or reads a
result (:mod:`dataloop.bench.results`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from dataloop.config import LoopConfig, apply_overrides, parse_yaml, validate_config
from dataloop.errors import ConfigError, DataloopError

BUILTIN_ARMS: dict[str, dict[str, Any]] = {
    "seed-only": {"engine.source": "none"},
    "uniform": {"policy.name": "uniform"},
    "weakest-skills": {"policy.name": "weakest-skills"},
    "llm2llm": {"policy.name": "llm2llm"},
    "oracle": {"engine.source": "oracle"},
}
"""Arms every experiment can name: the seed-only floor, the teacher policies, and the oracle
data source (the task's own sampler, not a teacher; allocation from the base config's policy
unless the arm sets ``policy.name``)."""

Metric = Literal["final", "test", "auc"]
METRICS: tuple[Metric, ...] = ("final", "test", "auc")
METRIC_NAMES = {
    "final": "final mean validation accuracy",
    "test": "mean test accuracy",
    "auc": "area under accuracy vs budget spent",
}


class BenchError(DataloopError):
    """An experiment file is invalid, or its run folders do not match it."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class Arm(_Section):
    """One treatment: a name and what it changes in the base config."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    """Shown in the tables and used as the arm's folder name."""
    use: str | None = None
    """A built-in arm to start from (seed-only, uniform, weakest-skills, llm2llm, oracle);
    default: the arm's own name when that is a built-in, else nothing."""
    set: dict[str, Any] = Field(default_factory=dict)
    """Dotted config overrides applied after the built-in's, e.g. ``{policy.name: uniform}``."""

    def overrides(self) -> dict[str, Any]:
        """The built-in arm's overrides, then this arm's own."""
        base = self.use or (self.name if self.name in BUILTIN_ARMS else None)
        if base is not None and base not in BUILTIN_ARMS:
            known = ", ".join(BUILTIN_ARMS)
            raise BenchError(f"arm '{self.name}': unknown built-in arm '{base}'; known: {known}")
        return {**(BUILTIN_ARMS[base] if base else {}), **self.set}


class BenchBudget(_Section):
    """The one budget every arm of an experiment gets, per run."""

    queries: int = Field(ge=1)
    """Teacher queries per run (``teacher.max_queries`` of arms with a teacher)."""
    examples: int | None = Field(None, ge=1)
    """Examples per run for the oracle (``engine.max_examples``); default: what the base
    config asks for in all, ``iterations x policy.examples_per_iteration``."""


class Primary(_Section):
    """The one comparison an experiment is registered to decide, and how it decides.

    The decision rule, on the 95 % paired t interval of ``arm - baseline`` over seeds:
    **refuted** when its upper end lies below ``smallest_effect`` (an effect as large as the
    smallest of interest is excluded; this includes a real but smaller effect), else
    **supported** when its lower end lies above 0, else **inconclusive**.
    """

    arm: str
    baseline: str
    metric: Metric = "test"
    """The primary metric (default: mean test accuracy of the final student)."""
    smallest_effect: float = Field(gt=0, le=1)
    """The smallest difference of interest, as a fraction (0.03 = 3 accuracy points)."""


class Manipulation(_Section):
    """A manipulation check: the share of each arm's accepted data that went where the
    experiment's premise says targeting should send it (reported per arm, not tested)."""

    description: str
    skills: list[str] = Field(default_factory=list)
    """Skills whose accepted examples count as on target."""
    subskills: dict[str, list[str]] = Field(default_factory=dict)
    """skill -> the task's subskills whose accepted examples count as on target."""


class Experiment(_Section):
    """Arms x seeds under one budget."""

    name: str | None = None
    """Default output folder name (``runs/<name>``); default: the file's stem."""
    hypothesis: str = ""
    """What the experiment tests, stated before its first run."""
    config: Path | None = None
    """Base run config (YAML), relative to the experiment file."""
    base: dict[str, Any] = Field(default_factory=dict)
    """Config fields set on top of ``config`` for every arm (nested, as in a run config)."""
    seeds: list[int] = Field(min_length=1)
    """Run seeds: each arm runs once per seed; runs of one seed share splits and student
    initialisation, so comparisons are paired by seed."""
    budget: BenchBudget
    arms: list[Arm] = Field(min_length=1)
    baselines: list[str] = Field(default_factory=list)
    """Arms every other arm is compared with, seed by seed (paired differences); with a
    ``primary`` comparison these comparisons are exploratory."""
    primary: Primary | None = None
    """The registered comparison; ``results.md`` gives a verdict for it alone."""
    manipulation: Manipulation | None = None
    results: Path | None = None
    """The per-run results file (JSON lines, meant to be committed), relative to the
    experiment file; default ``results/<name>.jsonl`` beside it. Runs it holds are not run
    again, on this machine or another."""
    code: str | None = None
    """The commit (7 to 40 hex digits) its runs are made at, as its registration names it:
    bench makes none of its runs from other code (another commit, or a modified tree), so
    every run of a registered experiment has one code identity wherever it is continued."""

    @field_validator("code", mode="before")
    @classmethod
    def _a_commit(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError(
                f"YAML read it as the number {value}: quote the commit as written ('...')"
            )
        if isinstance(value, str) and not re.fullmatch(r"[0-9a-f]{7,40}", value):
            raise ValueError(
                f"expected a commit, 7 to 40 hex digits (git rev-parse), got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Experiment:
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            raise ValueError(f"arm names must be distinct, got {names}")
        unknown = [b for b in self.baselines if b not in names]
        if self.primary is not None:
            unknown += [a for a in (self.primary.arm, self.primary.baseline) if a not in names]
        if unknown:
            raise ValueError(f"{unknown} are not arms; arms: {', '.join(names)}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct, got {self.seeds}")
        return self

    def arm(self, name: str) -> Arm:
        """The arm called ``name``."""
        return next(a for a in self.arms if a.name == name)


def load_experiment(path: Path) -> tuple[Experiment, LoopConfig]:
    """Read an experiment file and resolve its base config (every error is one line)."""
    try:
        data = parse_yaml(path.read_text(), origin=str(path)) or {}
    except OSError as exc:
        raise BenchError(f"cannot read experiment {path}: {exc.strerror}") from None
    except ConfigError as exc:
        raise BenchError(str(exc)) from None
    if not isinstance(data, dict):
        raise BenchError(f"{path}: the top level must be a mapping (seeds, budget, arms, ...)")
    try:
        experiment = Experiment.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "experiment"
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        msg = msg.removeprefix("Value error, ")
        raise BenchError(f"experiment field '{field}': {msg} (in {path})") from None
    if experiment.config is not None and not experiment.config.is_absolute():
        experiment.config = path.parent / experiment.config
    if experiment.name is None:
        experiment.name = path.stem
    if experiment.results is None:
        experiment.results = Path("results") / f"{experiment.name}.jsonl"
    if not experiment.results.is_absolute():
        experiment.results = path.parent / experiment.results
    return experiment, base_config(experiment)


def base_config(experiment: Experiment) -> LoopConfig:
    """The config every arm starts from: ``config`` (if any) with ``base`` on top."""
    data: dict[str, Any] = {}
    if experiment.config is not None:
        try:
            data = parse_yaml(experiment.config.read_text(), origin=str(experiment.config)) or {}
        except OSError as exc:
            raise BenchError(
                f"experiment field 'config': cannot read {experiment.config}: {exc.strerror}"
            ) from None
        except ConfigError as exc:
            raise BenchError(str(exc)) from None
    return validate_config(_merge(data, experiment.base), origin="experiment base")


def _merge(into: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(into)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def examples_budget(experiment: Experiment, base: LoopConfig) -> int:
    """Examples the oracle may draw per run."""
    if experiment.budget.examples is not None:
        return experiment.budget.examples
    return base.iterations * base.policy.examples_per_iteration


def run_config(
    experiment: Experiment, base: LoopConfig, arm: Arm, seed: int, out: Path
) -> LoopConfig:
    """The full config of one (arm, seed) run: base, the arm's overrides, seed and budget."""
    # Only what the experiment set is carried over, so a policy's presets (llm2llm retrains
    # from the base model) apply to the arm that names it unless the experiment says otherwise.
    data = base.model_dump(mode="json", exclude_unset=True)
    try:
        data = apply_overrides(data, arm.overrides())
        config = validate_config(data, origin=f"arm '{arm.name}'")
    except ConfigError as exc:
        raise BenchError(f"arm '{arm.name}': {exc}") from None
    config.seed = seed
    config.runs_dir = out / arm.name
    config.name = f"seed-{seed}"
    # The experiment's budget wins over anything an arm or the base config says.
    config.teacher.max_queries = experiment.budget.queries
    config.engine.max_examples = examples_budget(experiment, base)
    return config
