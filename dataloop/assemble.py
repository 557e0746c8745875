"""Build a ready Loop (task, student, teacher, policy, engine) from a LoopConfig."""

from __future__ import annotations

import asyncio
import inspect
import warnings
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from dataloop.config import (
    AnyTeacherConfig,
    LoopConfig,
    StudentConfig,
    dump_config,
    load_config,
    validate_config,
)
from dataloop.deprecation import deprecated, moved_names
from dataloop.display import Display
from dataloop.engine.benchmarks import BenchmarkIndex, load_benchmarks
from dataloop.engine.engine import Engine
from dataloop.engine.judge import Judge, rubric
from dataloop.engine.sources import DataSource, NoNewData, TaskSampler
from dataloop.engine.strategies import resolve_solver, resolve_strategy
from dataloop.env_checker import check_task
from dataloop.environments import SPLITS, TaskEnvironment, load_task
from dataloop.errors import ConfigError, RegistryError
from dataloop.gym import Environment, feedback_split
from dataloop.identity import code_identity
from dataloop.llm import backends
from dataloop.llm.base import LLMClient, Sampling
from dataloop.llm.teacher import Teacher
from dataloop.llm.templates import Templates
from dataloop.logs import attach_run_log, detach
from dataloop.loop import Loop
from dataloop.plugins import origin
from dataloop.policies import (
    check_levels,
    check_policy,
    check_structure,
    make_policy,
    resolve_policy,
)
from dataloop.redact import refuse_key
from dataloop.runs import RunDir, RunError
from dataloop.schema import Budget, Example, HistoryEntry
from dataloop.skills import SkillDiscovery, discover_skills, subskill_labeller


def run_dir_for(config: LoopConfig) -> RunDir:
    """The run folder named by the config, or ``<env>-<timestamp>``."""
    name = config.name or f"{Path(config.env.name).stem}-{datetime.now():%Y%m%d-%H%M%S}"
    return RunDir(config.runs_dir / name)


def new_run_dir(config: LoopConfig) -> RunDir:
    """:func:`run_dir_for`, refused (RunError) when a run already lives there."""
    run = run_dir_for(config)
    if run.exists("state.json"):
        raise RunError(
            f"run {run.path} already exists; continue it with "
            f"'dataloop resume {run.path}' or choose another --name"
        )
    return run


RESUME_FIELDS = (
    "teacher.base_urls",
    "teacher.api_key_env",
    "teacher.timeout",
    "teacher.retries",
    "teacher.concurrency",
    "teacher.probe_timeout",
    "teacher.max_connection_failures",
)
"""What ``dataloop resume --set`` may change: where and how the teacher is reached (a URL
whose credentials were redacted on save, a server that moved); never what the run computes."""


def resume_config(path: Path, overrides: dict[str, Any] | None = None) -> LoopConfig:
    """The config of the run folder ``path``, to continue it, with ``overrides`` of
    :data:`RESUME_FIELDS` only; RunError if it is not a run folder."""
    if not (path / "config.yaml").is_file():
        raise RunError(f"{path / 'config.yaml'} is missing: {path} is not a run folder")
    for key in overrides or {}:
        if key not in RESUME_FIELDS:
            raise ConfigError(
                f"--set {key}: a resumed run keeps its config; only how the teacher is reached "
                f"may change ({', '.join(RESUME_FIELDS)})"
            )
    return load_config(path / "config.yaml", overrides)


# The teacher's backends once lived here; dataloop.llm.backends holds them now.
_moved = moved_names(
    __name__, dict.fromkeys(("check_teacher", "teacher_servers"), backends.__name__)
)


def __getattr__(name: str) -> Any:
    if name == "teacher_client":
        deprecated(
            "dataloop.assemble.teacher_client(config, run, budget) is deprecated: use "
            "dataloop.llm.backends.teacher_client(config, cache_dir=run.cache, "
            "server_log=run.teacher_log, budget=budget)"
        )
        return _run_teacher_client
    return _moved(name)


def _run_teacher_client(
    config: AnyTeacherConfig, run: RunDir, budget: Budget | None = None
) -> AbstractContextManager[LLMClient]:
    """The teacher client of ``run``: its response cache and server log."""
    return backends.teacher_client(
        config, cache_dir=run.cache, server_log=run.teacher_log, budget=budget
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


def task_options(config: LoopConfig, run: RunDir) -> dict[str, Any]:
    """``env.options``, plus the run's discovered ``skills_file`` once there is one."""
    if config.env.discover_skills and run.skills_file.exists():
        return {**config.env.options, "skills_file": str(run.skills_file)}
    return dict(config.env.options)


def training_set(run: RunDir) -> list[Example]:
    """A run's final training set (what ``dataloop export`` writes): the task's seed examples,
    loaded as the run loaded them (with its discovered skills, if any, and without the feedback
    probes held out of them), then every completed iteration's accepted examples."""
    config = load_config(run.path / "config.yaml")
    run.read_state()
    task = load_task(config.env.name, seed=config.seed, options=task_options(config, run))
    examples, _ = feedback_split(task, config.env.feedback_per_skill, config.seed)  # no probes
    for k in run.iterations_done():
        examples += run.accepted(k)
    return examples


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
        _control_source(config, task)  # a task that cannot sample fails here
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


def _make_run_folder(run: RunDir, config: LoopConfig) -> bool:
    """Create the run folder and store the config; whether the folder is new."""
    created = not run.path.exists()
    try:
        run.path.mkdir(parents=True, exist_ok=True)
        run.write_config(dump_config(config))
        run.record_environment(code_identity())
    except OSError as exc:
        raise ConfigError(
            f"config field 'runs_dir': cannot write the run folder {run.path}: "
            f"{exc.strerror or exc}"
        ) from None
    return created


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
    created = _make_run_folder(run, config)
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
            client = stack.enter_context(_run_teacher_client(config.teacher, run))
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
            source = _control_source(config, task, held_out=feedback)
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
        client = stack.enter_context(_run_teacher_client(settings.endpoint, run, teacher.budget))
        stack.callback(runner.run, client.aclose())
    return Judge(
        Teacher(client, settings.kind, templates, seed=teacher.seed),
        threshold=settings.threshold,
        temperature=settings.temperature,
        max_tokens=settings.max_tokens,
    )


def _control_source(
    config: LoopConfig, task: TaskEnvironment, held_out: list[Example] | None = None
) -> DataSource:
    """The data source standing in for the teacher when ``engine.source`` is not ``teacher``."""
    if config.engine.source == "oracle":
        return TaskSampler(
            task, max_examples=config.engine.max_examples, seed=config.seed, held_out=held_out
        )
    return NoNewData()
