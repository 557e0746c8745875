"""The arithmetic gym: deterministic disjoint splits and a verifier that recomputes answers."""

from __future__ import annotations

import pytest
from conftest import ALL_ARITHMETIC

from dataloop.environments import load_task
from dataloop.envs.arithmetic import ArithmeticTask
from dataloop.errors import RegistryError
from dataloop.schema import Example


def test_splits_are_deterministic_disjoint_and_sized(arithmetic) -> None:
    again = load_task(
        "arithmetic",
        options={"validation_per_skill": 20, "test_per_skill": 20, "skills": ALL_ARITHMETIC},
    )
    assert again.split("validation") == arithmetic.split("validation")
    questions = [
        {(e.skill, e.question) for e in arithmetic.split(s)}
        for s in ("train", "validation", "test")
    ]
    assert not (
        questions[0] & questions[1] or questions[0] & questions[2] or questions[1] & questions[2]
    )
    assert len(arithmetic.skills()) >= 6
    assert len(arithmetic.split("train")) == 24 * len(arithmetic.skills())
    other_seed = load_task(
        "arithmetic", seed=1, options={"validation_per_skill": 20, "skills": ALL_ARITHMETIC}
    )
    assert other_seed.split("train") != arithmetic.split("train")


@pytest.mark.parametrize(
    ("skill", "question", "answer"),
    [
        ("add", "12 + 35", "47"),
        ("sub", "57-23", "34"),
        ("mul", "7*34", "238"),
        ("max", "max(41, 17)", "41"),
        ("reverse", "rev(cat)", "tac"),
        ("sort", "sort(5213)", "1235"),
        ("first", "first(house)", "h"),
        ("last", "last( house )", "e"),
        ("len", "len(ab)", "2"),
    ],
)
def test_verify_recomputes_a_wrong_answer(arithmetic, skill, question, answer) -> None:
    checked = arithmetic.verify(Example.make(skill, question, "999", source="generated"))
    assert checked is not None
    assert checked.answer == answer
    assert checked.question == question.replace(" ", "")
    assert checked.provenance.relabelled and checked.provenance.source == "generated"


@pytest.mark.parametrize(
    ("skill", "question"),
    [
        ("add", "12+"),  # truncated
        ("add", "123+45"),  # outside the skill: 3 digits
        ("add", "12-35"),  # another skill's question
        ("sub", "23-57"),  # negative result is not part of the skill
        ("mul", "1*34"),
        ("reverse", "rev(CAT)"),
        ("sort", "sort(12)"),
        ("nosuchskill", "1+1"),
        ("max", "Q: max(1,2)"),
        ("first", "first(ab)"),  # words of 3-6 letters
        ("last", "last(abcdefg)"),
        ("len", "len(abcdefghij)"),  # 2-9 letters
        ("len", "len(Ab)"),
    ],
)
def test_verify_rejects_malformed_questions(arithmetic, skill, question) -> None:
    assert arithmetic.verify(Example.make(skill, question, "1")) is None


def test_correct_answer_is_not_marked_relabelled(arithmetic) -> None:
    checked = arithmetic.verify(Example.make("add", "10+10", "20"))
    assert checked is not None and not checked.provenance.relabelled


def test_scoring_reads_the_first_line(arithmetic) -> None:
    ex = Example.make("add", "12+35", "47")
    assert arithmetic.prompt("12+35") == "12+35="
    assert arithmetic.score(ex, "47\n12+")
    assert not arithmetic.score(ex, "48")


def test_default_mix_is_the_documented_one() -> None:
    task = load_task("arithmetic")
    assert [s.name for s in task.skills()] == ["first", "last", "len", "max", "sort", "reverse"]


def test_imbalanced_seeds_change_only_the_named_skills_counts() -> None:
    task = ArithmeticTask(seed=3, train_per_skill={"first": 50, "max": 4})
    counts = {s.name: 0 for s in task.skills()}
    for e in task.split("train"):
        counts[e.skill] += 1
    assert counts == {"first": 50, "last": 24, "len": 24, "max": 4, "sort": 24, "reverse": 24}
    # The other skills' questions are those of the balanced gym: each skill draws its own.
    plain = ArithmeticTask(seed=3)
    same = [e.question for e in task.split("validation") if e.skill == "sort"]
    assert same == [e.question for e in plain.split("validation") if e.skill == "sort"]
    with pytest.raises(ValueError, match="not skills of this gym"):
        ArithmeticTask(train_per_skill={"add": 5})
    with pytest.raises(ValueError, match="whole numbers"):
        ArithmeticTask(train_per_skill={"max": -1})


