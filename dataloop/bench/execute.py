"""Running an experiment: plan its (arm, seed) runs, make the missing ones (here, in parallel
processes, as Ray tasks, or by any scheduler from the planned commands), record each finished
run in the results file, then summarise.

Every (arm, seed) is an ordinary run folder, ``OUT/<arm>/seed-<seed>``, so ``dataloop resume``,
``report`` and ``export`` work on each; running the experiment again skips finished runs and
resumes unfinished ones. A run recorded in the experiment's results file (committed, perhaps
made on another machine) is not run again. A worker holds the run's lock
(:class:`~dataloop.bench.lock.RunLock`) while it makes it, so that no two workers make one run.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from dataloop.atomic import write_text
from dataloop.bench.lock import Holder, RunLock
from dataloop.bench.results import (
    ExperimentResult,
    RunResult,
    area,
    curve,
    drop_results,
    read_results,
    record_result,
    run_config_data,
    same_config,
    same_run,
    summarize,
)
from dataloop.bench.spec import (
    Arm,
    BenchError,
    Experiment,
    examples_budget,
    run_config,
)
from dataloop.bench.tables import write_results
from dataloop.bench.timing import still_to_make
from dataloop.bench.workers import Cell, Executor, Failures, Progress
from dataloop.config import LlamaServerTeacherConfig, LoopConfig, dump_config, load_config
from dataloop.environments import load_task
from dataloop.errors import ConfigError, DataloopError
from dataloop.identity import CodeIdentity, code_identity, version_differences
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


def _folder(out: Path, arm: str, seed: int) -> Path:
    return out / arm / f"seed-{seed}"


def _check_folders(planned: Iterable[Cell], out: Path) -> None:
    for arm, seed, config in planned:
        folder = _folder(out, arm.name, seed)
        saved = folder / "config.yaml"
        if not saved.is_file():
            continue
        made = _saved_config(saved)
        if made is None or not same_run(made, config):
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


def _check_record(experiment: Experiment, record: RunResult, config: LoopConfig) -> None:
    if not same_config(record, config):
        raise BenchError(
            f"{experiment.results} holds {record.arm}/seed-{record.seed} made with another "
            "config; remove its line to run it again, or restore the experiment file"
        )


def _missing(
    experiment: Experiment, cells: Iterable[Cell], out: Path, progress: Progress | None
) -> list[Cell]:
    """The runs neither recorded nor finished; a finished run not yet recorded is recorded."""
    assert experiment.results is not None, "load_experiment sets the results file"
    recorded = {(r.arm, r.seed): r for r in read_results(experiment.results)}
    todo = []
    for arm, seed, config in cells:
        record = recorded.get((arm.name, seed))
        run = RunDir(_folder(out, arm.name, seed))
        if record is not None:
            _check_record(experiment, record, config)
        elif _finished(run):
            record_result(experiment.results, read_run(config, arm, seed, run))
        else:
            todo.append((arm, seed, config))
            continue
        if progress:
            progress(arm.name, seed, "done before")
    return todo


def check_code(
    experiment: Experiment, recorded: Iterable[CodeIdentity] = (), allow_mixed: bool = False
) -> None:
    """Raise BenchError unless runs made by this process's code may join the experiment: the
    commit its ``code`` names, clean; without ``code``, the code of the ``recorded`` runs (their
    labels), unless ``allow_mixed``; and, unless ``allow_mixed``, the package versions the
    recorded runs were made with (:func:`~dataloop.identity.version_differences`). Checked
    before any run is made, not after hours of them."""
    here = code_identity()
    recorded = list(recorded)
    differing = version_differences(recorded, here)
    if differing and not allow_mixed:
        raise BenchError(
            f"{experiment.name}'s recorded runs were made with other packages than these: "
            f"{'; '.join(differing)}; runs made here could differ by the library alone: "
            "install the recorded versions, or pass --allow-mixed-commits"
        )

    def worktree(commit: str) -> str:
        return (
            f"git worktree add --detach ../{experiment.name}-run {commit}, with "
            f"{experiment.results} copied into it"
        )

    if experiment.code is not None:
        if here.commit is None or not here.commit.startswith(experiment.code) or here.dirty:
            raise BenchError(
                f"{experiment.name}'s runs are made at {experiment.code} (experiment field "
                f"'code'), and this is {here.label}: make them from a checkout of it "
                f"({worktree(experiment.code)}; scripts/continue_experiment.sh does both)"
            )
        return
    others = sorted({c.label for c in recorded} - {here.label})
    if others and not allow_mixed:
        raise BenchError(
            f"{experiment.name}'s recorded runs were made by {', '.join(others)}, and this is "
            f"{here.label}: runs made here could not be paired with them; make them from a "
            f"checkout of that code ({worktree(others[0].removesuffix('+dirty'))}), or "
            "--rerun the arms here, or pass --allow-mixed-commits"
        )


def _recorded_code(experiment: Experiment, leaving_out: Iterable[str] = ()) -> list[CodeIdentity]:
    """The code of the runs in the results file, but that of the arms ``leaving_out``."""
    assert experiment.results is not None, "load_experiment sets the results file"
    skip = set(leaving_out)
    return [r.code for r in read_results(experiment.results) if r.arm not in skip]


class CellOutcome(BaseModel):
    """What a worker did with one (arm, seed) run."""

    run: str
    """``<arm>/seed-<seed>``."""
    status: Literal["ran", "done before", "busy"]
    """``busy``: another worker holds the run; it is left to that worker."""
    holder: Holder | None = None
    """``busy``: the worker that holds the run; ``ran``: a worker that died holding it, whose
    run was taken over (resumed)."""


def run_cell(
    experiment: Experiment,
    out: Path,
    cell: Cell,
    *,
    threads: int | None = None,
    display_factory: Callable[[], Display] | None = None,
    on_start: Callable[[], None] | None = None,
    allow_mixed: bool = False,
) -> CellOutcome:
    """Make one run unless another worker holds it or it is recorded already: lock it, make
    (or resume) it, record it in the results file. ``threads`` caps the CPU threads of its
    student and of a teacher server it starts; ``on_start()`` is called when it starts. Unless
    ``allow_mixed``, it is made only by the code of the runs recorded, and of its own folder's
    earlier starts (:func:`check_code`)."""
    assert experiment.results is not None, "load_experiment sets the results file"
    arm, seed, config = cell
    folder = _folder(out, arm.name, seed)
    name = f"{arm.name}/seed-{seed}"
    lock = RunLock(folder)
    taken, holder = lock.acquire()
    if not taken:
        return CellOutcome(run=name, status="busy", holder=holder)
    try:
        _check_folders([cell], out)  # the experiment file may have changed since it was planned
        if not _missing(experiment, [cell], out, None):
            return CellOutcome(run=name, status="done before")
        run = RunDir(folder)
        started = run.environments() if run.exists("environment.jsonl") else []
        check_code(experiment, [*_recorded_code(experiment), *started], allow_mixed)
        if on_start:
            on_start()
        _execute(config, run, display_factory, threads)
        record_result(experiment.results, read_run(config, arm, seed, run))
        return CellOutcome(run=name, status="ran", holder=holder)
    finally:
        lock.release()


class InProcess:
    """Runs one after another in this process (``--jobs 1``): a failure stops the experiment."""

    jobs = 1
    """Runs made at once."""

    def __init__(
        self,
        experiment: Experiment,
        out: Path,
        display_factory: Callable[[], Display] | None = None,
        threads: int | None = None,
        *,
        allow_mixed: bool = False,
    ) -> None:
        self.experiment, self.out = experiment, out
        self.display_factory, self.threads = display_factory, threads
        self.allow_mixed = allow_mixed

    def run(self, cells: Sequence[Cell], progress: Progress | None) -> Failures:
        """Make ``cells`` in turn; a run another worker holds is left to it."""
        for cell in cells:
            arm, seed, _ = cell
            outcome = run_cell(
                self.experiment,
                self.out,
                cell,
                threads=self.threads,
                display_factory=self.display_factory,
                on_start=partial(progress, arm.name, seed, "running") if progress else None,
                allow_mixed=self.allow_mixed,
            )
            if progress and outcome.status == "busy":
                progress(arm.name, seed, f"running in another worker, {outcome.holder}")
            elif progress and outcome.holder is not None:
                progress(arm.name, seed, f"taken over from {outcome.holder}, now gone")
        return {}


ROUNDS = 5
"""Times a run is handed out before the experiment gives up on it: again only when the
worker that held it died."""


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
    executor: Executor | None = None,
    threads: int | None = None,
) -> ExperimentResult:
    """Make every (arm, seed) run that is neither finished here nor in the results file, each
    recorded in the results file as it finishes, then write the tables.

    ``executor`` makes the runs (default: one after another in this process, with ``threads``
    CPU threads each; see :mod:`dataloop.bench.workers`). Runs another worker holds are waited
    for, and taken over if that worker dies. ``rerun`` names arms whose runs are made again
    (folders and recorded results dropped), e.g. a baseline at the current commit.
    ``on_run(arm, seed, index, total, status)`` reports progress; ``display_factory()`` makes
    each in-process run's :class:`~dataloop.display.Display`. With ``run_missing=False`` only
    what is recorded or finished is tabulated. Runs that failed are left out of the tables and
    named in one BenchError after them.
    """
    assert experiment.results is not None, "load_experiment sets the results file"
    rerun = set(rerun)
    unknown = sorted(rerun - {a.name for a in experiment.arms})
    if unknown:
        raise BenchError(f"--rerun names {unknown}, not arms of {experiment.name}")
    planned = planned_runs(experiment, base, out)
    if rerun and run_missing:  # before anything is dropped: the rerun arms' runs go
        check_code(experiment, _recorded_code(experiment, rerun), allow_mixed_commits)
    if rerun:
        drop_results(experiment.results, rerun)
        for arm_name in rerun:
            shutil.rmtree(out / arm_name, ignore_errors=True)
    _check_folders(planned, out)
    if run_missing:
        _check_arms(planned)
    index = {(arm.name, seed): i for i, (arm, seed, _) in enumerate(planned, start=1)}

    executor = executor or InProcess(
        experiment, out, display_factory, threads, allow_mixed=allow_mixed_commits
    )

    def progress(arm: str, seed: int, status: str) -> None:
        if not on_run:
            return
        if status == "running":
            status += still_to_make(experiment, planned, getattr(executor, "jobs", 1))
        on_run(arm, seed, index[(arm, seed)], len(planned), status)

    failures: Failures = {}
    todo = _missing(experiment, planned, out, progress)
    if run_missing and todo:
        check_code(experiment, _recorded_code(experiment), allow_mixed_commits)
    for _ in range(ROUNDS if run_missing else 0):
        if not todo:
            break
        failures.update(executor.run(todo, progress))
        left = [c for c in todo if (c[0].name, c[1]) not in failures]
        for arm, seed, _ in left:  # runs other workers hold: until they finish, or die
            RunLock(_folder(out, arm.name, seed)).wait()
        todo = _missing(experiment, left, out, None)
    if run_missing and todo:
        names = ", ".join(f"{a.name}/seed-{s}" for a, s, _ in todo)
        raise BenchError(f"{names} still not made after {ROUNDS} workers took them; see run.log")
    recorded = {(r.arm, r.seed): r for r in read_results(experiment.results)}
    runs = [recorded[k] for k in index if k in recorded]
    pending = [f"{arm}/seed-{seed}" for arm, seed in index if (arm, seed) not in recorded]
    result = summarize(
        experiment,
        runs,
        examples_budget(experiment, base),
        pending,
        allow_mixed=allow_mixed_commits,
    )
    write_results(result, out)
    if failures:
        shown = "; ".join(f"{a}/seed-{s}: {error}" for (a, s), error in failures.items())
        raise BenchError(f"{len(failures)} runs failed ({shown}); the tables leave them out")
    return result


def select_runs(
    experiment: Experiment, base: LoopConfig, out: Path, arm: str | None, seed: int | None
) -> list[Cell]:
    """The planned runs of arm ``arm`` and seed ``seed`` (None: any)."""
    if arm is not None and arm not in {a.name for a in experiment.arms}:
        known = ", ".join(a.name for a in experiment.arms)
        raise BenchError(f"--arm {arm} is not an arm of {experiment.name}; arms: {known}")
    if seed is not None and seed not in experiment.seeds:
        known = ", ".join(map(str, experiment.seeds))
        raise BenchError(f"--seed {seed} is not a seed of {experiment.name}; seeds: {known}")
    return [
        cell
        for cell in planned_runs(experiment, base, out)
        if arm in (None, cell[0].name) and seed in (None, cell[1])
    ]


def plan_bench(experiment: Experiment, base: LoopConfig, out: Path) -> list[Cell]:
    """Write every run folder's config (``OUT/<arm>/seed-<seed>/config.yaml``), and return the
    runs still to make: neither recorded nor finished. A folder whose config differs from the
    plan is an error, as when running."""
    planned = planned_runs(experiment, base, out)
    _check_folders(planned, out)
    for arm, seed, config in planned:
        run = RunDir(_folder(out, arm.name, seed))
        if not run.exists("config.yaml"):
            run.path.mkdir(parents=True, exist_ok=True)
            run.write_config(dump_config(config))
    return _missing(experiment, planned, out, None)


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
        else:
            _check_record(experiment, record, config)
            runs.append(record)
    return summarize(
        experiment, runs, examples_budget(experiment, base), pending, allow_mixed_commits
    )


def _execute(
    config: LoopConfig,
    run: RunDir,
    display_factory: Callable[[], Display] | None,
    threads: int | None = None,
) -> None:
    """One run, from scratch or resumed; its wall time is added to ``bench-seconds.txt``."""
    from dataloop.assemble import open_loop  # torch + transformers: only when a run is due
    from dataloop.display import Display

    if threads:
        import torch

        torch.set_num_threads(threads)
        if isinstance(config.teacher, LlamaServerTeacherConfig):
            teacher = config.teacher.model_copy(
                update={"threads": min(config.teacher.threads, threads)}
            )
            config = config.model_copy(update={"teacher": teacher})
    display = display_factory() if display_factory else Display(quiet=True)
    started = time.monotonic()
    with open_loop(config, display, run) as loop:
        loop.run()
    timing = run.path / "bench-seconds.txt"
    before = float(timing.read_text()) if timing.is_file() else 0.0
    write_text(timing, f"{before + time.monotonic() - started:.1f}\n")
