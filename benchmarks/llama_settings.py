"""llama-server settings for the experiments' teacher, on one iteration of their own workload.

The registered experiments (E4-E6) run Gemma 3 270M in llama-server with 2 threads, 8 slots and
``--poll 0`` (threads sleep while they wait for work: beside other work, spinning threads starved
the teacher). This measures what those choices cost or gain on an otherwise idle machine: each
variant is a llama-server started with its own slots and extra arguments, and every variant gets
the very same work, one iteration of a uniform teacher arm of the size the experiments ask for
(``new-question`` for the six default arithmetic skills with the task's default seed examples,
100 examples, dataloop's ``Engine`` with its default settings; the gyms' seed counts differ, the
prompts' form does not), through the same ``OpenAIClient`` with as many requests in flight as
the variant has slots. The variants run in alternation, repeat after repeat, each repeat with
other seed examples (the same for every variant), so a noisy machine slows all alike. Each pass
records its wall seconds and completion tokens per second; the result is each variant's median
seconds as a ratio to the first variant's.

    .venv/bin/python benchmarks/llama_settings.py --repeats 3 \\
        --variant "poll0-np8:8:--poll 0" --variant "poll50-np8:8:--poll 50" \\
        --variant "poll0-np16:16:--poll 0"
    .venv/bin/python benchmarks/llama_settings.py --table   # the table of the recorded data

A variant is ``NAME:SLOTS:EXTRA ARGS``; the extra arguments come after dataloop's own, and
llama.cpp takes the last of a repeated option. Each pass is appended to
``benchmarks/results/llama_settings.jsonl`` (committed); docs/benchmarks.md's table is
:func:`table` of that file (``benchmarks/docs_tables.py`` regenerates it). Run it on an idle
machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shlex
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from dataloop.config import EngineConfig
from dataloop.engine.engine import Engine
from dataloop.environments import load_task
from dataloop.identity import code_identity
from dataloop.llm import OpenAIClient
from dataloop.llm.server import default_gguf, llama_server
from dataloop.llm.teacher import Teacher
from dataloop.policies import allocate
from dataloop.schema import GenerationRequest, Observation, Plan

RESULTS = Path(__file__).resolve().parent / "results" / "llama_settings.jsonl"


class Pass(BaseModel):
    """One pass of the iteration's plan through one llama-server variant."""

    session: str
    """When the measurement began (UTC, ISO 8601): the passes of one measurement share it."""
    commit: str
    machine: str
    variant: str
    slots: int
    extra_args: list[str]
    repeat: int
    seconds: float
    tokens_per_s: float
    queries: int
    accepted: int
    examples: int


def read_passes(path: Path = RESULTS) -> list[Pass]:
    """The recorded passes, oldest first."""
    if not path.exists():
        return []
    return [Pass.model_validate_json(line) for line in path.read_text().splitlines() if line]


def table(passes: list[Pass]) -> str:
    """A markdown table per measurement: per variant the median (min, max) wall seconds of the
    iteration, median completion tokens per second, and median seconds as a ratio to the first
    variant's."""
    if not passes:
        return "No measurement recorded yet.\n"
    blocks = []
    for session in dict.fromkeys(p.session for p in passes):
        mine = [p for p in passes if p.session == session]
        first = mine[0]
        lines = [
            f"{session[:10]}, {first.machine}, commit `{first.commit[:7]}`: one iteration of "
            f"{first.examples} examples (new-question, 6 skills), "
            f"{max(p.repeat for p in mine)} repeats.",
            "",
            "| variant | slots | extra arguments | median s | min | max | tokens/s | s / first |",
            "|---|---:|---|---:|---:|---:|---:|---:|",
        ]
        variants = list(dict.fromkeys(p.variant for p in mine))
        base = statistics.median(p.seconds for p in mine if p.variant == variants[0])
        for variant in variants:
            own = [p for p in mine if p.variant == variant]
            seconds = [p.seconds for p in own]
            median = statistics.median(seconds)
            rate = statistics.median(p.tokens_per_s for p in own)
            lines.append(
                f"| {variant} | {own[0].slots} | `{shlex.join(own[0].extra_args)}` | "
                f"{median:.1f} | {min(seconds):.1f} | {max(seconds):.1f} | {rate:.1f} | "
                f"{median / base:.2f} |"
            )
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def docs_table() -> str:
    """docs/benchmarks.md's table: :func:`table` of the committed results file."""
    return table(read_passes())


