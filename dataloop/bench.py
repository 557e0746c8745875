"""Experiments: arms x seeds under one budget, with confidence intervals.

An experiment names a base run config, **arms** (a name plus config overrides: policy,
strategy, data source, ...), **seeds**, and one **budget** every arm gets: teacher queries for
arms with a teacher, generated examples for the oracle. Every (arm, seed) is an ordinary run
folder, ``OUT/<arm>/seed-<seed>``, so ``dataloop resume``, ``report`` and ``export`` work on
each; running the experiment again skips finished runs and resumes unfinished ones.

    dataloop bench experiments/policies.yaml

Results: ``results.json`` (every run's curve and final numbers, per-arm statistics, paired
comparisons), ``results.md`` (the tables) and ``curves.png`` (mean validation accuracy against
the share of the budget spent, mean over seeds with a 95 % band).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dataloop.atomic import write_text
from dataloop.config import (
    LoopConfig,
    apply_overrides,
    load_config,
    parse_yaml,
    validate_config,
)
from dataloop.errors import ConfigError, DataloopError
from dataloop.runs import RunDir
from dataloop.schema import SCHEMA_VERSION, HistoryEntry
from dataloop.stats import Estimate, PairedDifference, mean_ci, paired

if TYPE_CHECKING:
    from dataloop.display import Display

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

METRICS = ("final", "test", "auc")
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


class Experiment(_Section):
    """Arms x seeds under one budget."""

    name: str | None = None
    """Default output folder name (``runs/<name>``); default: the file's stem."""
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
    """Arms every other arm is compared with, seed by seed (paired differences)."""

    @model_validator(mode="after")
    def _consistent(self) -> Experiment:
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            raise ValueError(f"arm names must be distinct, got {names}")
        unknown = [b for b in self.baselines if b not in names]
        if unknown:
            raise ValueError(f"baselines {unknown} are not arms; arms: {', '.join(names)}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct, got {self.seeds}")
        return self


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
        raise BenchError(f"experiment field '{field}': {msg} (in {path})") from None
    if experiment.config is not None and not experiment.config.is_absolute():
        experiment.config = path.parent / experiment.config
    if experiment.name is None:
        experiment.name = path.stem
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


# results


class CurvePoint(BaseModel):
    """The student after one iteration and what had been spent by then."""

    iteration: int
    queries: int
    """Cumulative teacher queries."""
    examples: int
    """Cumulative accepted examples."""
    budget_spent: float
    """Share of the run's budget spent (0..1): queries for a teacher, examples for the oracle,
    iterations for seed-only."""
    mean_accuracy: float
    accuracy: dict[str, float] = Field(default_factory=dict)


class RunResult(BaseModel):
    """One finished (arm, seed) run."""

    arm: str
    seed: int
    run: str
    """The run folder."""
    points: list[CurvePoint]
    final: float
    """Mean validation accuracy after the last iteration."""
    test: float
    """Mean test accuracy of the final student."""
    auc: float
    """Area under mean validation accuracy vs budget spent, on [0, 1] (flat after the last
    point): a curve that rises earlier, on less budget, scores higher."""
    seconds: float


class ArmSummary(BaseModel):
    """An arm's statistics over its seeds."""

    arm: str
    runs: int
    iterations: float
    queries: float
    examples: float
    final: Estimate
    test: Estimate
    auc: Estimate


class ComparisonRow(BaseModel):
    """One arm against one baseline on one metric, paired by seed."""

    arm: str
    baseline: str
    metric: str
    result: PairedDifference


class ExperimentResult(BaseModel):
    """Everything ``results.json`` holds."""

    schema_version: int = SCHEMA_VERSION
    name: str
    seeds: list[int]
    budget: BenchBudget
    examples_budget: int
    runs: list[RunResult]
    arms: list[ArmSummary]
    comparisons: list[ComparisonRow]
    pending: list[str] = Field(default_factory=list)
    """Runs not finished yet (``arm/seed-N``); statistics use the finished ones only."""


def _share(config: LoopConfig, entry_queries: int, entry_examples: int, iteration: int) -> float:
    if config.engine.source == "teacher":
        limit = config.teacher.max_queries or 1
        return min(1.0, entry_queries / limit)
    if config.engine.source == "oracle":
        return min(1.0, entry_examples / max(1, config.engine.max_examples or 1))
    return min(1.0, iteration / max(1, config.iterations))


def curve(config: LoopConfig, history: list[HistoryEntry]) -> list[CurvePoint]:
    """Learning-curve points of one run (queries and examples made cumulative)."""
    points, queries, examples = [], 0, 0
    for entry in history:
        queries += entry.queries
        examples += sum(entry.accepted.values())
        points.append(
            CurvePoint(
                iteration=entry.iteration,
                queries=queries,
                examples=examples,
                budget_spent=_share(config, queries, examples, entry.iteration),
                mean_accuracy=entry.mean_accuracy,
                accuracy=entry.accuracy,
            )
        )
    return points


