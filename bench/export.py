"""Benchmark: CSV export of a large workspace, rows/s and peak memory.

Builds a PostgreSQL database by the migrations, inserts N messages (default 1,000,000) across
10,000 chats of 10 assistants in SQL (generate_series, interleaved across chats as real traffic
is), then runs `export_to_file` twice: one assistant's chats (N/10 rows) and the whole workspace
(N rows). Prints rows/s, seconds, file MB and the process's peak RSS before and after each, then
the time of a repeated call (the file exists: read back for its digest, not rewritten). The
database is dropped at the end. Usage: python bench/export.py [--rows 1000000] [--chats 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chatsvc.assistants.models import Assistant
from chatsvc.auth import service as auth_service
from chatsvc.auth.models import Principal
from chatsvc.exports import service as export_service
from chatsvc.exports.schemas import ExportFilters
from chatsvc.kit.db import create_engine, create_sessionmaker, unit_of_work, utcnow
from chatsvc.migrate import upgrade

ADMIN_URL = os.environ.get(
    "CHATSVC_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
DB = "chatsvc_bench_export"
ASSISTANTS = 10
T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def admin_execute(statement: str) -> None:
    admin = create_engine(ADMIN_URL)
    async with admin.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(statement))
    await admin.dispose()


async def fresh_database() -> str:
    await admin_execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    await admin_execute(f"CREATE DATABASE {DB}")
    url = make_url(ADMIN_URL).set(database=DB).render_as_string(hide_password=False)
    await asyncio.to_thread(upgrade, url)
    return url


# Chats rotate over the assistants; a third are liked, a third disliked, a third unrated.
CHATS_SQL = """
INSERT INTO chats (uuid, workspace_id, assistant_id, principal_id, title, "like", comment,
                   matrix_mode, metadata, max_responses, max_msg_length, execution_status,
                   last_msg_num, responses_count, ended, is_archived, created_at, updated_at)
SELECT gen_random_uuid()::text, :workspace, (CAST(:assistants AS bigint[]))[1 + i % :n_assistants],
       :principal, 'Chat ' || i || ': refunds, "express" shipping',
       CASE i % 3 WHEN 0 THEN true WHEN 1 THEN false END,
       CASE WHEN i % 7 = 0 THEN 'Helpful, thanks' END,
       false, '{}'::jsonb, 1000, 4000, 'AVAILABLE', 0, 0, false, false, :t0, :t0
FROM generate_series(0, :chats - 1) AS i
"""

# Message i goes to chat i % chats as number i / chats + 1: consecutive ids spread over every
# chat, so the export's (chat, number) order reads the table out of its physical order. Odd
# numbers are the user's questions (with a sender), even ones the assistant's answers (with a
# reference, some with a line break or a leading "-" the formula guard must neutralise).
MESSAGES_SQL = """
WITH c AS (
    SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM chats WHERE workspace_id = :workspace
)
INSERT INTO messages (uuid, chat_id, msg_num, role, content, usr_msg_num, fixed, "references",
                      "like", visible, metadata, status, sender_id, created_at, updated_at)
SELECT gen_random_uuid()::text, c.id, n, m.role,
       CASE WHEN m.role = 'user'
            THEN 'Question ' || n || ' about order #' || c.id || ': can I get a refund, '
                 || 'and how long does "express" shipping take?'
            ELSE CASE WHEN n % 10 = 0 THEN '- ' ELSE '' END
                 || 'Refunds are accepted within 30 days of delivery. Express shipping takes '
                 || '1-2 business days;' || E'\\n' || 'standard shipping takes 3-5 days.'
       END,
       CASE WHEN m.role = 'assistant' THEN n - 1 END,
       CASE WHEN m.role = 'assistant' AND n % 20 = 0 THEN 'refund-policy' END,
       CASE WHEN m.role = 'assistant'
            THEN '[{"title": "Refund policy", "url": "https://example.com/refunds"}]'::jsonb
            ELSE '[]'::jsonb
       END,
       CASE WHEN m.role = 'assistant' AND n % 4 = 0 THEN true END,
       true, '{}'::jsonb, 'complete',
       CASE WHEN m.role = 'user' THEN CAST(:principal AS bigint) END,
       CAST(:t0 AS timestamptz) + make_interval(secs => i),
       CAST(:t0 AS timestamptz) + make_interval(secs => i)
