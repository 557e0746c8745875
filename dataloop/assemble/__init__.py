"""Build a ready Loop (task, student, teacher, policy, engine) from a LoopConfig: the checks a
run makes first (``checks``), its run folder (``folders``), and the building (``build``)."""

from __future__ import annotations

from typing import Any

from dataloop.assemble.build import open_loop, run_loop, run_teacher_client
from dataloop.assemble.checks import CHECK_SAMPLE, check_run
from dataloop.assemble.folders import (
    RESUME_FIELDS,
    new_run_dir,
    resume_config,
    run_dir_for,
    task_options,
    training_set,
)
from dataloop.deprecation import deprecated, moved_names
from dataloop.llm import backends

__all__ = [
    "CHECK_SAMPLE",
    "RESUME_FIELDS",
    "check_run",
    "new_run_dir",
    "open_loop",
    "resume_config",
    "run_dir_for",
    "run_loop",
    "task_options",
    "training_set",
]

# The teacher's backends once lived here; dataloop.llm.backends holds them now.
_moved = moved_names(
    __name__,
    {
        **dict.fromkeys(("check_teacher", "teacher_servers"), backends.__name__),
        "SPLITS": "dataloop.environments",  # imported here once, so it looked public
    },
)


def __getattr__(name: str) -> Any:
    if name == "teacher_client":
        deprecated(
            "dataloop.assemble.teacher_client(config, run, budget) is deprecated: use "
            "dataloop.llm.backends.teacher_client(config, cache_dir=run.cache, "
            "server_log=run.teacher_log, budget=budget)"
        )
        return run_teacher_client
    return _moved(name)
