"""The judge-quality benchmark (benchmarks/judge_quality.py): its labelled set, its judging
through dataloop's Judge against a server (tests/fakeserver.py), and its table."""

from __future__ import annotations

import asyncio
import json
import re

from benchscripts import load
from fakeserver import FakeOpenAI

from dataloop.envs.arithmetic import ArithmeticTask
from dataloop.llm.client import OpenAIClient

quality = load("judge_quality")


def test_the_labelled_set_pairs_each_right_example_with_a_wrong_one() -> None:
    task = ArithmeticTask(seed=quality.TASK_SEED)
    examples = quality.labelled(3)
    assert len(examples) == 2 * 3 * len(task.skills())
    for example, label in examples:
        assert task.check_answer(example) is (label == "right")
    rights = {e.question for e, label in examples if label == "right"}
    assert {e.question for e, label in examples if label == "wrong"} == rights


def test_a_judge_that_reads_the_answer_separates_and_one_that_copies_does_not(tmp_path) -> None:
    task = ArithmeticTask(seed=quality.TASK_SEED)
    examples = quality.labelled(2)
    right = {(e.question, e.answer) for e, label in examples if label == "right"}

    def discerning(prompt: str) -> str:
        question = re.search(r"Question:\n(.+)\n", prompt)[1]
        answer = re.search(r"Answer:\n(.+)\n", prompt)[1]
        ok = (question, answer) in right
        return json.dumps({"score": 5 if ok else 2, "reason": f"{question} -> {answer}"})

    def copying(prompt: str) -> str:
        return json.dumps({"score": 4, "reason": "one sentence on what decided the score"})

    rows = []
    for name, reply in (("discerning", discerning), ("copying", copying)):
        with FakeOpenAI(reply=reply) as server:
            client = OpenAIClient("judge", [server.base_url])
            scored = asyncio.run(quality.judge_all(client, "chat", None, examples, task))
        rows += [
            quality.Judgement(
                session="2026-12-04T19:00:00+00:00", commit="abcdef0", variant=name, kind="chat",
                repeat=1, skill=e.skill, label=label, score=score, reason=reason,
            )
            for (e, label), (score, reason) in zip(examples, scored, strict=True)
        ]  # fmt: skip
    text = quality.table(rows)
    n = len(examples)
    assert f"| discerning | chat | {n} | 5.00 / 2.00 | 100 % | 0 % | +100 points | 0 % |" in text
    assert (
        f"| copying | chat | {n} | 4.00 / 4.00 | 100 % | 100 % | +0 points | 0 % | 100 % |" in text
    )
    assert quality.table([]) == "No measurement recorded yet.\n"