def test_coverage_gap_draws_seeds_from_one_slice_and_evaluates_on_all() -> None:
    gap = {"len": "short-words", "max": "first-larger"}
    task = ArithmeticTask(seed=1, train_subskill=gap, validation_per_skill=200)
    for skill, sub in gap.items():
        seeds = [e for e in task.split("train") if e.skill == skill]
        assert len(seeds) == 24 and all(task.in_subskill(e, sub) for e in seeds)
        val = [e for e in task.split("validation") if e.skill == skill]
        outside = [e for e in val if not task.in_subskill(e, sub)]
        assert 0.3 < len(outside) / len(val) < 0.7  # the rest of the skill is evaluated
    seeds = [e for e in task.split("train") if e.skill == "first"]
    assert not all(task.in_subskill(e, "short-words") for e in seeds)  # unsliced skills
    with pytest.raises(ValueError, match="has no subskill 'long'; known: short-words"):
        ArithmeticTask(train_subskill={"len": "long"})
    with pytest.raises(RegistryError, match=r"env\.options"):
        load_task("arithmetic", options={"train_subskill": {"len": "long"}})


@pytest.mark.parametrize("skill", ALL_ARITHMETIC)
def test_every_question_of_a_skill_is_at_exactly_one_of_its_levels(arithmetic, skill) -> None:
    import random

    from dataloop.envs.arithmetic import LEVELS, canonical, operands

    levels = arithmetic.levels(skill)
    assert len(levels) >= 2
    seen = set()
    for example in arithmetic.sample(skill, 400, random.Random(0)):
        words = operands(canonical(example.question))
        holds = [i for i, (_, _, rule) in enumerate(LEVELS[skill]) if rule(words)]
        assert holds == [arithmetic.level_of(example)], example.question
        seen.add(holds[0])
    assert seen == set(range(len(levels)))  # every level occurs in the skill's distribution


@pytest.mark.parametrize(
    ("skill", "question", "level"),
    [
        ("add", "23+45", "no-carry"),
        ("add", "27+45", "one-carry"),
        ("add", "68+57", "two-carries"),
        ("sub", "52-27", "borrow"),
        ("mul", "7*34", "three-digit-product"),
        ("max", "max(43,47)", "same-tens"),
        ("sort", "sort(1324)", "few-swaps"),
        ("sort", "sort(5213)", "many-swaps"),
        ("len", "len(elephant)", "8-9-letters"),
        ("reverse", "rev(house)", "5-letters"),
    ],
)
def test_the_levels_describe_and_place_questions(arithmetic, skill, question, level) -> None:
    names = [lv.name for lv in arithmetic.levels(skill)]
    example = Example.make(skill, question, "0")
    assert names[arithmetic.level_of(example)] == level
    # Each level's description carries an example the level's own rule places there.
    for i, described in enumerate(arithmetic.levels(skill)):
        shown = described.description.split("e.g. ")[1].split(" = ")[0]
        assert arithmetic.level_of(Example.make(skill, shown, "0")) == i, described


def test_a_malformed_question_has_no_level(arithmetic) -> None:
    assert arithmetic.level_of(Example.make("add", "123+4", "127")) is None


def test_the_oracle_samples_at_a_requested_level(arithmetic) -> None:
    import asyncio

    from dataloop.engine.sources import TaskSampler
    from dataloop.schema import GenerationRequest, Observation, Plan

    plan = Plan(requests=[GenerationRequest(skill="add", count=10, level=2)])
    obs = Observation(iteration=0, skills=arithmetic.skills(), accuracy={}, mean_accuracy=0.0)
    result = asyncio.run(TaskSampler(arithmetic).generate(plan, obs, arithmetic.split("train")))
    assert len(result.accepted) == 10
    assert {arithmetic.level_of(e) for e in result.accepted} == {2}
    assert {e.provenance.level for e in result.accepted} == {2}
