"""Difficulty at the edge: the ``edge`` policy, the solve-rate measurement and the loop around
them, with a scripted teacher and a student that samples by a rule (the real ones are in
tests/integration/test_edge_cli.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from dataloop.assemble import check_run
from dataloop.config import EngineConfig, LoopConfig
from dataloop.difficulty import measure_solve_rates
from dataloop.engine import Engine
from dataloop.envs.arithmetic import ArithmeticTask, solve
from dataloop.errors import ConfigError, RegistryError, TeacherError
from dataloop.gym import Environment
from dataloop.llm.base import Completion, Message, Sampling
from dataloop.llm.teacher import Teacher
from dataloop.loop import Loop
from dataloop.policies import DifficultyEdge, make_policy
from dataloop.report import RunSummary, print_report
from dataloop.runs import RunDir
from dataloop.schema import (
    Budget,
    Example,
    GenerationRequest,
    Observation,
    Plan,
    SkillDifficulty,
    SkillInfo,
    SolveRateProbe,
)
from dataloop.students.base import TrainRecord

LEVELS = [SkillInfo(name=n, description=n) for n in ("easy", "middle", "hard")]


def _obs(difficulty: dict[str, SkillDifficulty] | None = None) -> Observation:
    """Skill ``add`` with three levels, ``prose`` with none."""
    return Observation(
        iteration=1,
        skills=[SkillInfo(name="add", description="a"), SkillInfo(name="prose", description="p")],
        accuracy={"add": 0.5, "prose": 0.5},
        mean_accuracy=0.5,
        levels={"add": LEVELS},
        difficulty=difficulty or {},
    )


def _measured(level: int, solved: int, samples: int = 20) -> dict[str, SkillDifficulty]:
    name = LEVELS[level].name
    return {
        "add": SkillDifficulty(
            level=level, level_name=name, candidates=samples // 4, samples=samples, solved=solved
        )
    }


def _level(plan: Plan, skill: str = "add") -> int | None:
    return next(r.level for r in plan.requests if r.skill == skill)


def test_the_first_plan_starts_at_the_start_level_and_asks_for_the_measurement() -> None:
    policy = DifficultyEdge(examples_per_iteration=10, samples=6, temperature=0.7)
    plan = policy.plan(_obs())
    assert _level(plan) == 0
    assert _level(plan, "prose") is None  # no levels: its share, planned without one
    assert [r.count for r in plan.requests] == [5, 5]
    assert plan.solve_rate == SolveRateProbe(samples=6, temperature=0.7, candidates=32)
    assert _level(DifficultyEdge(start_level=7).plan(_obs())) == 2  # clipped to the hardest


@pytest.mark.parametrize(
    ("level", "solved", "expected"),
    [
        (0, 20, 1),  # 100 % solved: too easy, one level up
        (1, 14, 2),  # 70 % > 50 % + 15 %: up
        (2, 20, 2),  # already the hardest
        (1, 13, 1),  # 65 %: inside the band, kept
        (1, 7, 1),  # 35 %: inside the band, kept
        (1, 6, 0),  # 30 % < 35 %: too hard, one level down
        (0, 0, 0),  # already the easiest
    ],
)
def test_the_level_moves_up_above_the_band_down_below_it(
    level: int, solved: int, expected: int
) -> None:
    plan = DifficultyEdge().plan(_obs(_measured(level, solved)))
    assert _level(plan) == expected
    assert f"was {LEVELS[level].name}, {solved / 20:.0%} solved" in plan.rationale


def test_the_target_and_band_are_options() -> None:
    strict = make_policy("edge", target=0.8, band=0.05)
    assert _level(strict.plan(_obs(_measured(1, 14)))) == 0  # 70 % is below 80 % - 5 %
    assert _level(strict.plan(_obs(_measured(1, 16)))) == 1  # 80 %: at the target


def test_nothing_measured_keeps_the_level() -> None:
    unmeasured = {"add": SkillDifficulty(level=2, level_name="hard")}  # no candidate accepted
    assert _level(DifficultyEdge().plan(_obs(unmeasured))) == 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"temperature": 0}, "temperature must be > 0"),
        ({"samples": 0}, "samples and candidates must be >= 1"),
        ({"target": 1.5}, "target must be between 0 and 1"),
    ],
)
def test_bad_options_are_one_line(options: dict, message: str) -> None:
    with pytest.raises(RegistryError, match=message) as info:
        make_policy("edge", **options)
    assert "\n" not in str(info.value)


def test_a_task_without_levels_is_refused_before_the_run_starts() -> None:
    config = LoopConfig.model_validate(
        {"env": {"name": "multiple_choice"}, "policy": {"name": "edge"}}
    )
    with pytest.raises(ConfigError) as info:
        check_run(config)
    message = str(info.value)
    assert message.startswith("config field 'policy.name': policy 'edge' needs difficulty levels")
    assert "'multiple_choice' declares none" in message and "\n" not in message
    check_run(
        config.model_copy(update={"policy": config.policy.model_copy(update={"name": "uniform"})})
    )


class RuleStudent:
    """Trains by memorising; samples ``right`` correct answers of every ``k`` (the rest
    wrong), by the arithmetic task's own solver."""

    def __init__(self, right: int) -> None:
        self.right = right
        self.known: dict[str, str] = {}
        self.sampled = 0

    def train(self, records: list[TrainRecord], output_dir: Path) -> Path:
        self.known = {r.prompt: r.completion for r in records}
        return output_dir

    def predict(self, prompts: list[str]) -> list[str]:
        return [self.known.get(p, "") for p in prompts]

    def load(self, checkpoint: Path) -> None:
        pass

    def sample(self, prompts: list[str], n: int, temperature: float) -> list[list[str]]:
        assert temperature > 0
        self.sampled += len(prompts) * n
        answers = []
        for prompt in prompts:
            right = solve("add", prompt.removesuffix("=")) or "?"
            answers.append([right] * min(self.right, n) + ["wrong"] * max(0, n - self.right))
        return answers


