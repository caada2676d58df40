"""The API-key check of every request (chatsvc.auth.keys.Authenticator): its cost per call and
its database statements per call, with the key kept in process and (with Redis) the keys'
version read to learn of revocations on other replicas; against a key read from the database
each time. In process, no HTTP. Uses CHATSVC_TEST_DATABASE_URL and CHATSVC_TEST_REDIS_URL."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from sqlalchemy import event, text
from sqlalchemy.engine import make_url

from chatsvc.auth import service as auth_service
from chatsvc.auth.keys import Authenticator
from chatsvc.auth.models import Role
from chatsvc.kit.db import (
    create_engine,
    create_read_sessionmaker,
    create_sessionmaker,
    unit_of_work,
)
from chatsvc.migrate import upgrade

ADMIN_URL = os.environ.get(
    "CHATSVC_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("CHATSVC_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
DB = "chatsvc_bench_auth"
CALLS = 5000


async def database(create: bool) -> str:
    admin = create_engine(ADMIN_URL)
    async with admin.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)"))
        if create:
            await connection.execute(text(f"CREATE DATABASE {DB}"))
    await admin.dispose()
    return make_url(ADMIN_URL).set(database=DB).render_as_string(hide_password=False)


async def timed(label: str, call: Callable[[], Awaitable[object]], statements: list[int]) -> None:
    for _ in range(200):  # warm up (and fill the cache)
        await call()
    statements.clear()
    samples = []
    for _ in range(CALLS):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    samples.sort()
    p50 = statistics.median(samples) * 1e6
    p95 = samples[int(len(samples) * 0.95)] * 1e6
    per_call = len(statements) / CALLS
    print(f"{label:<44} p50 {p50:7.1f} µs  p95 {p95:7.1f} µs  SQL/call {per_call:.3f}")


async def main() -> None:
    url = await database(create=True)
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    statements: list[int] = []
    event.listen(
        engine.sync_engine, "before_cursor_execute", lambda *args, **kw: statements.append(1)
    )
    writes = create_sessionmaker(engine)
    reads = create_read_sessionmaker(engine)
    redis = Redis.from_url(REDIS_URL)
    try:
        async with unit_of_work(writes) as session:
            workspace = await auth_service.create_workspace(session, "bench")
            _key, raw = await auth_service.create_api_key(
                session, workspace.id, Role.ADMIN, username="bench"
            )
        kept = Authenticator(reads, 10, writes=writes)
        shared = Authenticator(reads, 10, writes=writes, redis=redis)
        uncached = Authenticator(reads, 0, writes=writes)
        print(f"{CALLS} calls each, one key")
        await timed(
            "kept in process, no Redis (embedded)", lambda: kept.authenticate(raw), statements
        )
        await timed(
            "kept in process + Redis version GET", lambda: shared.authenticate(raw), statements
        )
        await timed(
            "read from the database every call", lambda: uncached.authenticate(raw), statements
        )
    finally:
        await redis.aclose()
        await engine.dispose()
        await database(create=False)


if __name__ == "__main__":
    asyncio.run(main())
