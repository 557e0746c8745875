"""Build a ready Loop (task, student, teacher, policy, engine) from a LoopConfig."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path

from dataloop.config import LoopConfig, TeacherConfig, dump_config
from dataloop.display import Display
from dataloop.engine.engine import Engine
from dataloop.engine.strategy import Templates
from dataloop.environments import load_task
from dataloop.errors import ConfigError
from dataloop.gym import Environment
from dataloop.llm.cache import ResponseCache
from dataloop.llm.client import OpenAIClient
from dataloop.llm.server import default_gguf, llama_server
from dataloop.loop import Loop
from dataloop.policies import make_policy
from dataloop.runs import RunDir
from dataloop.schema import Budget


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
def teacher_client(teacher: TeacherConfig, run: RunDir) -> Iterator[OpenAIClient]:
    """The configured teacher; for ``llama-server`` the server lives as long as the block."""
    budget = Budget(max_queries=teacher.max_queries, max_tokens=teacher.max_total_tokens)
    cache = ResponseCache(run.cache) if teacher.cache else None
    options = dict(
        concurrency=teacher.concurrency,
        timeout=teacher.timeout,
        retries=teacher.retries,
        budget=budget,
        cache=cache,
    )
    if teacher.backend == "openai":
        if not teacher.base_urls or not teacher.model:
            raise ConfigError(
                "config field 'teacher.base_urls': the openai backend needs base_urls and model"
            )
        yield OpenAIClient(teacher.model, teacher.base_urls, _api_key(teacher), **options)  # type: ignore[arg-type]
        return
    gguf = Path(teacher.model) if teacher.model else default_gguf()
    if not gguf.is_file():
        raise ConfigError(f"config field 'teacher.model': GGUF file {gguf} does not exist")
    server = llama_server(gguf, run.teacher_log, parallel=teacher.parallel, threads=teacher.threads)
    with server:
        yield OpenAIClient(gguf.stem, [server.base_url], **options)  # type: ignore[arg-type]


@contextmanager
def open_loop(config: LoopConfig, display: Display, run: RunDir | None = None) -> Iterator[Loop]:
    """Everything a run needs, set up in order of cost: cheap checks fail before slow loads."""
    run = run or run_dir_for(config)
    task = load_task(config.env.name, seed=config.seed, options=config.env.options)
    policy = make_policy(
        config.policy.name,
        examples_per_iteration=config.policy.examples_per_iteration,
        **config.policy.options,
    )
    templates = Templates(config.engine.prompts_dir)
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_config(dump_config(config))
    display.log(f"run folder: {run.path}")
    from dataloop.students.hf import HFStudent  # torch + transformers: import only when needed

    student = HFStudent(config.student, seed=config.seed, callbacks=[display.train_callback])
    env = Environment(
        task,
        student,
        checkpoints_dir=run.checkpoints,
        max_iterations=config.iterations,
        target_accuracy=config.target_accuracy,
        train_on_seed=config.student.train_on_seed,
    )
    with ExitStack() as stack:
        if config.iterations > 0:
            display.log(f"starting teacher ({config.teacher.backend})")
        client = stack.enter_context(teacher_client(config.teacher, run))
        engine = Engine(
            client,
            task,
            templates=templates,
            kind=config.teacher.kind,
            strategy=config.engine.strategy,
            shots=config.engine.shots,
            per_query=config.engine.per_query,
            max_rounds=config.engine.max_rounds,
            temperature=config.teacher.temperature,
            max_tokens=config.teacher.max_tokens,
            seed=config.teacher.seed + config.seed,
        )
        yield Loop(env, policy, engine, run, display)
