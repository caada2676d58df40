"""The embedded database keeps a unit of work atomic: a savepoint (how a service absorbs a
unique-key race) does not commit what came before it, and a rollback leaves nothing behind. A
unit that meets another writer's lock is run again from the start; reads take no write lock."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.auth.models import Workspace
from chatsvc.kit.db import (
    create_engine,
    create_read_sessionmaker,
    create_sessionmaker,
    in_unit_of_work,
    is_lock_error,
    snapshot_reads,
    unit_of_work,
)
from chatsvc.kit.web import install_error_handlers
from chatsvc.migrate import upgrade


class Boom(Exception):
    pass


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    """A database of each test's own: these tests commit through engines of their own (the
    retried unit writes a workspace), which the session's shared database must not keep (the
    first-start tests expect it empty)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'chatsvc.db'}"
    await asyncio.to_thread(upgrade, url)
    return url


async def test_a_rolled_back_unit_of_work_leaves_nothing_even_after_a_savepoint(
    sqlite_url: str,
) -> None:
    engine = create_engine(sqlite_url)
    sessionmaker = create_sessionmaker(engine)
    slug = f"atomic-{uuid.uuid4().hex[:8]}"

    async def work() -> None:
        async with sessionmaker() as session, session.begin():
            async with session.begin_nested():
                session.add(Workspace(slug=slug, name="first"))
            session.add(Workspace(slug=f"{slug}-2", name="second"))
            await session.flush()
            raise Boom

    try:
        with pytest.raises(Boom):
            await work()
        async with sessionmaker() as session:
            found = await session.scalar(
                select(func.count()).where(Workspace.slug.like(f"{slug}%"))
            )
        assert found == 0
    finally:
        await engine.dispose()


async def test_a_unit_of_work_that_meets_a_lock_is_run_again_from_the_start(
    sqlite_url: str,
) -> None:
    """Another connection holds the write lock past the busy timeout: the first attempt fails
    with "database is locked" and leaves nothing; the second, once the lock is free, writes
    the unit once."""
    holder_engine = create_engine(sqlite_url)
    engine = create_engine(sqlite_url, sqlite_busy_timeout_ms=50)
    slug = f"retried-{uuid.uuid4().hex[:8]}"
    attempts = 0
    try:
        async with holder_engine.connect() as holder:
            await holder.begin()
            await holder.execute(select(func.count()).select_from(Workspace))  # BEGIN IMMEDIATE

            async def work(session: AsyncSession) -> int:
                nonlocal attempts
                attempts += 1
                if attempts == 2:
                    await holder.rollback()  # the other writer finishes
                workspace = Workspace(slug=slug, name="retried")
                session.add(workspace)
                await session.flush()
                return workspace.id

            made = await in_unit_of_work(create_sessionmaker(engine), work)
        assert attempts == 2
        async with create_read_sessionmaker(engine)() as session:
            found = await session.scalars(select(Workspace.id).where(Workspace.slug == slug))
            assert list(found) == [made]
    finally:
        await engine.dispose()
        await holder_engine.dispose()


async def test_a_lock_held_past_every_attempt_is_raised_as_a_lock_error(sqlite_url: str) -> None:
    holder_engine = create_engine(sqlite_url)
    engine = create_engine(sqlite_url, sqlite_busy_timeout_ms=20)
    calls = 0

    async def work(session: AsyncSession) -> None:
        nonlocal calls
        calls += 1
        session.add(Workspace(slug=f"never-{uuid.uuid4().hex[:8]}", name="never"))
        await session.flush()

    try:
        async with holder_engine.connect() as holder, holder.begin():
            await holder.execute(select(func.count()).select_from(Workspace))
            with pytest.raises(OperationalError) as raised:
                await in_unit_of_work(create_sessionmaker(engine), work, attempts=3)
        assert is_lock_error(raised.value) and calls == 3
    finally:
        await engine.dispose()
        await holder_engine.dispose()


