"""Run folders: where a run lives, a new one refused over an old one, the config a resumed run
continues with, and a finished run's options and training set."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from dataloop.config import (
    LoopConfig,
    dump_config,
    load_config,
)
from dataloop.environments import load_task
from dataloop.errors import ConfigError
from dataloop.gym import feedback_split
from dataloop.identity import code_identity
from dataloop.runs import RunDir, RunError
from dataloop.schema import Example


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


def make_run_folder(run: RunDir, config: LoopConfig) -> bool:
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
