"""Check a task environment before a run relies on it (``dataloop envs --check``).

As Gymnasium's ``check_env``: a library function that loads the task and tries its contract on a
few examples of every split, collecting every problem so that a user fixes them in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dataloop.environments import SPLITS, TaskEnvironment, load_task
from dataloop.errors import DataloopError


@dataclass
class TaskCheck:
    """What checking a task found: its skills, split sizes and every problem (none: ok)."""

    skills: list[str]
    sizes: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def check_task(task: TaskEnvironment, sample: int = 5, seeds_verified: bool = True) -> TaskCheck:
    """Try ``task``'s contract: distinct skills, non-empty splits whose skills are known, and
    on ``sample`` examples per split a non-empty prompt, a reference answer that scores as
    correct, an empty answer that does not, and (train) a ``verify`` that does not raise and,
    with ``seeds_verified``, accepts the seed."""
    skills = [s.name for s in task.skills()]
    check = TaskCheck(skills=skills)
    problems = check.problems
    if not skills or len(set(skills)) != len(skills):
        problems.append(f"skills(): expected distinct skill names, got {skills}")
    for split in SPLITS:
        try:
            examples = task.split(split)
        except Exception as exc:
            problems.append(f"split('{split}') raised {type(exc).__name__}: {exc}")
            continue
        check.sizes[split] = len(examples)
        if not examples:
            problems.append(f"split('{split}') is empty")
        stray = sorted({e.skill for e in examples} - set(skills))
        if stray:
            problems.append(f"split('{split}') has skills not in skills(): {stray}")
        for e in examples[:sample]:
            try:
                if not task.prompt(e.question).strip():
                    problems.append(f"prompt() of {e.id} ({split}) is empty")
                if not task.score(e, task.target(e)):
                    problems.append(
                        f"score({e.id}, target({e.id})) is False ({split}): the reference "
                        "answer must score as correct; check extract() and score()"
                    )
                if task.score(e, ""):
                    problems.append(f"score({e.id}, '') is True ({split}): empty output wins")
                if split == "train" and task.verify(e) is None and seeds_verified:
                    problems.append(f"verify() rejects the seed example {e.id}")
            except Exception as exc:
                problems.append(f"{e.id} ({split}): {type(exc).__name__}: {exc}")
    return check


def check_environment(
    spec: str, options: dict[str, Any] | None = None, sample: int = 5
) -> TaskCheck:
    """Load the environment ``spec`` with ``options`` and :func:`check_task` it.

    A task that cannot be loaded or list its skills raises DataloopError naming why.
    """
    try:
        return check_task(load_task(spec, options=options), sample)
    except DataloopError:
        raise
    except Exception as exc:
        raise DataloopError(f"loading '{spec}' failed: {type(exc).__name__}: {exc}") from None