def area(points: list[CurvePoint]) -> float:
    """Trapezoid area under accuracy vs budget spent on [0, 1], flat beyond the last point."""
    if not points:
        return 0.0
    xs = [p.budget_spent for p in points]
    ys = [p.mean_accuracy for p in points]
    total = xs[0] * ys[0]  # before the first point: its accuracy (the reset point is at 0)
    for i in range(1, len(points)):
        total += (xs[i] - xs[i - 1]) * (ys[i] + ys[i - 1]) / 2
    return total + (1.0 - xs[-1]) * ys[-1]


def _run_dir(out: Path, arm: Arm, seed: int) -> RunDir:
    return RunDir(out / arm.name / f"seed-{seed}")


def _finished(run: RunDir) -> bool:
    return run.exists("state.json") and run.read_state().done


def read_run(config: LoopConfig, arm: Arm, seed: int, run: RunDir) -> RunResult:
    """A finished run's curve and final numbers, from its folder."""
    metrics = run.read_metrics()
    points = curve(config, metrics.iterations)
    test = metrics.test or {}
    timing = run.path / "bench-seconds.txt"
    return RunResult(
        arm=arm.name,
        seed=seed,
        run=str(run.path),
        points=points,
        final=points[-1].mean_accuracy,
        test=sum(test.values()) / len(test) if test else 0.0,
        auc=area(points),
        seconds=float(timing.read_text()) if timing.is_file() else 0.0,
    )


def summarize(
    experiment: Experiment, runs: list[RunResult], examples: int, pending: list[str]
) -> ExperimentResult:
    """Per-arm means with 95 % intervals, and every arm against every baseline, by seed."""
    by_arm = {a.name: [r for r in runs if r.arm == a.name] for a in experiment.arms}
    summaries = []
    for arm, results in by_arm.items():
        if not results:
            continue
        summaries.append(
            ArmSummary(
                arm=arm,
                runs=len(results),
                iterations=sum(r.points[-1].iteration for r in results) / len(results),
                queries=sum(r.points[-1].queries for r in results) / len(results),
                examples=sum(r.points[-1].examples for r in results) / len(results),
                **{m: mean_ci([getattr(r, m) for r in results]) for m in METRICS},
            )
        )
    comparisons = []
    for baseline in experiment.baselines:
        base_runs = {r.seed: r for r in by_arm[baseline]}
        for arm, results in by_arm.items():
            if arm == baseline:
                continue
            pairs = [(r, base_runs[r.seed]) for r in results if r.seed in base_runs]
            if not pairs:
                continue
            for metric in METRICS:
                comparisons.append(
                    ComparisonRow(
                        arm=arm,
                        baseline=baseline,
                        metric=metric,
                        result=paired(
                            [getattr(a, metric) for a, _ in pairs],
                            [getattr(b, metric) for _, b in pairs],
                        ),
                    )
                )
    return ExperimentResult(
        name=experiment.name or "experiment",
        seeds=experiment.seeds,
        budget=experiment.budget,
        examples_budget=examples,
        runs=runs,
        arms=summaries,
        comparisons=comparisons,
        pending=pending,
    )


def run_bench(
    experiment: Experiment,
    base: LoopConfig,
    out: Path,
    *,
    run_missing: bool = True,
    on_run: Callable[[str, int, int, int, str], None] | None = None,
    display_factory: Callable[[], Display] | None = None,
) -> ExperimentResult:
    """Run every unfinished (arm, seed), seed by seed, then write the results.

    Seed-major order means an interrupted experiment has paired results for its first seeds.
    ``on_run(arm, seed, index, total, status)`` reports progress; ``display_factory()`` makes
    each run's :class:`~dataloop.display.Display`. With ``run_missing=False`` only the results
    of what is finished are written.
    """
    plan = [(seed, arm) for seed in experiment.seeds for arm in experiment.arms]
    configs = {(a.name, s): run_config(experiment, base, a, s, out) for s, a in plan}
    for (arm_name, seed), config in configs.items():
        folder = out / arm_name / f"seed-{seed}"
        saved = folder / "config.yaml"
        # Compared as configs, not text: a field added to dataloop since the run was made
        # reads back as its default, and the default leaves the run as it was.
        if saved.is_file() and _saved_config(saved) != config:
            raise BenchError(
                f"{saved} differs from what the experiment now asks for; delete {folder} to "
                "run it again, or restore the experiment file"
            )
    runs: list[RunResult] = []
    pending: list[str] = []
    for index, (seed, arm) in enumerate(plan, start=1):
        config = configs[(arm.name, seed)]
        run = _run_dir(out, arm, seed)
        if not _finished(run):
            if not run_missing:
                pending.append(f"{arm.name}/seed-{seed}")
                continue
            if on_run:
                on_run(arm.name, seed, index, len(plan), "running")
            _execute(config, run, display_factory)
        elif on_run:
            on_run(arm.name, seed, index, len(plan), "done before")
        runs.append(read_run(config, arm, seed, run))
    result = summarize(experiment, runs, examples_budget(experiment, base), pending)
    write_results(result, out)
    return result


