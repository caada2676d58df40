"""Test fixtures: a PostgreSQL database built by the alembic migrations once per run, each test in
a rolled-back transaction, the app driven through httpx's ASGI transport, and Redis reachable.

PostgreSQL and Redis come from CHATSVC_TEST_DATABASE_URL (an admin URL; the suite creates and drops
its own database) and CHATSVC_TEST_REDIS_URL. `make test` starts them when they are installed but
down (scripts/ensure_services.py)."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from chatsvc.auth import service as auth_service
from chatsvc.auth.models import Role
from chatsvc.config import Environment, GeneratorApp, Settings
from chatsvc.kit.db import create_engine, unit_of_work
from chatsvc.main import create_app
from chatsvc.migrate import upgrade
from chatsvc.services import Services, get_sessionmaker

ADMIN_URL = os.environ.get(
    "CHATSVC_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("CHATSVC_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TEST_DB = f"chatsvc_test_{os.getpid()}"  # one per run, so parallel runs do not collide


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url.replace("+asyncpg", ""))
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 3
        ):
            return True
    except OSError:
        return False


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": Environment.TEST,
        "database_url": database_url,
        "redis_url": REDIS_URL,
        "access_log": False,
        "generator_apps": {
            "offline": GeneratorApp(kind="offline"),
            "second": GeneratorApp(kind="offline", description="another offline app"),
        },
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
async def pg_url() -> AsyncIterator[str]:
    if not _reachable(ADMIN_URL, 5432):
        pytest.exit(
            f"PostgreSQL is not reachable at {make_url(ADMIN_URL).render_as_string()}: start it "
            "(see DEVELOPERS.md) or set CHATSVC_TEST_DATABASE_URL; `make test` starts it for you.",
            returncode=3,
        )
    if not _reachable(REDIS_URL, 6379):
        pytest.exit(
            f"Redis is not reachable at {REDIS_URL}: start it (see DEVELOPERS.md) or set "
            "CHATSVC_TEST_REDIS_URL; `make test` starts it for you.",
            returncode=3,
        )
    async with _migrated_database(TEST_DB) as url:
        yield url


@asynccontextmanager
async def _migrated_database(name: str) -> AsyncIterator[str]:
    """A database of this run, built by the migrations, dropped at the end."""
    admin = create_engine(ADMIN_URL)
    async with admin.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        await connection.execute(text(f"CREATE DATABASE {name}"))
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        await asyncio.to_thread(upgrade, url)  # the schema comes from the migrations
        yield url
    finally:
        async with admin.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        await admin.dispose()


@pytest.fixture(scope="session")
async def live_pg_url(pg_url: str) -> AsyncIterator[str]:
    """A second database for tests that commit (live servers): what they commit must not show in
    the rolled-back tests, which may expect an empty database (the first-start bootstrap)."""
    async with _migrated_database(f"{TEST_DB}_live") as url:
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


async def _rolled_back(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as connection:
        transaction = await connection.begin()
        try:
            yield connection
        finally:
            await transaction.rollback()


def _sessionmaker(connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    # Commits inside the code under test release savepoints; the outer transaction rolls back.
    return async_sessionmaker(
        bind=connection,
        expire_on_commit=False,
        autoflush=False,
        join_transaction_mode="create_savepoint",
    )


@pytest.fixture
async def pg_connection(pg_engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async for connection in _rolled_back(pg_engine):
        yield connection


@pytest.fixture(params=["postgresql", "sqlite"])
async def session(
    request: pytest.FixtureRequest, pg_engine: AsyncEngine, sqlite_engine: AsyncEngine
) -> AsyncIterator[AsyncSession]:
    """A domain-level session on each backend: the repository layer runs on both."""
    engine = pg_engine if request.param == "postgresql" else sqlite_engine
    async for connection in _rolled_back(engine):
        async with _sessionmaker(connection)() as db_session:
            yield db_session


@pytest.fixture
def settings(pg_url: str) -> Settings:
    return make_settings(pg_url)


@dataclass
class Tenant:
    """A workspace with an admin key, a member key and the clients using them."""

    workspace_id: int
    admin_key: str
    member_key: str
    admin: httpx.AsyncClient
    member: httpx.AsyncClient
    member_principal_id: int = 0


@pytest.fixture
async def app_client(
    settings: Settings, pg_connection: AsyncConnection
) -> AsyncIterator[httpx.AsyncClient]:
    """An anonymous client of an app whose requests run inside the test's transaction."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        sessionmaker = _sessionmaker(pg_connection)
        app.dependency_overrides[get_sessionmaker] = lambda: sessionmaker
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def make_tenant(connection: AsyncConnection, client: httpx.AsyncClient, slug: str) -> Tenant:
    async with _sessionmaker(connection)() as db:
        workspace = await auth_service.create_workspace(db, slug)
        _a, admin_key = await auth_service.create_api_key(
            db, workspace.id, Role.ADMIN, username=f"{slug}-admin", full_name="Ada Admin"
        )
        member_row, member_key = await auth_service.create_api_key(
            db, workspace.id, Role.MEMBER, username=f"{slug}-member", full_name="Max Member"
        )
        member_principal_id = member_row.principal_id
        await db.commit()
    transport = client._transport
    admin = httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers={"X-Api-Key": admin_key}
    )
    member = httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {member_key}"},
    )
    return Tenant(workspace.id, admin_key, member_key, admin, member, member_principal_id)


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


