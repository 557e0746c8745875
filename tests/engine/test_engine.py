"""The engine's filters and counts, with a scripted client (the real teacher is in integration)."""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time

import pytest

from dataloop.config import EngineConfig
from dataloop.engine import Engine
from dataloop.envs.arithmetic import ArithmeticTask
from dataloop.errors import BudgetExhausted, PluginError, TeacherError, TeacherUnavailable
from dataloop.llm.base import Completion, Message, Sampling
from dataloop.llm.teacher import Teacher
from dataloop.schema import Budget, Example, Failure, GenerationRequest, Observation, Plan


class ScriptedClient:
    """Answers every prompt with the same text; can run out of budget after ``limit`` calls."""

    model = "scripted"

    def __init__(self, text: str, limit: int | None = None) -> None:
        self.text = text
        self.limit = limit
        self.budget = Budget()
        self.prompts: list[str] = []
        self.samplings: list[Sampling] = []

    async def complete(self, prompt: str, sampling: Sampling) -> Completion:
        if self.limit is not None and len(self.prompts) >= self.limit:
            raise BudgetExhausted("query budget of 1 spent")
        self.prompts.append(prompt)
        self.samplings.append(sampling)
        return Completion(texts=[self.text])

    async def chat(self, messages: list[Message], sampling: Sampling) -> Completion:
        return await self.complete(messages[0].content, sampling)

    async def aclose(self) -> None:
        pass


def _obs(task) -> Observation:
    return Observation(iteration=0, skills=task.skills(), accuracy={}, mean_accuracy=0.0)


def test_filters_verify_dedup_decontaminate_and_count(arithmetic) -> None:
    seed = next(e for e in arithmetic.split("train") if e.skill == "add")
    held_out = next(e for e in arithmetic.split("validation") if e.skill == "add")
    text = (
        " 11+22\nA: 0\n"  # wrong answer: relabelled to 33
        "Q: 11 + 22\nA: 33\n"  # duplicate of the first after normalising
        f"Q: {seed.question}\nA: {seed.answer}\n"  # already in the training set
        f"Q: {held_out.question}\nA: {held_out.answer}\n"  # validation question: contaminated
        "Q: 12-\nA: 1\n"  # malformed: fails verification
        "Q: 45+45\nA: 90\n"
    )
    client = ScriptedClient(text)
    engine = Engine(Teacher(client), arithmetic, EngineConfig(per_query=10, max_rounds=1))
    plan = Plan(requests=[GenerationRequest(skill="add", count=5)])
    result = asyncio.run(engine.generate(plan, _obs(arithmetic), arithmetic.split("train")))
    assert [(e.question, e.answer) for e in result.accepted] == [("11+22", "33"), ("45+45", "90")]
    assert result.accepted[0].provenance.relabelled
    verdicts = [c.verdict for c in result.candidates]
    assert verdicts == [
        "accepted",
        "duplicate",
        "duplicate",
        "contaminated",
        "unverified",
        "accepted",
    ]
    counts = result.report.counts[0]
    assert (counts.requested, counts.generated, counts.parsed) == (5, 1, 6)
    assert (counts.verified, counts.deduplicated, counts.accepted) == (5, 2, 2)
    assert len(client.prompts) == 1


def test_rounds_stop_when_the_request_is_met_and_surplus_is_kept_out(arithmetic) -> None:
    client = ScriptedClient(" 10+11\nA: 21\nQ: 10+12\nA: 22\nQ: 10+13\nA: 23\n")
    engine = Engine(Teacher(client), arithmetic, EngineConfig(per_query=1, max_rounds=3))
    plan = Plan(requests=[GenerationRequest(skill="add", count=2)])
    result = asyncio.run(engine.generate(plan, _obs(arithmetic), []))
    assert len(result.accepted) == 2
    assert len(client.prompts) == 2  # one round of two prompts: no round after the request is met
    # The first reply fills the request (its third example is surplus); the second's are copies.
    assert [c.verdict for c in result.candidates] == ["accepted", "accepted", "surplus"] + [
        "duplicate"
    ] * 3