def _add(question: str, level: int | None = 0) -> Example:
    return Example.make("add", question, solve("add", question) or "", level=level)


def test_the_solve_rate_counts_each_sampled_answer_up_to_the_candidate_cap() -> None:
    task = ArithmeticTask(skills=["add", "max"], validation_per_skill=4, test_per_skill=2)
    student = RuleStudent(right=3)
    plan = Plan(
        requests=[
            GenerationRequest(skill="add", count=9, level=1),
            GenerationRequest(skill="max", count=9),  # no level: not measured
        ],
        solve_rate=SolveRateProbe(samples=4, candidates=2),
    )
    accepted = [_add("27+45", 1), _add("18+23", 1), _add("36+46", 1)]
    accepted.append(Example.make("max", "max(41,17)", "41"))
    difficulty = measure_solve_rates(task, student, plan, accepted)
    assert list(difficulty) == ["add"]
    assert difficulty["add"] == SkillDifficulty(
        level=1, level_name="one-carry", candidates=2, samples=8, solved=6
    )
    assert difficulty["add"].solve_rate == 0.75
    assert student.sampled == 8  # the cost: 2 candidates x 4 samples
    assert (
        measure_solve_rates(task, student, plan.model_copy(update={"solve_rate": None}), accepted)
        == {}
    )


def test_a_student_that_cannot_sample_is_one_line() -> None:
    task = ArithmeticTask(skills=["add"], validation_per_skill=4, test_per_skill=2)
    plan = Plan(
        requests=[GenerationRequest(skill="add", count=1, level=0)], solve_rate=SolveRateProbe()
    )
    with pytest.raises(ConfigError, match=r"cannot sample answers: give it a sample\("):
        measure_solve_rates(task, object(), plan, [_add("12+34")])  # type: ignore[arg-type]


class ScriptedClient:
    """A teacher that writes the same add questions every time, at every level."""

    model = "scripted"

    def __init__(self) -> None:
        self.budget = Budget()
        self.prompts: list[str] = []

    async def complete(self, prompt: str, sampling: Sampling) -> Completion:
        self.prompts.append(prompt)
        # 12+34, 41+23: no carry; 27+45: one carry; 68+57: two carries.
        return Completion(
            texts=[" 12+34\nA: 46\nQ: 27+45\nA: 72\nQ: 41+23\nA: 64\nQ: 68+57\nA: 1\n"]
        )

    async def chat(self, messages: list[Message], sampling: Sampling) -> Completion:
        return await self.complete(messages[0].content, sampling)

    async def aclose(self) -> None:
        pass