# --- live: a real server on loopback, real commits ---------------------------------------------
#
# Chats run detached generations in tasks of their own, concurrently with requests, so they need
# real transactions (not one rolled-back connection) and a real HTTP server (an SSE stream must
# arrive in pieces and a client must be able to hang up). Each test gets a workspace of its own in
# the run's database, which is dropped at the end of the run.


@dataclass
class Live:
    base_url: str
    app: FastAPI
    workspace_id: int
    admin_key: str
    member_key: str
    admin: httpx.AsyncClient
    member: httpx.AsyncClient

    @property
    def services(self) -> Services:
        return services_of(self.app)

    def client(self, key: str, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, headers={"X-Api-Key": key}, **kwargs)


def services_of(app: FastAPI) -> Services:
    """The services a started app built (its lifespan ran)."""
    services: Services = app.state.services
    return services


def request_sessionmaker(app: FastAPI) -> async_sessionmaker[AsyncSession]:
    """The sessionmaker the app's requests use (the test's, where a fixture overrode it)."""
    override = app.dependency_overrides.get(get_sessionmaker)
    if override is not None:
        found: async_sessionmaker[AsyncSession] = override()
        return found
    return services_of(app).sessionmaker


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[tuple[str, FastAPI]]:
    """The app under uvicorn on a free loopback port, in this event loop."""
    app = create_app(settings)
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def live_tenant(settings: Settings) -> AsyncIterator[Live]:
    async with serve(settings) as (base_url, app):
        slug = f"live-{uuid.uuid4().hex[:12]}"
        async with unit_of_work(services_of(app).sessionmaker) as db:
            workspace = await auth_service.create_workspace(db, slug)
            _a, admin_key = await auth_service.create_api_key(
                db, workspace.id, Role.ADMIN, username="ada", full_name="Ada Admin"
            )
            _m, member_key = await auth_service.create_api_key(
                db, workspace.id, Role.MEMBER, username="max", full_name="Max Member"
            )
            workspace_id = workspace.id
        timeout = httpx.Timeout(30.0)
        async with (
            httpx.AsyncClient(
                base_url=base_url, headers={"X-Api-Key": admin_key}, timeout=timeout
            ) as admin,
            httpx.AsyncClient(
                base_url=base_url, headers={"X-Api-Key": member_key}, timeout=timeout
            ) as member,
        ):
            yield Live(base_url, app, workspace_id, admin_key, member_key, admin, member)


@pytest.fixture
async def live(live_pg_url: str) -> AsyncIterator[Live]:
    async with live_tenant(make_settings(live_pg_url)) as found:
        yield found
