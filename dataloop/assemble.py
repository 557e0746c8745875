"""Build a ready Loop (task, student, teacher, policy, engine) from a LoopConfig."""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from dataloop.config import LoopConfig, TeacherConfig, dump_config
from dataloop.display import Display
from dataloop.engine.engine import Engine
from dataloop.engine.sources import DataSource, NoNewData, TaskSampler
from dataloop.engine.strategy import Templates
from dataloop.environments import TaskEnvironment, load_task
from dataloop.errors import ConfigError
from dataloop.gym import Environment
from dataloop.llm.base import LLMClient
from dataloop.llm.cache import ResponseCache
from dataloop.llm.client import Flavor, OpenAIClient
from dataloop.llm.offline import VLLMOfflineClient
from dataloop.llm.server import default_gguf, llama_server, vllm_server
from dataloop.logs import attach_run_log, detach
from dataloop.loop import Loop
from dataloop.policies import make_policy, resolve_policy
from dataloop.runs import RunDir
from dataloop.schema import Budget
from dataloop.skills import SkillDiscovery, discover_skills
from dataloop.taskdata import SPLITS


def run_dir_for(config: LoopConfig) -> RunDir:
    """The run folder named by the config, or ``<env>-<timestamp>``."""
    name = config.name or f"{Path(config.env.name).stem}-{datetime.now():%Y%m%d-%H%M%S}"
    return RunDir(config.runs_dir / name)


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


@contextmanager
def teacher_client(teacher: TeacherConfig, run: RunDir) -> Iterator[LLMClient]:
    """The configured teacher; a server it starts lives as long as the block."""
    model = teacher.served_model or teacher.model
    if teacher.backend == "llama-server":
        gguf = Path(teacher.model) if teacher.model else default_gguf()
        if not gguf.is_file():
            raise ConfigError(f"config field 'teacher.model': GGUF file {gguf} does not exist")
        model = gguf.stem
    elif not teacher.model or not model:
        raise ConfigError(
            f"config field 'teacher.model': the {teacher.backend} backend needs a model"
        )
    price = teacher.prices.get(model)
    if teacher.max_cost is not None and price is None:
        raise ConfigError(
            f"config field 'teacher.max_cost': teacher.prices has no entry for model '{model}'; "
            "add its price per million prompt and completion tokens"
        )
    accounting: dict[str, Any] = {
        "budget": Budget(max_queries=teacher.max_queries, max_tokens=teacher.max_total_tokens),
        "cache": ResponseCache(run.cache) if teacher.cache else None,
        "price": price,
        "max_cost": teacher.max_cost,
    }
    http: dict[str, Any] = {
        "concurrency": teacher.concurrency,
        "timeout": teacher.timeout,
        "retries": teacher.retries,
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
        if not teacher.base_urls:
            raise ConfigError(
                "config field 'teacher.base_urls': the openai backend needs at least one URL, "
                "e.g. http://127.0.0.1:8000/v1"
            )
        key = _api_key(teacher)
        yield OpenAIClient(
            model, teacher.base_urls, key, flavor=teacher.flavor, **http, **accounting
        )
        return
    if teacher.backend == "vllm":
        server = vllm_server(
            teacher.model or model,
            run.teacher_log,
            tensor_parallel_size=teacher.tensor_parallel_size,
            max_model_len=teacher.max_model_len,
            lora_modules=teacher.lora_modules,
            max_lora_rank=teacher.max_lora_rank,
            extra_args=teacher.server_args,
        )
    else:
        server = llama_server(
            gguf,
            run.teacher_log,
            parallel=teacher.parallel,
            threads=teacher.threads,
            chat_template=teacher.chat_template,
            extra_args=teacher.server_args,
        )
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
    client: LLMClient,
    templates: Templates,
    run: RunDir,
    runner: asyncio.Runner,
    display: Display,
) -> TaskEnvironment:
    """The task relabelled with the skills in ``run.skills_file``, found by the teacher if the
    file is new; a file already there (an earlier attempt, or the user's edit) is kept."""
    path = run.skills_file
    examples = [e for split in SPLITS for e in task.split(split)]
    questions = {e.question for e in examples}
    limit = client.budget.max_queries
    if not path.exists() and limit is not None and len(questions) >= limit:
        raise ConfigError(
            f"config field 'teacher.max_queries': skill discovery labels each of the "
            f"{len(questions)} questions with one query, more than the budget of {limit}; "
            "raise the budget, use smaller splits, or write the skills file yourself"
        )
    display.log(
        f"skills: reading {path}" if path.exists() else "skills: the teacher proposes a taxonomy"
    )
    discovery = SkillDiscovery(
        client,
        templates=templates,
        kind=config.teacher.kind,
        max_skills=config.env.max_skills,
        seed=config.seed,
    )
    try:
        with display.progress("labelling skills", len(questions)) as advance:
            taxonomy = runner.run(
                discover_skills(client, examples, path, discovery=discovery, on_progress=advance)
            )
    except BaseException:
        runner.run(client.aclose())
        raise
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


