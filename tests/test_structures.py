"""The three levels of structure (#15): the feedback split, open-ended observations, data-quality
feedback, and the skill tree (growth, per-node numbers, targeted data, resume)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path

import pytest
from test_gym import Memorises

from dataloop.engine.engine import Engine
from dataloop.engine.sources import TaskSampler
from dataloop.environments import belongs, load_task
from dataloop.gym import Environment, feedback_split
from dataloop.llm.base import Completion, Sampling
from dataloop.llm.teacher import Teacher
from dataloop.llm.templates import Templates
from dataloop.loop import Loop
from dataloop.runs import RunDir
from dataloop.schema import (
    Budget,
    Example,
    Explore,
    GenerationRequest,
    Observation,
    Plan,
    SkillTree,
)

OPTIONS = {"train_per_skill": 6, "validation_per_skill": 30, "test_per_skill": 4}


def _task(**options):
    return load_task("arithmetic", options={**OPTIONS, **options})


def _env(tmp_path: Path, task=None, **kwargs) -> Environment:
    return Environment(task or _task(), Memorises(), checkpoints_dir=tmp_path / "ckpt", **kwargs)


# the feedback split


def test_a_sampling_task_draws_fresh_probes_and_keeps_its_seed_set() -> None:
    task = _task()
    seeds, feedback = feedback_split(task, 5, seed=0)
    assert seeds == task.split("train")
    assert len(feedback) == 5 * len(task.skills())
    held = {e.id for s in ("train", "validation", "test") for e in task.split(s)}
    assert not held & {e.id for e in feedback} and len({e.id for e in feedback}) == len(feedback)
    assert feedback_split(task, 5, seed=0) == (seeds, feedback)  # deterministic
    assert feedback_split(task, 0) == (task.split("train"), [])


def test_a_task_that_cannot_sample_gives_up_at_most_half_of_each_skills_seeds() -> None:
    task = load_task("math")
    train = task.split("train")
    seeds, feedback = feedback_split(task, 1000, seed=1)
    assert len(seeds) + len(feedback) == len(train)
    assert not {e.id for e in seeds} & {e.id for e in feedback}
    for skill in task.skills():
        total = sum(e.skill == skill.name for e in train)
        assert sum(e.skill == skill.name for e in feedback) == total // 2


def test_an_open_ended_observation_shows_the_mean_and_failed_probes_not_per_skill_accuracy(
    tmp_path: Path,
) -> None:
    task = _task()
    seeds, feedback = feedback_split(task, 4)
    env = _env(tmp_path, task, structure="open-ended", seed_set=seeds, feedback=feedback)
    obs, info = env.reset()
    assert obs.structure == "open-ended" and obs.accuracy == {}
    assert [h.accuracy for h in obs.history] == [{}]
    assert env.history[0].accuracy == info["eval"].accuracy()  # the record keeps them
    assert [p.example for p in obs.probes] == feedback  # all fail, all shown, in split order
    half = [e for e in feedback if e.skill in ("sort", "max")]
    obs, *_ = env.step([e for e in feedback if e not in half])  # now only sort and max fail
    assert [p.example for p in obs.probes] == half


def test_a_capped_probe_sample_follows_where_the_failures_are(tmp_path: Path) -> None:
    task = _task()
    seeds, feedback = feedback_split(task, 30)
    env = _env(tmp_path, task, structure="open-ended", seed_set=seeds, feedback=feedback)
    env.probes_shown = 30
    env.reset()
    learned = [e for e in feedback if e.skill != "sort"][:-30]  # 30 of 150 left failing
    obs, *_ = env.step(learned)
    by_skill = Counter(p.example.skill for p in obs.probes)
    assert len(obs.probes) == 30  # 60 fail, a random 30 of them shown
    assert 8 <= by_skill["sort"] <= 22  # half of the failures are sort's: about half the sample
    unlearned = {e.id for e in feedback} - {e.id for e in learned}
    assert len({p.example.id for p in obs.probes}) == 30  # no probe shown twice
    assert {p.example.id for p in obs.probes} <= unlearned  # each one a probe still failed
    assert not any(task.score(p.example, p.prediction) for p in obs.probes)
    rerun = _env(
        tmp_path / "rerun", task, structure="open-ended", seed_set=seeds, feedback=feedback
    )
    rerun.probes_shown = 30
    rerun.reset()
    assert rerun.step(learned)[0].probes == obs.probes  # the sample is seeded: a rerun sees it


def test_a_step_observes_the_students_accuracy_on_the_data_it_was_given(tmp_path: Path) -> None:
    env = _env(tmp_path)
    obs, _ = env.reset()
    assert obs.data_accuracy == {}
    given = [e for e in env.task.split("validation") if e.skill in ("sort", "max")]
    obs, *_ = env.step(given)
    assert obs.data_accuracy == {"sort": 1.0, "max": 1.0}  # Memorises knows what it saw
    env = _env(tmp_path, data_feedback=False)
    env.reset()
    assert env.step(given)[0].data_accuracy == {}


# the skill tree


def test_the_tree_starts_bare_with_the_tasks_subskills_as_candidates(tmp_path: Path) -> None:
    env = _env(tmp_path, structure="skill-tree")
    obs, _ = env.reset()
    assert obs.tree is not None
    assert [n.name for n in obs.tree.skills] == [s.name for s in env.task.skills()]
    sort = obs.tree.node("sort")
    assert sort is not None and sort.subskills == []
    assert [c.name for c in sort.candidates] == [
        "distinct-digits",
        "repeated-digits",
        "sorted-already",
    ]
    assert _env(tmp_path).reset()[0].tree is None  # skill-list has none


def test_growing_a_task_subskill_scores_it_on_the_questions_its_rule_selects(
    tmp_path: Path,
) -> None:
    env = _env(tmp_path, structure="skill-tree")
    reset, _ = env.reset()
    grown = env.explore(
        [
            Explore(skill="sort", name="Repeated Digits"),  # made a slug
            Explore(skill="sort", name="repeated-digits"),  # now known: skipped
            Explore(skill="nope", name="x", description="y"),  # unknown skill: skipped
            Explore(skill="max", name="made-up", description="no labeller: skipped"),
        ]
    )
    added = [s for n in grown.tree.skills for s in n.subskills]
    assert [(s.name, s.labelled_by, s.iteration) for s in added] == [("repeated-digits", "task", 1)]
    assert grown.model_copy(update={"tree": reset.tree}) == reset  # only the tree is new
    assert reset.tree.node("sort").subskills == []  # an earlier observation is not changed
    node = grown.tree.node("sort")
    assert [c.name for c in node.candidates] == ["distinct-digits", "sorted-already"]  # left
    validation = [e for e in env.task.split("validation") if e.skill == "sort"]
    inside = [e for e in validation if env.task.in_subskill(e, "repeated-digits")]
    given = inside[:5]
    obs, *_ = env.step(given)
    sub = obs.tree.node("sort").subskill("repeated-digits")
    assert sub.items == len(inside) and 0 < len(inside) < len(validation)
    assert sub.accuracy == pytest.approx(5 / len(inside))
    seeds_inside = sum(belongs(env.task, sub, e) for e in env.seed_set if e.skill == "sort")
    assert sub.data == seeds_inside + 5
    assert obs.tree.node("sort").accuracy == pytest.approx(5 / len(validation))


def test_the_teacher_labels_a_subskill_the_task_cannot(tmp_path: Path) -> None:
    asked: list[tuple[int, list[str]]] = []

    def labeller(examples: list[Example], subskills) -> dict[str, str | None]:
        asked.append((len(examples), [s.name for s in subskills]))
        return {e.id: "even-end" if int(e.question[-2]) % 2 == 0 else None for e in examples}

    env = _env(tmp_path, structure="skill-tree", labeller=labeller)
    env.reset()
    grown = env.explore([Explore(skill="sort", name="even-end", description="last digit even")])
    added = grown.tree.node("sort").subskills
    assert [(s.name, s.labelled_by) for s in added] == [("even-end", "teacher")]
    n_sort = sum(e.skill == "sort" for e in env.task.split("validation") + env.seed_set)
    assert asked == [(n_sort, ["even-end"])]
    sub = grown.tree.node("sort").subskill("even-end")
    assert sub.members and all(
        e.id in sub.members
        for e in env.task.split("validation")
        if e.skill == "sort" and int(e.question[-2]) % 2 == 0
    )
    obs, *_ = env.step([])
    assert obs.tree.node("sort").subskill("even-end").items > 0


class _Recording:
    """A teacher client that records its prompts and answers nothing."""

    model = "recording"

    def __init__(self) -> None:
        self.budget = Budget()
        self.prompts: list[str] = []

    async def complete(self, prompt: str, sampling: Sampling) -> Completion:
        self.prompts.append(prompt)
        return Completion(texts=[""])


def test_the_engine_describes_the_subskill_and_builds_on_its_seeds(tmp_path: Path) -> None:
    task = _task(train_per_skill=24)
    env = _env(tmp_path, task, structure="skill-tree")
    env.reset()
    obs = env.explore([Explore(skill="reverse", name="five-letters")])
    client = _Recording()
    engine = Engine(Teacher(client, "base", Templates()), task)  # type: ignore[arg-type]
    request = GenerationRequest(skill="reverse", count=3, subskill="five-letters")
    asyncio.run(engine.generate(Plan(requests=[request]), obs, env.train_set))
    assert client.prompts
    for prompt in client.prompts:
        assert '"reverse":' in prompt and "only: 5-letter words." in prompt
        shown = [line[3:] for line in prompt.splitlines() if line.startswith("A: ")]
        assert shown and all(len(answer) == 5 for answer in shown)  # the subskill's seeds only
    reverse = [e for e in task.split("train") if e.skill == "reverse"]
    assert any(len(e.answer) != 5 for e in reverse)  # the skill's other seeds were left out
    other = Plan(requests=[request.model_copy(update={"subskill": "four-letters"})])
    with pytest.raises(Exception, match="subskill 'four-letters'"):
        asyncio.run(engine.generate(other, obs, env.train_set))


def test_the_oracle_serves_a_subskill_request_with_questions_of_that_subskill(
    tmp_path: Path,
) -> None:
    task = _task()
    env = _env(tmp_path, task, structure="skill-tree")
    env.reset()
    obs = env.explore([Explore(skill="max", name="same-tens")])
    plan = Plan(
        requests=[
            GenerationRequest(skill="max", count=12, subskill="same-tens"),
            GenerationRequest(skill="max", count=12),
        ]
    )
    result = asyncio.run(TaskSampler(task, seed=3).generate(plan, obs, env.train_set))
    targeted, plain = result.accepted[:12], result.accepted[12:]
    assert len(targeted) == 12 and all(task.in_subskill(e, "same-tens") for e in targeted)
    assert all(e.provenance.subskill == "same-tens" for e in targeted)
    assert sum(task.in_subskill(e, "same-tens") for e in plain) < 6  # ~10 % of max questions


class _Explorer:
    """Explores one subskill per iteration from the candidates, and asks for data in it."""

    def __call__(self, obs: Observation) -> Plan:
        node = obs.tree.node("sort")
        if node.candidates:
            name = node.candidates[0].name
            return Plan(
                explore=[Explore(skill="sort", name=name)],
                requests=[GenerationRequest(skill="sort", count=4, subskill=name)],
            )
        return Plan(requests=[GenerationRequest(skill="sort", count=4)])


class _CrashesAt:
    """The oracle, interrupted (Ctrl-C) when asked for iteration ``k``'s data."""

    def __init__(self, source: TaskSampler, k: int | None) -> None:
        self.source, self.k = source, k

    @property
    def budget(self) -> Budget:
        return self.source.budget

    async def generate(self, plan, obs, train_set, on_progress=None):  # type: ignore[no-untyped-def]
        if obs.iteration + 1 == self.k:
            raise KeyboardInterrupt
        return await self.source.generate(plan, obs, train_set, on_progress)


