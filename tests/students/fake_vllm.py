"""A stand-in for ``vllm serve``: the HTTP surface dataloop's student engine uses, checked.

It keeps vLLM's rules: adapters load once per name, requests name a loaded model, a sleeping
engine answers nothing, ``/sleep`` exists only with ``--enable-sleep-mode`` and
``VLLM_SERVER_DEV_MODE=1``. Every request is appended to the ``--calls`` JSONL file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--calls", type=Path, required=True)
    parser.add_argument("--enable-lora", action="store_true")
    parser.add_argument("--enable-sleep-mode", action="store_true")
    args, _ = parser.parse_known_args()
    loaded: dict[str, str] = {}
    state = {"sleeping": False}
    dev_mode = os.environ.get("VLLM_SERVER_DEV_MODE") == "1"

    def record(entry: dict) -> None:
        with args.calls.open("a") as f:
            f.write(json.dumps(entry) + "\n")

    record({"event": "start", "model": args.model, "lora": args.enable_lora, "argv": sys.argv[1:]})

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def _send(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._send(200, {}) if self.path == "/health" else self._send(404, {})

        def do_POST(self) -> None:
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            record({"event": url.path, "query": parse_qs(url.query), "body": body})
            if url.path in ("/sleep", "/wake_up"):
                if not (args.enable_sleep_mode and dev_mode):
                    return self._send(404, {"error": "not found"})
                state["sleeping"] = url.path == "/sleep"
                return self._send(200, {})
            if state["sleeping"]:
                return self._send(503, {"error": "engine is sleeping"})
            if url.path == "/v1/load_lora_adapter":
                if not args.enable_lora or body["lora_name"] in loaded:
                    return self._send(400, {"error": "cannot load"})
                loaded[body["lora_name"]] = body["lora_path"]
                return self._send(200, {})
            if url.path == "/v1/unload_lora_adapter":
                if loaded.pop(body["lora_name"], None) is None:
                    return self._send(404, {"error": "not loaded"})
                return self._send(200, {})
            if url.path == "/v1/completions":
                model = body["model"]
                if model != args.model and model not in loaded:
                    return self._send(404, {"error": f"model {model} does not exist"})
                choices = [
                    {"index": i, "text": f"{model}|{len(ids)}", "finish_reason": "length"}
                    for i, ids in enumerate(body["prompt"])
                ]
                return self._send(
                    200,
                    {
                        "id": "x",
                        "object": "text_completion",
                        "created": 0,
                        "model": model,
                        "choices": choices,
                    },
                )
            self._send(404, {"error": "not found"})

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