def iteration_plan(examples: int) -> Plan:
    """A uniform iteration: ``examples`` split equally over the arithmetic skills."""
    skills = [s.name for s in load_task("arithmetic").skills()]
    counts = allocate(examples, {s: 1.0 for s in skills})
    return Plan(
        requests=[
            GenerationRequest(skill=s, strategy="new-question", count=n) for s, n in counts.items()
        ]
    )


async def one_pass(url: str, plan: Plan, slots: int, seed: int) -> tuple[float, float, int, int]:
    """Wall seconds, completion tokens per second, queries and accepted examples of one pass."""
    task = load_task("arithmetic", seed=seed)
    client = OpenAIClient("gemma", [url], concurrency=slots, flavor="llama.cpp")
    engine = Engine(Teacher(client, seed=seed), task, EngineConfig())
    obs = Observation(iteration=0, skills=task.skills(), accuracy={}, mean_accuracy=0.0)
    start = time.perf_counter()
    result = await engine.generate(plan, obs, task.split("train"))
    elapsed = time.perf_counter() - start
    tokens, queries = client.budget.completion_tokens, client.budget.queries
    await client.aclose()
    return elapsed, tokens / elapsed, queries, len(result.accepted)


def parse_variant(text: str) -> tuple[str, int, list[str]]:
    """``NAME:SLOTS:EXTRA ARGS`` as (name, slots, extra arguments)."""
    name, slots, extra = text.split(":", 2)
    return name, int(slots), shlex.split(extra)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", action="append", default=[], help="NAME:SLOTS:EXTRA ARGS")
    parser.add_argument("--examples", type=int, default=100, help="examples in the iteration")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--results", type=Path, default=RESULTS, help="file the passes go to")
    parser.add_argument("--table", action="store_true", help="print the recorded data's table")
    args = parser.parse_args()
    if args.table:
        print(table(read_passes(args.results)), end="")
        return
    variants = [parse_variant(v) for v in args.variant]
    if len(variants) < 2:
        parser.error("give at least two --variant NAME:SLOTS:EXTRA ARGS to compare")

    plan = iteration_plan(args.examples)
    logs = Path(tempfile.mkdtemp(prefix="llama-settings-"))
    session = datetime.now(UTC).isoformat(timespec="seconds")
    commit = code_identity().commit or "unknown"
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}"
    args.results.parent.mkdir(parents=True, exist_ok=True)
    for repeat in range(args.repeats):
        for name, slots, extra in variants:
            # One server at a time: two idle servers would still share the 2 cores' caches.
            server = llama_server(
                default_gguf(), logs / f"{name}.log", parallel=slots, extra_args=extra
            )
            server.start()
            try:
                seconds, rate, queries, accepted = asyncio.run(
                    one_pass(server.base_url, plan, slots, seed=100 + repeat)
                )
            finally:
                server.stop()
            record = Pass(
                session=session, commit=commit, machine=machine, variant=name, slots=slots,
                extra_args=extra, repeat=repeat + 1, seconds=seconds, tokens_per_s=rate,
                queries=queries, accepted=accepted, examples=args.examples,
            )  # fmt: skip
            with args.results.open("a") as f:
                f.write(record.model_dump_json() + "\n")
            print(
                f"repeat {repeat + 1} {name}: {seconds:.1f} s, {rate:.1f} tokens/s, "
                f"{queries} queries, {accepted} accepted",
                flush=True,
            )
    print(f"logs: {logs}\n")
    print(table([p for p in read_passes(args.results) if p.session == session]), end="")


if __name__ == "__main__":
    main()
