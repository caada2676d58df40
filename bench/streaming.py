"""Benchmark: what chatsvc adds to a streamed answer, measured against the upstream it relays.

Starts a fake OpenAI-compatible upstream (tests/fakes/openai_server.py: fixed time to first token
and gap between tokens) and `chatsvc serve` (PostgreSQL database of its own, Redis broker) as
subprocesses on free loopback ports. For each concurrency level N it runs N concurrent streams
straight to the upstream (POST /v1/chat/completions, stream) and then N through chatsvc (POST
/chats_stream/{chat}/, one fresh chat per stream, made before the clock starts) and reports, side
by side: time to first token and the added part (p50, p99), the gaps between tokens (p50, p99)
direct and through, SSE `delta` events per answer, CPU of the chatsvc processes per streamed
token (tokens counted from the upstream's text, not from events), database round trips per turn
(from chatsvc's /metrics, one worker only), and the peak of open streams with RSS.

`--compare DIR` also runs the `src/` of another checkout (e.g. a worktree of an older commit)
in the same run, on the same upstream and levels, so before and after are measured side by side.
`--workers N` serves chatsvc with N processes. `--faces native,openai` also streams each level
through the OpenAI-compatible face (POST /v1/chat/completions with `X-Chat-Id`, rows `<server>
/v1`), on chats made the same way.

Every stream is checked: status, all tokens in order, the end event (and, through chatsvc, the
stored answer); whatever went wrong is listed under the table. Levels with fewer than
--min-samples streams run that many rounds one after another.

Usage: python bench/streaming.py [--streams 1,50,200] [--tokens 100] [--ttft 0.02] [--gap 0.01]
       [--workers 1] [--compare ../other-checkout/src] [--faces native,openai]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx
from httpx_sse import aconnect_sse
from sqlalchemy import text
from sqlalchemy.engine import make_url

from chatsvc.kit.db import create_engine
from chatsvc.migrate import upgrade

ADMIN_URL = os.environ.get(
    "CHATSVC_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = "redis://127.0.0.1:6379/14"
DB = "chatsvc_bench_streaming"
REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
SAMPLE_SECONDS = 0.05
PROMPT = "Tell me a long story."


# --- processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int | str) -> float:
    """utime + stime of a process, from /proc/<pid>/stat (fields 14 and 15)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the name may hold spaces; it ends at ')'
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=5)


def spawn(name: str, argv: list[str], cwd: Path, env: dict[str, str], logdir: Path) -> Process:
    log = logdir / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the bench only; it stops them itself
        )
    return Process(name, popen, log)


def start_upstream(
    args: argparse.Namespace, port: int, env: dict[str, str], logdir: Path
) -> Process:
    argv = [sys.executable, "-m", "tests.fakes.openai_server", "--port", str(port)]
    argv += ["--ttft", str(args.ttft), "--gap", str(args.gap), "--tokens", str(args.tokens)]
    return spawn("upstream", argv, REPO, env, logdir)


@dataclass
class Server:
    """A chatsvc under test: which source tree, its process, database and address."""

    label: str
    src: Path
    process: Process | None = None
    database: str = ""
    api: str = ""

    @property
    def db_name(self) -> str:
        return f"{DB}_{self.label}"


def tree_pids(root: int) -> list[int]:
    """`root` and every process below it (uvicorn's workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def tree_cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += cpu_seconds(pid)
    return total


async def round_trips(client: httpx.AsyncClient) -> float | None:
    """chatsvc's database round trips so far (its /metrics), None when it does not count them."""
    response = await client.get("/metrics")
    total, seen = 0.0, False
    for line in response.text.splitlines():
        if line.startswith("chatsvc_db_round_trips_total{"):
            total += float(line.rsplit(" ", 1)[1])
            seen = True
    return total if seen else None


