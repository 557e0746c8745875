"""The teacher a ``teacher`` config section describes: checked, its servers, its client.

One function per step, each reading the backend's own config model
(:data:`~dataloop.config.AnyTeacherConfig`)::

    model = check_teacher(config)            # before anything starts: files, programs, key
    with teacher_client(config, cache_dir=run.cache, server_log=run.teacher_log) as client:
        await probe_teacher(client, config)  # a running server that is down fails now
        ...                                  # a server it started stops with the block
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataloop.config import (
    AnyTeacherConfig,
    HTTPTeacherConfig,
    LlamaServerTeacherConfig,
    OpenAITeacherConfig,
    VLLMOfflineTeacherConfig,
    VLLMTeacherConfig,
)
from dataloop.errors import ConfigError, TeacherError
from dataloop.llm.base import LLMClient
from dataloop.llm.cache import ResponseCache
from dataloop.llm.server import (
    ServerGroup,
    default_gguf,
    llama_server,
    llama_server_binary,
    vllm_command,
    vllm_server,
)
from dataloop.redact import REDACTED, refuse_key
from dataloop.schema import Budget

if TYPE_CHECKING:
    from dataloop.llm.client import Flavor


def api_key(config: OpenAITeacherConfig) -> str | None:
    """The key in the variable ``api_key_env`` names (None without one); ConfigError when
    that variable is not set."""
    if config.api_key_env is None:
        return None
    key = os.environ.get(config.api_key_env)
    if not key:
        raise ConfigError(
            f"config field 'teacher.api_key_env': environment variable "
            f"{config.api_key_env} is not set"
        )
    return key


def check_teacher(config: AnyTeacherConfig) -> str:
    """Raise ConfigError for a teacher configuration that cannot work, before anything starts
    (what can be known without starting it: files, programs, the key's variable, prices);
    returns the model name requests will use."""
    model = config.request_model
    refuse_key("teacher.model", config.model)
    if isinstance(config, VLLMTeacherConfig):
        refuse_key("teacher.served_model", config.served_model)
    if isinstance(config, LlamaServerTeacherConfig):
        gguf = Path(config.model) if config.model else default_gguf()
        if not gguf.is_file():
            raise ConfigError(f"config field 'teacher.model': GGUF file {gguf} does not exist")
        llama_server_binary()
        model = gguf.stem
    elif not config.model or not model:
        raise ConfigError(
            f"config field 'teacher.model': the {config.backend} backend needs a model"
        )
    if isinstance(config, VLLMTeacherConfig):
        try:
            vllm_command(model, config.vllm_python)
        except TeacherError as exc:
            field = "teacher.vllm_python" if config.vllm_python else "teacher.backend"
            raise ConfigError(f"config field '{field}': {exc}") from None
    if isinstance(config, VLLMOfflineTeacherConfig) and importlib.util.find_spec("vllm") is None:
        raise ConfigError(
            "config field 'teacher.backend': 'vllm-offline' needs vLLM: pip install "
            "'dataloop[vllm]' on a machine with a GPU"
        )
    if isinstance(config, OpenAITeacherConfig):
        if not config.base_urls:
            raise ConfigError(
                "config field 'teacher.base_urls': the openai backend needs at least one URL, "
                "e.g. http://127.0.0.1:8000/v1"
            )
        redacted = [url for url in config.base_urls if REDACTED in url]
        if redacted:
            raise ConfigError(
                f"config field 'teacher.base_urls': {redacted[0]} had credentials, which "
                "dataloop never saves; give the URL again (dataloop resume RUN --set "
                "teacher.base_urls=[...]), or pass the key through teacher.api_key_env"
            )
        api_key(config)
    if config.max_cost is not None and model not in config.prices:
        raise ConfigError(
            f"config field 'teacher.max_cost': teacher.prices has no entry for model '{model}'; "
            "add its price per million prompt and completion tokens"
        )
    return model


def teacher_servers(config: AnyTeacherConfig, log: Path, port: int | None = None) -> ServerGroup:
    """The ``replicas`` servers a ``llama-server`` or ``vllm`` teacher runs on (not started
    yet): replica i listens on ``port + i`` (free ports if ``port`` is None), logs to ``log``
    (``log`` with ``-i`` before its suffix when there are several) and gets its share of
    ``devices``. The other backends start none (ConfigError)."""
    if not isinstance(config, LlamaServerTeacherConfig | VLLMTeacherConfig):
        raise ConfigError(
            f"config field 'teacher.backend': '{config.backend}' starts no server; "
            "known: llama-server, vllm"
        )
    if isinstance(config, VLLMTeacherConfig) and not config.model:
        raise ConfigError("config field 'teacher.model': vllm needs a model id or folder")
    k = config.replicas
    share = len(config.devices) // k
    servers = []
    for i in range(k):
        common: dict[str, Any] = {
            "extra_args": config.server_args,
            "port": port + i if port else None,
            "devices": config.devices[i * share : (i + 1) * share] or None,
        }
        path = log if k == 1 else log.with_name(f"{log.stem}-{i}{log.suffix}")
        if isinstance(config, VLLMTeacherConfig):
            assert config.model is not None
            server = vllm_server(
                config.model,
                path,
                tensor_parallel_size=config.tensor_parallel_size,
                max_model_len=config.max_model_len,
                lora_modules=config.lora_modules,
                max_lora_rank=config.max_lora_rank,
                python=config.vllm_python,
                **common,
            )
        else:
            server = llama_server(
                Path(config.model) if config.model else default_gguf(),
                path,
                parallel=config.parallel,
                threads=config.threads,
                chat_template=config.chat_template,
                **common,
            )
        servers.append(server)
    return ServerGroup(servers)


@contextmanager
def teacher_client(
    config: AnyTeacherConfig,
    *,
    cache_dir: Path,
    server_log: Path,
    budget: Budget | None = None,
) -> Iterator[LLMClient]:
    """The configured teacher (checked first, :func:`check_teacher`); a server it starts
    lives as long as the block. ``cache_dir``: the response cache (when ``cache`` is on);
    ``server_log``: a started server's log; ``budget``: one to spend instead of a new one made
    from the section's limits (a judge spends the teacher's)."""
    # Imported here: openai and httpx load only for a run that reaches a teacher.
    from dataloop.llm.client import OpenAIClient
    from dataloop.llm.offline import VLLMOfflineClient

    model = check_teacher(config)
    limits = Budget(max_queries=config.max_queries, max_tokens=config.max_total_tokens)
    accounting: dict[str, Any] = {
        "budget": limits if budget is None else budget,
        "cache": ResponseCache(cache_dir) if config.cache else None,
        "price": config.prices.get(model),
        "max_cost": config.max_cost,
    }
    if isinstance(config, VLLMOfflineTeacherConfig):
        yield VLLMOfflineClient(
            model,
            tensor_parallel_size=config.tensor_parallel_size,
            max_model_len=config.max_model_len,
            seed=config.seed,
            engine_args=config.engine_args,
            **accounting,
        )
        return
    http = _http_settings(config)
    if isinstance(config, OpenAITeacherConfig):
        key = api_key(config)
        yield OpenAIClient(model, config.base_urls, key, flavor=config.flavor, **http, **accounting)
        return
    servers = teacher_servers(config, server_log)
    flavor: Flavor = "vllm" if isinstance(config, VLLMTeacherConfig) else "llama.cpp"
    with servers:
        yield OpenAIClient(model, servers.base_urls, flavor=flavor, **http, **accounting)


async def probe_teacher(client: LLMClient, config: AnyTeacherConfig) -> None:
    """Ask each endpoint of a server already running (``openai``) for its model list within
    ``probe_timeout``, so that one that is down or hangs is reported before anything trains.
    Nothing to do for the other backends: a server dataloop starts was waited for until
    healthy, and ``vllm-offline`` is in the process."""
    from dataloop.llm.client import OpenAIClient

    if isinstance(config, OpenAITeacherConfig) and isinstance(client, OpenAIClient):
        await client.probe(config.probe_timeout)


def _http_settings(config: HTTPTeacherConfig) -> dict[str, Any]:
    """:class:`~dataloop.llm.client.OpenAIClient`'s keyword arguments for how requests are
    sent, retried and spread."""
    return {
        "concurrency": config.concurrency,
        "max_concurrency": config.max_concurrency,
        "cooldown": config.endpoint_cooldown,
        "timeout": config.timeout,
        "retries": config.retries,
        "max_connection_failures": config.max_connection_failures,
    }
