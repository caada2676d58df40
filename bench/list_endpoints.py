"""Benchmark: cost of the assistant list endpoints as a workspace grows.

Builds a PostgreSQL database by the migrations, fills one workspace with N assistants (each with
a few knowledge items, so the read-only counts have work to do), then times GET /assistants/ and
GET /assistants/info/ (first and last page) through the ASGI app in process. Prints the median and
95th percentile per size. Usage: python bench/list_endpoints.py [--sizes 100,10000] [--requests 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

import httpx
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url

from chatsvc.assistants.models import Assistant
from chatsvc.auth import service as auth_service
from chatsvc.auth.models import Role
from chatsvc.config import Settings
from chatsvc.kit.db import create_engine, create_sessionmaker, unit_of_work, utcnow
from chatsvc.knowledge.models import CommonQuestion
from chatsvc.main import create_app
from chatsvc.migrate import upgrade

ADMIN_URL = os.environ.get(
    "CHATSVC_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
DB = "chatsvc_bench"


async def fresh_database() -> str:
    admin = create_engine(ADMIN_URL)
    async with admin.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)"))
        await connection.execute(text(f"CREATE DATABASE {DB}"))
    await admin.dispose()
    url = make_url(ADMIN_URL).set(database=DB).render_as_string(hide_password=False)
    await asyncio.to_thread(upgrade, url)
    return url


async def fill(url: str, size: int) -> str:
    engine = create_engine(url)
    async with unit_of_work(create_sessionmaker(engine)) as session:
        workspace = await auth_service.create_workspace(session, f"bench-{size}")
        _key, raw = await auth_service.create_api_key(
            session, workspace.id, Role.ADMIN, username="bench"
        )
        now = utcnow()
        rows = [
            {
                "workspace_id": workspace.id,
                "description": f"assistant {i}",
                "generation_config": "offline",
                "max_responses": 1000,
                "max_msg_length": 4000,
                "max_consecutive_tool_calls": 5,
                "temperature": 0.7,
                "system_prompt": "",
                "strategy_to_optimize_tokens": "none",
                "matrix_mode_available": False,
                "faq_available": True,
                "fixed_available": True,
                "lessons_available": True,
                "realtime_available": True,
                "streaming_available": True,
                "created_at": now,
                "updated_at": now,
            }
            for i in range(size)
        ]
        ids = (await session.scalars(insert(Assistant).returning(Assistant.id), rows)).all()
        await session.execute(
            insert(CommonQuestion),
            [
                {
                    "assistant_id": assistant_id,
                    "name": f"q{j}",
                    "content": "answer",
                    "additional_metadata": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for assistant_id in ids
                for j in range(3)
            ],
        )
    async with engine.connect() as connection:  # as autovacuum would, after a bulk load
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("ANALYZE"))
    await engine.dispose()
    return raw


async def time_requests(client: httpx.AsyncClient, url: str, count: int) -> tuple[float, float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        response = await client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,10000")
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    url = await fresh_database()
    app = create_app(Settings(database_url=url, access_log=False, log_level="WARNING"))
    print(f"{'assistants':>10} {'endpoint':<36} {'p50 ms':>8} {'p95 ms':>8}")
    async with app.router.lifespan_context(app):
        for size in [int(s) for s in args.sizes.split(",")]:
            key = await fill(url, size)
            last = (size + 19) // 20
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bench", headers={"X-Api-Key": key}
            ) as client:
                for path in (
                    "/assistants/?page_size=20",
                    f"/assistants/?page_size=20&page={last}",
                    "/assistants/info/?page_size=20",
                ):
                    await time_requests(client, path, 10)  # warm up
                    p50, p95 = await time_requests(client, path, args.requests)
                    print(f"{size:>10} {path:<36} {p50:>8.2f} {p95:>8.2f}")
    engine = create_engine(ADMIN_URL)
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)"))
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
