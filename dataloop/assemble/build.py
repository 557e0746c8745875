"""Build a ready Loop (task, student, teacher, policy, engine) from a checked LoopConfig, in a run
folder: :func:`open_loop`, :func:`run_loop` (``dataloop.run``)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Any

from dataloop.assemble.checks import check_run, control_source
from dataloop.assemble.folders import make_run_folder, new_run_dir, run_dir_for, task_options
from dataloop.config import (
    AnyTeacherConfig,
    LoopConfig,
    load_config,
    validate_config,
)
from dataloop.display import Display
from dataloop.engine.benchmarks import BenchmarkIndex
from dataloop.engine.engine import Engine
from dataloop.engine.judge import Judge
from dataloop.engine.sources import DataSource
from dataloop.environments import SPLITS, TaskEnvironment, load_task
from dataloop.errors import ConfigError
from dataloop.gym import Environment, feedback_split
from dataloop.llm import backends
from dataloop.llm.base import LLMClient, Sampling
from dataloop.llm.teacher import Teacher
from dataloop.llm.templates import Templates
from dataloop.logs import attach_run_log, detach
from dataloop.loop import Loop
from dataloop.policies import (
    make_policy,
)
from dataloop.runs import RunDir
from dataloop.schema import Budget, HistoryEntry
from dataloop.skills import SkillDiscovery, discover_skills, subskill_labeller


def run_teacher_client(
    config: AnyTeacherConfig, run: RunDir, budget: Budget | None = None
) -> AbstractContextManager[LLMClient]:
    """The teacher client of ``run``: its response cache and server log."""
    return backends.teacher_client(
        config, cache_dir=run.cache, server_log=run.teacher_log, budget=budget
    )


def _discover(
    config: LoopConfig,
    task: TaskEnvironment,
    teacher: Teacher,
    run: RunDir,
    runner: asyncio.Runner,
    display: Display,
) -> TaskEnvironment:
    """The task relabelled with the skills in ``run.skills_file``, found by the teacher if the
    file is new; a file already there (an earlier attempt, or the user's edit) is kept."""
    path = run.skills_file
    examples = [e for split in SPLITS for e in task.split(split)]
    questions = {e.question for e in examples}
    limit = teacher.budget.max_queries
    if not path.exists() and limit is not None and len(questions) >= limit:
        raise ConfigError(
            f"config field 'teacher.max_queries': skill discovery labels each of the "
            f"{len(questions)} questions with one query, more than the budget of {limit}; "
            "raise the budget, use smaller splits, or write the skills file yourself"
        )
    display.log(
        f"skills: reading {path}" if path.exists() else "skills: the teacher proposes a taxonomy"
    )
    discovery = SkillDiscovery(teacher, max_skills=config.env.max_skills)
    with display.progress("labelling skills", len(questions)) as advance:
        taxonomy = runner.run(discover_skills(discovery, examples, path, on_progress=advance))
    names = ", ".join(s.name for s in taxonomy.skills)
    display.log(
        f"skills: {names} (to change them, edit {path} and give it to a new run as "
        "env.options.skills_file)"
    )
    return load_task(config.env.name, seed=config.seed, options=task_options(config, run))


def run_loop(
    config: LoopConfig | Mapping[str, Any] | str | Path, display: Display | None = None
) -> list[HistoryEntry]:
    """Run a whole loop from ``config`` (a LoopConfig, its fields as a dict, or the path of a
    YAML file) in a new run folder, and return its history: one HistoryEntry per observation,
    the reset's first. ``dataloop.run`` is this; nothing is shown unless ``display`` says so."""
    if isinstance(config, str | Path):
        config = load_config(Path(config))
    elif not isinstance(config, LoopConfig):
        config = validate_config(dict(config), origin="the config given to dataloop.run")
    with open_loop(config, display, new_run_dir(config)) as loop:
        return loop.run()


@contextmanager
def open_loop(
    config: LoopConfig, display: Display | None = None, run: RunDir | None = None
) -> Iterator[Loop]:
    """Everything a run needs, set up in order of cost: every check (:func:`check_run`) before
    the run folder is made, the student built and the teacher started. A start that fails
    removes the run folder it made. Without a ``display`` nothing is shown."""
    display = display or Display(quiet=True)
    run = run or run_dir_for(config)
    task, templates, benchmarks = check_run(config, run)
    created = make_run_folder(run, config)
    started = False
    try:
        with _set_up(config, display, run, task, templates, benchmarks) as loop:
            started = True
            yield loop
    except BaseException:
        if created and not started:
            run.discard_failed_start()
        raise


@contextmanager
def _set_up(
    config: LoopConfig,
    display: Display,
    run: RunDir,
    task: TaskEnvironment,
    templates: Templates,
    benchmarks: BenchmarkIndex | None,
) -> Iterator[Loop]:
    display.log(f"run folder: {run.path}")
    display.log(f"data: {task.data_source()}")
    from dataloop.students.hf import HFStudent  # torch + transformers: import only when needed

    student = HFStudent(
        config.student,
        seed=config.seed,
        callbacks=[display.train_callback],
        eval_log=run.path / "student-vllm.log",
    )
    with ExitStack() as stack:
        stack.callback(detach, attach_run_log(run.log_file))
        stack.callback(student.close)  # a vLLM eval engine, if any, stops with the run
        # One event loop for everything that talks to the client: its HTTP connections and
        # concurrency limit belong to the loop they were first used on.
        runner = stack.enter_context(asyncio.Runner())
        teacher: Teacher | None = None
        if config.engine.source == "teacher":
            if config.iterations > 0:
                display.log(f"starting teacher ({config.teacher.backend})")
            client = stack.enter_context(run_teacher_client(config.teacher, run))
            # Closed on the event loop it talks on, before its server (if any) stops.
            stack.callback(runner.run, client.aclose())
            if config.iterations > 0 or config.env.discover_skills:
                # A teacher that is down or hangs is found now, not after the reset trained.
                runner.run(backends.probe_teacher(client, config.teacher))
            teacher = Teacher(
                client, config.teacher.kind, templates, seed=config.teacher.seed + config.seed
            )
            if config.env.discover_skills:
                task = _discover(config, task, teacher, run, runner, display)
            judge = _judge(config, teacher, templates, run, stack, runner)
        # Made here, not in check_run: llm-planner needs the teacher.
        policy = make_policy(
            config.policy.name,
            teacher=teacher,
            run_seed=config.seed,
            examples_per_iteration=config.policy.examples_per_iteration,
            **config.policy.options,
        )
        seeds, feedback = feedback_split(task, config.env.feedback_per_skill, config.seed)
        if feedback:
            display.log(
                f"feedback split: {len(feedback)} probes, never trained on "
                f"({len(task.split('train')) - len(seeds)} taken from the seed set)"
            )
        source: DataSource
        if teacher is None:
            source = control_source(config, task, held_out=feedback)
        else:
            source = Engine(
                teacher,
                task,
                config.engine,
                sampling=Sampling(
                    temperature=config.teacher.temperature, max_tokens=config.teacher.max_tokens
                ),
                benchmarks=benchmarks,
                judge=judge,
                seeds=seeds,
                held_out=feedback,
            )
        env = Environment(
            task,
            student,
            checkpoints_dir=run.checkpoints,
            max_iterations=config.iterations,
            target_accuracy=config.target_accuracy,
            train_on_seed=config.student.train_on_seed,
            budget=source.budget,
            structure=config.env.structure,
            seed_set=seeds,
            feedback=feedback,
            probes_shown=config.env.probes_shown,
            losses=policy.observes_loss,
            labeller=None
            if teacher is None
            else subskill_labeller(SkillDiscovery(teacher), runner),
        )
        yield Loop(env, policy, source, run, display, runner=runner, overlap=config.overlap)


def _judge(
    config: LoopConfig,
    teacher: Teacher,
    templates: Templates,
    run: RunDir,
    stack: ExitStack,
    runner: asyncio.Runner,
) -> Judge | None:
    """The engine's judge (``engine.judge``): the teacher's client, or a client of its own
    endpoint that spends the teacher's budget; None without one."""
    settings = config.engine.judge
    if settings is None:
        return None
    client = teacher.client
    if settings.endpoint is not None:
        client = stack.enter_context(run_teacher_client(settings.endpoint, run, teacher.budget))
        stack.callback(runner.run, client.aclose())
    return Judge(
        Teacher(client, settings.kind, templates, seed=teacher.seed),
        threshold=settings.threshold,
        temperature=settings.temperature,
        max_tokens=settings.max_tokens,
    )