def server_settings(
    server: Server, key: str, fake_port: int | None = None, workers: int = 1
) -> dict[str, str]:
    """The environment of a chatsvc under test: its database, Redis, the bootstrap key, and the
    fake upstream as generator app `up` (the default) when one runs."""
    apps: dict[str, object] = {"offline": {"kind": "offline"}}
    if fake_port is not None:
        apps["up"] = {
            "kind": "openai",
            "base_url": f"http://127.0.0.1:{fake_port}/v1",
            "model": "bench",
            "timeout_seconds": 60,
        }
    return {
        "CHATSVC_DATABASE_URL": server.database,
        "PYTHONPATH": str(server.src),
        "CHATSVC_REDIS_URL": REDIS_URL,
        "CHATSVC_GENERATOR_APPS": json.dumps(apps),
        "CHATSVC_DEFAULT_GENERATOR": "up" if fake_port is not None else "offline",
        "CHATSVC_BOOTSTRAP_API_KEY": key,
        "CHATSVC_ACCESS_LOG": "false",
        "CHATSVC_LOG_LEVEL": "WARNING",
        "CHATSVC_DEMO_ASSISTANT": "false",
        "CHATSVC_STREAM_TTL_SECONDS": "10",  # the bench's Redis streams go soon after
        # Explicit: with Redis, `chatsvc serve` would otherwise start one process per core.
        "CHATSVC_WORKERS": str(workers),
    }


def start_chatsvc(
    server: Server,
    fake_port: int,
    port: int,
    key: str,
    env: dict[str, str],
    logdir: Path,
    workers: int,
) -> Process:
    settings = server_settings(server, key, fake_port, workers)
    argv = [sys.executable, "-m", "chatsvc.cli", "serve", "--host", "127.0.0.1"]
    argv += ["--port", str(port)]
    # Run from the scratch directory, not the repo: no .env file is read.
    return spawn(f"chatsvc-{server.label}", argv, logdir, env | settings, logdir)


async def wait_ready(process: Process, url: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if process.popen.poll() is not None:
                break
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{process.name} did not become ready at {url}:\n{process.tail()}")


# --- database ---------------------------------------------------------------------------------


async def drop_database(name: str) -> None:
    admin = create_engine(ADMIN_URL)
    async with admin.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    await admin.dispose()


async def fresh_database(name: str, src: Path | None) -> str:
    """A new database migrated by the migrations of `src`'s checkout (None: this one)."""
    await drop_database(name)
    admin = create_engine(ADMIN_URL)
    async with admin.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(f"CREATE DATABASE {name}"))
    await admin.dispose()
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    if src is None:
        await asyncio.to_thread(upgrade, url)
    else:
        migrate = [sys.executable, "-m", "chatsvc.cli", "migrate"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHATSVC_")}
        env |= {"PYTHONPATH": str(src), "CHATSVC_DATABASE_URL": url}
        await asyncio.to_thread(
            subprocess.run,
            migrate,
            cwd=src.parent,
            env=env,
            check=True,
            capture_output=True,
        )
    return url


# --- one stream -------------------------------------------------------------------------------


@dataclass
class Gauge:
    """Streams open now (response headers received, body not finished) and the most at once."""

    current: int = 0
    peak: int = 0

    @contextlib.contextmanager
    def opened(self) -> Iterator[None]:
        self.current += 1
        self.peak = max(self.peak, self.current)
        try:
            yield
        finally:
            self.current -= 1


@dataclass
class StreamResult:
    ttft: float | None = None
    gaps: list[float] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)
    status: int | None = None
    completed: bool = False
    stored: str | None = None  # the answer chatsvc stored (message.completed)
    events: int = 0  # content events received (SSE `delta` events or upstream chunks)
    problem: str | None = None


class Expect:
    """What every stream must deliver: the fake's tokens are word0 .. word<N-1>, space separated."""

    def __init__(self, tokens: int) -> None:
        self.tokens = tokens
        self.text = " ".join(f"word{i}" for i in range(tokens))

    def check(self, result: StreamResult, through: bool) -> str | None:
        if result.problem is not None:
            return result.problem
        got = "".join(result.parts)
        if got != self.text:
            return f"{len(got.split())}/{self.tokens} tokens, text differs"
        if not result.completed:
            return "no end event"
        if through and result.stored != self.text:
            return "stored answer differs from the streamed text"
        return None