def test_budget_exhaustion_ends_generation_without_raising(arithmetic) -> None:
    client = ScriptedClient(" 10+11\nA: 21\n", limit=1)
    engine = Engine(Teacher(client), arithmetic, EngineConfig(per_query=1, max_rounds=3))
    plan = Plan(requests=[GenerationRequest(skill="add", count=4)])
    result = asyncio.run(engine.generate(plan, _obs(arithmetic), []))
    assert result.budget_exhausted
    assert len(result.accepted) == 1


class AnswerEachPrompt(ScriptedClient):
    """Answers a prompt ending in ``Q: a+b\nA:`` with the sum, or the sum plus one if ``wrong``."""

    def __init__(self, wrong_every: int = 0) -> None:
        super().__init__("")
        self.wrong_every = wrong_every

    async def complete(self, prompt: str, sampling: Sampling) -> Completion:
        self.prompts.append(prompt)
        self.samplings.append(sampling)
        a, b = prompt.rsplit("Q: ", 1)[1].removesuffix("\nA:").split("+")
        off = 1 if self.wrong_every and len(self.prompts) % self.wrong_every == 0 else 0
        return Completion(texts=[f" {int(a) + int(b) + off}"], finish_reasons=["stop"])


def test_answer_augmentation_dedups_on_question_and_answer(arithmetic) -> None:
    client = AnswerEachPrompt(wrong_every=2)
    engine = Engine(Teacher(client), arithmetic, EngineConfig(max_rounds=1))
    plan = Plan(requests=[GenerationRequest(skill="add", strategy="answer-augmentation", count=4)])
    # Against the seeds every right answer is the seed's own: a duplicate, not new data.
    result = asyncio.run(engine.generate(plan, _obs(arithmetic), arithmetic.split("train")))
    verdicts = [c.verdict for c in result.candidates]
    assert verdicts == ["duplicate", "wrong-answer"] * 2
    assert all(s.stop == ("\n",) for s in client.samplings) and len(client.prompts) == 4
    # With no training set yet, each prompt asks a different seed: every right answer is new.
    result = asyncio.run(engine.generate(plan, _obs(arithmetic), []))
    assert [c.verdict for c in result.candidates] == ["accepted", "wrong-answer"] * 2
    assert len({e.question for e in result.accepted}) == 2
    # One seed asked four times (named in seed_ids): one right answer is new, repeats are not.
    seed = next(e for e in arithmetic.split("train") if e.skill == "add")
    named = plan.requests[0].model_copy(update={"seed_ids": [seed.id]})
    result = asyncio.run(engine.generate(Plan(requests=[named]), _obs(arithmetic), []))
    assert [c.verdict for c in result.candidates] == [
        "accepted",
        "wrong-answer",
        "duplicate",
        "wrong-answer",
    ]
    (accepted,) = result.accepted
    assert (accepted.question, accepted.answer) == (seed.question, seed.answer)
    assert accepted.id != seed.id and accepted.provenance.strategy == "answer-augmentation"
    counts = result.report.counts[0]
    assert (counts.generated, counts.parsed, counts.verified, counts.accepted) == (4, 4, 2, 1)
    assert counts.seeds == [seed.id]


def test_llm2llm_without_failures_sends_nothing(arithmetic) -> None:
    client = ScriptedClient(" 10+11\nA: 21\n")
    engine = Engine(Teacher(client), arithmetic)
    plan = Plan(requests=[GenerationRequest(skill="add", strategy="llm2llm", count=3)])
    result = asyncio.run(engine.generate(plan, _obs(arithmetic), []))
    assert client.prompts == [] and result.accepted == []
    assert result.report.counts[0].requested == 3


