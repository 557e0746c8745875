"""Every check a run makes before anything is built (:func:`check_run`): the task and its
contract, the policy, strategies, templates, student files, teacher and judge."""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path
from typing import Any

from dataloop.config import (
    LoopConfig,
    StudentConfig,
)
from dataloop.engine.benchmarks import BenchmarkIndex, load_benchmarks
from dataloop.engine.judge import rubric
from dataloop.engine.sources import DataSource, NoNewData, TaskSampler
from dataloop.engine.strategies import resolve_solver, resolve_strategy
from dataloop.env_checker import check_task
from dataloop.environments import TaskEnvironment, load_task
from dataloop.errors import ConfigError, RegistryError
from dataloop.llm import backends
from dataloop.llm.templates import Templates
from dataloop.plugins import origin
from dataloop.policies import (
    check_levels,
    check_policy,
    check_structure,
    resolve_policy,
)
from dataloop.redact import refuse_key
from dataloop.runs import RunDir
from dataloop.schema import Example

CHECK_SAMPLE = 2
"""Examples per split that a run tries the task's contract on before it starts."""


def check_run(
    config: LoopConfig, run: RunDir | None = None
) -> tuple[TaskEnvironment, Templates, BenchmarkIndex | None]:
    """Every check that needs no student, server or run folder: the task and its options, its
    contract (as ``dataloop envs --check``, on ``CHECK_SAMPLE`` examples per split), the policy
    and its options, the strategy, the prompt templates, the teacher's configuration, the
    judge, the benchmarks, and (resuming, when ``run`` holds one) the run's state. Raises one
    line (ConfigError, or a RunError for a damaged run) naming the field; returns the task, the
    templates and the benchmarks' index (None without benchmarks), which are kept.

    ``dataloop bench`` calls it for every arm of an experiment before the first run starts, so
    that a typo in the last arm fails at once, not after every earlier arm ran."""
    if config.env.discover_skills and "skills_file" in config.env.options:
        raise ConfigError(
            "config field 'env.discover_skills': env.options.skills_file is set too; use your "
            "skills file or discover skills, not both"
        )
    task = load_task(config.env.name, seed=config.seed, options=config.env.options)
    _check_task(config, task)
    if config.env.discover_skills:
        _check_discoverable(config, task)
        if config.engine.source != "teacher":
            raise ConfigError(
                f"config field 'env.discover_skills': skill discovery needs the teacher, and "
                f"engine.source is '{config.engine.source}'"
            )
    if config.engine.source == "oracle":
        control_source(config, task)  # a task that cannot sample fails here
    options = config.policy.options
    named: dict[str, Any] = {
        "engine.strategy": config.engine.strategy,
        "policy.options.strategy": options.get("strategy"),
    }
    for i, name in enumerate(options.get("strategies") or []):
        named[f"policy.options.strategies.{i}"] = name
    for field, strategy in named.items():  # the engine's override, a policy's options
        if isinstance(strategy, str):
            try:
                resolve_strategy(strategy)
            except RegistryError as exc:
                raise ConfigError(f"config field '{field}': {exc}") from None
    try:
        resolve_solver(config.engine.solver)
    except RegistryError as exc:
        raise ConfigError(f"config field 'engine.solver': {exc}") from None
    templates = Templates(config.engine.prompts_dir)
    try:
        policy = resolve_policy(config.policy.name)
    except RegistryError as exc:
        raise ConfigError(f"config field 'policy.name': {exc}") from None
    check_levels(policy, task)
    try:
        check_structure(config.policy.name, config.env.structure)
    except RegistryError as exc:
        raise ConfigError(f"config field 'env.structure': {exc}") from None
    if config.overlap and config.env.structure == "skill-tree":
        raise ConfigError(
            "config field 'overlap': a skill-tree run cannot overlap generation with training "
            "(the next plan grows the tree the student's evaluation scores); set overlap: "
            "false or another env.structure"
        )
    check_policy(
        config.policy.name,
        examples_per_iteration=config.policy.examples_per_iteration,
        **config.policy.options,
    )
    _check_student(config.student)
    if config.engine.source == "teacher":
        backends.check_teacher(config.teacher)
        _check_judge(config, task, templates)
    benchmarks = load_benchmarks(config.engine.benchmarks, config.engine.benchmark_ngram)
    if run is not None and run.exists("state.json"):  # resuming: damaged files fail now
        run.read_state()
        run.read_metrics()
    return task, templates, benchmarks


