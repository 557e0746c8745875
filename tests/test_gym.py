"""The Gymnasium-shaped Environment and the Loop around it, with a student that memorises."""

from __future__ import annotations

import errno
import io
from pathlib import Path

import pytest
from rich.console import Console

from dataloop.display import Display
from dataloop.engine.engine import GenerationResult
from dataloop.engine.results import Candidate
from dataloop.environments import load_task
from dataloop.errors import DiskFull
from dataloop.gym import Environment
from dataloop.loop import Loop
from dataloop.policies import Uniform
from dataloop.runs import RunDir
from dataloop.schema import Budget, Example, Observation, Plan
from dataloop.students.base import TrainRecord

OPTIONS = {"train_per_skill": 2, "validation_per_skill": 4, "test_per_skill": 2}


class Memorises:
    """Answers exactly what it was last trained on; nothing else."""

    def __init__(self) -> None:
        self.known: dict[str, str] = {}
        self.rounds = 0

    def train(self, records: list[TrainRecord], output_dir: Path) -> Path:
        self.rounds += 1
        self.known = {r.prompt: r.completion for r in records}
        return output_dir

    def predict(self, prompts: list[str]) -> list[str]:
        return [self.known.get(p, "") for p in prompts]

    def load(self, checkpoint: Path) -> None:
        pass


class Leaks:
    """A stand-in teacher that hands over validation examples, one query per request."""

    def __init__(self, validation: list[Example], max_queries: int | None = None) -> None:
        self.validation = validation
        self.budget = Budget(max_queries=max_queries)

    async def generate(self, plan: Plan, obs: Observation, train_set, on_progress=None):
        result = GenerationResult()
        for request in plan.requests:
            if self.budget.queries_left == 0:
                result.budget_exhausted = self.budget.exhausted = True
                break
            self.budget.queries += 1
            of_skill = [e for e in self.validation if e.skill == request.skill]
            result.accepted += of_skill[: request.count]
        return result


def _env(tmp_path: Path, budget: Budget | None = None, **kwargs) -> Environment:
    task = load_task("arithmetic", options=OPTIONS)
    return Environment(
        task, Memorises(), checkpoints_dir=tmp_path / "ckpt", budget=budget, **kwargs
    )


def test_reset_and_step_speak_gymnasium(tmp_path: Path) -> None:
    budget = Budget(queries=3)  # spent before reset (skill discovery): the reset's queries
    env = _env(tmp_path, budget, max_iterations=2)
    obs, info = env.reset()
    assert obs.iteration == 0 and obs.mean_accuracy == 0.0
    assert info["eval"].split == "validation" and info["queries"] == 3
    assert "test" not in info  # the episode goes on
    first = env.task.split("validation")[:4]
    budget.queries += 2
    obs, reward, terminated, truncated, info = env.step(first)
    assert (terminated, truncated) == (False, False)
    assert reward == pytest.approx(obs.mean_accuracy) and reward > 0
    assert info["added"] == 4 and info["queries"] == 2 and info["checkpoint"].name == "iteration-1"
    assert [h.queries for h in obs.history] == [3, 2] and obs.budget.queries == 5
    obs, reward, terminated, truncated, info = env.step(first)  # nothing new
    assert info["added"] == 0 and reward == 0.0
    assert (terminated, truncated) == (False, True)  # the iteration limit
    assert info["test"].split == "test"


def test_a_spent_budget_or_the_target_terminates(tmp_path: Path) -> None:
    budget = Budget(max_queries=1)
    env = _env(tmp_path, budget, max_iterations=5)
    env.reset()
    budget.exhausted = True
    _, _, terminated, truncated, info = env.step([])
    assert (terminated, truncated) == (True, False) and "test" in info
    env = _env(tmp_path, max_iterations=5, target_accuracy=0.1)
    env.reset()
    _, _, terminated, _, _ = env.step(env.task.split("validation"))
    assert terminated


def test_no_iterations_ends_the_episode_at_reset(tmp_path: Path) -> None:
    _, info = _env(tmp_path, max_iterations=0).reset()
    assert "test" in info


def test_the_loop_stops_when_the_budget_is_spent_and_keeps_its_records(tmp_path: Path) -> None:
    task = load_task("arithmetic", options=OPTIONS)
    teacher = Leaks(task.split("validation"), max_queries=8)
    env = Environment(
        task,
        Memorises(),
        checkpoints_dir=tmp_path / "ckpt",
        max_iterations=5,
        budget=teacher.budget,
    )
    run = RunDir(tmp_path / "run")
    history = Loop(env, Uniform(examples_per_iteration=12), teacher, run).run()
    # 6 skills, one query each: iteration 1 spends 6, iteration 2 the last 2 and runs out.
    assert [h.queries for h in history] == [0, 6, 2]
    assert history[-1].mean_accuracy > history[0].mean_accuracy
    metrics = run.read_metrics()
    assert metrics.iterations == history and metrics.test is not None
    state = run.read_state()
    assert state.done and state.budget.exhausted and state.iteration == 2