def _tree_loop(tmp_path: Path, iterations: int, crash_at: int | None = None) -> Loop:
    task = _task()
    source = _CrashesAt(TaskSampler(task, seed=1), crash_at)
    env = Environment(
        task,
        Memorises(),
        checkpoints_dir=tmp_path / "run" / "checkpoints",
        structure="skill-tree",
        max_iterations=iterations,
        budget=source.budget,
    )
    return Loop(env, _Explorer(), source, RunDir(tmp_path / "run"))


def test_the_tree_is_saved_each_iteration_and_survives_a_crash_after_planning(
    tmp_path: Path,
) -> None:
    with pytest.raises(KeyboardInterrupt):
        _tree_loop(tmp_path, 3, crash_at=2).run()
    run = RunDir(tmp_path / "run")
    state = run.read_state()
    assert (state.iteration, state.phase) == (2, "planned")
    grown = run.read_model("iterations/2/tree.json", SkillTree)
    assert [s.name for s in grown.node("sort").subskills] == ["distinct-digits", "repeated-digits"]

    history = _tree_loop(tmp_path, 3).run()  # a new process would build everything anew
    assert [h.iteration for h in history] == [0, 1, 2, 3]
    final = run.read_model("iterations/3/tree.json", SkillTree)
    names = [s.name for s in final.node("sort").subskills]
    assert names == ["distinct-digits", "repeated-digits", "sorted-already"]  # no repeat, no loss
    assert [s.iteration for s in final.node("sort").subskills] == [1, 2, 3]
    observed = run.read_model("iterations/3/observation.json", Observation)
    assert observed.tree == final
    accepted = [e for k in (1, 2, 3) for e in run.accepted(k)]
    assert [e.provenance.subskill for e in accepted] == (
        ["distinct-digits"] * 4 + ["repeated-digits"] * 4 + ["sorted-already"] * 4
    )
    assert final.node("sort").subskill("sorted-already").data >= 4


