"""Fixtures of the secrets tests: each backend of the SecretStore (local on PostgreSQL and on
SQLite, inside the test's rolled-back transaction; Azure Key Vault through the real SDK and the
fake vault), and the app client with its store bound to the test (both backends)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from chatsvc.secrets.local import LocalSecretStore, SecretCipher
from tests.fakes.keyvault import FakeKeyVault
from tests.fixtures.app import app_of, request_sessionmaker, services_of
from tests.fixtures.db import rolled_back, sessionmaker_on
from tests.fixtures.secrets import TEST_KEY, Backend, azure_store, two_workspaces


@pytest.fixture
async def vault() -> FakeKeyVault:
    return FakeKeyVault()


@pytest.fixture(params=["local-postgresql", "local-sqlite", "azure"])
async def backend(
    request: pytest.FixtureRequest, pg_engine: AsyncEngine, sqlite_engine: AsyncEngine
) -> AsyncIterator[Backend]:
    if request.param == "azure":
        fake = FakeKeyVault()
        store = azure_store(fake)
        yield Backend("azure", store, 7, 8, vault=fake)
        await store.close()
        return
    engine = pg_engine if request.param == "local-postgresql" else sqlite_engine
    async for connection in rolled_back(engine):
        sessionmaker = sessionmaker_on(connection)
        first, second = await two_workspaces(sessionmaker)
        local = LocalSecretStore(SecretCipher([TEST_KEY]), sessionmaker)
        yield Backend(request.param, local, first, second, sessionmaker=sessionmaker)


@pytest.fixture(params=["postgresql", "sqlite"])
async def local(
    request: pytest.FixtureRequest, pg_engine: AsyncEngine, sqlite_engine: AsyncEngine
) -> AsyncIterator[Backend]:
    """The local backend alone, on each database."""
    engine = pg_engine if request.param == "postgresql" else sqlite_engine
    async for connection in rolled_back(engine):
        sessionmaker = sessionmaker_on(connection)
        first, second = await two_workspaces(sessionmaker)
        store = LocalSecretStore(SecretCipher([TEST_KEY]), sessionmaker)
        yield Backend(f"local-{request.param}", store, first, second, sessionmaker=sessionmaker)


@pytest.fixture(params=["local", "azure"])
async def app_client(
    request: pytest.FixtureRequest, app_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    """The app client of tests/conftest.py, its secret store bound to the test: the local store
    writes inside the test's rolled-back transaction (the lifespan built it on the engine); the
    Azure store talks to a fake vault (found as `app.state.fake_vault`). The app is the
    session's: every change is undone after the test (monkeypatch)."""
    app = app_of(app_client)
    runtime = services_of(app).tools
    original = runtime.secrets
    if request.param == "local":
        assert isinstance(original, LocalSecretStore)
        monkeypatch.setattr(original, "sessionmaker", request_sessionmaker(app))
        yield app_client
        return
    fake = FakeKeyVault()
    store = azure_store(fake)
    monkeypatch.setattr(runtime, "secrets", store)
    monkeypatch.setattr(app.state, "fake_vault", fake, raising=False)
    try:
        yield app_client
    finally:
        await store.close()
