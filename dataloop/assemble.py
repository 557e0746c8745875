"""Build a ready Loop (task, student, teacher, policy, engine) from a LoopConfig."""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from dataloop.config import LoopConfig, StudentConfig, TeacherConfig, dump_config, load_config
from dataloop.display import Display
from dataloop.engine.engine import Engine
from dataloop.engine.sources import DataSource, NoNewData, TaskSampler
from dataloop.engine.strategies import resolve_strategy
from dataloop.environments import SPLITS, TaskEnvironment, load_task
from dataloop.errors import ConfigError, RegistryError, TeacherError
from dataloop.gym import Environment, feedback_split
from dataloop.llm.base import LLMClient
from dataloop.llm.cache import ResponseCache
from dataloop.llm.client import Flavor, OpenAIClient
from dataloop.llm.offline import VLLMOfflineClient
from dataloop.llm.server import (
    ManagedServer,
    default_gguf,
    llama_server,
    llama_server_binary,
    vllm_command,
    vllm_server,
)
from dataloop.llm.teacher import Teacher
from dataloop.llm.templates import Templates
from dataloop.logs import attach_run_log, detach
from dataloop.loop import Loop
from dataloop.policies import check_policy, check_structure, make_policy
from dataloop.runs import RunDir, RunError
from dataloop.schema import Budget, Example
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


def resume_config(path: Path) -> LoopConfig:
    """The config of the run folder ``path``, to continue it; RunError if it is not one."""
    if not (path / "config.yaml").is_file():
        raise RunError(f"{path / 'config.yaml'} is missing: {path} is not a run folder")
    return load_config(path / "config.yaml")


def _api_key(teacher: TeacherConfig) -> str | None:
    if teacher.api_key_env is None:
        return None
    key = os.environ.get(teacher.api_key_env)
    if not key:
        raise ConfigError(
            f"config field 'teacher.api_key_env': environment variable "
            f"{teacher.api_key_env} is not set"
        )
    return key


def check_teacher(teacher: TeacherConfig) -> str:
    """Raise ConfigError for a teacher configuration that cannot work, before anything starts
    (what can be known without starting it: files, programs, the key's variable, prices);
    returns the model name requests will use."""
    model = teacher.served_model or teacher.model
    if teacher.backend == "llama-server":
        gguf = Path(teacher.model) if teacher.model else default_gguf()
        if not gguf.is_file():
            raise ConfigError(f"config field 'teacher.model': GGUF file {gguf} does not exist")
        llama_server_binary()
        model = gguf.stem
    elif not teacher.model or not model:
        raise ConfigError(
            f"config field 'teacher.model': the {teacher.backend} backend needs a model"
        )
    if teacher.backend == "vllm":
        try:
            vllm_command(model, teacher.vllm_python)
        except TeacherError as exc:
            field = "teacher.vllm_python" if teacher.vllm_python else "teacher.backend"
            raise ConfigError(f"config field '{field}': {exc}") from None
    if teacher.backend == "vllm-offline" and importlib.util.find_spec("vllm") is None:
        raise ConfigError(
            "config field 'teacher.backend': 'vllm-offline' needs vLLM: pip install "
            "'dataloop[vllm]' on a machine with a GPU"
        )
    if teacher.backend == "openai":
        if not teacher.base_urls:
            raise ConfigError(
                "config field 'teacher.base_urls': the openai backend needs at least one URL, "
                "e.g. http://127.0.0.1:8000/v1"
            )
        _api_key(teacher)
    if teacher.max_cost is not None and model not in teacher.prices:
        raise ConfigError(
            f"config field 'teacher.max_cost': teacher.prices has no entry for model '{model}'; "
            "add its price per million prompt and completion tokens"
        )
    return model


def teacher_server(teacher: TeacherConfig, log: Path, port: int | None = None) -> ManagedServer:
    """The server a ``llama-server`` or ``vllm`` teacher runs on (not started yet), logging to
    ``log``; the other backends start none (ConfigError)."""
    if teacher.backend == "vllm":
        if not teacher.model:
            raise ConfigError("config field 'teacher.model': vllm needs a model id or folder")
        return vllm_server(
            teacher.model,
            log,
            tensor_parallel_size=teacher.tensor_parallel_size,
            max_model_len=teacher.max_model_len,
            lora_modules=teacher.lora_modules,
            max_lora_rank=teacher.max_lora_rank,
            extra_args=teacher.server_args,
            port=port,
            python=teacher.vllm_python,
        )
    if teacher.backend == "llama-server":
        return llama_server(
            Path(teacher.model) if teacher.model else default_gguf(),
            log,
            parallel=teacher.parallel,
            threads=teacher.threads,
            chat_template=teacher.chat_template,
            extra_args=teacher.server_args,
            port=port,
        )
    raise ConfigError(
        f"config field 'teacher.backend': '{teacher.backend}' starts no server; "
        "known: llama-server, vllm"
    )


