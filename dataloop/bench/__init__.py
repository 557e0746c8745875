"""Experiments: arms x seeds under one budget, registered in advance, with confidence intervals.

An experiment names a base run config, **arms** (a name plus config overrides: policy,
strategy, data source, ...), **seeds**, one **budget** every arm gets (teacher queries for arms
with a teacher, generated examples for the oracle) and, registered before its first run, a
**primary** comparison with its smallest effect of interest and an optional manipulation check.

    dataloop bench experiments/gap.yaml

- :mod:`dataloop.bench.spec`: the experiment file (definition only);
- :mod:`dataloop.bench.execute`: plan the runs, make the missing ones, record each finished run
  in the results file (``experiments/results/<name>.jsonl``, meant to be committed);
- :mod:`dataloop.bench.workers`: where runs are made, one process each: several at once on this
  machine, as Ray tasks, or from the commands ``--plan`` prints, by any scheduler;
- :mod:`dataloop.bench.lock`: the run lock that keeps two workers off one run;
- :mod:`dataloop.bench.results`: per-run records, statistics and the registered decision, all
  from the per-run records alone;
- :mod:`dataloop.bench.tables`: ``results.md``, ``results.json`` and ``curves.png``.
"""

from dataloop.bench.execute import (
    CellOutcome,
    plan_bench,
    planned_runs,
    read_run,
    recorded_results,
    run_bench,
    run_cell,
    select_runs,
)
from dataloop.bench.results import (
    ArmSummary,
    ComparisonRow,
    CurvePoint,
    Decision,
    ExperimentResult,
    PowerRow,
    RunResult,
    area,
    check_commits,
    curve,
    decide,
    power_rows,
    read_results,
    run_config_data,
    same_config,
    same_run,
    summarize,
)
from dataloop.bench.spec import (
    BUILTIN_ARMS,
    METRIC_NAMES,
    METRICS,
    Arm,
    BenchBudget,
    BenchError,
    Experiment,
    Manipulation,
    Primary,
    base_config,
    examples_budget,
    load_experiment,
    run_config,
)
from dataloop.bench.tables import markdown, write_results

__all__ = [
    "BUILTIN_ARMS",
    "METRICS",
    "METRIC_NAMES",
    "Arm",
    "ArmSummary",
    "BenchBudget",
    "BenchError",
    "CellOutcome",
    "ComparisonRow",
    "CurvePoint",
    "Decision",
    "Experiment",
    "ExperimentResult",
    "Manipulation",
    "PowerRow",
    "Primary",
    "RunResult",
    "area",
    "base_config",
    "check_commits",
    "curve",
    "decide",
    "examples_budget",
    "load_experiment",
    "markdown",
    "plan_bench",
    "planned_runs",
    "power_rows",
    "read_results",
    "read_run",
    "recorded_results",
    "run_bench",
    "run_cell",
    "run_config",
    "run_config_data",
    "same_config",
    "same_run",
    "select_runs",
    "summarize",
    "write_results",
]
