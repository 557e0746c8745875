"""The task teacher: a stand-in teacher for a machine with no LLM (the lent GPU has none and no
network), served on 127.0.0.1 as an OpenAI-compatible completions endpoint.

It reads the engine's own prompts (``prompts/*/base.j2``) and answers each strategy from the
task's generator, which is the documented deviation from the papers (their teacher is an LLM:
GPT-3.5 in LLM2LLM, several in Chan et al.): its examples are always correct and in
distribution, so the experiments measure what the *data* each method asks for does, without a
teacher's noise.

- ``llm2llm`` ("A student got this problem wrong"): a fresh problem like the failed one: the
  same skill and subskill (arithmetic) or the same template (word problems).
- ``new-question``: a fresh problem of the prompt's skill.
- ``question-rephrase``: the seed problem with another name and item, in either wording; same
  numbers and answer (word problems only).
- ``answer-augmentation``: the seed question with another worked solution (word problems
  only).

Every reply is a pure function of the prompt and the request's sampling ``seed`` (the engine
sends one per request), so requests differ as an LLM's samples do and a rerun gets the same
replies.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

import word_problems as wp

from dataloop.envs.arithmetic import SKILLS as ARITHMETIC_SKILLS
from dataloop.envs.arithmetic import ArithmeticTask
from dataloop.schema import Example

_SKILL = re.compile(r'skill "([^"]+)"')
_FAILED = re.compile(r"got this problem wrong:\nQ: ([^\n]*)\n")
_OPEN_QUESTION = re.compile(r"\nQ: ([^\n]*)\nA:$")
_REPHRASE_TARGET = re.compile(r"\n- ([^\n]*)\n-$")


class Generator(Protocol):
    """What the teacher needs from a task's generator."""

    def new(self, skill: str, rng: random.Random) -> tuple[str, str] | None:
        """A fresh (question, answer) of ``skill``."""
        ...

    def like(self, skill: str, question: str, rng: random.Random) -> tuple[str, str] | None:
        """A fresh (question, answer) like ``question`` (LLM2LLM's teacher)."""
        ...

    def rephrase(self, question: str, rng: random.Random) -> str | None:
        """``question`` reworded, same answer; None if the generator cannot."""
        ...

    def resolve(self, question: str, rng: random.Random) -> str | None:
        """Another worked answer to ``question``; None if the generator cannot."""
        ...


class ArithmeticGenerator:
    """The arithmetic gym's own sampler: a problem like a failed one shares its subskill."""

    def __init__(self) -> None:
        self.task = ArithmeticTask(
            skills=list(ARITHMETIC_SKILLS),
            train_per_skill=1,
            validation_per_skill=1,
            test_per_skill=1,
        )

    def new(self, skill: str, rng: random.Random) -> tuple[str, str] | None:
        drawn = self.task.sample(skill, 1, rng)
        return (drawn[0].question, drawn[0].answer) if drawn else None

    def _subskills(self, example: Example) -> set[str]:
        return {
            s.name
            for s in self.task.subskills(example.skill)
            if self.task.in_subskill(example, s.name)
        }

    def like(self, skill: str, question: str, rng: random.Random) -> tuple[str, str] | None:
        wanted = self._subskills(Example.make(skill, question, ""))
        for _ in range(200):
            drawn = self.task.sample(skill, 1, rng)
            if drawn and drawn[0].question != question and self._subskills(drawn[0]) == wanted:
                return drawn[0].question, drawn[0].answer
        return self.new(skill, rng)

    def rephrase(self, question: str, rng: random.Random) -> str | None:
        return None

    def resolve(self, question: str, rng: random.Random) -> str | None:
        return None


class WordProblemGenerator:
    """E3's word problems (:mod:`word_problems`); ``known`` maps every question of the pool to
    its problem, so seeds can be reworded and solved again."""

    def __init__(self, known: dict[str, wp.Problem]) -> None:
        self.known = known

    def new(self, skill: str, rng: random.Random) -> tuple[str, str] | None:
        if skill not in wp.SKILLS:
            return None
        problem = wp.draw(rng, skill=skill)
        return problem.question(rng.randint(0, 1)), problem.solution()

    def like(self, skill: str, question: str, rng: random.Random) -> tuple[str, str] | None:
        seed = self.known.get(question)
        if seed is None:
            return self.new(skill, rng)
        problem = wp.draw(rng, template=seed.template)
        return problem.question(rng.randint(0, 1)), problem.solution()

    def rephrase(self, question: str, rng: random.Random) -> str | None:
        seed = self.known.get(question)
        if seed is None:
            return None
        return wp.rephrased(seed, rng).question(rng.randint(0, 1))

    def resolve(self, question: str, rng: random.Random) -> str | None:
        seed = self.known.get(question)
        return seed.solution(rng) if seed is not None else None


def reply(generator: Generator, prompt: str, seed: int | None = None) -> str:
    """The completion a base-model teacher would write after ``prompt`` when sampling with
    ``seed`` (empty when the generator cannot serve the strategy: the engine counts it as
    unparsed)."""
    rng = random.Random(hashlib.sha256(f"{seed}/{prompt}".encode()).hexdigest())
    skill = _SKILL.search(prompt)
    name = skill[1] if skill else ""
    pair: tuple[str, str] | None = None
    if failed := _FAILED.search(prompt):  # llm2llm
        pair = generator.like(name, failed[1], rng)
    elif "Every answer is correct." in prompt and (open_q := _OPEN_QUESTION.search(prompt)):
        answer = generator.resolve(open_q[1], rng)  # answer-augmentation
        return f" {answer}\n" if answer else ""
    elif "Problems that have the same answer" in prompt and (
        target := _REPHRASE_TARGET.search(prompt)
    ):
        reworded = generator.rephrase(target[1], rng)  # question-rephrase
        return f" {reworded}\n" if reworded else ""
    elif prompt.endswith("Q:"):  # new-question
        pair = generator.new(name, rng)
    return f" {pair[0]}\nA: {pair[1]}\n" if pair else ""


class TaskTeacher:
    """:func:`reply` served at ``http://127.0.0.1:PORT/v1`` (``/completions``, ``/models``);
    a context manager. ``port`` 0 picks a free one; ``queries`` counts the completions served."""

    def __init__(self, generator: Generator, port: int = 0, model: str = "task-teacher") -> None:
        self.generator = generator
        self.model = model
        self.queries = 0
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible root the run config's ``teacher.base_urls`` names."""
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> TaskTeacher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.queries += 1
        text = reply(self.generator, request["prompt"], request.get("seed"))
        choices = [
            {"index": i, "text": text, "finish_reason": "stop"} for i in range(request.get("n", 1))
        ]
        tokens = len(request["prompt"]) // 4
        usage = {"prompt_tokens": tokens, "completion_tokens": len(text) // 4}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        head = {"id": "task", "object": "text_completion", "created": 0, "model": self.model}
        return {**head, "choices": choices, "usage": usage}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        teacher = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _send(self, code: int, data: dict[str, Any]) -> None:
                body = json.dumps(data).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._send(200, {"object": "list", "data": [{"id": teacher.model}]})

            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if not self.path.endswith("/completions") or "prompt" not in request:
                    self._send(404, {"error": {"message": "only /v1/completions is served"}})
                    return
                self._send(200, teacher._answer(request))

        return Handler