def test_the_loop_measures_moves_the_level_and_records_it(tmp_path: Path) -> None:
    task = ArithmeticTask(
        skills=["add"], train_per_skill=4, validation_per_skill=4, test_per_skill=2
    )
    client = ScriptedClient()
    engine = Engine(Teacher(client), task, EngineConfig(per_query=10, max_rounds=1))
    student = RuleStudent(right=4)  # solves every sampled answer: the level climbs
    env = Environment(
        task, student, checkpoints_dir=tmp_path / "ckpt", max_iterations=2, budget=engine.budget
    )
    run = RunDir(tmp_path / "run")
    policy = DifficultyEdge(examples_per_iteration=4, samples=4)
    Loop(env, policy, engine, run).run()

    # The prompts name the level with the task's description of it.
    assert "Difficulty: level 1 of 3 (no-carry): no column carries" in client.prompts[0]
    assert "Difficulty: level 2 of 3 (one-carry): exactly one column carries" in client.prompts[-1]
    # Off-level candidates are rejected; the accepted ones record their level.
    first, second = run.accepted(1), run.accepted(2)
    assert sorted(e.question for e in first) == ["12+34", "41+23"]
    assert [e.question for e in second] == ["27+45"]
    assert {e.provenance.level for e in first} == {0} and second[0].provenance.level == 1
    # The observation records the level and the rate, measured before training.
    obs = run.observation(1)
    assert obs is not None and obs.levels["add"][0].name == "no-carry"
    assert obs.difficulty["add"] == SkillDifficulty(
        level=0, level_name="no-carry", candidates=2, samples=8, solved=8
    )
    assert run.read_model("iterations/2/plan.json", Plan).requests[0].level == 1
    assert student.sampled == 8 + 4
    # The report shows each skill's level per iteration.
    console = Console(record=True, width=200)
    print_report(RunSummary.load(run), console)
    text = console.export_text()
    assert "difficulty" in text
    row = next(line for line in text.splitlines() if "no-carry" in line)
    assert "add" in row and "no-carry · 100.0% of 8" in row and "one-carry · 100.0% of 4" in row
    assert "student samples (solve rate) │ 12" in text


def test_a_plan_for_a_level_the_skill_lacks_is_one_line(arithmetic) -> None:
    import asyncio

    engine = Engine(Teacher(ScriptedClient()), arithmetic, EngineConfig(per_query=10, max_rounds=1))
    plan = Plan(requests=[GenerationRequest(skill="add", count=2, level=3)])
    obs = Observation(iteration=0, skills=arithmetic.skills(), accuracy={}, mean_accuracy=0.0)
    with pytest.raises(TeacherError, match=r"level 3 of 'add', which has 3 levels"):
        asyncio.run(engine.generate(plan, obs, arithmetic.split("train")))


class CrashesInTraining(RuleStudent):
    """Trains once (the reset), then dies: the run stops after iteration 1's generation."""

    def train(self, records: list[TrainRecord], output_dir: Path) -> Path:
        if self.known:
            raise RuntimeError("killed")
        return super().train(records, output_dir)


def test_a_resumed_iteration_measures_its_candidates_again(tmp_path: Path) -> None:
    task = ArithmeticTask(
        skills=["add"], train_per_skill=4, validation_per_skill=4, test_per_skill=2
    )
    run = RunDir(tmp_path / "run")

    def loop(student: RuleStudent, client: ScriptedClient) -> Loop:
        engine = Engine(Teacher(client), task, EngineConfig(per_query=10, max_rounds=1))
        env = Environment(
            task, student, checkpoints_dir=tmp_path / "ckpt", max_iterations=1,
            budget=engine.budget,
        )  # fmt: skip
        return Loop(env, DifficultyEdge(examples_per_iteration=4, samples=2), engine, run)

    crashing = CrashesInTraining(right=1)
    with pytest.raises(RuntimeError, match="killed"):
        loop(crashing, ScriptedClient()).run()
    assert run.read_state().phase == "generated" and crashing.sampled == 4
    resumed, client = RuleStudent(right=1), ScriptedClient()
    loop(resumed, client).run()
    assert client.prompts == []  # the accepted candidates come from the run folder
    assert resumed.sampled == 4
    obs = run.observation(1)
    assert obs is not None
    assert obs.difficulty["add"] == SkillDifficulty(
        level=0, level_name="no-carry", candidates=2, samples=4, solved=2
    )