@contextmanager
def open_loop(config: LoopConfig, display: Display, run: RunDir | None = None) -> Iterator[Loop]:
    """Everything a run needs, set up in order of cost: cheap checks fail before slow loads."""
    run = run or run_dir_for(config)
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
        _control_source(config, task)  # a task that cannot sample fails here, before set-up
    resolve_policy(config.policy.name)  # a typo fails here, before any slow set-up
    templates = Templates(config.engine.prompts_dir)
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_config(dump_config(config))
    display.log(f"run folder: {run.path}")
    display.log(f"data: {task.data_source()}")
    from dataloop.students.hf import HFStudent  # torch + transformers: import only when needed

    student = HFStudent(
        config.student,
        seed=config.seed,
        callbacks=[display.train_callback],
        engine_log=run.path / "student-vllm.log",
    )
    with ExitStack() as stack:
        stack.callback(detach, attach_run_log(run.log_file))
        stack.callback(student.close)  # a vLLM eval engine, if any, stops with the run
        # One event loop for everything that talks to the client: its HTTP connections and
        # concurrency limit belong to the loop they were first used on.
        runner = stack.enter_context(asyncio.Runner())
        client: LLMClient | None = None
        if config.engine.source == "teacher":
            if config.iterations > 0:
                display.log(f"starting teacher ({config.teacher.backend})")
            client = stack.enter_context(teacher_client(config.teacher, run))
            if config.env.discover_skills:
                task = _discover(config, task, client, templates, run, runner, display)
        env = Environment(
            task,
            student,
            checkpoints_dir=run.checkpoints,
            max_iterations=config.iterations,
            target_accuracy=config.target_accuracy,
            train_on_seed=config.student.train_on_seed,
        )
        # Made here, not with the cheap checks above: llm-planner needs the teacher client.
        policy = make_policy(
            config.policy.name,
            client=client,
            teacher_kind=config.teacher.kind,
            templates=templates,
            examples_per_iteration=config.policy.examples_per_iteration,
            **config.policy.options,
        )
        source: DataSource
        if client is None:
            source = _control_source(config, task)
        else:
            source = Engine(
                client,
                task,
                templates=templates,
                kind=config.teacher.kind,
                strategy=config.engine.strategy,
                shots=config.engine.shots,
                per_query=config.engine.per_query,
                max_rounds=config.engine.max_rounds,
                votes=config.engine.votes,
                temperature=config.teacher.temperature,
                max_tokens=config.teacher.max_tokens,
                seed=config.teacher.seed + config.seed,
                novelty=config.engine.novelty,
                show_student_answer=config.engine.show_student_answer,
            )
        yield Loop(env, policy, source, run, display, runner=runner)


def _control_source(config: LoopConfig, task: TaskEnvironment) -> DataSource:
    """The data source standing in for the teacher when ``engine.source`` is not ``teacher``."""
    if config.engine.source == "oracle":
        return TaskSampler(task, max_examples=config.engine.max_examples, seed=config.seed)
    return NoNewData()