def test_explore_outside_a_skill_tree_is_ignored(tmp_path: Path) -> None:
    env = _env(tmp_path)
    with pytest.raises(RuntimeError, match=r"call reset\(\) first"):
        env.explore([])
    obs, _ = env.reset()
    assert env.explore([Explore(skill="sort", name="repeated-digits")]) == obs
    assert obs.tree is None


def test_grow_still_works_and_warns(tmp_path: Path) -> None:
    env = _env(tmp_path, structure="skill-tree")
    env.reset()
    with pytest.warns(DeprecationWarning, match="Environment.explore"):
        added = env.grow([Explore(skill="sort", name="repeated-digits")])
    assert [s.name for s in added] == ["repeated-digits"]
    assert env.explore([]).tree.node("sort").subskill("repeated-digits") == added[0]


def test_arithmetic_subskill_rules_read_the_question() -> None:
    task = _task(skills=["add", "sub", "mul", "max", "sort", "reverse", "len"])

    def of(skill: str, question: str) -> Example:
        return Example.make(skill, question, "")

    assert task.in_subskill(of("add", "15+34"), "no-carry")
    assert task.in_subskill(of("add", "15+36"), "carry")
    assert task.in_subskill(of("sub", "57-23"), "no-borrow")
    assert task.in_subskill(of("sub", "52-27"), "borrow")
    assert task.in_subskill(of("mul", "3*21"), "two-digit-result")
    assert task.in_subskill(of("max", "max(41,47)"), "same-tens")
    assert task.in_subskill(of("max", "max(41,47)"), "second-larger")
    assert task.in_subskill(of("sort", "sort(1123)"), "sorted-already")
    assert task.in_subskill(of("reverse", "rev(abcd)"), "four-letters")
    assert task.in_subskill(of("len", "len(abcdef)"), "long-words")
    assert not task.in_subskill(of("len", "len(abc)"), "long-words")
    assert task.in_subskill(of("sort", "sort(12)"), "sorted-already") is False  # malformed
    assert task.in_subskill(of("sort", "sort(1234)"), "nope") is None
    rng = random.Random(0)
    for skill in ("add", "sort", "reverse"):
        names = [s.name for s in task.subskills(skill)]
        samples = task.sample(skill, 200, rng)
        assert all(any(task.in_subskill(e, n) for n in names) for e in samples)


def test_failures_come_from_the_seed_set_not_the_probes_held_out_of_it(tmp_path: Path) -> None:
    task = load_task("math")
    seeds, feedback = feedback_split(task, 2, seed=0)
    env = _env(tmp_path, task, seed_set=seeds, feedback=feedback, train_on_seed=False)
    obs, _ = env.reset()  # an untrained student fails everything
    held = {e.id for e in feedback}
    assert [f.example for f in obs.failures] == seeds
    assert {p.example.id for p in obs.probes} <= held


def test_export_leaves_out_the_probes_held_out_of_the_seed_set(tmp_path: Path) -> None:
    from dataloop.assemble import training_set
    from dataloop.config import dump_config, validate_config
    from dataloop.runs import RunState

    config = validate_config({"env": {"name": "math", "feedback_per_skill": 2}})
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.write_config(dump_config(config))
    run.write_state(RunState())
    task = load_task("math")
    seeds, feedback = feedback_split(task, 2, seed=0)
    assert feedback and training_set(run) == seeds
