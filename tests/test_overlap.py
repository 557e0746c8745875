"""The loop's ``overlap``: iteration k+1 is planned from k-1's observation and generated while
the student trains on k. A scripted teacher and a memorising student; the order of events is
proved with threading events (each side waits for the other to be under way), not sleeps.
The real teacher and student are in tests/integration/test_overlap_cli.py."""

from __future__ import annotations

import asyncio
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from rich.console import Console

from dataloop import background
from dataloop.assemble import check_run
from dataloop.background import InFlight
from dataloop.config import EngineConfig, validate_config
from dataloop.engine.engine import Engine, GenerationResult
from dataloop.engine.sources import TaskSampler
from dataloop.environments import load_task
from dataloop.envs.arithmetic import ArithmeticTask, solve
from dataloop.errors import ConfigError, TeacherError
from dataloop.gym import Environment
from dataloop.llm.base import Completion, Message, Sampling
from dataloop.llm.teacher import Teacher as LLMTeacher
from dataloop.loop import Loop
from dataloop.policies import DifficultyEdge, Uniform
from dataloop.report import RunSummary, print_report
from dataloop.runs import RunDir
from dataloop.schema import Budget, Observation, Plan
from dataloop.students.base import TrainRecord

OPTIONS = {"train_per_skill": 2, "validation_per_skill": 4, "test_per_skill": 2}
WAIT = 30.0
"""Seconds either side waits for the other before the test fails (a loop that does not overlap
would wait forever)."""