FROM generate_series(0, :rows - 1) AS i
JOIN c ON c.k = i % :chats
CROSS JOIN LATERAL (
    SELECT (i / :chats + 1)::int AS n,
           CASE WHEN (i / :chats) % 2 = 0 THEN 'user' ELSE 'assistant' END AS role
) AS m
"""


async def fill(url: str, rows: int, chats: int) -> tuple[int, int]:
    """Insert the workspace and its messages; (workspace id, first assistant id)."""
    engine = create_engine(url)
    async with unit_of_work(create_sessionmaker(engine)) as session:
        workspace = await auth_service.create_workspace(session, "bench-export")
        user = Principal(workspace_id=workspace.id, username="ana", full_name="Ana Lima")
        session.add(user)
        await session.flush()
        now = utcnow()
        assistants = list(
            (
                await session.scalars(
                    insert(Assistant).returning(Assistant.id),
                    [
                        {
                            "workspace_id": workspace.id,
                            "description": f"Help desk {i}",
                            "generation_config": "offline",
                            "max_responses": 1000,
                            "max_msg_length": 4000,
                            "max_consecutive_tool_calls": 5,
                            "created_at": now,
                            "updated_at": now,
                        }
                        for i in range(ASSISTANTS)
                    ],
                )
            ).all()
        )
        params = {
            "workspace": workspace.id,
            "principal": user.id,
            "assistants": assistants,
            "n_assistants": ASSISTANTS,
            "chats": chats,
            "rows": rows,
            "t0": T0,
        }
        await session.execute(text(CHATS_SQL), params)
        await session.execute(text(MESSAGES_SQL), params)
        workspace_id = workspace.id
    async with engine.connect() as connection:  # as autovacuum would, after a bulk load
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("VACUUM ANALYZE"))
    await engine.dispose()
    return workspace_id, assistants[0]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def run_export(
    maker: async_sessionmaker[AsyncSession], filters: ExportFilters, directory: Path, label: str
) -> None:
    reports = 0

    async def progress(done: int, total: int | None) -> None:
        nonlocal reports
        reports += 1

    peak_before = peak_rss_mb()
    started = time.perf_counter()
    result = await export_service.export_to_file(
        maker, filters, directory, f"{label}.csv", progress
    )
    seconds = time.perf_counter() - started
    print(
        f"{label:<10} {result.rows:>10,} {seconds:>8.2f} {result.rows / seconds:>10,.0f} "
        f"{result.bytes / 1e6:>9.1f} {peak_before:>9.1f} {peak_rss_mb():>9.1f} {rss_mb():>8.1f} "
        f"{reports:>8}"
    )
    started = time.perf_counter()
    again = await export_service.export_to_file(maker, filters, directory, f"{label}.csv")
    assert again == result, (again, result)
    repeated = time.perf_counter() - started
    print(f"{'':<10} repeated call (file exists, read back for rows and sha256): {repeated:.2f} s")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chats", type=int, default=10_000)
    args = parser.parse_args()
    chats = min(args.chats, args.rows)
    url = await fresh_database()
    directory = Path(tempfile.mkdtemp(prefix="chatsvc-bench-export-"))
    try:
        started = time.perf_counter()
        workspace_id, assistant_id = await fill(url, args.rows, chats)
        print(
            f"inserted {args.rows:,} messages in {chats:,} chats of {ASSISTANTS} assistants "
            f"in {time.perf_counter() - started:.1f} s"
        )
        engine = create_engine(url)
        maker = create_sessionmaker(engine)
        async with maker() as session:
            started = time.perf_counter()
            total = await export_service.count_rows(session, ExportFilters(workspace_id))
            counted = time.perf_counter() - started
        print(f"count_rows (the progress total) of {total:,} rows: {counted:.2f} s")
        print(
            f"{'export':<10} {'rows':>10} {'seconds':>8} {'rows/s':>10} {'file MB':>9} "
            f"{'peak RSS':>9} {'→ peak':>9} {'RSS MB':>8} {'reports':>8}"
        )
        await run_export(
            maker, ExportFilters(workspace_id, assistant_id=assistant_id), directory, "assistant"
        )
        await run_export(maker, ExportFilters(workspace_id), directory, "workspace")
        await engine.dispose()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        await admin_execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


if __name__ == "__main__":
    asyncio.run(main())
