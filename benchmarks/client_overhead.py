"""What dataloop's teacher client costs on top of a bare ``AsyncOpenAI`` loop.

Both send the same N completion requests at the same concurrency to the same loopback server
(``tests/fakeserver.py``, in its own process, answering after a fixed latency). dataloop's client
adds the semaphore, the budget guard, tenacity and response parsing; the response cache is off
(a cache hit would make dataloop look faster, which is not the point). The two are run in
alternation, repeat after repeat, so a noisy machine slows both alike; the ratio of medians is the
overhead (target <= 1.05).

    .venv/bin/python benchmarks/client_overhead.py --requests 400 --concurrency 16 --repeats 7
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

import openai

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from dataloop.llm import OpenAIClient, Sampling
from dataloop.schema import Budget

MODEL = "bench"
SAMPLING = Sampling(temperature=0.9, max_tokens=32)


def _serve(latency: float, conn: Connection) -> None:
    from fakeserver import FakeOpenAI

    with FakeOpenAI(latency=latency) as server:
        conn.send(server.base_url)
        conn.recv()  # block until the parent says stop


async def bare(url: str, n: int, concurrency: int) -> float:
    """Seconds for ``n`` requests through a plain AsyncOpenAI loop with a semaphore."""
    api = openai.AsyncOpenAI(base_url=url, api_key="none", max_retries=0)
    slots = asyncio.Semaphore(concurrency)

    async def one(i: int) -> str:
        async with slots:
            resp = await api.completions.create(
                model=MODEL,
                prompt=f"prompt {i}",
                temperature=SAMPLING.temperature,
                max_tokens=SAMPLING.max_tokens,
                top_p=SAMPLING.top_p,
                n=1,
            )
            return resp.choices[0].text

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    elapsed = time.perf_counter() - start
    await api.close()
    return elapsed


async def dataloop(url: str, n: int, concurrency: int) -> float:
    """Seconds for ``n`` requests through dataloop's OpenAIClient (budget on, cache off)."""
    client = OpenAIClient(
        MODEL, [url], concurrency=concurrency, budget=Budget(max_queries=10 * n), cache=None
    )
    start = time.perf_counter()
    await asyncio.gather(*(client.complete(f"prompt {i}", SAMPLING) for i in range(n)))
    elapsed = time.perf_counter() - start
    await client.aclose()
    assert client.budget.queries == n
    return elapsed


def main() -> None:
    """Run the interleaved comparison and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.05, help="server seconds per answer")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve, args=(args.latency, child), daemon=True)
    server.start()
    url = parent.recv()
    runs = {"bare AsyncOpenAI": bare, "dataloop OpenAIClient": dataloop}
    times: dict[str, list[float]] = {name: [] for name in runs}
    try:
        asyncio.run(bare(url, args.concurrency, args.concurrency))  # warm-up, not timed
        for repeat in range(args.repeats):
            # Alternate which goes first, so neither always meets a warmer (or busier) machine.
            order = list(runs) if repeat % 2 == 0 else list(reversed(runs))
            for name in order:
                times[name].append(asyncio.run(runs[name](url, args.requests, args.concurrency)))
    finally:
        parent.send("stop")
        server.join(timeout=5)

    ideal = args.requests / args.concurrency * args.latency
    print(
        f"{args.requests} requests, concurrency {args.concurrency}, server latency "
        f"{args.latency * 1000:.0f} ms (ideal {ideal:.2f} s), {args.repeats} interleaved repeats"
    )
    print(f"| {'client':<22} | median s | min s | requests/s |")
    print(f"|{'-' * 24}|---------:|------:|-----------:|")
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"| {name:<22} | {median:8.2f} | {min(values):5.2f} | {args.requests / median:10.0f} |"
        )
    pairs = [
        d / b
        for b, d in zip(times["bare AsyncOpenAI"], times["dataloop OpenAIClient"], strict=True)
    ]
    ratio = statistics.median(times["dataloop OpenAIClient"]) / statistics.median(
        times["bare AsyncOpenAI"]
    )
    print(
        f"\nratio dataloop / bare: {ratio:.3f} (median of per-repeat ratios "
        f"{statistics.median(pairs):.3f}; target <= 1.05)"
    )


if __name__ == "__main__":
    main()