def test_llm2llm_asks_one_example_per_prompt_and_pays_for_no_surplus(arithmetic) -> None:
    failed = next(e for e in arithmetic.split("train") if e.skill == "add")
    obs = _obs(arithmetic).model_copy(
        update={"failures": [Failure(example=failed, prediction="1")]}
    )
    client = ScriptedClient(" 10+11\nA: 21")
    engine = Engine(Teacher(client), arithmetic, EngineConfig(per_query=6, max_rounds=3))
    plan = Plan(
        requests=[GenerationRequest(skill="add", strategy="llm2llm", count=2, seed_ids=[failed.id])]
    )
    result = asyncio.run(engine.generate(plan, obs, []))
    # Two examples wanted: two prompts in the first round, one item each (no surplus asked for).
    assert failed.question in client.prompts[0] and client.samplings[0].stop == ("\nQ:", "\n\n")
    assert [c.verdict for c in result.candidates][:2] == ["accepted", "duplicate"]
    assert "surplus" not in [c.verdict for c in result.candidates]
    assert all(e.provenance.parent_ids == [failed.id] for e in result.accepted)
    assert result.report.counts[0].seeds == [failed.id]


def test_llm2llm_junk_is_counted(arithmetic) -> None:
    failed = next(e for e in arithmetic.split("train") if e.skill == "add")
    obs = _obs(arithmetic).model_copy(
        update={"failures": [Failure(example=failed, prediction="1")]}
    )
    client = ScriptedClient(" 10+\nnonsense")
    engine = Engine(Teacher(client), arithmetic, EngineConfig(max_rounds=1))
    plan = Plan(requests=[GenerationRequest(skill="add", strategy="llm2llm", count=1)])
    result = asyncio.run(engine.generate(plan, obs, []))
    assert len(client.prompts) == 1 and result.accepted == []
    assert result.report.counts[0].dropped == 1


def test_engine_strategy_override_applies_to_every_request(arithmetic) -> None:
    client = ScriptedClient(" 35+12\n")
    engine = Engine(
        Teacher(client), arithmetic, EngineConfig(strategy="question-rephrase", max_rounds=1)
    )
    plan = Plan(requests=[GenerationRequest(skill="add", count=1)])
    result = asyncio.run(engine.generate(plan, _obs(arithmetic), []))
    assert result.report.counts[0].strategy == "question-rephrase"
    assert client.prompts[0].endswith("\n-")


class RacingClient(ScriptedClient):
    """Replies after a random delay, so requests finish in a different order every run; two
    requests for one skill write overlapping questions, so dedup depends on who is judged
    first."""

    def __init__(self, order_seed: int) -> None:
        super().__init__("")
        self.rng = random.Random(order_seed)

    async def complete(self, prompt: str, sampling: Sampling) -> Completion:
        await asyncio.sleep(self.rng.random() / 50)
        n = sampling.seed % 7 if sampling.seed is not None else 0
        text = "".join(f" 1{n + i}+10\nA: 0\nQ:" for i in range(4))
        return Completion(texts=[text])


def test_accepted_examples_do_not_depend_on_which_reply_came_first(arithmetic) -> None:
    plan = Plan(
        requests=[
            GenerationRequest(skill="add", count=6, guidance="a"),
            GenerationRequest(skill="add", count=6, guidance="b"),
            GenerationRequest(skill="max", count=3),
        ]
    )

    def run(order_seed: int) -> tuple[list[tuple[str, str]], list[str]]:
        engine = Engine(
            Teacher(RacingClient(order_seed)), arithmetic, EngineConfig(per_query=2, max_rounds=2)
        )
        result = asyncio.run(engine.generate(plan, _obs(arithmetic), []))
        accepted = [(e.question, e.answer) for e in result.accepted]
        return accepted, [c.verdict for c in result.candidates]

    first = run(0)
    assert any(v == "duplicate" for v in first[1])  # the overlap is real
    for order_seed in range(1, 6):
        assert run(order_seed) == first


class SlowTask:
    """Wraps a task: verify takes a while and records how many run at once."""

    def __init__(self, task, workers: int) -> None:
        self.task = task
        self.check_workers = workers
        self.lock = threading.Lock()
        self.running = self.most = 0

    def __getattr__(self, name: str):
        return getattr(self.task, name)

    def verify(self, example):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.05)
        with self.lock:
            self.running -= 1
        return self.task.verify(example)


