"""A loopback OpenAI-compatible server that injects faults, for client tests and benchmarks."""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Server(ThreadingHTTPServer):
    # The default backlog of 5 refuses connections when many clients connect at once.
    request_queue_size = 256


class FakeOpenAI:
    """Serves ``/v1/completions`` and ``/v1/chat/completions`` on 127.0.0.1.

    ``fault_rate`` of requests fail, evenly among 429, 500, slow (past the client timeout),
    truncated body, malformed JSON and well-formed JSON that is not a completion (``empty``).
    ``latency`` is added to every answer. ``capacity`` makes it a throttling server: a request
    that finds ``capacity`` others in flight is answered at once with ``throttle_status`` (429
    or 503) and, if ``retry_after`` is set, that ``Retry-After`` (counted in ``throttled``).
    ``slots`` makes it a queueing server, as vLLM is: at most that many requests are served at
    once (``latency`` each), the others wait their turn, and none is refused.
    ``reply`` makes the text from the prompt. ``port`` 0 picks a free one. Every request body
    and its ``Authorization`` header are kept in ``bodies`` and ``auth``; ``times`` holds when
    (``time.monotonic``) each request arrived.
    """

    FAULTS = ("429", "500", "slow", "truncated", "malformed", "empty")

    def __init__(
        self,
        fault_rate: float = 0.0,
        latency: float = 0.0,
        slow_seconds: float = 3.0,
        seed: int = 0,
        reply: Any = None,
        port: int = 0,
        capacity: int | None = None,
        throttle_status: int = 429,
        retry_after: float | None = None,
        slots: int | None = None,
    ) -> None:
        self.fault_rate = fault_rate
        self.latency = latency
        self.slow_seconds = slow_seconds
        self.capacity = capacity
        self.throttle_status = throttle_status
        self.retry_after = retry_after
        self.throttled = 0
        self.slots = threading.Semaphore(slots) if slots is not None else None
        self.times: list[float] = []
        self.rng = random.Random(seed)
        self.reply = reply or (lambda prompt: f" echo {len(prompt)}")
        self.requests = 0
        self.bodies: list[dict[str, Any]] = []
        self.auth: list[str] = []
        self.faults: dict[str, int] = {f: 0 for f in self.FAULTS}
        self.concurrent = 0
        self.max_concurrent = 0
        self._lock = threading.Lock()
        self.server = _Server(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible root, ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _pick_fault(self) -> str | None:
        with self._lock:
            self.requests += 1
            if self.rng.random() < self.fault_rate:
                fault = self.rng.choice(self.FAULTS)
                self.faults[fault] += 1
                return fault
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _send(self, code: int, body: bytes, length: int | None = None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(length if length is not None else len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # /health
                self._send(200, b'{"status":"ok"}')

            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake._lock:
                    fake.times.append(time.monotonic())
                    full = fake.capacity is not None and fake.concurrent >= fake.capacity
                    if full:
                        fake.throttled += 1
                    else:
                        fake.bodies.append(request)
                        fake.auth.append(self.headers.get("Authorization", ""))
                        fake.concurrent += 1
                        fake.max_concurrent = max(fake.max_concurrent, fake.concurrent)
                if full:
                    return self._throttle()
                try:
                    self._answer(request)
                finally:
                    with fake._lock:
                        fake.concurrent -= 1

            def _throttle(self) -> None:
                body = b'{"error":{"message":"over capacity"}}'
                self.send_response(fake.throttle_status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if fake.retry_after is not None:
                    self.send_header("Retry-After", f"{fake.retry_after:g}")
                self.end_headers()
                self.wfile.write(body)

            def _answer(self, request: dict[str, Any]) -> None:
                fault = fake._pick_fault()
                if fake.slots is not None:
                    with fake.slots:
                        time.sleep(fake.latency)
                else:
                    time.sleep(fake.latency)
                if fault == "429":
                    return self._send(429, b'{"error":{"message":"slow down"}}')
                if fault == "500":
                    return self._send(500, b'{"error":{"message":"boom"}}')
                if fault == "slow":
                    time.sleep(fake.slow_seconds)
                chat = self.path.endswith("/chat/completions")
                prompt = (
                    "".join(m["content"] for m in request["messages"])
                    if chat
                    else request["prompt"]
                )
                text = fake.reply(prompt)
                n = request.get("n", 1)
                choices = [
                    {"index": i, "finish_reason": "length"}
                    | (
                        {"message": {"role": "assistant", "content": text}}
                        if chat
                        else {"text": text}
                    )
                    for i in range(n)
                ]
                body = json.dumps(
                    {
                        "id": "x",
                        "object": "chat.completion" if chat else "text_completion",
                        "created": 0,
                        "model": request["model"],
                        "choices": choices,
                        "usage": {
                            "prompt_tokens": len(prompt) // 4,
                            "completion_tokens": 10 * n,
                            "total_tokens": len(prompt) // 4 + 10 * n,
                        },
                    }
                ).encode()
                if fault == "malformed":
                    return self._send(200, b"{not json at all")
                if fault == "empty":
                    return self._send(200, b'{"id": "x", "object": "text_completion"}')
                if fault == "truncated":
                    # Promise more bytes than are sent, then close: the client sees a cut body.
                    self._send(200, body[: len(body) // 2], length=len(body))
                    self.close_connection = True
                    return None
                return self._send(200, body)

        return Handler


def few_shot_variations(prompt: str) -> str:
    """A teacher's reply that is a pure function of the prompt: the few-shot questions with
    their digits shifted by a prompt-derived amount (answers left for the task to recompute)."""
    questions = re.findall(r"Q: ([^\n]+)", prompt)
    shift = int(hashlib.sha1(prompt.encode()).hexdigest()[:4], 16)
    lines = []
    for i, q in enumerate(questions):
        moved = re.sub(r"\d", lambda m, i=i: str((int(m[0]) + shift + i) % 10), q)
        lines.append(f" {moved}\nA: 0\nQ:")
    return "".join(lines)