def test_the_loop_refuses_an_environment_blind_to_the_budget(tmp_path: Path) -> None:
    env = _env(tmp_path)
    with pytest.raises(ValueError, match=r"budget=engine\.budget"):
        Loop(env, Uniform(), Leaks([], max_queries=1))


class FillsTheDisk(Memorises):
    """Fails to save its checkpoint the way a full disk makes it fail."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def train(self, records: list[TrainRecord], output_dir: Path) -> Path:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        # What transformers' save_pretrained raises through safetensors.
        RuntimeError(
            'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No '
            'space left on device" })'
        ),
    ],
)
def test_a_full_disk_while_saving_a_checkpoint_is_one_line_naming_the_folder(
    tmp_path: Path, error: Exception
) -> None:
    task = load_task("arithmetic", options=OPTIONS)
    env = Environment(task, FillsTheDisk(error), checkpoints_dir=tmp_path / "ckpt")
    with pytest.raises(DiskFull) as caught:
        env.reset()
    message = str(caught.value)
    assert f"{tmp_path / 'ckpt' / 'iteration-0'}" in message and "\n" not in message
    assert "no space left" in message


def test_other_training_errors_are_not_taken_for_a_full_disk(tmp_path: Path) -> None:
    task = load_task("arithmetic", options=OPTIONS)
    env = Environment(task, FillsTheDisk(ValueError("bad batch")), checkpoints_dir=tmp_path)
    with pytest.raises(ValueError, match="bad batch"):
        env.reset()


class MemorisesWithLoss(Memorises):
    """Memorises, and says so as a loss: 0 on what it knows, 1 elsewhere."""

    def __init__(self) -> None:
        super().__init__()
        self.scored = 0

    def losses(self, records: list[TrainRecord]) -> list[float]:
        self.scored += 1
        return [0.0 if self.known.get(r.prompt) == r.completion else 1.0 for r in records]


def test_observations_carry_the_students_loss_on_each_seed_only_when_asked(tmp_path: Path) -> None:
    task = load_task("arithmetic", options=OPTIONS)
    seeds = task.split("train")
    student = MemorisesWithLoss()
    env = Environment(task, student, checkpoints_dir=tmp_path, train_on_seed=False, losses=True)
    obs, _ = env.reset()
    assert {s: set(ls) for s, ls in obs.losses.items()} == {
        s.name: {e.id for e in seeds if e.skill == s.name} for s in task.skills()
    }
    assert all(loss == 1.0 for ls in obs.losses.values() for loss in ls.values())
    obs, *_ = env.step([])  # trained on the seeds: it fits them
    assert all(loss == 0.0 for ls in obs.losses.values() for loss in ls.values())
    assert student.scored == 2
    quiet = MemorisesWithLoss()
    obs, _ = Environment(task, quiet, checkpoints_dir=tmp_path).reset()
    assert obs.losses == {} and quiet.scored == 0  # off by default: nothing computed
    with pytest.raises(TypeError, match="student Memorises has no losses"):
        Environment(task, Memorises(), checkpoints_dir=tmp_path, losses=True)


class CopyingJudge(Leaks):
    """A stand-in teacher whose judge gave every candidate the prompt's example reply."""

    async def generate(self, plan: Plan, obs: Observation, train_set, on_progress=None):
        result = await super().generate(plan, obs, train_set, on_progress)
        result.accepted = [
            e.model_copy(
                update={
                    "provenance": e.provenance.model_copy(
                        update={"judge_score": 4, "judge_reason": "one sentence"}
                    )
                }
            )
            for e in result.accepted
        ]
        result.candidates = [Candidate(example=e, verdict="accepted") for e in result.accepted]
        return result


def test_the_loop_warns_when_the_judge_gives_every_candidate_one_reply(tmp_path: Path) -> None:
    task = load_task("arithmetic", options=OPTIONS)
    teacher = CopyingJudge(task.split("validation"), max_queries=6)
    env = Environment(
        task, Memorises(), checkpoints_dir=tmp_path / "ckpt", max_iterations=1,
        budget=teacher.budget,
    )  # fmt: skip
    shown = io.StringIO()
    display = Display(console=Console(file=shown, width=400))
    Loop(env, Uniform(examples_per_iteration=12), teacher, RunDir(tmp_path / "run"), display).run()
    assert "judge: the judge gave all 12 candidates it scored a 4" in shown.getvalue()
    assert "it may be copying its prompt" in shown.getvalue()
