"""E3's word-problem gym and the task teacher that stands in for an LLM on the GPU machine
(benchmarks/word_problems.py, benchmarks/task_teacher.py); the scripts themselves run in
tests/integration/test_gpu_scripts.py."""

from __future__ import annotations

import json
import random
import re
import sys
import urllib.request
from pathlib import Path

import pytest

from dataloop.engine.filters import Decontaminator
from dataloop.envs.math import MathTask, final_answer
from dataloop.schema import Example

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import task_teacher
import word_problems as wp


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> tuple[MathTask, dict[str, wp.Problem]]:
    folder = tmp_path_factory.mktemp("pool")
    known = wp.write_pool(folder, 3, {"train": 400, "validation": 50, "test": 100})
    task = MathTask(seed=1, data_files=str(folder), skill_field="skill", train_size=50,
                    validation_size=50, test_size=100)  # fmt: skip
    return task, known


def test_the_pool_is_math_the_math_environment_accepts_with_distinct_splits(pool) -> None:
    task, _ = pool
    assert {s.name for s in task.skills()} == set(wp.SKILLS)
    questions = [{e.question for e in task.split(s)} for s in ("train", "validation", "test")]
    assert not (questions[0] & questions[1] or questions[0] & questions[2])
    for example in task.split("train"):
        assert task.verify(example) is not None  # arithmetic checks, answer marked
        assert task.score(example, example.answer)


def test_fresh_problems_are_rarely_rejected_as_contaminated(pool) -> None:
    task, _ = pool
    held_out = Decontaminator(task.split("validation") + task.split("test"))
    rng = random.Random(0)
    drawn = [wp.draw(rng) for _ in range(500)]
    hits = sum(held_out.contaminated(Example.make(p.skill, p.question(0), "")) for p in drawn)
    assert hits / len(drawn) < 0.1


def test_another_solution_differs_in_words_not_in_answer(pool) -> None:
    task, _ = pool
    rng = random.Random(0)
    for problem in (wp.draw(rng) for _ in range(200)):
        other = problem.solution(rng)
        assert other != problem.solution()
        assert final_answer(other) == final_answer(problem.solution())
        example = Example.make(problem.skill, problem.question(0), other)
        assert task.verify(example) is not None


def _ask(url: str, prompt: str, seed: int) -> str:
    body = json.dumps({"model": "task-teacher", "prompt": prompt, "seed": seed}).encode()
    request = urllib.request.Request(
        f"{url}/completions", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        data = json.loads(answer.read())
    assert data["choices"][0]["finish_reason"] == "stop"
    return str(data["choices"][0]["text"])


def test_the_task_teacher_answers_each_strategy_s_prompt_over_http(pool) -> None:
    task, known = pool
    seed = task.split("train")[0]
    other = next(e for e in task.split("train")[1:] if e.skill == seed.skill)
    with task_teacher.TaskTeacher(task_teacher.WordProblemGenerator(known)) as teacher:
        # answer-augmentation (prompts/answer_augmentation/base.j2's end): a new solution.
        head = f'Problems of the skill "{seed.skill}": x. Every answer is correct.\n'
        shown = f"Q: {other.question}\nA: {other.answer}\n"
        aa = _ask(teacher.base_url, f"{head}{shown}Q: {seed.question}\nA:", 1)
        assert final_answer(aa) == final_answer(seed.answer) and aa.strip() != seed.answer
        # question-rephrase: the seed problem reworded, same numbers.
        head = f'Problems of the skill "{seed.skill}": x.\n'
        head += "Problems that have the same answer, written in different ways.\n"
        rephrase = f"{head}Answer {seed.answer}:\n- {seed.question}\n-"
        reworded = _ask(teacher.base_url, rephrase, 1).strip()
        assert reworded != seed.question
        assert sorted(re.findall(r"\d+", reworded)) == sorted(re.findall(r"\d+", seed.question))
        # The same prompt with another sampling seed gets another sample, as an LLM's would.
        assert {_ask(teacher.base_url, rephrase, s) for s in range(5)} != {reworded}
        # new-question: a fresh Q/A of the prompt's skill.
        new = _ask(teacher.base_url, f'Practice problems for the skill "{seed.skill}": x.\nQ:', 2)
        question, answer = new.split("\nA: ")
        drawn = Example.make(seed.skill, question.strip(), answer.strip())
        assert task.verify(drawn) is not None
        assert teacher.queries == 8


def test_the_arithmetic_teacher_writes_a_problem_of_the_failed_one_s_subskill() -> None:
    generator = task_teacher.ArithmeticGenerator()
    prompt = (
        'Practice problems for the skill "max": x.\nA student got this problem wrong:\n'
        "Q: max(83,21)\nA: 83\nA similar new problem, a little different:\nQ:"
    )
    for seed in range(20):
        question, answer = task_teacher.reply(generator, prompt, seed).strip().split("\nA: ")
        a, b = (int(n) for n in question[4:-1].split(","))
        assert a > b and a // 10 != b // 10 and answer == str(a)  # first-larger, not same-tens