async def test_reads_take_no_write_lock(sqlite_url: str) -> None:
    """While a writer holds the database, autocommit reads and snapshot units still read (with
    a busy timeout too short to wait for the writer, a unit that took the lock would fail)."""
    holder_engine = create_engine(sqlite_url)
    engine = create_engine(sqlite_url, sqlite_busy_timeout_ms=20)
    try:
        async with holder_engine.connect() as holder, holder.begin():
            await holder.execute(select(func.count()).select_from(Workspace))
            for sessionmaker in (
                create_read_sessionmaker(engine),
                snapshot_reads(create_sessionmaker(engine)),
            ):
                async with unit_of_work(sessionmaker) as session:
                    counted = await session.scalar(select(func.count()).select_from(Workspace))
                    assert counted is not None
            with pytest.raises(OperationalError):  # and a writing unit does wait for it
                async with unit_of_work(create_sessionmaker(engine)) as session:
                    await session.scalar(select(func.count()).select_from(Workspace))
    finally:
        await engine.dispose()
        await holder_engine.dispose()


async def test_a_task_that_would_wait_for_its_own_write_lock_fails_at_once(
    sqlite_url: str,
) -> None:
    """A writing unit opened while the same task holds another's write lock could only wait
    for itself (the busy timeout, 30 s) and fail: it fails at once, saying what to do."""
    engine = create_engine(sqlite_url)
    sessionmaker = create_sessionmaker(engine)
    try:
        async with unit_of_work(sessionmaker) as outer:
            await outer.scalar(select(func.count()).select_from(Workspace))
            with pytest.raises(RuntimeError, match="wait for itself"):
                async with unit_of_work(sessionmaker) as inner:
                    await inner.scalar(select(func.count()).select_from(Workspace))
            async with create_read_sessionmaker(engine)() as reads:  # reads still may
                assert await reads.scalar(select(func.count()).select_from(Workspace)) is not None
        async with unit_of_work(sessionmaker) as after:  # released with the outer unit
            await after.scalar(select(func.count()).select_from(Workspace))
    finally:
        await engine.dispose()


async def test_a_unit_whose_connection_was_invalidated_rolls_back_with_its_own_error(
    sqlite_url: str,
) -> None:
    """A connection invalidated mid-transaction (a task cancelled during a statement: the
    lease renewal of a generation that ended) left the rollback raising PendingRollbackError
    instead of the unit's own error, which failed the chat's generation job (fuzz stage)."""
    engine = create_engine(sqlite_url)
    sessionmaker = create_sessionmaker(engine)

    async def work() -> None:
        async with unit_of_work(sessionmaker) as session:
            await session.scalar(select(func.count()).select_from(Workspace))
            await (await session.connection()).invalidate()
            raise Boom

    try:
        with pytest.raises(Boom):
            await work()
        async with unit_of_work(sessionmaker) as after:  # its write hold is forgotten
            await after.scalar(select(func.count()).select_from(Workspace))
    finally:
        await engine.dispose()


async def test_a_lock_error_that_outlasts_the_retries_answers_503_not_500(
    sqlite_url: str,
) -> None:
    holder_engine = create_engine(sqlite_url)
    engine = create_engine(sqlite_url, sqlite_busy_timeout_ms=20)
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/write")
    async def write() -> None:
        async with unit_of_work(create_sessionmaker(engine)) as session:
            session.add(Workspace(slug=f"busy-{uuid.uuid4().hex[:8]}", name="busy"))
            await session.flush()

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with (
            holder_engine.connect() as holder,
            holder.begin(),
            httpx.AsyncClient(transport=transport, base_url="http://test") as client,
        ):
            await holder.execute(select(func.count()).select_from(Workspace))
            response = await client.post("/write")
        assert response.status_code == 503, response.text
        assert response.json()["code"] == "database_busy"
        assert response.headers["retry-after"] == "1"
    finally:
        await engine.dispose()
        await holder_engine.dispose()