def test_checks_run_side_by_side_up_to_the_tasks_workers_and_keep_order(arithmetic) -> None:
    text = "".join(f" {a}+10\nA: 0\nQ:" for a in range(20, 32))
    plan = Plan(requests=[GenerationRequest(skill="add", count=12)])
    outcomes = []
    for workers in (1, 4):
        task = SlowTask(arithmetic, workers)
        engine = Engine(
            Teacher(ScriptedClient(text)), task, EngineConfig(per_query=12, max_rounds=1)
        )
        result = asyncio.run(engine.generate(plan, _obs(arithmetic), []))
        outcomes.append([(e.question, e.answer) for e in result.accepted])
        assert task.most == workers
    assert outcomes[0] == outcomes[1] == [(f"{a}+10", str(a + 10)) for a in range(20, 32)]


CROWD = {"Ann has 2 apples and gets 4 more. How many?": "2 + 4 = 6. #### 6",
         "Bo has 3 pens and buys 5 more. How many?": "3 + 5 = 8. #### 8"}  # fmt: skip


class VotingClient(ScriptedClient):
    """New-question prompts get two problems; answer prompts ("A:" at the end) get the solution
    the 'crowd' believes in: right for the first problem, a different answer for the second."""

    def __init__(self) -> None:
        super().__init__(
            " Ann has 2 apples and gets 4 more. How many?\nA: 2 + 4 = 6. #### 6\n"
            "Q: Bo has 3 pens and buys 5 more. How many?\nA: 3 + 5 = 9. #### 9\n"
        )

    async def complete(self, prompt: str, sampling: Sampling) -> Completion:
        if prompt.endswith("A:"):
            self.prompts.append(prompt)
            question = prompt.rsplit("Q: ", 1)[1].split("\n")[0]
            return Completion(texts=[" " + CROWD[question]])
        return await super().complete(prompt, sampling)


def test_votes_keep_a_new_problem_only_if_most_fresh_solutions_agree() -> None:
    from dataloop.environments import load_task

    math = load_task("math")
    skill = math.skills()[0].name
    plan = Plan(requests=[GenerationRequest(skill=skill, count=2)])
    client = VotingClient()
    engine = Engine(Teacher(client), math, EngineConfig(per_query=2, max_rounds=1, votes=3))
    result = asyncio.run(engine.generate(plan, _obs(math), math.split("train")))
    verdicts = {c.example.question.split()[0]: c.verdict for c in result.candidates}
    # "3 + 5 = 9" is wrong arithmetic: verify rejects it before any vote is asked.
    assert verdicts == {"Ann": "accepted", "Bo": "unverified"}
    assert len(client.prompts) == 1 + 3 and result.report.queries == 4

    # A well-formed but wrong answer (3 + 6 = 9 is sound arithmetic, the wrong sum) is voted down.
    client = VotingClient()
    client.text = client.text.replace("3 + 5 = 9. #### 9", "3 + 6 = 9. #### 9")
    engine = Engine(Teacher(client), math, EngineConfig(per_query=2, max_rounds=1, votes=3))
    result = asyncio.run(engine.generate(plan, _obs(math), math.split("train")))
    verdicts = {c.example.question.split()[0]: c.verdict for c in result.candidates}
    assert verdicts == {"Ann": "accepted", "Bo": "wrong-answer"}
    assert result.report.counts[0].verified == 1 and result.report.queries == 1 + 2 * 3

    # Without votes the wrong one gets through: that is what votes are for.
    client = VotingClient()
    client.text = client.text.replace("3 + 5 = 9. #### 9", "3 + 6 = 9. #### 9")
    result = asyncio.run(
        Engine(Teacher(client), math, EngineConfig(per_query=2, max_rounds=1)).generate(
            plan, _obs(math), []
        )
    )
    assert [c.verdict for c in result.candidates] == ["accepted", "accepted"]


