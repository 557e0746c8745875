"""An experiment's results: per-run records, per-arm statistics, paired comparisons and the
registered decision (:mod:`dataloop.bench.tables` writes them out).

Everything here is computed from :class:`RunResult` records alone, which is what the committed
results file (``experiments/results/<name>.jsonl``) holds: the tables regenerate from it on any
machine, with no run folder at hand.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from dataloop.atomic import write_text
from dataloop.bench.lock import results_lock
from dataloop.bench.spec import METRICS, BenchBudget, BenchError, Experiment
from dataloop.config import LoopConfig, validate_config
from dataloop.errors import ConfigError
from dataloop.identity import CodeIdentity
from dataloop.schema import SCHEMA_VERSION, HistoryEntry
from dataloop.stats import Estimate, PairedDifference, mean_ci, paired, paired_sd, seeds_needed

Source = Literal["teacher", "oracle", "none"]


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
    """One finished (arm, seed) run: what the results file holds, one line each."""

    arm: str
    seed: int
    run: str
    """The run folder, relative to the experiment's output folder (``<arm>/seed-<seed>``)."""
    source: Source = "teacher"
    """Where the run's data came from (``engine.source``)."""
    config: dict[str, Any] = Field(default_factory=dict)
    """The run's resolved config without its folder (``runs_dir``), as a run folder's
    ``config.yaml`` holds it; compared as a config (:func:`same_config`), so a field dataloop
    adds later reads back at its default and leaves the record valid."""
    code: CodeIdentity = Field(default_factory=CodeIdentity)
    """The commit and package versions the run was made with (its first start)."""
    points: list[CurvePoint]
    final: float
    """Mean validation accuracy after the last iteration."""
    test: float
    """Mean test accuracy of the final student."""
    test_accuracy: dict[str, float] = Field(default_factory=dict)
    """Per-skill test accuracy of the final student."""
    auc: float
    """Area under mean validation accuracy vs budget spent, on [0, 1] (flat after the last
    point): a curve that rises earlier, on less budget, scores higher."""
    accepted: dict[str, int] = Field(default_factory=dict)
    """Accepted examples per skill, over all iterations."""
    subskills: dict[str, int] = Field(default_factory=dict)
    """Accepted examples per ``skill/subskill`` of the task's subskills (tasks with subskills;
    an example may fall in several)."""
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
    on_target: float | None = None
    """Mean share of accepted examples on the manipulation check's target (None without one,
    or for an arm with no data)."""


class ComparisonRow(BaseModel):
    """One arm against one baseline on one metric, paired by seed."""

    arm: str
    baseline: str
    metric: str
    result: PairedDifference


class Decision(BaseModel):
    """The registered primary comparison and its verdict under the registered rule."""

    arm: str
    baseline: str
    metric: str
    smallest_effect: float
    result: PairedDifference | None
    """None before any seed has both runs."""
    verdict: Literal["supported", "refuted", "inconclusive", "incomplete", "no data"]
    """``incomplete``: some registered run of the two arms is not finished; the rule is applied
    only to the whole set of seeds (no early verdict)."""


class ExperimentResult(BaseModel):
    """Everything ``results.json`` holds."""

    schema_version: int = SCHEMA_VERSION
    name: str
    hypothesis: str = ""
    seeds: list[int]
    budget: BenchBudget
    examples_budget: int
    runs: list[RunResult]
    arms: list[ArmSummary]
    comparisons: list[ComparisonRow]
    """With a registered primary comparison: the exploratory ones."""
    primary: Decision | None = None
    manipulation: str | None = None
    """What the manipulation check counts (its description)."""
    commits: dict[str, int] = Field(default_factory=dict)
    """Runs per code label (commit, ``+dirty`` when modified)."""
    versions: dict[str, dict[str, int]] = Field(default_factory=dict)
    """Runs per version, for each package the runs were made with more than one version of."""
    pending: list[str] = Field(default_factory=list)
    """Runs not finished yet (``arm/seed-N``); statistics use the finished ones only."""


def run_config_data(config: LoopConfig) -> dict[str, Any]:
    """What a record keeps of a run's config: all of it but where the run is stored."""
    return config.model_dump(mode="json", exclude={"runs_dir"})


_HOW_NOT_WHAT: dict[str, Any] = {"runs_dir": True, "teacher": {"threads"}}
"""Config fields that say how a run was executed, not what it is: where its folder lives (an
experiment folder may move) and the teacher server's thread count (a worker sets it to its
share of the CPUs)."""


def same_run(made: LoopConfig, planned: LoopConfig) -> bool:
    """Whether a run made with ``made`` is the run ``planned`` asks for. Compared as configs,
    not text: a field added to dataloop since the run was made reads back as its default, and
    the default leaves the run as it was."""
    return made.model_dump(exclude=_HOW_NOT_WHAT) == planned.model_dump(exclude=_HOW_NOT_WHAT)


