"""The embedded database keeps a unit of work atomic: a savepoint (how a service absorbs a
unique-key race) does not commit what came before it, and a rollback leaves nothing behind."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from chatsvc.auth.models import Workspace
from chatsvc.kit.db import create_engine, create_sessionmaker


class Boom(Exception):
    pass


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