SOLVER = """
from dataloop.engine import AnswerAugmentation, NewQuestion, Prompt


class Crowd(AnswerAugmentation):
    \"\"\"Asks 'SOLVE: question' and reads 'ANSWER=x': a solver with its own format.\"\"\"

    name = "crowd"

    def solve(self, ctx, target, index):
        return Prompt(text="SOLVE: " + target.question, template="crowd", parents=[target])

    def answer(self, text, prompt):
        return text.split("ANSWER=", 1)[1].strip() if "ANSWER=" in text else None


class CannotSolve(NewQuestion):
    name = "cannot"
"""


class SolvingClient(VotingClient):
    """Answers the crowd solver's prompts in its own format: the crowd's answer to the
    question, or nothing readable for Ann's."""

    async def complete(self, prompt: str, sampling: Sampling) -> Completion:
        if prompt.startswith("SOLVE: "):
            self.prompts.append(prompt)
            question = prompt.removeprefix("SOLVE: ")
            said = CROWD[question].rsplit("#### ", 1)[1]
            return Completion(texts=["no idea" if question.startswith("Ann") else f"ANSWER={said}"])
        return await super().complete(prompt, sampling)


def test_votes_ask_the_configured_solver_strategy(tmp_path) -> None:
    from dataloop.environments import load_task
    from dataloop.errors import RegistryError

    path = tmp_path / "solvers.py"
    path.write_text(SOLVER)
    math = load_task("math")
    plan = Plan(requests=[GenerationRequest(skill=math.skills()[0].name, count=2)])
    client = SolvingClient()
    client.text = client.text.replace("3 + 5 = 9. #### 9", "3 + 5 = 8. #### 8")
    config = EngineConfig(per_query=2, max_rounds=1, votes=3, solver=f"{path}:Crowd")
    engine = Engine(Teacher(client), math, config)
    result = asyncio.run(engine.generate(plan, _obs(math), math.split("train")))
    verdicts = {c.example.question.split()[0]: c.verdict for c in result.candidates}
    # Ann's votes read no answer (none agree); Bo's crowd answer 8 agrees with the candidate's.
    assert verdicts == {"Ann": "wrong-answer", "Bo": "accepted"}
    assert sum(p.startswith("SOLVE: ") for p in client.prompts) == 2 * 3
    with pytest.raises(RegistryError, match="strategy 'new-question' cannot answer a question"):
        Engine(Teacher(client), math, EngineConfig(solver="new-question"))
    with pytest.raises(RegistryError, match="cannot answer a question"):
        Engine(Teacher(client), math, EngineConfig(solver=f"{path}:CannotSolve"))


class FailingClient(ScriptedClient):
    """Fails every request the way the client reports a request lost after its retries."""

    async def complete(self, prompt: str, sampling: Sampling) -> Completion:
        self.prompts.append(prompt)
        raise TeacherError("teacher 'scripted' at http://127.0.0.1:1/v1 answered HTTP 401: no")


def test_a_teacher_that_answers_nothing_stops_the_generation(arithmetic) -> None:
    engine = Engine(Teacher(FailingClient("")), arithmetic, EngineConfig(per_query=2, max_rounds=2))
    plan = Plan(requests=[GenerationRequest(skill="add", count=4)])
    with pytest.raises(TeacherUnavailable, match=r"answered none of 4 requests.*HTTP 401"):
        asyncio.run(engine.generate(plan, _obs(arithmetic), arithmetic.split("train")))


def test_seed_rotation_follows_the_training_sets_provenance(arithmetic) -> None:
    """An iteration asks the seeds earlier iterations did not reach: the training set (what a
    resumed run reloads) says which seeds were parents already."""
    client = AnswerEachPrompt()
    engine = Engine(Teacher(client), arithmetic, EngineConfig(max_rounds=1))
    plan = Plan(requests=[GenerationRequest(skill="add", strategy="answer-augmentation", count=3)])
    first = asyncio.run(engine.generate(plan, _obs(arithmetic), []))
    reached = first.report.counts[0].seeds
    assert len(reached) == 3 and len(first.accepted) == 3
    later = _obs(arithmetic).model_copy(update={"iteration": 1})
    second = asyncio.run(engine.generate(plan, later, first.accepted))
    assert set(second.report.counts[0].seeds).isdisjoint(reached)