@contextmanager
def teacher_client(teacher: TeacherConfig, run: RunDir) -> Iterator[LLMClient]:
    """The configured teacher; a server it starts lives as long as the block."""
    model = check_teacher(teacher)
    accounting: dict[str, Any] = {
        "budget": Budget(max_queries=teacher.max_queries, max_tokens=teacher.max_total_tokens),
        "cache": ResponseCache(run.cache) if teacher.cache else None,
        "price": teacher.prices.get(model),
        "max_cost": teacher.max_cost,
    }
    http: dict[str, Any] = {
        "concurrency": teacher.concurrency,
        "timeout": teacher.timeout,
        "retries": teacher.retries,
        "max_connection_failures": teacher.max_connection_failures,
    }
    if teacher.backend == "vllm-offline":
        yield VLLMOfflineClient(
            model,
            tensor_parallel_size=teacher.tensor_parallel_size,
            max_model_len=teacher.max_model_len,
            seed=teacher.seed,
            engine_args=teacher.engine_args,
            **accounting,
        )
        return
    if teacher.backend == "openai":
        key = _api_key(teacher)
        yield OpenAIClient(
            model, teacher.base_urls, key, flavor=teacher.flavor, **http, **accounting
        )
        return
    server = teacher_server(teacher, run.teacher_log)
    flavor: Flavor = "vllm" if teacher.backend == "vllm" else "llama.cpp"
    with server:
        yield OpenAIClient(model, [server.base_url], flavor=flavor, **http, **accounting)


def _check_discoverable(config: LoopConfig, task: TaskEnvironment) -> None:
    if "skills_file" not in inspect.signature(type(task)).parameters:
        raise ConfigError(
            f"config field 'env.discover_skills': environment '{config.env.name}' has no "
            "'skills_file' option, so it cannot take discovered skills (math, multiple_choice "
            "and code can)"
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


def check_run(config: LoopConfig, run: RunDir) -> tuple[TaskEnvironment, Templates]:
    """Every check that needs no student, server or run folder: the task and its options, the
    policy and its options, the strategy, the prompt templates, the teacher's configuration,
    and (resuming) the run's state. Returns the task and the templates, which are kept."""
    if config.env.discover_skills and "skills_file" in config.env.options:
        raise ConfigError(
            "config field 'env.discover_skills': env.options.skills_file is set too; use your "
            "skills file or discover skills, not both"
        )
    task = load_task(config.env.name, seed=config.seed, options=config.env.options)
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
    templates = Templates(config.engine.prompts_dir)
    try:
        check_structure(config.policy.name, config.env.structure)
    except RegistryError as exc:
        raise ConfigError(f"config field 'env.structure': {exc}") from None
    check_policy(
        config.policy.name,
        examples_per_iteration=config.policy.examples_per_iteration,
        **config.policy.options,
    )
    _check_student(config.student)
    if config.engine.source == "teacher":
        check_teacher(config.teacher)
    if run.exists("state.json"):  # resuming: damaged files fail now, not after the set-up
        run.read_state()
        run.read_metrics()
    return task, templates


def _check_student(student: StudentConfig) -> None:
    """The student's files exist; a hub id is left to the loader (it may need the network)."""
    model = student.model
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
    except OSError as exc:
        raise ConfigError(
            f"config field 'runs_dir': cannot write the run folder {run.path}: "
            f"{exc.strerror or exc}"
        ) from None
    return created


def _remove_failed_start(run: RunDir) -> None:
    """Remove a run folder made by a start that failed, unless the start left something worth
    keeping in it: a server's log the error points to, cached teacher answers, found skills."""
    made_by_start = {run.path / "config.yaml", run.log_file}
    if all(p in made_by_start for p in run.path.rglob("*") if p.is_file()):
        shutil.rmtree(run.path, ignore_errors=True)


@contextmanager
def open_loop(config: LoopConfig, display: Display, run: RunDir | None = None) -> Iterator[Loop]:
    """Everything a run needs, set up in order of cost: every check (:func:`check_run`) before
    the run folder is made, the student built and the teacher started. A start that fails
    removes the run folder it made."""
    run = run or run_dir_for(config)
    task, templates = check_run(config, run)
    created = _make_run_folder(run, config)
    started = False
    try:
        with _set_up(config, display, run, task, templates) as loop:
            started = True
            yield loop
    except BaseException:
        if created and not started:
            _remove_failed_start(run)
        raise


@contextmanager
def _set_up(
    config: LoopConfig,
    display: Display,
    run: RunDir,
    task: TaskEnvironment,
    templates: Templates,
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
            client = stack.enter_context(teacher_client(config.teacher, run))
            # Closed on the event loop it talks on, before its server (if any) stops.
            stack.callback(runner.run, client.aclose())
            teacher = Teacher(
                client, config.teacher.kind, templates, seed=config.teacher.seed + config.seed
            )
            if config.env.discover_skills:
                task = _discover(config, task, teacher, run, runner, display)
        # Made here, not in check_run: llm-planner needs the teacher.
        policy = make_policy(
            config.policy.name,
            teacher=teacher,
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
                strategy=config.engine.strategy,
                shots=config.engine.shots,
                per_query=config.engine.per_query,
                max_rounds=config.engine.max_rounds,
                votes=config.engine.votes,
                temperature=config.teacher.temperature,
                max_tokens=config.teacher.max_tokens,
                novelty=config.engine.novelty,
                show_student_answer=config.engine.show_student_answer,
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
            labeller=None
            if teacher is None
            else subskill_labeller(SkillDiscovery(teacher), runner),
        )
        yield Loop(env, policy, source, run, display, runner=runner)


def _control_source(
    config: LoopConfig, task: TaskEnvironment, held_out: list[Example] | None = None
) -> DataSource:
    """The data source standing in for the teacher when ``engine.source`` is not ``teacher``."""
    if config.engine.source == "oracle":
        return TaskSampler(
            task, max_examples=config.engine.max_examples, seed=config.seed, held_out=held_out
        )
    return NoNewData()
