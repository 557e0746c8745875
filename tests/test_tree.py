"""The skill tree on its own (dataloop.tree): built from a task, grown by explore actions,
scored from a validation grading."""

from __future__ import annotations

import pytest

from dataloop.environments import load_task
from dataloop.schema import Example, Explore, SkillInfo
from dataloop.tree import grow_tree, new_tree, score_tree

OPTIONS = {"train_per_skill": 6, "validation_per_skill": 30, "test_per_skill": 4}


def _task():
    return load_task("arithmetic", options={**OPTIONS, "skills": ["sort", "max"]})


def test_a_new_tree_has_every_skill_and_the_tasks_subskills_as_candidates() -> None:
    task = _task()
    tree = new_tree(task)
    assert [n.name for n in tree.skills] == ["sort", "max"]
    assert all(n.subskills == [] for n in tree.skills)
    assert tree.node("max").candidates == task.subskills("max")


def test_growing_takes_a_candidate_and_asks_the_labeller_only_for_its_own_skill(caplog) -> None:
    task = _task()
    tree = new_tree(task)
    examples = task.split("validation") + task.split("train")
    asked: list[tuple[set[str], list[str]]] = []

    def labeller(shown: list[Example], subskills: list[SkillInfo]) -> dict[str, str | None]:
        asked.append(({e.skill for e in shown}, [s.name for s in subskills]))
        return {e.id: "big" if int(e.answer) > 50 else None for e in shown}

    added = grow_tree(
        tree,
        [
            Explore(skill="max", name="Same Tens"),  # a candidate, labelled by the task
            Explore(skill="max", name="big", description="the answer is above 50"),
            Explore(skill="max", name="vague"),  # no description: the teacher cannot label it
            Explore(skill="nope", name="x", description="y"),
        ],
        iteration=3,
        examples=examples,
        labeller=labeller,
    )
    assert [(s.name, s.labelled_by, s.iteration) for s in added] == [
        ("same-tens", "task", 3),
        ("big", "teacher", 3),
    ]
    assert asked == [({"max"}, ["big"])]  # one call, for max's teacher-made subskills only
    node = tree.node("max")
    assert "same-tens" not in [c.name for c in node.candidates]
    big = node.subskill("big")
    assert big.members and all(
        e.id in big.members for e in examples if e.skill == "max" and int(e.answer) > 50
    )
    assert "skipped" in caplog.text
    # Without a labeller only what the task can label grows.
    assert (
        grow_tree(
            new_tree(task),
            [Explore(skill="max", name="big", description="d")],
            iteration=1,
            examples=examples,
        )
        == []
    )


def test_scoring_gives_each_node_and_subskill_its_accuracy_items_and_data() -> None:
    task = _task()
    tree = new_tree(task)
    examples = task.split("validation")
    grow_tree(tree, [Explore(skill="max", name="same-tens")], iteration=1, examples=examples)
    scores = [e.skill == "max" and bool(task.in_subskill(e, "same-tens")) for e in examples]
    train = task.split("train")
    score_tree(tree, task, examples, scores, train)
    sort, top = tree.node("sort"), tree.node("max")
    assert (sort.accuracy, sort.items, sort.data) == (0.0, 30, 6)
    inside = sum(bool(task.in_subskill(e, "same-tens")) for e in examples if e.skill == "max")
    assert 0 < inside < 30
    assert top.accuracy == pytest.approx(inside / 30)
    sub = top.subskill("same-tens")
    assert (sub.items, sub.accuracy) == (inside, 1.0)
    assert sub.data == sum(
        bool(task.in_subskill(e, "same-tens")) for e in train if e.skill == "max"
    )
