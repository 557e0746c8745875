"""Running an experiment: plan its (arm, seed) runs, run the missing ones, record each finished
run in the results file, then summarise.

Every (arm, seed) is an ordinary run folder, ``OUT/<arm>/seed-<seed>``, so ``dataloop resume``,
``report`` and ``export`` work on each; running the experiment again skips finished runs and
resumes unfinished ones. A run recorded in the experiment's results file (committed, perhaps
made on another machine) is not run again.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from dataloop.atomic import write_text
from dataloop.bench.results import (
    ExperimentResult,
    RunResult,
    area,
    curve,
    read_results,
    run_config_data,
    same_config,
    summarize,
    write_results,
    write_results_file,
)
from dataloop.bench.spec import (
    Arm,
    BenchError,
    Experiment,
    examples_budget,
    run_config,
)
from dataloop.config import LoopConfig, load_config
from dataloop.environments import load_task
from dataloop.errors import ConfigError, DataloopError
from dataloop.identity import CodeIdentity
from dataloop.runs import RunDir

if TYPE_CHECKING:
    from dataloop.display import Display

ProgressFn = Callable[[str, int, int, int, str], None]


def planned_runs(
    experiment: Experiment, base: LoopConfig, out: Path
) -> list[tuple[Arm, int, LoopConfig]]:
    """Every (arm, seed, config) of the experiment, seed-major: an interrupted experiment has
    paired results for its first seeds."""
    return [
        (arm, seed, run_config(experiment, base, arm, seed, out))
        for seed in experiment.seeds
        for arm in experiment.arms
    ]


def _finished(run: RunDir) -> bool:
    return run.exists("state.json") and run.read_state().done


def _subskill_counts(config: LoopConfig, run: RunDir) -> dict[str, int]:
    task = load_task(config.env.name, seed=config.seed, options=config.env.options)
    counts: dict[str, int] = {}
    for k in run.iterations_done():
        for example in run.accepted(k):
            for sub in task.subskills(example.skill):
                if task.in_subskill(example, sub.name):
                    key = f"{example.skill}/{sub.name}"
                    counts[key] = counts.get(key, 0) + 1
    return counts


def read_run(config: LoopConfig, arm: Arm, seed: int, run: RunDir) -> RunResult:
    """A finished run's record, from its folder."""
    metrics = run.read_metrics()
    points = curve(config, metrics.iterations)
    test = metrics.test or {}
    timing = run.path / "bench-seconds.txt"
    accepted: dict[str, int] = {}
    for entry in metrics.iterations:
        for skill, n in entry.accepted.items():
            accepted[skill] = accepted.get(skill, 0) + n
    starts = run.environments() if run.exists("environment.jsonl") else []
    return RunResult(
        arm=arm.name,
        seed=seed,
        run=f"{arm.name}/seed-{seed}",
        source=config.engine.source,
        config=run_config_data(config),
        code=starts[0] if starts else CodeIdentity(),
        points=points,
        final=points[-1].mean_accuracy,
        test=sum(test.values()) / len(test) if test else 0.0,
        test_accuracy=test,
        auc=area(points),
        accepted=accepted,
        subskills=_subskill_counts(config, run),
        seconds=float(timing.read_text()) if timing.is_file() else 0.0,
    )


def _saved_config(path: Path) -> LoopConfig | None:
    """The config a run folder was made with; None when it no longer reads as one."""
    try:
        return load_config(path)
    except ConfigError:
        return None


def _check_folders(planned: Iterable[tuple[Arm, int, LoopConfig]], out: Path) -> None:
    for arm, seed, config in planned:
        folder = out / arm.name / f"seed-{seed}"
        saved = folder / "config.yaml"
        # Compared as configs, not text: a field added to dataloop since the run was made
        # reads back as its default, and the default leaves the run as it was. Where the
        # folder lives is not part of the run (an experiment folder may be moved).
        made = _saved_config(saved) if saved.is_file() else None
        if made is not None:
            made.runs_dir = config.runs_dir
        if saved.is_file() and made != config:
            raise BenchError(
                f"{saved} differs from what the experiment now asks for; delete {folder} to "
                "run it again, or restore the experiment file"
            )