def same_config(record: RunResult, config: LoopConfig) -> bool:
    """Whether ``record`` was made with ``config`` (see :func:`same_run`)."""
    try:
        made = validate_config(dict(record.config), origin=f"{record.run} in the results file")
    except ConfigError:
        return False
    return same_run(made, config)


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


# the results file


def read_results(path: Path) -> list[RunResult]:
    """The per-run results in ``path`` (none if it does not exist); a damaged line is one
    error naming the file and line."""
    if not path.is_file():
        return []
    runs = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            runs.append(RunResult.model_validate_json(line))
        except ValidationError as exc:
            first = exc.errors()[0]
            raise BenchError(f"{path} line {number} is damaged: {first['msg']}") from None
    return runs


def write_results_file(path: Path, runs: list[RunResult]) -> None:
    """Store ``runs`` as JSON lines, ordered by arm and seed so that a diff shows what changed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ordered = sorted(runs, key=lambda r: (r.arm, r.seed))
    write_text(path, "".join(r.model_dump_json() + "\n" for r in ordered))


def record_result(path: Path, run: RunResult) -> None:
    """Add ``run`` to the results file (replacing a record of the same arm and seed), under the
    file's lock: workers that finish at once all keep their records."""
    with results_lock(path):
        kept = [r for r in read_results(path) if (r.arm, r.seed) != (run.arm, run.seed)]
        write_results_file(path, [*kept, run])


def drop_results(path: Path, arms: set[str]) -> None:
    """Remove the records of ``arms`` from the results file, under its lock."""
    with results_lock(path):
        runs = read_results(path)
        if any(r.arm in arms for r in runs):
            write_results_file(path, [r for r in runs if r.arm not in arms])


# statistics


def _on_target(experiment: Experiment, run: RunResult) -> float | None:
    check = experiment.manipulation
    total = sum(run.accepted.values())
    if check is None or total == 0:
        return None
    hits = sum(run.accepted.get(s, 0) for s in check.skills)
    hits += sum(
        run.subskills.get(f"{s}/{sub}", 0) for s, subs in check.subskills.items() for sub in subs
    )
    return hits / total


def _compare(a: list[RunResult], b: list[RunResult], metric: str) -> PairedDifference | None:
    by_seed = {r.seed: r for r in b}
    pairs = [(r, by_seed[r.seed]) for r in a if r.seed in by_seed]
    if not pairs:
        return None
    return paired([getattr(x, metric) for x, _ in pairs], [getattr(y, metric) for _, y in pairs])


def decide(result: PairedDifference | None, smallest_effect: float) -> str:
    """The registered decision rule (:class:`~dataloop.bench.spec.Primary`)."""
    if result is None or result.difference.n < 2:
        return "no data"
    d = result.difference
    if d.high < smallest_effect:
        return "refuted"
    if d.low > 0:
        return "supported"
    return "inconclusive"


def check_commits(runs: list[RunResult], allow_mixed: bool) -> dict[str, int]:
    """Runs per code label; raises BenchError when the runs were made by different code (or
    by a modified tree) unless ``allow_mixed``: a difference between arms must not be a
    difference between versions of dataloop."""
    labels = Counter(r.code.label for r in runs)
    if allow_mixed or len(labels) <= 1:
        return dict(labels)
    shown = ", ".join(f"{label} ({n} runs)" for label, n in labels.most_common())
    arms = sorted({r.arm for r in runs if r.code.label != labels.most_common(1)[0][0]})
    raise BenchError(
        f"the runs were made by different code: {shown}; rerun the odd ones at one commit "
        f"(--rerun {','.join(arms)}) or pass --allow-mixed-commits to pair them anyway"
    )


def mixed_versions(runs: list[RunResult]) -> dict[str, dict[str, int]]:
    """Runs per version of each recorded package (dataloop aside) that has more than one; and
    likewise per ``packages`` digest (all installed packages) and per ``cpu``, where recorded."""
    counts: dict[str, Counter[str]] = {}
    for run in runs:
        for name, version in run.code.versions.items():
            if name != "dataloop":
                counts.setdefault(name, Counter())[version] += 1
        for name, value in (("packages", run.code.packages), ("cpu", run.code.cpu)):
            if value:
                counts.setdefault(name, Counter())[value] += 1
    return {name: dict(sorted(c.items())) for name, c in counts.items() if len(c) > 1}