class Timing:
    """Records, on the stream's result, the first token and the gaps after it."""

    def __init__(self, result: StreamResult) -> None:
        self.result = result
        self.sent = time.perf_counter()
        self.last: float | None = None

    def token(self, piece: str) -> None:
        # Under load chatsvc sends several tokens in one delta event (they gathered while the
        # previous event was being published): the tokens that arrive together count as gaps of 0,
        # so the mean gap stays (last - first) / (tokens - 1) and bursts show in the p99.
        now = time.perf_counter()
        self.result.events += 1
        together = max(1, len(piece.split()))
        if self.last is None:
            self.result.ttft = now - self.sent
        else:
            self.result.gaps.append(now - self.last)
        self.result.gaps.extend([0.0] * (together - 1))
        self.last = now
        self.result.parts.append(piece)


async def direct_stream(
    client: httpx.AsyncClient, gauge: Gauge, result: StreamResult, index: int
) -> None:
    body = {
        "model": "bench",
        "messages": [{"role": "user", "content": PROMPT}],
        "stream": True,
        "stream_options": {"include_usage": True},  # as chatsvc asks
    }
    timing = Timing(result)
    async with aconnect_sse(client, "POST", "/v1/chat/completions", json=body) as source:
        result.status = source.response.status_code
        if result.status != 200:
            result.problem = f"HTTP {result.status}: {(await source.response.aread())[:200]!r}"
            return
        with gauge.opened():
            async for event in source.aiter_sse():
                if event.data == "[DONE]":
                    result.completed = True
                    break
                chunk = json.loads(event.data)
                if "error" in chunk:
                    result.problem = f"error event: {chunk['error']}"
                    return
                for choice in chunk.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        timing.token(piece)


async def through_stream(
    client: httpx.AsyncClient, gauge: Gauge, result: StreamResult, chat: int
) -> None:
    timing = Timing(result)
    async with aconnect_sse(
        client,
        "POST",
        f"/chats_stream/{chat}/",
        json={"message": PROMPT},
        headers={"Accept": "text/event-stream"},
    ) as source:
        result.status = source.response.status_code
        if result.status != 201:
            result.problem = f"HTTP {result.status}: {(await source.response.aread())[:200]!r}"
            return
        with gauge.opened():
            async for event in source.aiter_sse():
                if event.event == "delta":
                    piece = event.json().get("text")
                    if piece:
                        timing.token(piece)
                elif event.event == "message.completed":
                    result.completed = True
                    result.stored = event.json()["message"]["content"]
                    break
                elif event.event == "error":
                    result.problem = f"error event: {event.data[:200]}"
                    return


async def openai_stream(
    client: httpx.AsyncClient, gauge: Gauge, result: StreamResult, chat: int, model: str
) -> None:
    """A turn through the OpenAI-compatible face. Its chunks carry no stored message: the phase
    reads the stored answers back after its figures are taken (`stored_answers`)."""
    timing = Timing(result)
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "stream": True}
    async with aconnect_sse(
        client, "POST", "/v1/chat/completions", json=body, headers={"X-Chat-Id": str(chat)}
    ) as source:
        result.status = source.response.status_code
        if result.status != 200:
            result.problem = f"HTTP {result.status}: {(await source.response.aread())[:200]!r}"
            return
        with gauge.opened():
            async for event in source.aiter_sse():
                if event.data == "[DONE]":
                    result.completed = True
                    break
                chunk = json.loads(event.data)
                if "error" in chunk:
                    result.problem = f"error event: {chunk['error']}"
                    return
                for choice in chunk.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        timing.token(piece)


async def stored_answers(client: httpx.AsyncClient, chats: list[int], phase: Phase) -> None:
    """Each stream's stored answer (the last assistant message of its chat), for the check."""
    for chat, result in zip(chats, phase.results, strict=True):
        response = await client.get(f"/chats/{chat}/full/")
        answers = [m for m in response.json().get("messages", []) if m["role"] == "assistant"]
        result.stored = answers[-1]["content"] if answers else None


# --- one phase: N concurrent streams, with the chatsvc process watched -------------------------


@dataclass
class Phase:
    results: list[StreamResult]
    wall: float
    cpu: dict[str, float]  # CPU seconds per process over the phase
    peak_open: int
    rss_before_kb: int
    rss_peak_kb: int


