"""API key look-ups kept per process (auth/keys.py), on PostgreSQL: a known key costs no query
while it is trusted, a revoked key stops working once that time is over, an unknown key is
never remembered."""

from __future__ import annotations

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from chatsvc.auth import service as auth_service
from chatsvc.auth.keys import Authenticator
from chatsvc.auth.models import ApiKey, Role
from chatsvc.kit.db import utcnow
from tests.fixtures.db import sessionmaker_on


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def key(pg_connection: AsyncConnection) -> str:
    async with sessionmaker_on(pg_connection)() as session:
        workspace = await auth_service.create_workspace(session, "keys")
        _row, raw = await auth_service.create_api_key(
            session, workspace.id, Role.MEMBER, username="kim"
        )
        await session.commit()
    return raw


async def revoke(connection: AsyncConnection, raw: str) -> None:
    async with sessionmaker_on(connection)() as session:
        await session.execute(
            update(ApiKey)
            .where(ApiKey.key_hash == auth_service.hash_key(raw))
            .values(revoked_at=utcnow())
        )
        await session.commit()


async def test_a_revoked_key_works_until_its_trust_runs_out(
    pg_connection: AsyncConnection, key: str
) -> None:
    clock = Clock()
    keys = Authenticator(sessionmaker_on(pg_connection), 10, clock=clock)
    first = await keys.authenticate(key)
    assert first is not None and first.role == Role.MEMBER
    await revoke(pg_connection, key)
    clock.now += 9.9
    assert await keys.authenticate(key) == first  # still trusted: no query was made
    clock.now += 0.2
    assert await keys.authenticate(key) is None


async def test_forget_ends_the_trust_at_once(pg_connection: AsyncConnection, key: str) -> None:
    keys = Authenticator(sessionmaker_on(pg_connection), 60, clock=Clock())
    assert await keys.authenticate(key) is not None
    await revoke(pg_connection, key)
    keys.forget(auth_service.hash_key(key))
    assert await keys.authenticate(key) is None


async def test_unknown_and_oversized_keys_are_refused_and_not_kept(
    pg_connection: AsyncConnection, key: str
) -> None:
    keys = Authenticator(sessionmaker_on(pg_connection), 60, clock=Clock())
    assert await keys.authenticate("csk_nope") is None
    assert await keys.authenticate("x" * 10_000) is None
    assert await keys.authenticate("") is None
    assert len(keys._known) == 0
    # Without a time to trust (0), every look-up asks the database.
    uncached = Authenticator(sessionmaker_on(pg_connection), 0, clock=Clock())
    assert await uncached.authenticate(key) is not None
    assert len(uncached._known) == 0
