"""Test fixtures: a PostgreSQL database built by the alembic migrations once per run, each test in
a rolled-back transaction, the app driven through httpx's ASGI transport (one started app per
distinct settings for the whole session), and Redis reachable.
The helpers these fixtures use live in tests/fixtures/ (test modules import them from there).

PostgreSQL and Redis come from CHATSVC_TEST_DATABASE_URL (an admin URL; the suite creates and drops
its own database) and CHATSVC_TEST_REDIS_URL. `make test` starts them when they are installed but
down (scripts/ensure_services.py)."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from chatsvc.config import Settings
from chatsvc.kit.db import create_engine
from chatsvc.migrate import upgrade
from tests.fixtures.app import (
    Live,
    SharedApps,
    Tenant,
    make_settings,
    make_tenant,
    requests_on,
    settle,
    workspace_on,
)
from tests.fixtures.db import (
    ADMIN_URL,
    REDIS_URL,
    TEST_DB,
    migrated_database,
    reachable,
    rolled_back,
    sessionmaker_on,
)


@pytest.fixture(scope="session")
async def pg_url() -> AsyncIterator[str]:
    if not reachable(ADMIN_URL, 5432):
        pytest.exit(
            f"PostgreSQL is not reachable at {make_url(ADMIN_URL).render_as_string()}: start it "
            "(see DEVELOPERS.md) or set CHATSVC_TEST_DATABASE_URL; `make test` starts it for you.",
            returncode=3,
        )
    if not reachable(REDIS_URL, 6379):
        pytest.exit(
            f"Redis is not reachable at {REDIS_URL}: start it (see DEVELOPERS.md) or set "
            "CHATSVC_TEST_REDIS_URL; `make test` starts it for you.",
            returncode=3,
        )
    async with migrated_database(TEST_DB) as url:
        yield url


@pytest.fixture(scope="session")
async def live_pg_url(pg_url: str) -> AsyncIterator[str]:
    """A second database for tests that commit (live servers): what they commit must not show in
    the rolled-back tests, which may expect an empty database (the first-start bootstrap)."""
    async with migrated_database(f"{TEST_DB}_live") as url:
        yield url


@pytest.fixture(scope="session")
async def sqlite_url() -> AsyncIterator[str]:
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'chatsvc.db'}"
        await asyncio.to_thread(upgrade, url)
        yield url


@pytest.fixture(scope="session")
async def pg_engine(pg_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(pg_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def sqlite_engine(sqlite_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(sqlite_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def pg_connection(pg_engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async for connection in rolled_back(pg_engine):
        yield connection


@pytest.fixture(params=["postgresql", "sqlite"])
async def session(
    request: pytest.FixtureRequest, pg_engine: AsyncEngine, sqlite_engine: AsyncEngine
) -> AsyncIterator[AsyncSession]:
    """A domain-level session on each backend: the repository layer runs on both."""
    engine = pg_engine if request.param == "postgresql" else sqlite_engine
    async for connection in rolled_back(engine):
        async with sessionmaker_on(connection)() as db_session:
            yield db_session


@pytest.fixture
def settings(pg_url: str) -> Settings:
    return make_settings(pg_url)


@pytest.fixture(scope="session")
async def shared_apps() -> AsyncIterator[SharedApps]:
    """The session's started apps and live servers, one per distinct settings
    (tests/fixtures/app.py)."""
    apps = SharedApps()
    try:
        yield apps
    finally:
        await apps.close()


@pytest.fixture
async def app_client(
    settings: Settings, pg_connection: AsyncConnection, shared_apps: SharedApps
) -> AsyncIterator[httpx.AsyncClient]:
    """An anonymous client of the session's app for `settings`, its requests inside the test's
    transaction. The app is shared: a fixture that changes its services undoes the change."""
    app = await shared_apps.get(settings)
    async with requests_on(app, sessionmaker_on(pg_connection)) as client:
        yield client


@pytest.fixture
async def tenant(
    pg_connection: AsyncConnection, app_client: httpx.AsyncClient
) -> AsyncIterator[Tenant]:
    found = await make_tenant(pg_connection, app_client, "acme")
    yield found
    await found.admin.aclose()
    await found.member.aclose()


@pytest.fixture
async def other_tenant(
    pg_connection: AsyncConnection, app_client: httpx.AsyncClient
) -> AsyncIterator[Tenant]:
    found = await make_tenant(pg_connection, app_client, "globex")
    yield found
    await found.admin.aclose()
    await found.member.aclose()


@pytest.fixture
async def live(live_pg_url: str, shared_apps: SharedApps) -> AsyncIterator[Live]:
    """The session's live server with the default settings (tests/fixtures/app.py), and a
    workspace of this test's own on it; afterwards the generations the test started settle."""
    base_url, app = await shared_apps.serve(make_settings(live_pg_url))
    try:
        async with workspace_on(base_url, app) as found:
            yield found
    finally:
        await settle(app)
