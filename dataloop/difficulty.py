"""The student's sampled solve rate on generated candidates, per skill and difficulty level.

R-Zero and Absolute Zero keep generated problems near a 50 % solve rate for the current
student: a problem it always solves teaches nothing, one it never solves teaches little. This
measures that rate when a plan asks for it (``Plan.solve_rate``): for each of (at most
``candidates``) accepted candidates of a skill asked at a level the student samples
``samples`` answers at ``temperature``, and the task scores each. It runs before the student
trains on the candidates, so the rate is the current student's, not one that has seen the
answers. The ``edge`` policy
(:class:`~dataloop.policies.edge.DifficultyEdge`) moves each skill's level by it.

The cost is student inference, not teacher queries: ``candidates × samples`` answers per skill,
recorded as :attr:`~dataloop.schema.SkillDifficulty.samples` in each observation.
"""

from __future__ import annotations

from collections import Counter

from dataloop.environments import TaskEnvironment
from dataloop.errors import ConfigError
from dataloop.schema import Example, Plan, SkillDifficulty
from dataloop.students.base import SamplingStudent, Student


def measure_solve_rates(
    task: TaskEnvironment, student: Student, plan: Plan, examples: list[Example]
) -> dict[str, SkillDifficulty]:
    """Per skill that ``plan`` asks for at a difficulty level: that level and how many of the
    student's sampled answers to the first ``plan.solve_rate.candidates`` of the skill's
    ``examples`` (the accepted candidates) the task scores correct. Empty when the plan asks
    for no measurement; a skill with no accepted candidates is recorded with nothing measured.

    Raises ConfigError when the student cannot sample (it has no ``sample`` method).
    """
    probe = plan.solve_rate
    if probe is None:
        return {}
    levels = {r.skill: r.level for r in plan.requests if r.level is not None}
    if not levels:
        return {}
    if not isinstance(student, SamplingStudent):
        raise ConfigError(
            f"the plan asks for the student's solve rate, and the student "
            f"({type(student).__name__}) cannot sample answers: give it a "
            "sample(prompts, n, temperature) method or use another policy"
        )
    by_skill: dict[str, list[Example]] = {skill: [] for skill in levels}
    for example in examples:
        group = by_skill.get(example.skill)
        if group is not None and len(group) < probe.candidates:
            group.append(example)
    measured = [e for group in by_skill.values() for e in group]
    k = probe.samples
    answers = (
        student.sample([task.prompt(e.question) for e in measured], k, probe.temperature)
        if measured
        else []
    )
    repeated = [e for e in measured for _ in range(k)]
    scores = task.score_many(repeated, [a for group in answers for a in group])
    solved: Counter[str] = Counter(e.skill for e, ok in zip(repeated, scores, strict=True) if ok)
    result: dict[str, SkillDifficulty] = {}
    for skill, level in levels.items():
        declared = task.levels(skill)
        result[skill] = SkillDifficulty(
            level=level,
            level_name=declared[level].name if level < len(declared) else None,
            candidates=len(by_skill[skill]),
            samples=len(by_skill[skill]) * k,
            solved=solved[skill],
        )
    return result