def summarize(
    experiment: Experiment,
    runs: list[RunResult],
    examples: int,
    pending: list[str],
    allow_mixed: bool = False,
) -> ExperimentResult:
    """Per-arm means with 95 % intervals, the registered decision, and every arm against every
    baseline by seed. AUC is compared only between arms of one data source: its x-axis is
    queries for a teacher, examples for the oracle and iterations for seed-only."""
    commits = check_commits(runs, allow_mixed)
    by_arm = {a.name: [r for r in runs if r.arm == a.name] for a in experiment.arms}
    summaries = []
    for arm, results in by_arm.items():
        if not results:
            continue
        shares = [s for r in results if (s := _on_target(experiment, r)) is not None]
        summaries.append(
            ArmSummary(
                arm=arm,
                runs=len(results),
                iterations=sum(r.points[-1].iteration for r in results) / len(results),
                queries=sum(r.points[-1].queries for r in results) / len(results),
                examples=sum(r.points[-1].examples for r in results) / len(results),
                on_target=sum(shares) / len(shares) if shares else None,
                **{m: mean_ci([getattr(r, m) for r in results]) for m in METRICS},
            )
        )
    primary = None
    if experiment.primary is not None:
        p = experiment.primary
        outcome = _compare(by_arm[p.arm], by_arm[p.baseline], p.metric)
        primary = Decision(
            arm=p.arm,
            baseline=p.baseline,
            metric=p.metric,
            smallest_effect=p.smallest_effect,
            result=outcome,
            verdict=decide(outcome, p.smallest_effect),  # type: ignore[arg-type]
        )
        waiting = [r for r in pending if r.split("/")[0] in (p.arm, p.baseline)]
        if waiting:  # one seed in is as undecided as seventeen minus one
            primary.verdict = "incomplete"
    comparisons = []
    for baseline in experiment.baselines:
        for arm, results in by_arm.items():
            if arm == baseline or not results or not by_arm[baseline]:
                continue
            same_source = results[0].source == by_arm[baseline][0].source
            for metric in METRICS:
                if metric == "auc" and not same_source:
                    continue
                outcome = _compare(results, by_arm[baseline], metric)
                if outcome is not None:
                    comparisons.append(
                        ComparisonRow(arm=arm, baseline=baseline, metric=metric, result=outcome)
                    )
    return ExperimentResult(
        name=experiment.name or "experiment",
        hypothesis=experiment.hypothesis,
        seeds=experiment.seeds,
        budget=experiment.budget,
        examples_budget=examples,
        runs=sorted(runs, key=lambda r: (r.seed, r.arm)),
        arms=summaries,
        comparisons=comparisons,
        primary=primary,
        manipulation=experiment.manipulation.description if experiment.manipulation else None,
        commits=commits,
        versions=mixed_versions(runs),
        pending=pending,
    )


class PowerRow(BaseModel):
    """Seeds needed for one comparison (``dataloop power``)."""

    comparison: str
    pairs: int
    """Seeds the SD was estimated from (0 when the SD was given)."""
    sd: float
    seeds: int


def power_rows(
    effect: float,
    *,
    sd: float | None = None,
    pilot: Path | None = None,
    baseline: str | None = None,
    metric: str = "test",
    alpha: float = 0.05,
    power: float = 0.8,
) -> list[PowerRow]:
    """Seeds a paired t-test needs to detect ``effect``: from a given ``sd``, or per arm from a
    pilot's results file, against ``baseline`` on ``metric``."""
    if metric not in METRICS:
        raise BenchError(f"unknown metric '{metric}'; known: {', '.join(METRICS)}")
    try:
        if sd is not None:
            return [
                PowerRow(
                    comparison="given SD",
                    pairs=0,
                    sd=sd,
                    seeds=seeds_needed(sd, effect, alpha, power),
                )
            ]
        if pilot is None or baseline is None:
            raise BenchError("give --sd, or --pilot RESULTS.jsonl with --baseline ARM")
        runs = read_results(pilot)
        base = {r.seed: r for r in runs if r.arm == baseline}
        if not base:
            raise BenchError(f"{pilot} has no run of arm '{baseline}'")
        rows = []
        for arm in sorted({r.arm for r in runs} - {baseline}):
            pairs = [(r, base[r.seed]) for r in runs if r.arm == arm and r.seed in base]
            if len(pairs) < 2:
                continue
            spread = paired_sd(
                [getattr(a, metric) for a, _ in pairs], [getattr(b, metric) for _, b in pairs]
            )
            if spread == 0:
                continue
            rows.append(
                PowerRow(
                    comparison=f"{arm} − {baseline}",
                    pairs=len(pairs),
                    sd=spread,
                    seeds=seeds_needed(spread, effect, alpha, power),
                )
            )
    except ValueError as exc:
        raise BenchError(str(exc)) from None
    if not rows:
        raise BenchError(f"{pilot} has no arm with two or more seeds paired with '{baseline}'")
    return rows
