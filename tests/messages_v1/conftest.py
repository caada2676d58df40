"""Fixtures of the messages-v1 tests: the app without a Redis queue and the tenant's clients on
this face (tests/fixtures/messages_v1.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from chatsvc.config import Settings
from tests.fixtures.app import Tenant, make_settings
from tests.fixtures.messages_v1 import V1, user_uuid, v1_client


@pytest.fixture(scope="session")
def artifact_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory for the session, so every test here gets the same settings (one app)."""
    return tmp_path_factory.mktemp("messages-v1") / "artifacts"


@pytest.fixture
def settings(pg_url: str, artifact_dir: Path) -> Settings:
    # No Redis queue: a job triggered after a (savepoint) commit runs in process and finds nothing
    # to claim in the rolled-back transaction, instead of waiting in Redis for a worker.
    return make_settings(pg_url, redis_url=None, artifact_dir=str(artifact_dir))


@pytest.fixture
async def v1(
    tenant: Tenant, app_client: httpx.AsyncClient, pg_connection: AsyncConnection
) -> AsyncIterator[V1]:
    admin = v1_client(app_client, tenant.admin_key)
    member = v1_client(app_client, tenant.member_key)
    found = V1(
        tenant,
        admin,
        member,
        await user_uuid(tenant.admin),
        await user_uuid(tenant.member),
        pg_connection,
    )
    yield found
    await admin.aclose()
    await member.aclose()