def test_novelty_rejects_questions_too_close_to_a_seed(arithmetic) -> None:
    seeds = [e for e in arithmetic.split("train") if e.skill == "add"]
    a, b = seeds[0].question.split("+")
    used = {n for e in seeds for n in e.question.split("+")}
    c, d = [n for n in map(str, range(10, 100)) if n not in used][:2]  # shares nothing
    client = ScriptedClient(f" {b}+{a}\nA: {int(a) + int(b)}\nQ: {c}+{d}\nA: {int(c) + int(d)}\n")
    plan = Plan(requests=[GenerationRequest(skill="add", count=2)])
    strict = Engine(
        Teacher(client), arithmetic, EngineConfig(per_query=2, max_rounds=1, novelty=0.4)
    )
    result = asyncio.run(strict.generate(plan, _obs(arithmetic), []))
    assert [c.verdict for c in result.candidates] == ["similar", "accepted"]
    off = Engine(Teacher(client), arithmetic, EngineConfig(per_query=2, max_rounds=1))
    assert len(asyncio.run(off.generate(plan, _obs(arithmetic), [])).accepted) == 2


class RaisingTask(SlowTask):
    """Wraps a task: verify raises on questions that start with one of ``bad``."""

    def __init__(self, task, bad: tuple[str, ...]) -> None:
        super().__init__(task, 1)
        self.bad = bad

    def verify(self, example):
        if example.question.startswith(self.bad):
            raise ZeroDivisionError("division by zero in my verify")
        return self.task.verify(example)


def test_a_verify_that_raises_rejects_that_candidate_and_is_counted(arithmetic) -> None:
    text = " 20+10\nA: 30\nQ: 21+10\nA: 31\nQ: 22+10\nA: 32\n"
    plan = Plan(requests=[GenerationRequest(skill="add", count=3)])
    engine = Engine(
        Teacher(ScriptedClient(text)), RaisingTask(arithmetic, ("21",)), EngineConfig(max_rounds=1)
    )
    result = asyncio.run(engine.generate(plan, _obs(arithmetic), []))
    assert [c.verdict for c in result.candidates] == ["accepted", "error", "accepted"]
    error = result.candidates[1].error
    assert error is not None and error.startswith("ZeroDivisionError: division by zero in my")
    assert "test_engine.py" in error and "in verify" in error  # the line that raised
    assert result.report.counts[0].errors == 1


def test_when_most_candidates_raise_the_environment_is_named(arithmetic) -> None:
    text = " 20+10\nA: 30\nQ: 21+10\nA: 31\nQ: 22+10\nA: 32\n"
    plan = Plan(requests=[GenerationRequest(skill="add", count=3)])
    task = RaisingTask(arithmetic, ("20", "21"))
    engine = Engine(Teacher(ScriptedClient(text)), task, EngineConfig(max_rounds=1))
    with pytest.raises(PluginError, match="checking candidates raised on 2 of 3") as caught:
        asyncio.run(engine.generate(plan, _obs(arithmetic), []))
    assert "test_engine.py:RaisingTask" in str(caught.value)
    assert "ZeroDivisionError" in str(caught.value) and "\n" not in str(caught.value)


