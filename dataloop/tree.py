"""The skill tree of a ``skill-tree`` environment: built from the task, grown by the policy's
``explore`` actions, scored on each validation grading.

The tree (:class:`~dataloop.schema.SkillTree`) starts with every skill of the task, no subskill,
and the task's :meth:`~dataloop.environments.TaskEnvironment.subskills` as candidates. A
subskill the task offers is labelled by the task's rule; any other by a :data:`Labeller` (the
teacher), which places the skill's examples among its teacher-made subskills.
:class:`~dataloop.gym.Environment` holds one tree and shows a copy in every observation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from dataloop.environments import TaskEnvironment, belongs
from dataloop.schema import Example, Explore, SkillInfo, SkillNode, SkillTree, Subskill
from dataloop.skills import slug

log = logging.getLogger(__name__)

Labeller = Callable[[list[Example], list[SkillInfo]], dict[str, str | None]]
"""Places examples (all of one skill) in one of that skill's teacher-made subskills: example id
-> subskill name, or None where none fits. The run's is the teacher (:mod:`dataloop.skills`)."""


def new_tree(task: TaskEnvironment) -> SkillTree:
    """Every skill of the task, no subskills yet, the task's subskills as candidates."""
    return SkillTree(
        skills=[
            SkillNode(name=s.name, description=s.description, candidates=task.subskills(s.name))
            for s in task.skills()
        ]
    )


def grow_tree(
    tree: SkillTree,
    explore: list[Explore],
    *,
    iteration: int,
    examples: list[Example],
    labeller: Labeller | None = None,
) -> list[Subskill]:
    """Add the subskills ``explore`` asks for to ``tree`` (in place); return those added.

    ``iteration`` is the one whose plan adds them. A subskill the task offers (a candidate) is
    labelled by the task's rule; any other by ``labeller``, which then places the skill's
    ``examples`` (the validation and seed examples) among all its teacher-made subskills. An
    unknown skill, a name already in the tree, or (without a labeller) a subskill the task
    does not offer is skipped and logged.
    """
    added: list[Subskill] = []
    relabel: set[str] = set()
    for action in explore:
        node = tree.node(action.skill)
        name = slug(action.name)
        if node is None or not name or node.subskill(name) is not None:
            log.warning("explore %s/%s skipped: unknown skill or known name", action.skill, name)
            continue
        offered = next((c for c in node.candidates if c.name == name), None)
        if offered is not None:
            sub = Subskill(
                name=name,
                description=action.description or offered.description,
                iteration=iteration,
                labelled_by="task",
            )
            node.candidates = [c for c in node.candidates if c.name != name]
        elif labeller is None or not action.description.strip():
            log.warning(
                "explore %s/%s skipped: the task cannot label it and %s",
                action.skill,
                name,
                "no teacher labels" if labeller is None else "it has no description",
            )
            continue
        else:
            sub = Subskill(
                name=name,
                description=action.description.strip(),
                iteration=iteration,
                labelled_by="teacher",
            )
            relabel.add(node.name)
        node.subskills.append(sub)
        added.append(sub)
    for skill in relabel:
        assert labeller is not None  # only teacher-labelled subskills are relabelled
        _label(tree, skill, [e for e in examples if e.skill == skill], labeller)
    return added


def _label(tree: SkillTree, skill: str, examples: list[Example], labeller: Labeller) -> None:
    """The teacher places ``examples`` (of ``skill``) in its teacher-made subskills (each
    example in at most one)."""
    node = tree.node(skill)
    assert node is not None
    made = [s for s in node.subskills if s.labelled_by == "teacher"]
    labels = labeller(examples, [SkillInfo(name=s.name, description=s.description) for s in made])
    for sub in made:
        sub.members = [e.id for e in examples if labels.get(e.id) == sub.name]


def score_tree(
    tree: SkillTree,
    task: TaskEnvironment,
    graded: list[Example],
    scores: list[bool],
    train_set: list[Example],
) -> None:
    """Per-node accuracy, items and data (in place) from a validation grading: ``graded``
    scored ``scores``, with ``train_set`` the student's training data."""
    for node in tree.skills:
        mine = [(e, ok) for e, ok in zip(graded, scores, strict=True) if e.skill == node.name]
        node.accuracy = sum(ok for _, ok in mine) / len(mine) if mine else 0.0
        node.items = len(mine)
        data = [e for e in train_set if e.skill == node.name]
        node.data = len(data)
        for sub in node.subskills:
            inside = [ok for e, ok in mine if belongs(task, sub, e)]
            sub.items = len(inside)
            sub.accuracy = sum(inside) / len(inside) if inside else None
            sub.data = sum(belongs(task, sub, e) for e in data)
