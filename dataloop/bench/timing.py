"""How long an experiment's runs still to make will take, from the runs it has recorded: what
``dataloop bench`` prints as each run starts."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from dataloop.bench.results import RunResult, read_results
from dataloop.bench.spec import Experiment
from dataloop.bench.workers import Cell


def seconds_by_source(runs: Sequence[RunResult]) -> dict[str, list[float]]:
    """Per data source, the ``seconds`` of its runs that have a time (a record without one,
    0, is left out)."""
    by_source: dict[str, list[float]] = {}
    for run in runs:
        if run.seconds > 0:
            by_source.setdefault(run.source, []).append(run.seconds)
    return by_source


def time_left(records: Sequence[RunResult], cells: Sequence[Cell], jobs: int = 1) -> float | None:
    """Seconds that ``cells`` will take, each at the median recorded run of its data source
    (teacher, oracle, seed-only; at the median of all recorded runs for a source with none
    yet), shared among ``jobs`` workers; None while no run with a time is recorded."""
    by_source = seconds_by_source(records)
    if not by_source:
        return None
    overall = statistics.median(s for times in by_source.values() for s in times)
    medians = {source: statistics.median(times) for source, times in by_source.items()}
    total = sum(medians.get(config.engine.source, overall) for _, _, config in cells)
    return total / max(1, jobs)


def say_duration(seconds: float) -> str:
    """``3 h 5 min``, ``25 min``, ``under a minute``."""
    minutes = round(seconds / 60)
    if minutes < 1:
        return "under a minute"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def still_to_make(experiment: Experiment, planned: Sequence[Cell], jobs: int) -> str:
    """``; 57 runs to make, about 3 h 5 min at the median run so far``: the runs not recorded
    yet (the one starting among them), at :func:`time_left`."""
    assert experiment.results is not None, "load_experiment sets the results file"
    records = read_results(experiment.results)
    done = {(r.arm, r.seed) for r in records}
    left = [c for c in planned if (c[0].name, c[1]) not in done]
    seconds = time_left(records, left, jobs)
    about = "" if seconds is None else f", about {say_duration(seconds)} at the median run so far"
    return f"; {len(left)} run{'s' if len(left) != 1 else ''} to make{about}"