class RssSampler:
    """Samples VmRSS of a process every 50 ms in a thread (not late when the loop is busy)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError):
                self.peak = max(self.peak, rss_kb(self.pid))
            self._stop.wait(SAMPLE_SECONDS)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def run_phase(
    count: int,
    stream: Callable[[Gauge, StreamResult, int], Awaitable[None]],
    args_of: Callable[[int], int],
    within: float,
    cpu_of: dict[str, Callable[[], float]],
    rss_pid: int,
) -> Phase:
    gauge = Gauge()
    results = [StreamResult() for _ in range(count)]

    async def one(i: int) -> None:
        try:
            await stream(gauge, results[i], args_of(i))
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            results[i].problem = f"{type(exc).__name__}: {exc}"[:200]

    rss_before = rss_kb(rss_pid)
    cpu_before = {name: read() for name, read in cpu_of.items()}
    started = time.perf_counter()
    with RssSampler(rss_pid) as sampler:
        tasks = [asyncio.create_task(one(i)) for i in range(count)]
        _done, pending = await asyncio.wait(tasks, timeout=within)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
    wall = time.perf_counter() - started
    cpu = {name: read() - cpu_before[name] for name, read in cpu_of.items()}
    for result in results:
        if result.problem is None and not result.completed and result.status is not None:
            result.problem = f"hung: no end within {within:.0f} s"
        elif result.problem is None and result.status is None:
            result.problem = f"no response headers within {within:.0f} s"
    return Phase(results, wall, cpu, gauge.peak, rss_before, max(sampler.peak, rss_before))


def merge(phases: list[Phase]) -> Phase:
    return Phase(
        results=[r for p in phases for r in p.results],
        wall=sum(p.wall for p in phases),
        cpu={k: sum(p.cpu[k] for p in phases) for k in phases[0].cpu},
        peak_open=max(p.peak_open for p in phases),
        rss_before_kb=phases[0].rss_before_kb,
        rss_peak_kb=max(p.rss_peak_kb for p in phases),
    )


# --- figures ----------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest rank; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


@dataclass
class Figures:
    ok: int
    count: int
    tokens: int
    events: float  # content events per answer
    ttft_p50: float
    ttft_p99: float
    gap_p50: float
    gap_p99: float


def figures(phase: Phase, expect: Expect, through: bool) -> tuple[Figures, list[str]]:
    problems = []
    for i, result in enumerate(phase.results):
        problem = expect.check(result, through)
        if problem is not None:
            problems.append(f"stream {i}: {problem}")
    ttfts = [r.ttft for r in phase.results if r.ttft is not None]
    gaps = [g for r in phase.results for g in r.gaps]
    return (
        Figures(
            ok=len(phase.results) - len(problems),
            count=len(phase.results),
            tokens=sum(len("".join(r.parts).split()) for r in phase.results),
            events=mean([float(r.events) for r in phase.results]),
            ttft_p50=percentile(ttfts, 50) * 1000,
            ttft_p99=percentile(ttfts, 99) * 1000,
            gap_p50=percentile(gaps, 50) * 1000,
            gap_p99=percentile(gaps, 99) * 1000,
        ),
        problems,
    )


def summarize(problems: list[str], limit: int = 5) -> list[str]:
    """Identical problems once, with a count."""
    counts: dict[str, int] = {}
    for line in problems:
        kind = line.split(": ", 1)[1]
        counts[kind] = counts.get(kind, 0) + 1
    lines = [f"{n} x {kind}" for kind, n in sorted(counts.items(), key=lambda kv: -kv[1])]
    return lines[:limit] + ([f"... {len(lines) - limit} more kinds"] if len(lines) > limit else [])


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# --- the run ----------------------------------------------------------------------------------


async def setup_chatsvc(client: httpx.AsyncClient) -> int:
    response = await client.post(
        "/assistants/",
        json={
            "description": "bench",
            "generation_config": "up",
            "max_responses": 1_000_000,
            "max_msg_length": 100_000,
        },
    )
    assert response.status_code in (200, 201), response.text
    assistant: int = response.json()["id"]
    return assistant


async def new_chats(client: httpx.AsyncClient, assistant: int, count: int) -> list[int]:
    gate = asyncio.Semaphore(16)

    async def one() -> int:
        async with gate:
            response = await client.post(f"/assistants/{assistant}/", json={})
        assert response.status_code == 201, response.text
        chat: int = response.json()["id"]
        return chat

    return list(await asyncio.gather(*(one() for _ in range(count))))


def client_for(base_url: str, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        headers=headers,
        trust_env=False,
        timeout=httpx.Timeout(30.0, connect=10.0),
        limits=httpx.Limits(max_connections=10_000, max_keepalive_connections=10_000),
    )


HEADER = (
    f"{'streams':>7} {'path':<14} {'ok':>9} {'ttft p50':>9} {'ttft p99':>9} {'+ttft p50':>9} "
    f"{'gap p50':>8} {'gap p99':>8} {'events':>7} {'us/token':>9} {'db/turn':>8} {'peak':>5} "
    f"{'rss MB':>7} {'wall s':>7}"
)


async def bench(
    args: argparse.Namespace, fake: Process, servers: list[Server], upstream: str, key: str
) -> list[str]:
    expect = Expect(args.tokens)
    stream_seconds = args.ttft + (args.tokens - 1) * args.gap
    timeout = 15 + 3 * stream_seconds
    levels = [int(s) for s in args.streams.split(",")]
    faces = [f.strip() for f in args.faces.split(",") if f.strip()]
    notes: list[str] = []
    async with contextlib.AsyncExitStack() as stack:
        direct = await stack.enter_async_context(client_for(upstream))
        through = {
            server.label: await stack.enter_async_context(
                client_for(server.api, {"X-Api-Key": key})
            )
            for server in servers
        }
        assistants = {label: await setup_chatsvc(c) for label, c in through.items()}
        trees = {s.label: tree_pids(s.process.pid) for s in servers if s.process is not None}
        own = {"client": lambda: time.process_time(), "upstream": lambda: cpu_seconds(fake.pid)}

        async def through_phase(
            server: Server, level: int, face: str = "native"
        ) -> tuple[Phase, float | None]:
            assert server.process is not None
            client = through[server.label]
            assistant = assistants[server.label]
            chats = await new_chats(client, assistant, level)
            await asyncio.sleep(0.5)  # let chat creation settle out of the figures
            before = await round_trips(client)
            tree = trees[server.label]
            model = f"assistant-{assistant}"

            async def stream(g: Gauge, r: StreamResult, chat: int) -> None:
                if face == "openai":
                    await openai_stream(client, g, r, chat, model)
                else:
                    await through_stream(client, g, r, chat)

            phase = await run_phase(
                level,
                stream,
                chats.__getitem__,
                timeout,
                {**own, "chatsvc": lambda: tree_cpu(tree)},
                server.process.pid,
            )
            after = await round_trips(client)
            trips = None if before is None or after is None else (after - before) / level
            if face == "openai":
                await stored_answers(client, chats, phase)
            return phase, trips

        # Warm up every path (imports, pools, first queries); not measured.
        await run_phase(
            2, lambda g, r, i: direct_stream(direct, g, r, i), int, timeout, own, fake.pid
        )
        for server in servers:
            for face in faces:
                await through_phase(server, 2, face)
        print(
            f"{args.tokens} tokens per stream, upstream ttft {args.ttft * 1000:.0f} ms, "
            f"gap {args.gap * 1000:.0f} ms (a stream lasts {stream_seconds:.2f} s); "
            f"{os.cpu_count()} cores; chatsvc workers: {args.workers}; "
            f"load average {load_average()}\n",
            flush=True,
        )
        print(HEADER)
        for level in levels:
            rounds = max(1, math.ceil(args.min_samples / level))
            phases = [
                await run_phase(
                    level,
                    lambda g, r, i: direct_stream(direct, g, r, i),
                    int,
                    timeout,
                    own,
                    fake.pid,
                )
                for _ in range(rounds)
            ]
            direct_phase = merge(phases)
            d, problems = figures(direct_phase, expect, through=False)
            notes += [f"{level} direct: {line}" for line in summarize(problems)]
            print(
                f"{level:>7} {'direct':<14} {d.ok:>4}/{d.count:<4} {d.ttft_p50:>9.1f} "
                f"{d.ttft_p99:>9.1f} {'':>9} {d.gap_p50:>8.2f} {d.gap_p99:>8.2f} "
                f"{d.events:>7.1f} {'':>9} {'':>8} {'':>5} {'':>7} {direct_phase.wall:>7.2f}",
                flush=True,
            )
            for server, face in ((s, f) for s in servers for f in faces):
                label = server.label if face == "native" else f"{server.label} /v1"
                measured = [await through_phase(server, level, face) for _ in range(rounds)]
                phase = merge([m[0] for m in measured])
                trips = [m[1] for m in measured if m[1] is not None]
                t, problems = figures(phase, expect, through=True)
                notes += [f"{level} {label}: {line}" for line in summarize(problems)]
                per_token = phase.cpu["chatsvc"] / t.tokens * 1e6 if t.tokens else math.nan
                db = f"{mean(trips):>8.1f}" if trips and args.workers == 1 else f"{'n/a':>8}"
                print(
                    f"{level:>7} {label:<14} {t.ok:>4}/{t.count:<4} {t.ttft_p50:>9.1f} "
                    f"{t.ttft_p99:>9.1f} {t.ttft_p50 - d.ttft_p50:>9.1f} {t.gap_p50:>8.2f} "
                    f"{t.gap_p99:>8.2f} {t.events:>7.1f} {per_token:>9.0f} {db} "
                    f"{phase.peak_open:>5} {phase.rss_peak_kb / 1024:>7.1f} {phase.wall:>7.2f}",
                    flush=True,
                )
        print(f"\nload average at the end: {load_average()}")
    return notes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--streams", default="1,50,200", help="concurrency levels")
    parser.add_argument("--tokens", type=int, default=100, help="tokens per answer")
    parser.add_argument("--ttft", type=float, default=0.02, help="upstream s to the first token")
    parser.add_argument("--gap", type=float, default=0.01, help="upstream s between tokens")
    parser.add_argument("--min-samples", type=int, default=5, help="streams per level at least")
    parser.add_argument("--workers", type=int, default=1, help="chatsvc serve --workers")
    parser.add_argument(
        "--faces",
        default="native",
        help="faces streamed through: native (/chats_stream/), openai (/v1/chat/completions)",
    )
    parser.add_argument(
        "--compare", type=Path, help="the src/ of another checkout, measured in the same run"
    )
    args = parser.parse_args()

    def terminate(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(143)  # so the finally below stops the subprocesses

    signal.signal(signal.SIGTERM, terminate)
    key = f"bench_{secrets.token_hex(16)}"
    processes: list[Process] = []
    notes: list[str] = []
    servers = [Server("this", REPO / "src")]
    if args.compare is not None:
        servers.insert(0, Server("compared", args.compare.resolve()))
    with tempfile.TemporaryDirectory(prefix="chatsvc-bench-") as tmp:
        logdir = Path(tmp)
        try:
            fake_port = free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("CHATSVC_")}
            fake = start_upstream(args, fake_port, env, logdir)
            processes.append(fake)
            for server in servers:
                other = None if server.label == "this" else server.src
                server.database = asyncio.run(fresh_database(server.db_name, other))
                port = free_port()
                server.process = start_chatsvc(
                    server, fake_port, port, key, env, logdir, args.workers
                )
                server.api = f"http://127.0.0.1:{port}"
                processes.append(server.process)
            upstream = f"http://127.0.0.1:{fake_port}"

            async def run() -> list[str]:
                await wait_ready(fake, f"{upstream}/v1/models")
                for server in servers:
                    assert server.process is not None
                    await wait_ready(server.process, f"{server.api}/healthz")
                return await bench(args, fake, servers, upstream, key)

            notes = asyncio.run(run())
            for process in processes:
                if process.popen.poll() is not None:
                    notes.append(f"{process.name} exited with {process.popen.returncode}")
            for server in servers:
                assert server.process is not None
                log = server.process.log.read_text(errors="replace")
                if any(mark in log for mark in ("Traceback", " WARNING ", " ERROR ", " CRITICAL ")):
                    notes.append(
                        f"{server.label} logged warnings or errors; its log ends:\n"
                        f"{server.process.tail()}"
                    )
        finally:
            for process in reversed(processes):
                process.stop()
            for server in servers:
                asyncio.run(drop_database(server.db_name))
    print("\nproblems:" if notes else "\nproblems: none (every stream had all its tokens)")
    for note in notes:
        print(f"  {note}")
    return 1 if notes else 0


if __name__ == "__main__":
    sys.exit(main())
