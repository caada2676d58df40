"""Benchmark: the plain read path against its floor.

`GET /assistants/{id}/` and `GET /chats/{id}/` (a chat of 6 messages, nothing to answer) through
`chatsvc serve` (one process, its own PostgreSQL database, Redis), side by side with a bare
FastAPI + asyncpg app doing the least the same reads need (bench/_floor.py: key checked by its
hash, the row read, JSON out; one uvicorn process), loaded by wrk with 20 connections. Reports
requests/s, latency p50/p99, the server's CPU per request, and the ratio to the floor.
`--compare DIR` also serves the `src/` of another checkout in the same run.

Usage: python bench/reads.py [--seconds 10] [--connections 20] [--compare ../other/src]
Needs `wrk` (Debian: apt-get install wrk).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from streaming import (
    REPO,
    Process,
    Server,
    drop_database,
    free_port,
    fresh_database,
    load_average,
    server_settings,
    spawn,
    tree_cpu,
    tree_pids,
    wait_ready,
)


def start_server(server: Server, port: int, key: str, env: dict[str, str], logdir: Path) -> Process:
    settings = server_settings(server, key)
    argv = [
        sys.executable,
        "-m",
        "chatsvc.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    return spawn(f"chatsvc-{server.label}", argv, logdir, env | settings, logdir)


def start_floor(dsn: str, port: int, env: dict[str, str], logdir: Path) -> Process:
    argv = [sys.executable, str(REPO / "bench" / "_floor.py"), dsn, str(port)]
    return spawn("floor", argv, REPO, env, logdir)


async def setup(api: str, key: str) -> tuple[int, int]:
    async with httpx.AsyncClient(base_url=api, headers={"X-Api-Key": key}) as client:
        made = await client.post("/assistants/", json={"description": "bench"})
        assistant = int(made.json()["id"])
        chat = int((await client.post(f"/assistants/{assistant}/", json={})).json()["id"])
        for i in range(3):
            await client.post(f"/chats/{chat}/add_user_message/", json={"message": f"q{i}"})
            await client.post(f"/chats/{chat}/add_assistant_message/", json={"message": f"a{i}"})
        return assistant, chat


def wrk(url: str, key: str, seconds: int, connections: int) -> tuple[float, float, float, int]:
    """requests/s, p50 and p99 latency (ms), requests done."""
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    argv += ["-H", f"X-Api-Key: {key}", url]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout  # noqa: S603
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    done = int(re.search(r"(\d+) requests in", out)[1])  # type: ignore[index]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors[1]} error responses")

    def latency(q: str) -> float:
        value, unit = re.search(rf"\s{q}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return rate, latency("50"), latency("99"), done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--compare", type=Path, help="the src/ of another checkout")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("error: wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    key = f"bench_{secrets.token_hex(16)}"
    servers = [Server("this", REPO / "src")]
    if args.compare is not None:
        servers.insert(0, Server("compared", args.compare.resolve()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATSVC_")}
    processes: list[Process] = []
    rows: list[str] = []
    with tempfile.TemporaryDirectory(prefix="chatsvc-reads-") as tmp:
        logdir = Path(tmp)
        try:
            targets: list[tuple[str, Process, str, tuple[int, int]]] = []
            for server in servers:
                other = None if server.label == "this" else server.src
                server.database = asyncio.run(fresh_database(server.db_name, other))
                port = free_port()
                process = start_server(server, port, key, env, logdir)
                processes.append(process)
                api = f"http://127.0.0.1:{port}"
                asyncio.run(wait_ready(process, f"{api}/healthz"))
                targets.append((server.label, process, api, asyncio.run(setup(api, key))))
            this_ids = targets[-1][3]
            dsn = servers[-1].database.replace("postgresql+asyncpg", "postgresql")
            floor_port = free_port()
            floor = start_floor(dsn, floor_port, env, logdir)
            processes.append(floor)
            floor_api = f"http://127.0.0.1:{floor_port}"
            asyncio.run(wait_ready(floor, f"{floor_api}/docs"))
            targets.append(("floor", floor, floor_api, this_ids))
            print(
                f"wrk, {args.connections} connections, {args.seconds} s per run; "
                f"{os.cpu_count()} cores; load average {load_average()}\n"
            )
            print(
                f"{'endpoint':<18} {'server':<9} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
                f"{'cpu us/req':>10} {'x floor':>8}"
            )
            for name, path in (("assistant", "/assistants/{}/"), ("chat", "/chats/{}/")):
                rates: dict[str, float] = {}
                results = []
                for label, process, api, (assistant, chat) in targets:
                    url = api + path.format(assistant if name == "assistant" else chat)
                    wrk(url, key, 2, args.connections)  # warm up
                    pids = tree_pids(process.pid)
                    before = tree_cpu(pids)
                    rate, p50, p99, done = wrk(url, key, args.seconds, args.connections)
                    cpu = (tree_cpu(pids) - before) / done * 1e6
                    rates[label] = rate
                    results.append((label, rate, p50, p99, cpu))
                for label, rate, p50, p99, cpu in results:
                    ratio = rate / rates["floor"]
                    rows.append(
                        f"GET /{name + 's'}/{{id}}/".ljust(18)
                        + f" {label:<9} {rate:>8.0f} {p50:>7.2f} {p99:>7.2f} {cpu:>10.0f} "
                        f"{ratio:>8.2f}"
                    )
                    print(rows[-1], flush=True)
            print(f"\nload average at the end: {load_average()}")
        finally:
            for process in reversed(processes):
                process.stop()
            for server in servers:
                asyncio.run(drop_database(server.db_name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