def test_near_duplicates_of_the_training_set_and_the_batch_are_removed_and_counted(
    arithmetic,
) -> None:
    held = Example.make("add", "What is the sum of 12 and 34 when both are added together?", "46")
    text = (
        " what is the sum of 12 and 34 when both are added together now?\nA: 46\n"  # near held
        "Q: Tell me the total of 40 and 2 added together please\nA: 42\n"
        "Q: tell me the total of 40 and 2 added together please!!\nA: 42\n"  # exact: duplicate
        "Q: Tell me the total of 40 and 2 added together, please, now\nA: 42\n"  # near the 2nd
    )
    task = _Permissive(skills=["add"])
    engine = Engine(
        Teacher(ScriptedClient(text)),
        task,
        EngineConfig(per_query=4, max_rounds=1, near_duplicates=0.5),
    )
    plan = Plan(requests=[GenerationRequest(skill="add", count=4)])
    result = asyncio.run(engine.generate(plan, _obs(arithmetic), [held]))
    verdicts = [c.verdict for c in result.candidates]
    assert verdicts == ["near-duplicate", "accepted", "duplicate", "near-duplicate"]
    counts = result.report.counts[0]
    assert (counts.verified, counts.near_duplicates, counts.deduplicated) == (4, 2, 1)
    off = Engine(Teacher(ScriptedClient(text)), task, EngineConfig(per_query=4, max_rounds=1))
    assert len(asyncio.run(off.generate(plan, _obs(arithmetic), [held])).accepted) == 3
    with pytest.raises(ValueError, match="near_duplicates"):
        EngineConfig(near_duplicates=0)  # a threshold in (0, 1]


class _Permissive(ArithmeticTask):
    """Arithmetic's skills, any question accepted as it is (word problems too)."""

    def verify(self, example: Example) -> Example | None:
        return example


class CorrectsEachPrompt(ScriptedClient):
    """Reads the problem a refine prompt is about and answers with feedback and its sum (plus
    one if ``off``)."""

    def __init__(self, off: int = 0) -> None:
        super().__init__("")
        self.off = off

    async def complete(self, prompt: str, sampling: Sampling) -> Completion:
        self.prompts.append(prompt)
        question = prompt.rsplit("Q: ", 1)[1].split("\n", 1)[0]
        a, b = question.split("+")
        return Completion(
            texts=[f" {int(a) + int(b) + self.off}\nFeedback: the carry was dropped\n"]
        )


def test_refine_corrects_each_failure_with_feedback_and_keeps_only_right_answers(
    arithmetic,
) -> None:
    seeds = [e for e in arithmetic.split("train") if e.skill == "add"]
    obs = _obs(arithmetic).model_copy(
        update={"failures": [Failure(example=e, prediction="7") for e in seeds[:2]]}
    )
    plan = Plan(requests=[GenerationRequest(skill="add", strategy="refine", count=2)])
    client = CorrectsEachPrompt()
    result = asyncio.run(Engine(Teacher(client), arithmetic).generate(plan, obs, []))
    assert sorted(e.question for e in result.accepted) == sorted(e.question for e in seeds[:2])
    for example in result.accepted:
        parent = next(e for e in seeds if e.question == example.question)
        assert example.answer == parent.answer and example.provenance.parent_ids == [parent.id]
        assert example.provenance.feedback == "the carry was dropped"
    assert all("Student's answer: 7" in p for p in client.prompts)
    # A correction graded wrong against the seed's answer is never kept.
    strict = Engine(Teacher(CorrectsEachPrompt(off=1)), arithmetic, EngineConfig(max_rounds=1))
    wrong = asyncio.run(strict.generate(plan, obs, []))
    assert wrong.accepted == [] and {c.verdict for c in wrong.candidates} == {"wrong-answer"}
    # On arithmetic the right answer is the seed's own: with the seeds trained on, a duplicate.
    again = asyncio.run(
        Engine(Teacher(client), arithmetic, EngineConfig(max_rounds=1)).generate(plan, obs, seeds)
    )
    assert again.accepted == [] and {c.verdict for c in again.candidates} == {"duplicate"}


