"""Difficulty at the edge: keep each skill's data near a target solve rate of the student.

R-Zero (Huang et al. 2025) and Absolute Zero (Zhao et al. 2025) reward problems the current
student solves about half the time; TAPIR (Yue et al. 2024) raises a task's difficulty as the
student improves. :class:`DifficultyEdge` does both with the task's declared difficulty levels
(:meth:`~dataloop.environments.TaskEnvironment.levels`): each iteration it asks the teacher for
data of each skill at one level, asks the loop to measure the student's sampled solve rate on
the accepted candidates before training on them (:mod:`dataloop.difficulty`), and moves the
skill's level by that rate for the next iteration.
"""

from __future__ import annotations

from typing import Any

from dataloop.environments import TaskEnvironment
from dataloop.errors import ConfigError
from dataloop.policies.base import Policy, allocate, check_fraction
from dataloop.schema import (
    GenerationRequest,
    Observation,
    Plan,
    SkillDifficulty,
    SolveRateProbe,
)


class DifficultyEdge(Policy):
    """Each skill's data at the difficulty level where the student solves about ``target`` of
    its sampled answers.

    Every skill gets an equal share of the iteration's examples. A skill the task declares
    levels for is asked at one level (the prompt names it with the task's description; the
    task rejects candidates at another level). The loop then samples ``samples`` student
    answers at ``temperature`` for each of up to ``candidates`` accepted candidates per skill,
    before training on them, and records the solve rate in ``Observation.difficulty``. The
    next plan moves the level up one when the rate is above ``target + band``, down one when it
    is below ``target - band``, and keeps it otherwise (or when nothing was measured). A skill
    without levels gets its share with no level and is not measured; a task with no levels at
    all is refused before the run starts (:func:`check_levels`).

    Options:
        target: the solve rate to keep the data at (default 0.5).
        band: how far the rate may stray from ``target`` before the level moves (default 0.15).
        samples: student answers sampled per candidate question, k (default 4).
        temperature: the student's sampling temperature, above 0 (default 1.0).
        candidates: most candidates measured per skill and iteration (default 32); the cost is
            at most ``candidates × samples`` student answers per skill and iteration.
        start_level: the level of the first plan, counted from 0 (default 0, the easiest;
            clipped to a skill's hardest).
    """

    name = "edge"
    structures = frozenset({"skill-list", "skill-tree"})  # solve rates are per skill
    needs_levels = True  # refused for a task without difficulty levels (check_levels)

    def __init__(
        self,
        examples_per_iteration: int = 240,
        strategy: str = "new-question",
        target: float = 0.5,
        band: float = 0.15,
        samples: int = 4,
        temperature: float = 1.0,
        candidates: int = 32,
        start_level: int = 0,
    ) -> None:
        super().__init__(examples_per_iteration, strategy)
        self.target = check_fraction("target", target)
        self.band = check_fraction("band", band)
        if start_level < 0:
            raise ValueError("start_level must be >= 0 (levels count from 0, the easiest)")
        self.start_level = start_level
        if samples < 1 or candidates < 1:
            raise ValueError("samples and candidates must be >= 1")
        if temperature <= 0:
            raise ValueError("temperature must be > 0: greedy answers to a question all agree")
        self.probe = SolveRateProbe(samples=samples, temperature=temperature, candidates=candidates)

    def next_level(self, count: int, last: SkillDifficulty | None) -> int:
        """The level of the next plan for a skill with ``count`` levels, from the level and
        solve rate measured in the last iteration (``last``; None before any)."""
        if last is None or last.level is None:
            return min(self.start_level, count - 1)
        level = min(last.level, count - 1)
        rate = last.solve_rate
        if rate is None:
            return level
        if rate > self.target + self.band:
            return min(level + 1, count - 1)
        if rate < self.target - self.band:
            return max(level - 1, 0)
        return level

    def plan(self, obs: Observation) -> Plan:
        allocation = allocate(self.examples_per_iteration, {s.name: 1.0 for s in obs.skills})
        requests: list[GenerationRequest] = []
        notes: list[str] = []
        for skill, count in allocation.items():
            levels = obs.levels.get(skill, [])
            level = self.next_level(len(levels), obs.difficulty.get(skill)) if levels else None
            if count > 0:
                requests.append(
                    GenerationRequest(skill=skill, strategy=self.strategy, count=count, level=level)
                )
            if level is not None:
                notes.append(f"{skill} {levels[level].name}{_because(obs.difficulty.get(skill))}")
        rationale = f"levels at a {self.target:.0%} ± {self.band:.0%} solve rate: " + ", ".join(
            notes
        )
        return Plan(requests=requests, rationale=rationale, solve_rate=self.probe)


def _because(last: SkillDifficulty | None) -> str:
    """What the level was decided from, for the rationale."""
    if last is None or last.solve_rate is None:
        return ""
    return f" (was {last.level_name}, {last.solve_rate:.0%} solved)"


def check_levels(policy: Any, task: TaskEnvironment) -> None:
    """Raise ConfigError if ``policy`` (a Policy class or function) needs difficulty levels
    (``needs_levels``) and ``task`` declares none for any of its skills."""
    if not getattr(policy, "needs_levels", False):
        return
    if any(task.levels(skill.name) for skill in task.skills()):
        return
    raise ConfigError(
        f"config field 'policy.name': policy '{getattr(policy, 'name', policy)}' needs "
        f"difficulty levels, and environment '{task.name}' declares none for its skills "
        "(TaskEnvironment.levels); use a task with levels or another policy"
    )