class Events:
    """What happened, in order, across both threads; and one threading event per name."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self._events: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def happen(self, name: str) -> None:
        with self._lock:
            self.log.append(name)
            self._events.setdefault(name, threading.Event())
        self._events[name].set()

    def wait(self, name: str) -> bool:
        with self._lock:
            event = self._events.setdefault(name, threading.Event())
        return event.wait(WAIT)


class Teacher:
    """Fresh examples sampled by the task, numbered as the engine numbers them
    (``obs.iteration + 1``); one query per request. Generating iteration k waits until the
    student has started training on k-1 when ``wait_for_training`` (so both are under way at
    once), and raises where ``fail_at`` says, once."""

    def __init__(self, task, events: Events, max_queries: int | None = None) -> None:
        self.sampler = TaskSampler(task)
        self.budget = Budget(max_queries=max_queries)
        self.events = events
        self.wait_for_training = False
        self.fail_at: int | None = None
        self.block_at: int | None = None
        self.made: list[int] = []
        self.cancelled: list[int] = []

    async def generate(self, plan: Plan, obs: Observation, train_set, on_progress=None):
        k = obs.iteration + 1
        self.made.append(k)
        self.events.happen(f"generate {k}")
        try:
            if self.wait_for_training and k > 1:
                assert await asyncio.to_thread(self.events.wait, f"train {k - 1}")
            if k == self.block_at:
                await asyncio.Event().wait()  # until cancelled
            if k == self.fail_at:
                self.fail_at = None
                raise TeacherError("the teacher went away")
            result = GenerationResult()
            for request in plan.requests:
                if self.budget.queries_left == 0:
                    result.budget_exhausted = self.budget.exhausted = True
                    break
                self.budget.queries += 1
                part = await self.sampler.generate(
                    Plan(requests=[request]), obs, train_set + result.accepted
                )
                result.accepted += part.accepted
                result.candidates += part.candidates
            return result
        except asyncio.CancelledError:
            self.cancelled.append(k)
            raise
        finally:
            self.events.happen(f"generated {k}")


class Student:
    """Answers what it was trained on (and ``answers``, once it has trained on teacher data).
    Training on iteration k (0 < k < ``wait_until``) waits until the teacher has started
    generating k+1; then ``crash_at`` raises there (once), ``interrupt_at`` is Ctrl-C."""

    def __init__(self, events: Events, wait_until: int = 0) -> None:
        self.events = events
        self.wait_until = wait_until
        self.known: dict[str, str] = {}
        self.crash_at: int | None = None
        self.interrupt_at: int | None = None
        self.answers: dict[str, str] = {}
        """Prompt -> answer it knows once it has trained on any teacher data."""
        self.trained_in: list[str] = []

    def train(self, records: list[TrainRecord], output_dir: Path) -> Path:
        k = int(output_dir.name.removeprefix("iteration-"))
        self.trained_in.append(threading.current_thread().name)
        self.events.happen(f"train {k}")
        if 0 < k < self.wait_until:
            assert self.events.wait(f"generate {k + 1}"), f"iteration {k + 1} never started"
        if k == self.crash_at:
            self.crash_at = None
            raise RuntimeError("killed")
        if k == self.interrupt_at:
            raise KeyboardInterrupt
        self.known = {r.prompt: r.completion for r in records}
        if k > 0:
            self.known.update(self.answers)
        self.events.happen(f"trained {k}")
        return output_dir

    def predict(self, prompts: list[str]) -> list[str]:
        return [self.known.get(p, "") for p in prompts]

    def load(self, checkpoint: Path) -> None:
        pass


class ScoringStudent(Student):
    """Also scores its loss on records: 0 for what it knows, 1 otherwise. Records the thread
    it was asked from and whether it was training then."""

    def __init__(self, events: Events) -> None:
        super().__init__(events)
        self.training = False
        self.scored_from: list[tuple[str, bool]] = []

    def train(self, records: list[TrainRecord], output_dir: Path) -> Path:
        self.training = True
        try:
            return super().train(records, output_dir)
        finally:
            self.training = False

    def losses(self, records: list[TrainRecord]) -> list[float]:
        self.scored_from.append((threading.current_thread().name, self.training))
        return [0.0 if self.known.get(r.prompt) == r.completion else 1.0 for r in records]


class Recording(Uniform):
    """Uniform, remembering the observation each plan read."""

    def __init__(self) -> None:
        super().__init__(examples_per_iteration=12)
        self.read: list[tuple[int, int]] = []  # (observation's iteration, queries spent)

    def plan(self, obs: Observation) -> Plan:
        self.read.append((obs.iteration, obs.budget.queries))
        return super().plan(obs)


def _loop(
    tmp_path: Path,
    name: str,
    *,
    overlap: bool = True,
    iterations: int = 4,
    max_queries: int | None = None,
    wait: bool = False,
    target: float | None = None,
    student: Student | None = None,
) -> tuple[Loop, Teacher, Student, Recording, Events]:
    task = load_task("arithmetic", options=OPTIONS)
    events = Events()
    teacher = Teacher(task, events, max_queries)
    teacher.wait_for_training = wait
    student = student or Student(events)
    student.events, student.wait_until = events, iterations if wait else 0
    env = Environment(
        task,
        student,
        checkpoints_dir=tmp_path / name / "ckpt",
        max_iterations=iterations,
        target_accuracy=target,
        budget=teacher.budget,
        losses=isinstance(student, ScoringStudent),
    )
    policy = Recording()
    loop = Loop(env, policy, teacher, RunDir(tmp_path / name / "run"), overlap=overlap)
    return loop, teacher, student, policy, events


def _data(run: RunDir) -> list[list[str]]:
    return [[e.question for e in run.accepted(k)] for k in run.iterations_done()]


def test_the_next_iteration_is_generated_while_the_student_trains(tmp_path: Path) -> None:
    loop, teacher, student, policy, events = _loop(tmp_path, "a", wait=True)
    history = loop.run()
    # Both sides waited for the other: generation of k+1 began before training on k ended,
    # and training on k began before generation of k+1 ended.
    for k in (1, 2, 3):
        log = events.log
        assert log.index(f"generate {k + 1}") < log.index(f"trained {k}")
        assert log.index(f"train {k}") < log.index(f"generated {k + 1}")
    # Training stays in the caller's thread; generation for k+1 runs in the worker.
    assert set(student.trained_in) == {threading.main_thread().name}
    # The staleness: plans 1 and 2 read the reset, plan k (k > 2) read k-2's observation.
    assert [obs for obs, _ in policy.read] == [0, 0, 1, 2]
    assert [h.planned_from for h in history] == [None, 0, 0, 1, 2]
    assert loop.run_dir is not None
    assert loop.run_dir.read_metrics().iterations == history
    # Each iteration's data is numbered (provenance, sampling seeds) for its own iteration.
    for k in (1, 2, 3, 4):
        assert {e.provenance.iteration for e in loop.run_dir.accepted(k)} == {k}
    questions = [q for batch in _data(loop.run_dir) for q in batch]
    assert len(questions) == len(set(questions)) == 4 * 12
    assert teacher.made == [1, 2, 3, 4]  # nothing past the last iteration


def test_without_overlap_the_plan_reads_the_previous_observation(tmp_path: Path) -> None:
    loop, _, _, policy, events = _loop(tmp_path, "a", overlap=False)
    history = loop.run()
    assert [obs for obs, _ in policy.read] == [0, 1, 2, 3]
    assert [h.planned_from for h in history] == [None, 0, 1, 2, 3]
    assert events.log.index("trained 1") < events.log.index("generate 2")


def test_the_same_seed_gives_the_same_data_and_records(tmp_path: Path) -> None:
    first, *_ = _loop(tmp_path, "first", wait=True)
    second, *_ = _loop(tmp_path, "second")
    assert first.run() == second.run()
    assert first.run_dir is not None and second.run_dir is not None
    assert _data(first.run_dir) == _data(second.run_dir)
    assert first.run_dir.read_state().budget == second.run_dir.read_state().budget


def test_the_budget_ends_the_run_where_it_would_without_overlap(tmp_path: Path) -> None:
    # 6 skills, a query each: iterations 1 and 2 spend 12, iteration 3 the last 2 and runs out.
    plain, plain_teacher, *_ = _loop(tmp_path, "plain", overlap=False, max_queries=14)
    loop, teacher, _, policy, _ = _loop(tmp_path, "overlap", max_queries=14)
    history = loop.run()
    assert [h.queries for h in history] == [h.queries for h in plain.run()] == [0, 6, 6, 2]
    assert teacher.made == plain_teacher.made == [1, 2, 3]  # nothing asked past the budget
    assert teacher.budget.queries == 14
    # Each plan saw the budget as it stood, not as the observation it read recorded it.
    assert policy.read == [(0, 0), (0, 6), (1, 12)]
    assert loop.run_dir is not None
    state = loop.run_dir.read_state()
    assert state.done and state.budget.exhausted and state.budget.queries == 14
    assert len(loop.run_dir.accepted(3)) == 4  # the data of the spending iteration is kept


def test_a_run_killed_while_both_run_resumes_to_the_same_data(tmp_path: Path) -> None:
    reference, *_ = _loop(tmp_path, "reference")
    reference.run()
    assert reference.run_dir is not None
    loop, _, student, *_ = _loop(tmp_path, "killed", wait=True)
    student.crash_at = 2  # dies training on 2, while iteration 3 is being generated
    with pytest.raises(RuntimeError, match="killed"):
        loop.run()
    assert loop.run_dir is not None
    state = loop.run_dir.read_state()
    assert (state.iteration, state.phase) == (2, "generated")
    assert loop.run_dir.iterations_done() == [1, 2]  # iteration 3's data was not committed
    assert not [t for t in threading.enumerate() if t.name.startswith("dataloop-overlap")]

    resumed, teacher, _, policy, _ = _loop(tmp_path, "killed")
    history = resumed.run()
    assert teacher.made == [3, 4]  # 2 is read from the run folder; 3 is made again
    assert [obs for obs, _ in policy.read] == [1, 2]
    assert _data(loop.run_dir) == _data(reference.run_dir)
    assert history == reference.run_dir.read_metrics().iterations


def test_a_run_stopped_after_an_iteration_resumes_from_the_older_observation(
    tmp_path: Path,
) -> None:
    reference, *_ = _loop(tmp_path, "reference")
    reference.run()
    assert reference.run_dir is not None
    loop, teacher, *_ = _loop(tmp_path, "stopped")
    teacher.fail_at = 3  # generating 3 fails while 2 trains: 2 is committed, then it stops
    with pytest.raises(TeacherError, match="went away"):
        loop.run()
    assert loop.run_dir is not None
    state = loop.run_dir.read_state()
    assert (state.iteration, state.phase) == (2, "trained")
    resumed, _, _, policy, _ = _loop(tmp_path, "stopped")
    resumed.run()
    assert [obs for obs, _ in policy.read] == [1, 2]  # plan 3 reads iteration 1's, as before
    assert _data(loop.run_dir) == _data(reference.run_dir)
    assert loop.run_dir.read_metrics() == reference.run_dir.read_metrics()


def test_ctrl_c_while_training_cancels_the_generation_under_way(tmp_path: Path) -> None:
    loop, teacher, student, _, _ = _loop(tmp_path, "a", wait=True)
    teacher.block_at = 3  # would never finish
    student.interrupt_at = 2  # once generation of 3 is under way
    with pytest.raises(KeyboardInterrupt):
        loop.run()
    assert teacher.cancelled == [3]
    assert not [t for t in threading.enumerate() if t.name.startswith("dataloop-overlap")]
    assert loop.run_dir is not None
    state = loop.run_dir.read_state()
    assert (state.iteration, state.phase) == (2, "generated")  # resume trains 2 again


def test_reaching_the_target_cancels_the_next_generation(tmp_path: Path) -> None:
    loop, teacher, student, *_ = _loop(tmp_path, "a", target=0.5)
    task = loop.env.task
    student.answers = {task.prompt(e.question): task.target(e) for e in task.split("validation")}
    student.wait_until = 2  # training on 1 ends once generating 2 is under way
    teacher.block_at = 2
    history = loop.run()
    assert [h.mean_accuracy for h in history] == [0.0, 1.0]  # the target ends iteration 1
    assert teacher.cancelled == [2]
    assert loop.run_dir is not None
    assert loop.run_dir.iterations_done() == [1] and loop.run_dir.read_state().done


def test_the_students_loss_is_measured_in_the_callers_thread_never_while_it_trains(
    tmp_path: Path,
) -> None:
    student = ScoringStudent(Events())
    loop, *_ = _loop(tmp_path, "a", wait=True, student=student)
    history = loop.run()
    assert [h.planned_from for h in history] == [None, 0, 0, 1, 2]
    # Once per observation (reset and 4 steps), in the caller's thread, after training.
    assert student.scored_from == [(threading.main_thread().name, False)] * 5
    assert loop.run_dir is not None
    obs = loop.run_dir.observation(2)
    assert obs is not None and obs.losses  # what plan 4 read


def test_a_skill_tree_run_is_refused_in_one_line(tmp_path: Path) -> None:
    task = load_task("arithmetic", options=OPTIONS)
    teacher = Teacher(task, Events())
    env = Environment(
        task,
        Student(Events()),
        checkpoints_dir=tmp_path,
        structure="skill-tree",
        budget=teacher.budget,
    )
    with pytest.raises(ValueError, match="overlap cannot run a skill-tree environment"):
        Loop(env, Uniform(), teacher, overlap=True)
    config = validate_config(
        {"overlap": True, "env": {"structure": "skill-tree", "options": OPTIONS}}
    )
    with pytest.raises(ConfigError, match=r"^config field 'overlap': a skill-tree run cannot"):
        check_run(config)


def test_the_report_and_the_table_show_what_each_plan_read(tmp_path: Path) -> None:
    loop, *_ = _loop(tmp_path, "a", iterations=3)
    loop.display.quiet = False
    loop.display.console = Console(record=True, width=200)
    loop.run()
    shown = loop.display.console.export_text()
    assert "iteration 3: 12 examples asked (planned from iteration 1)" in shown
    row = next(line for line in reversed(shown.splitlines()) if "planned from" in line)
    assert [c.strip() for c in row.split("│")[2:6]] == ["", "reset", "reset", "iter 1"]
    console = Console(record=True, width=200)
    assert loop.run_dir is not None
    print_report(RunSummary.load(loop.run_dir), console)
    report = next(line for line in console.export_text().splitlines() if "planned from" in line)
    assert [c.strip() for c in report.split("│")[2:7]] == ["", "reset", "reset", "iter 1", ""]


def test_in_flight_work_returns_its_value_or_is_cancelled() -> None:
    with asyncio.Runner() as runner:

        async def answer() -> int:
            return 42

        assert InFlight(runner, answer()).result() == 42
        started = threading.Event()

        async def forever() -> None:
            started.set()
            await asyncio.Event().wait()

        work = InFlight(runner, forever())
        assert started.wait(WAIT)
        work.cancel()
        assert runner.run(answer()) == 42  # the runner is free again


def test_work_cancelled_before_its_thread_starts_it_never_runs(monkeypatch) -> None:
    """A run that ends at once (Ctrl-C as the overlap begins): the coroutine is closed unrun."""
    gate = threading.Event()

    class GatedPool(ThreadPoolExecutor):  # its thread starts the work once the gate opens
        def submit(self, fn, /, *args, **kwargs):
            def gated():
                gate.wait(WAIT)
                return fn(*args, **kwargs)

            return super().submit(gated)

    monkeypatch.setattr(background, "ThreadPoolExecutor", GatedPool)
    ran = threading.Event()

    async def never() -> None:
        ran.set()

    with asyncio.Runner() as runner:
        work = InFlight(runner, never())
        threading.Timer(0.2, gate.set).start()  # opens after cancel() below marked it cancelled
        work.cancel()
        assert not ran.is_set()
        assert runner.run(asyncio.sleep(0, 7)) == 7  # the runner is free


def test_a_plain_step_records_the_previous_iteration_and_the_live_budget(tmp_path: Path) -> None:
    task = load_task("arithmetic", options=OPTIONS)
    budget = Budget()
    env = Environment(task, Student(Events()), checkpoints_dir=tmp_path, budget=budget)
    env.reset()
    budget.queries = 5
    obs, *_ = env.step([])
    assert obs.history[-1].planned_from == 0 and obs.history[-1].queries == 5
    budget.queries = 9  # spent on the next iteration while this one trained
    obs, *_ = env.step([], budget=Budget(queries=7), planned_from=0)
    assert obs.history[-1].queries == 2 and obs.budget.queries == 7
    assert obs.history[-1].planned_from == 0 and obs.history[-1].stale


class AddClient:
    """A teacher LLM writing random two-digit additions, seeded by the request's seed; it
    records the threads it was asked from."""

    model = "scripted"

    def __init__(self) -> None:
        self.budget = Budget()
        self.threads: set[str] = set()

    async def complete(self, prompt: str, sampling: Sampling) -> Completion:
        self.threads.add(threading.current_thread().name)
        rng = random.Random(sampling.seed)
        questions = [f"{rng.randint(10, 49)}+{rng.randint(10, 49)}" for _ in range(8)]
        text = "\nQ: ".join(f"{q}\nA: {solve('add', q)}" for q in questions)
        return Completion(texts=[f" {text}\n"])

    async def chat(self, messages: list[Message], sampling: Sampling) -> Completion:
        return await self.complete(messages[0].content, sampling)

    async def aclose(self) -> None:
        pass


class SamplingStudent:
    """Memorises; samples the right answer every time. Records where it sampled from."""

    def __init__(self) -> None:
        self.known: dict[str, str] = {}
        self.training = False
        self.sampled_from: list[tuple[str, bool]] = []  # (thread, while training)

    def train(self, records: list[TrainRecord], output_dir: Path) -> Path:
        self.training = True
        self.known = {r.prompt: r.completion for r in records}
        self.training = False
        return output_dir

    def predict(self, prompts: list[str]) -> list[str]:
        return [self.known.get(p, "") for p in prompts]

    def sample(self, prompts: list[str], n: int, temperature: float) -> list[list[str]]:
        self.sampled_from.append((threading.current_thread().name, self.training))
        return [[solve("add", p.removesuffix("=")) or "?"] * n for p in prompts]

    def load(self, checkpoint: Path) -> None:
        pass


def test_edge_measures_the_student_in_the_callers_thread_before_it_trains(
    tmp_path: Path,
) -> None:
    task = ArithmeticTask(
        skills=["add"], train_per_skill=4, validation_per_skill=4, test_per_skill=2
    )
    client = AddClient()
    engine = Engine(LLMTeacher(client), task, EngineConfig(per_query=10, max_rounds=1))
    student = SamplingStudent()
    env = Environment(
        task, student, checkpoints_dir=tmp_path / "ckpt", max_iterations=3, budget=engine.budget
    )
    run = RunDir(tmp_path / "run")
    policy = DifficultyEdge(examples_per_iteration=4, samples=2)
    history = Loop(env, policy, engine, run, overlap=True).run()
    assert [h.planned_from for h in history] == [None, 0, 0, 1]
    # Iterations 2 and 3 were generated in the worker, on the run's event loop.
    assert any(name.startswith("dataloop-overlap") for name in client.threads)
    # The student is sampled in the caller's thread, never while it trains.
    assert student.sampled_from == [(threading.main_thread().name, False)] * 3
    # Every level is solved: plans 1 and 2 read the reset (start level), plan 3 read
    # iteration 1's measurement and climbs one level.
    levels = [
        run.read_model(f"iterations/{k}/plan.json", Plan).requests[0].level for k in (1, 2, 3)
    ]
    assert levels == [0, 0, 1]
    for k in (1, 2, 3):
        obs = run.observation(k)
        assert obs is not None and obs.difficulty["add"].solve_rate == 1.0