def test_refine_on_code_keeps_a_correction_only_if_it_passes_the_seeds_tests() -> None:
    from dataloop.environments import load_task

    code = load_task("code", options={"fixture": True})
    seed = code.split("train")[0]
    assert seed.question.startswith("def factorial(n: int) -> int:")
    obs = Observation(
        iteration=0,
        skills=code.skills(),
        accuracy={},
        mean_accuracy=0.0,
        failures=[Failure(example=seed, prediction="    return None\n")],
    )
    plan = Plan(requests=[GenerationRequest(skill=seed.skill, strategy="refine", count=1)])

    def run(answer: str):
        reply = json.dumps({"feedback": "it returns nothing", "answer": answer})
        client = ScriptedClient(reply)
        engine = Engine(Teacher(client, kind="chat"), code, EngineConfig(max_rounds=1))
        return asyncio.run(engine.generate(plan, obs, [])), client

    passing, client = run(seed.answer)
    assert '"student_answer": "    return None\\n"' in client.prompts[0]
    (accepted,) = passing.accepted
    assert accepted.question.rstrip() == seed.question.rstrip()
    assert accepted.provenance.feedback == "it returns nothing"
    # Fails the doctest in the question: rejected by the task's verify.
    failing, _ = run("    return 0\n")
    assert failing.accepted == [] and [c.verdict for c in failing.candidates] == ["unverified"]
    # Passes that doctest (factorial(4) == 24) but not the seed's hidden tests: a wrong answer.
    gamed, _ = run("    return 24\n")
    assert gamed.accepted == [] and [c.verdict for c in gamed.candidates] == ["wrong-answer"]


def test_harder_writes_from_solved_seeds_and_the_task_verifies(arithmetic) -> None:
    seeds = [e for e in arithmetic.split("train") if e.skill == "add"]
    obs = _obs(arithmetic).model_copy(
        update={"failures": [Failure(example=e, prediction="7") for e in seeds[1:]]}
    )
    client = ScriptedClient(" 45+46\nA: 0\n")  # a wrong answer: recomputed by verify
    engine = Engine(Teacher(client), arithmetic, EngineConfig(max_rounds=1))
    plan = Plan(requests=[GenerationRequest(skill="add", strategy="harder", count=1)])
    result = asyncio.run(engine.generate(plan, obs, seeds))
    (example,) = result.accepted
    assert (example.question, example.answer, example.provenance.relabelled) == (
        "45+46",
        "91",
        True,
    )
    assert example.provenance.parent_ids == [seeds[0].id]  # the one seed the student solves
    assert f"solves this problem:\nQ: {seeds[0].question}" in client.prompts[0]
    every = obs.model_copy(update={"failures": [Failure(example=e, prediction="7") for e in seeds]})
    none = asyncio.run(Engine(Teacher(ScriptedClient("")), arithmetic).generate(plan, every, []))
    assert none.accepted == [] and none.report.counts[0].generated == 0  # nothing solved


def test_an_engine_is_built_from_its_config_section_and_the_teachers_sampling(arithmetic) -> None:
    text = " 45+45\nA: 90\nQ: 11+22\nA: 33\n"
    plan = Plan(requests=[GenerationRequest(skill="add", count=2)])

    def run(engine: Engine) -> list[str]:
        result = asyncio.run(engine.generate(plan, _obs(arithmetic), []))
        return [c.verdict for c in result.candidates]

    assert run(Engine(Teacher(ScriptedClient(text)), arithmetic, EngineConfig(per_query=2))) == [
        "accepted",
        "accepted",
    ]
    client = ScriptedClient(text)
    config = EngineConfig(per_query=2, max_rounds=1, max_chars=4)
    sampling = Sampling(temperature=0.3, max_tokens=64)
    assert run(Engine(Teacher(client), arithmetic, config, sampling=sampling)) == ["too-long"] * 2
    assert [(s.temperature, s.max_tokens) for s in client.samplings] == [(0.3, 64)]
    # The settings given one by one, as before the config object: the same engine, a warning.
    before = ScriptedClient(text)
    with pytest.warns(DeprecationWarning, match=r"Engine\(per_query=\.\.\., "):
        old = Engine(
            Teacher(before),
            arithmetic,
            per_query=2,
            max_rounds=1,
            max_chars=4,
            temperature=0.3,
            max_tokens=64,
        )
    assert run(old) == ["too-long"] * 2 and before.samplings == client.samplings
    with pytest.warns(DeprecationWarning, match=r"read Engine\.config\.max_rounds"):
        assert old.max_rounds == 1
    with pytest.raises(TypeError, match="unexpected keyword argument 'shot'"):
        Engine(Teacher(before), arithmetic, shot=3)
