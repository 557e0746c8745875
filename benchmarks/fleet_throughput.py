"""A teacher fleet with one throttling endpoint: dataloop's adaptive client against a fixed one.

The fleet is E loopback servers (``tests/fakeserver.py``, in their own process), each answering
after a fixed latency; the last one throttles: a request that finds ``--capacity`` others in
flight there is answered 429 at once, with ``Retry-After``. Both clients send the same N
completion requests with ``--concurrency`` per endpoint (the fixed client: one semaphore of
concurrency x E over the fleet, as dataloop's client had before it adapted):

- fixed: each attempt goes to the endpoint with the fewest requests in flight; a 429 is retried
  after a jittered exponential backoff (tenacity, as dataloop's), Retry-After ignored;
- adaptive: dataloop's ``OpenAIClient``: per-endpoint limits cut on 429, Retry-After honoured.

They run in alternation, repeat after repeat (the first swaps each repeat), because the machine
is shared and noisy; the table gives medians, and the ratio of throughputs both as ratio of
medians and as the median of per-repeat ratios.

    .venv/bin/python benchmarks/fleet_throughput.py --requests 300 --repeats 5
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
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from dataloop.llm import OpenAIClient, Sampling
from dataloop.llm.client import is_transient

MODEL = "bench"
SAMPLING = Sampling(temperature=0.9, max_tokens=32)
RETRIES = 4
BACKOFF_MAX = 20.0


def _serve(args: argparse.Namespace, conn: Connection) -> None:
    from contextlib import ExitStack

    from fakeserver import FakeOpenAI

    with ExitStack() as stack:
        servers = [
            stack.enter_context(FakeOpenAI(latency=args.latency)) for _ in range(args.endpoints - 1)
        ]
        throttling = FakeOpenAI(
            latency=args.latency, capacity=args.capacity, retry_after=args.retry_after
        )
        servers.append(stack.enter_context(throttling))
        conn.send([s.base_url for s in servers])
        while conn.recv() == "count":  # reply with 429s so far, until told to stop
            conn.send(throttling.throttled)


class Result:
    """One client's run: seconds, answers and requests that failed after their retries."""

    def __init__(self, seconds: float, answered: int, failed: int) -> None:
        self.seconds, self.answered, self.failed = seconds, answered, failed

    @property
    def throughput(self) -> float:
        """Answered requests per second."""
        return self.answered / self.seconds


async def fixed(urls: list[str], n: int, concurrency: int) -> Result:
    """Fixed concurrency: one semaphore over the fleet, least-loaded endpoint per attempt."""
    apis = [openai.AsyncOpenAI(base_url=u, api_key="none", max_retries=0) for u in urls]
    in_flight = [0] * len(apis)
    slots = asyncio.Semaphore(concurrency * len(apis))

    async def one(i: int) -> None:
        async with slots:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(is_transient),
                stop=stop_after_attempt(RETRIES + 1),
                wait=wait_random_exponential(multiplier=0.5, max=BACKOFF_MAX),
                reraise=True,
            ):
                with attempt:
                    k = in_flight.index(min(in_flight))
                    in_flight[k] += 1
                    try:
                        await apis[k].completions.create(
                            model=MODEL, prompt=f"prompt {i}", **SAMPLING.fields()
                        )
                    finally:
                        in_flight[k] -= 1

    start = time.perf_counter()
    out = await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)
    elapsed = time.perf_counter() - start
    for api in apis:
        await api.close()
    failed = sum(isinstance(r, BaseException) for r in out)
    return Result(elapsed, n - failed, failed)


async def adaptive(urls: list[str], n: int, concurrency: int) -> Result:
    """dataloop's OpenAIClient over the same fleet (cache off)."""
    client = OpenAIClient(
        MODEL, urls, concurrency=concurrency, retries=RETRIES, backoff_max=BACKOFF_MAX
    )
    start = time.perf_counter()
    jobs = (client.complete(f"prompt {i}", SAMPLING) for i in range(n))
    out = await asyncio.gather(*jobs, return_exceptions=True)
    elapsed = time.perf_counter() - start
    await client.aclose()
    failed = sum(isinstance(r, BaseException) for r in out)
    return Result(elapsed, n - failed, failed)


def main() -> None:
    """Run the interleaved comparison and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--endpoints", type=int, default=3, help="the last one throttles")
    parser.add_argument("--concurrency", type=int, default=8, help="per endpoint")
    parser.add_argument("--latency", type=float, default=0.1, help="server seconds per answer")
    parser.add_argument("--capacity", type=int, default=2, help="throttling endpoint's capacity")
    parser.add_argument("--retry-after", type=float, default=1.0, help="its Retry-After, s")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve, args=(args, child), daemon=True)
    server.start()
    urls = parent.recv()
    runs = {"fixed concurrency": fixed, "dataloop adaptive": adaptive}
    results: dict[str, list[Result]] = {name: [] for name in runs}
    throttled: dict[str, list[int]] = {name: [] for name in runs}
    try:
        for repeat in range(args.repeats):
            order = list(runs) if repeat % 2 == 0 else list(reversed(runs))
            for name in order:
                parent.send("count")
                before = parent.recv()
                result = asyncio.run(runs[name](urls, args.requests, args.concurrency))
                parent.send("count")
                throttled[name].append(parent.recv() - before)
                results[name].append(result)
    finally:
        parent.send("stop")
        server.join(timeout=5)

    ideal = args.requests / (args.concurrency * (args.endpoints - 1) + args.capacity) * args.latency
    print(
        f"{args.requests} requests, {args.endpoints} endpoints x concurrency {args.concurrency}, "
        f"latency {args.latency * 1000:.0f} ms; endpoint {args.endpoints} takes "
        f"{args.capacity} at once, then 429 with Retry-After {args.retry_after:g} s "
        f"(ideal {ideal:.2f} s); {args.repeats} interleaved repeats"
    )
    print("| client | median s | min s | answered/s | failed (median) | 429s (median) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, values in results.items():
        seconds = statistics.median(r.seconds for r in values)
        print(
            f"| {name} | {seconds:.2f} | {min(r.seconds for r in values):.2f} "
            f"| {statistics.median(r.throughput for r in values):.0f} "
            f"| {statistics.median(r.failed for r in values):g} "
            f"| {statistics.median(throttled[name]):g} |"
        )
    fixed_runs, adaptive_runs = results["fixed concurrency"], results["dataloop adaptive"]
    pairs = [a.throughput / f.throughput for f, a in zip(fixed_runs, adaptive_runs, strict=True)]
    ratio = statistics.median(a.throughput for a in adaptive_runs) / statistics.median(
        f.throughput for f in fixed_runs
    )
    print(
        f"\nthroughput adaptive / fixed: {ratio:.2f} (median of per-repeat ratios "
        f"{statistics.median(pairs):.2f})"
    )


if __name__ == "__main__":
    main()