def _saved_config(path: Path) -> LoopConfig | None:
    """The config a run folder was made with; None when it no longer reads as one."""
    try:
        return load_config(path)
    except ConfigError:
        return None


def _execute(
    config: LoopConfig, run: RunDir, display_factory: Callable[[], Display] | None
) -> None:
    """One run, from scratch or resumed; its wall time is added to ``bench-seconds.txt``."""
    from dataloop.assemble import open_loop  # torch + transformers: only when a run is due
    from dataloop.display import Display

    display = display_factory() if display_factory else Display(quiet=True)
    started = time.monotonic()
    with open_loop(config, display, run) as loop:
        loop.run()
    timing = run.path / "bench-seconds.txt"
    before = float(timing.read_text()) if timing.is_file() else 0.0
    write_text(timing, f"{before + time.monotonic() - started:.1f}\n")


# output


def _pct(e: Estimate) -> str:
    if e.n < 2:
        return f"{100 * e.mean:.1f}"
    return f"{100 * e.mean:.1f} [{100 * e.low:.1f}, {100 * e.high:.1f}]"


def markdown(result: ExperimentResult) -> str:
    """The per-arm table and the paired comparisons, as Markdown."""
    lines = [
        f"# {result.name}",
        "",
        f"Seeds {', '.join(map(str, result.seeds))}; budget per run: {result.budget.queries} "
        f"teacher queries (oracle: {result.examples_budget} examples). Mean over seeds with "
        "a 95 % t interval, in accuracy points.",
        "",
        "| arm | runs | iterations | queries | examples | final val. acc. | test acc. | AUC |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for a in result.arms:
        lines.append(
            f"| {a.arm} | {a.runs} | {a.iterations:.1f} | {a.queries:.0f} | {a.examples:.0f} | "
            f"{_pct(a.final)} | {_pct(a.test)} | {_pct(a.auc)} |"
        )
    if result.comparisons:
        lines += [
            "",
            "Paired by seed: arm minus baseline, mean difference with a 95 % t interval and a "
            "two-sided paired t-test; where the interval includes 0, no difference is shown.",
            "",
            "| arm | baseline | metric | difference | p | reading |",
            "|---|---|---|---:|---:|---|",
        ]
        for c in result.comparisons:
            p = "—" if c.result.p_value is None else f"{c.result.p_value:.3f}"
            lines.append(
                f"| {c.arm} | {c.baseline} | {METRIC_NAMES[c.metric]} | "
                f"{_signed(c.result.difference)} | {p} | {c.result.verdict} |"
            )
    if result.pending:
        lines += ["", f"Not finished yet: {', '.join(result.pending)}."]
    return "\n".join(lines) + "\n"


def _signed(e: Estimate) -> str:
    if e.n < 2:
        return f"{100 * e.mean:+.1f}"
    return f"{100 * e.mean:+.1f} [{100 * e.low:+.1f}, {100 * e.high:+.1f}]"


def write_results(result: ExperimentResult, out: Path) -> None:
    """``results.json``, ``results.md`` and ``curves.png`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "results.json", result.model_dump_json(indent=2))
    write_text(out / "results.md", markdown(result))
    if result.runs:
        plot(result, out / "curves.png")


def _band(runs: list[RunResult], grid: list[float]) -> tuple[list[float], list[float], list[float]]:
    """Mean and 95 % interval over runs of each run's curve, read at ``grid`` (linear between
    points, flat after the last)."""
    import numpy as np

    curves = []
    for r in runs:
        xs = [p.budget_spent for p in r.points]
        ys = [p.mean_accuracy for p in r.points]
        curves.append(np.interp(grid, xs, ys))
    means, lows, highs = [], [], []
    for column in np.array(curves).T:
        e = mean_ci([float(v) for v in column])
        means.append(e.mean)
        lows.append(e.low)
        highs.append(e.high)
    return means, lows, highs


def plot(result: ExperimentResult, path: Path) -> None:
    """Mean validation accuracy vs budget spent per arm, with a 95 % band over seeds."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a server
    import matplotlib.pyplot as plt

    grid = [i / 50 for i in range(51)]
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for summary in result.arms:
        runs = [r for r in result.runs if r.arm == summary.arm]
        means, lows, highs = _band(runs, grid)
        xs = [100 * g for g in grid]
        (line,) = ax.plot(xs, [100 * m for m in means], label=f"{summary.arm} (n={len(runs)})")
        ax.fill_between(
            xs,
            [100 * v for v in lows],
            [100 * v for v in highs],
            color=line.get_color(),
            alpha=0.15,
        )
    ax.set_xlabel(
        f"budget spent (% of {result.budget.queries} teacher queries; "
        f"oracle: of {result.examples_budget} examples)"
    )
    ax.set_ylabel("mean validation accuracy (%)")
    ax.set_title(f"{result.name}: mean over seeds, 95 % band")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