def _check_judge(config: LoopConfig, task: TaskEnvironment, templates: Templates) -> None:
    """The judge's endpoint (its model, URLs and key) and its rubric template render."""
    judge = config.engine.judge
    if judge is None:
        return
    if judge.endpoint is not None:
        try:
            backends.check_teacher(judge.endpoint)
        except ConfigError as exc:
            raise ConfigError(str(exc).replace("'teacher.", "'engine.judge.endpoint.")) from None
    skill = task.skills()[0]
    rubric(templates, judge.kind, Example.make(skill.name, "question", "answer"), skill)


def _check_task(config: LoopConfig, task: TaskEnvironment) -> None:
    """The checks of ``dataloop envs --check`` (:func:`check_task`), on ``CHECK_SAMPLE``
    examples per split: the first problem, in one line naming the environment. A seed that
    ``verify`` rejects is no reason to stop a run (a HumanEval seed without examples in its
    docstring has no tests of its own); a ``verify`` that raises is."""
    found = check_task(task, CHECK_SAMPLE, seeds_verified=False)
    if found.problems:
        more = len(found.problems) - 1
        also = f" (and {more} more)" if more else ""
        raise ConfigError(
            f"environment '{config.env.name}' ({origin(task)}): {found.problems[0]}{also}; "
            f"'dataloop envs --check {config.env.name}' lists what to fix"
        )


def _check_student(student: StudentConfig) -> None:
    """The student's files exist; a hub id is left to the loader (it may need the network)."""
    model = student.model
    refuse_key("student.model", model)
    folder = Path(model).expanduser()
    # A hub id is ``name`` or ``namespace/name``; anything else names a folder on disk.
    is_path = folder.is_absolute() or model.startswith((".", "~")) or model.count("/") > 1
    if model != "tiny" and not folder.is_dir() and is_path:
        raise ConfigError(f"config field 'student.model': no model folder at {model}")
    if student.gguf_file and folder.is_dir() and not (folder / student.gguf_file).is_file():
        raise ConfigError(
            f"config field 'student.gguf_file': {student.gguf_file} is not in {model}"
        )
    if student.chat_template is not None and not student.chat_template.is_file():
        raise ConfigError(
            f"config field 'student.chat_template': {student.chat_template} does not exist"
        )


def _check_discoverable(config: LoopConfig, task: TaskEnvironment) -> None:
    if task.accepts_skills_file:
        return
    if "skills_file" in inspect.signature(type(task)).parameters:
        # The constructor's parameter used to be looked for; a task declares it now.
        warnings.warn(
            f"environment '{config.env.name}' takes skills_file but does not declare it: set "
            "the class attribute accepts_skills_file = True (a later version requires it)",
            FutureWarning,
            stacklevel=2,
        )
    else:
        raise ConfigError(
            f"config field 'env.discover_skills': environment '{config.env.name}' has no "
            "'skills_file' option (its class sets no accepts_skills_file), so it cannot take "
            "discovered skills (math, multiple_choice and code can)"
        )


def control_source(
    config: LoopConfig, task: TaskEnvironment, held_out: list[Example] | None = None
) -> DataSource:
    """The data source standing in for the teacher when ``engine.source`` is not ``teacher``."""
    if config.engine.source == "oracle":
        return TaskSampler(
            task, max_examples=config.engine.max_examples, seed=config.seed, held_out=held_out
        )
    return NoNewData()