def _check_arms(planned: list[tuple[Arm, int, LoopConfig]]) -> None:
    """Every check ``dataloop run`` makes before it starts, for each arm (its first seed), so
    that a typo in the last arm fails now, not after every earlier arm has run."""
    from dataloop.assemble import check_run  # the engine and its registries: only to run

    checked: set[str] = set()
    for arm, _, config in planned:
        if arm.name in checked:
            continue
        checked.add(arm.name)
        try:
            check_run(config)
        except DataloopError as exc:
            raise BenchError(f"arm '{arm.name}': {exc}") from None


def run_bench(
    experiment: Experiment,
    base: LoopConfig,
    out: Path,
    *,
    run_missing: bool = True,
    rerun: Iterable[str] = (),
    allow_mixed_commits: bool = False,
    on_run: ProgressFn | None = None,
    display_factory: Callable[[], Display] | None = None,
) -> ExperimentResult:
    """Run every (arm, seed) that is neither finished here nor in the results file, record
    each in the results file as it finishes, then write the tables.

    ``rerun`` names arms whose runs are made again (folders and recorded results dropped), e.g.
    a baseline at the current commit. ``on_run(arm, seed, index, total, status)`` reports
    progress; ``display_factory()`` makes each run's :class:`~dataloop.display.Display`. With
    ``run_missing=False`` only what is recorded or finished is tabulated.
    """
    assert experiment.results is not None, "load_experiment sets the results file"
    rerun = set(rerun)
    unknown = sorted(rerun - {a.name for a in experiment.arms})
    if unknown:
        raise BenchError(f"--rerun names {unknown}, not arms of {experiment.name}")
    planned = planned_runs(experiment, base, out)
    recorded = {(r.arm, r.seed): r for r in read_results(experiment.results) if r.arm not in rerun}
    for arm_name in rerun:
        shutil.rmtree(out / arm_name, ignore_errors=True)
    _check_folders(planned, out)
    if run_missing:
        _check_arms(planned)
    runs: list[RunResult] = []
    pending: list[str] = []
    for index, (arm, seed, config) in enumerate(planned, start=1):
        record = recorded.get((arm.name, seed))
        if record is not None and not same_config(record, config):
            raise BenchError(
                f"{experiment.results} holds {arm.name}/seed-{seed} made with another config; "
                "remove its line to run it again, or restore the experiment file"
            )
        run = RunDir(out / arm.name / f"seed-{seed}")
        if record is None and not _finished(run):
            if not run_missing:
                pending.append(f"{arm.name}/seed-{seed}")
                continue
            if on_run:
                on_run(arm.name, seed, index, len(planned), "running")
            _execute(config, run, display_factory)
        elif on_run:
            on_run(arm.name, seed, index, len(planned), "done before")
        if record is None:
            record = read_run(config, arm, seed, run)
            recorded[(arm.name, seed)] = record
            write_results_file(experiment.results, list(recorded.values()))
        runs.append(record)
    result = summarize(
        experiment,
        runs,
        examples_budget(experiment, base),
        pending,
        allow_mixed=allow_mixed_commits,
    )
    write_results(result, out)
    return result


def recorded_results(
    experiment: Experiment, base: LoopConfig, allow_mixed_commits: bool = False
) -> ExperimentResult:
    """The experiment's results from its results file alone (no run folder needed): what the
    published tables are regenerated from. Planned runs it does not hold are listed as
    pending; a record made with another config is an error, as in :func:`run_bench`."""
    assert experiment.results is not None, "load_experiment sets the results file"
    recorded = {(r.arm, r.seed): r for r in read_results(experiment.results)}
    runs: list[RunResult] = []
    pending: list[str] = []
    for arm, seed, config in planned_runs(experiment, base, Path("out")):
        record = recorded.get((arm.name, seed))
        if record is None:
            pending.append(f"{arm.name}/seed-{seed}")
        elif not same_config(record, config):
            raise BenchError(
                f"{experiment.results} holds {arm.name}/seed-{seed} made with another config"
            )
        else:
            runs.append(record)
    return summarize(
        experiment, runs, examples_budget(experiment, base), pending, allow_mixed_commits
    )


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
