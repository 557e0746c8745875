"""The server manager: command lines, health wait, log, and stopping, with a stand-in ``vllm``."""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

import pytest

from dataloop.errors import TeacherError
from dataloop.llm.server import PACKAGED_GGUF_NAME, chat_template_args, vllm_server

# A stand-in for the `vllm` command: records its argv and answers /health on --port.
FAKE_VLLM = f"""#!{sys.executable}
import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
lora = os.environ.get("VLLM_ALLOW_RUNTIME_LORA_UPDATING")
with open(os.environ["FAKE_VLLM_ARGV"], "w") as f:
    json.dump({{"argv": sys.argv[1:], "lora": lora}}, f)
print("fake vllm starting", flush=True)
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers()
        self.wfile.write(b"ok")
HTTPServer(("127.0.0.1", int(sys.argv[sys.argv.index("--port") + 1])), H).serve_forever()
"""


def test_vllm_serve_gets_its_flags_is_waited_for_and_stopped(tmp_path, monkeypatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "vllm").write_text(FAKE_VLLM)
    (bin_dir / "vllm").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_VLLM_ARGV", str(tmp_path / "argv.json"))
    server = vllm_server(
        "org/teacher",
        tmp_path / "logs" / "vllm.log",
        tensor_parallel_size=2,
        max_model_len=4096,
        lora_modules={"math": "/adapters/math"},
        max_lora_rank=16,
        extra_args=["--gpu-memory-utilization", "0.5"],
    )
    with server:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/health") as resp:
            assert resp.status == 200
        process = server.process
    assert process is not None and process.poll() is not None  # stopped on exit
    recorded = json.loads((tmp_path / "argv.json").read_text())
    assert recorded["argv"] == [
        "serve", "org/teacher", "--host", "127.0.0.1", "--port", str(server.port),
        "--tensor-parallel-size", "2", "--max-model-len", "4096",
        "--enable-lora", "--lora-modules", "math=/adapters/math", "--max-lora-rank", "16",
        "--gpu-memory-utilization", "0.5",
    ]  # fmt: skip
    assert recorded["lora"] == "True"
    assert "fake vllm starting" in (tmp_path / "logs" / "vllm.log").read_text()


def test_without_vllm_on_path_the_error_says_what_to_do(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(TeacherError, match="pip install 'dataloop\\[vllm\\]'"):
        vllm_server("org/teacher", tmp_path / "vllm.log")


def test_chat_templates_for_llama_server(tmp_path) -> None:
    packaged = Path("/cache") / PACKAGED_GGUF_NAME
    # The packaged Gemma has no template of its own: the built-in one, with jinja off (with
    # jinja on, llama-server would use the word "gemma" itself as the template).
    assert chat_template_args(packaged, None) == ["--no-jinja", "--chat-template", "gemma"]
    assert chat_template_args(tmp_path / "other.gguf", None) == []
    assert chat_template_args(packaged, "chatml") == ["--no-jinja", "--chat-template", "chatml"]
    template = tmp_path / "mine.jinja"
    template.write_text("{{ messages[0]['content'] }}")
    assert chat_template_args(packaged, str(template)) == [
        "--jinja",
        "--chat-template-file",
        str(template),
    ]
    with pytest.raises(TeacherError, match=r"missing\.jinja does not exist"):
        chat_template_args(packaged, str(tmp_path / "missing.jinja"))
