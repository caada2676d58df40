"""Benchmark: the script sandbox (QuickJS in worker processes). Prints the cold start of a worker,
the per-run latency (p50, p95) of a trivial script and of a CPU-bound one called one at a time,
the compile check's latency, then the throughput (runs/s) of each with 1, 2 and 4 workers under
concurrent calls, with the parent's CPU per run. Real worker processes, no database.
Usage: python bench/scripts.py [--runs 2000] [--workers 1,2,4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable

from chatsvc.tools.sandbox import ScriptPool

TRIVIAL = "console.log('Hello World');"
CPU_BOUND = """function main(args) {
  let s = 0;
  for (let i = 0; i < args.n; i++) s += i % 7;
  return s;
}"""
CPU_ARGS = {"n": 200_000}


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def latencies(call: Callable[[], Awaitable[object]], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def one_at_a_time(runs: int) -> None:
    pool = ScriptPool(workers=1)
    try:
        started = time.perf_counter()
        first = await pool.run(TRIVIAL, {})
        cold = (time.perf_counter() - started) * 1000
        assert first.value == "Hello World", first
        print(f"cold start (spawn + handshake + first run): {cold:.1f} ms")

        async def trivial() -> None:
            outcome = await pool.run(TRIVIAL, {})
            assert outcome.ok, outcome

        async def cpu_bound() -> None:
            outcome = await pool.run(CPU_BOUND, CPU_ARGS)
            assert outcome.ok, outcome

        async def check() -> None:
            await pool.check(CPU_BOUND)

        print(f"{'one at a time, 1 worker':<34} {'runs':>6} {'p50 ms':>8} {'p95 ms':>8}")
        for name, call, count in [
            ("trivial script", trivial, runs),
            ("compile check", check, runs),
            (f"CPU-bound (loop of {CPU_ARGS['n']:,})", cpu_bound, max(runs // 20, 20)),
        ]:
            samples = await latencies(call, count)
            p50, p95 = percentile(samples, 0.5), percentile(samples, 0.95)
            print(f"{name:<34} {count:>6} {p50:>8.2f} {p95:>8.2f}")
    finally:
        await pool.close()


async def throughput(workers: int, code: str, args: dict[str, int], runs: int) -> None:
    pool = ScriptPool(workers=workers, queue_wait_seconds=60.0)
    try:
        await asyncio.gather(*(pool.run(code, args) for _ in range(workers)))  # all started
        gate = asyncio.Semaphore(2 * workers)

        async def one() -> None:
            async with gate:
                outcome = await pool.run(code, args)
                assert outcome.ok, outcome

        cpu = time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(runs)))
        seconds = time.perf_counter() - started
        parent_ms = (time.process_time() - cpu) * 1000 / runs
        kind = "trivial" if code == TRIVIAL else "CPU-bound"
        print(
            f"{kind:<10} {workers:>7} {runs:>6} {seconds:>8.2f} {runs / seconds:>9.0f} "
            f"{parent_ms:>16.3f}"
        )
    finally:
        await pool.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--workers", default="1,2,4")
    options = parser.parse_args()
    levels = [int(level) for level in options.workers.split(",")]
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}")
    await one_at_a_time(options.runs)
    print()
    header = ["script".ljust(10), "workers", "  runs", " seconds", "   runs/s"]
    print(" ".join([*header, "parent CPU ms/run"]))
    for workers in levels:
        await throughput(workers, TRIVIAL, {}, options.runs)
    for workers in levels:
        await throughput(workers, CPU_BOUND, CPU_ARGS, max(options.runs // 10, 50))


if __name__ == "__main__":
    asyncio.run(main())
