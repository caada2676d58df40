"""Fixtures of the secrets tests: each backend of the SecretStore (local on PostgreSQL and on
SQLite, inside the test's rolled-back transaction; Azure Key Vault through the real SDK and the
fake vault), and the app client with its store bound to the test (both backends)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import cast

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from chatsvc.auth import service as auth_service
from chatsvc.kit.db import unit_of_work
from chatsvc.secrets.azure import AzureSecretStore
from chatsvc.secrets.local import LocalSecretStore, SecretCipher
from chatsvc.secrets.store import SecretStore
from tests.conftest import _rolled_back, _sessionmaker, request_sessionmaker, services_of
from tests.fakes.keyvault import FakeKeyVault

TEST_KEY = "test-secret-key-0123456789abcdef0123456789"


def azure_store(vault: FakeKeyVault) -> AzureSecretStore:
    """An AzureSecretStore whose SDK client talks to `vault` (no waiting between polls)."""
    return AzureSecretStore(
        vault.vault_url, vault.credential(), transport=vault.transport(), polling_interval=0
    )


@dataclass
class Backend:
    """A store under test and two workspaces it may use."""

    kind: str  # "local-postgresql", "local-sqlite" or "azure"
    store: SecretStore
    workspace_a: int
    workspace_b: int
    vault: FakeKeyVault | None = None
    sessionmaker: async_sessionmaker[AsyncSession] | None = None


async def _workspaces(sessionmaker: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
    async with unit_of_work(sessionmaker) as db:
        first = await auth_service.create_workspace(db, "secrets-a")
        second = await auth_service.create_workspace(db, "secrets-b")
        return first.id, second.id


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
    async for connection in _rolled_back(engine):
        sessionmaker = _sessionmaker(connection)
        first, second = await _workspaces(sessionmaker)
        local = LocalSecretStore(SecretCipher([TEST_KEY]), sessionmaker)
        yield Backend(request.param, local, first, second, sessionmaker=sessionmaker)


@pytest.fixture(params=["postgresql", "sqlite"])
async def local(
    request: pytest.FixtureRequest, pg_engine: AsyncEngine, sqlite_engine: AsyncEngine
) -> AsyncIterator[Backend]:
    """The local backend alone, on each database."""
    engine = pg_engine if request.param == "postgresql" else sqlite_engine
    async for connection in _rolled_back(engine):
        sessionmaker = _sessionmaker(connection)
        first, second = await _workspaces(sessionmaker)
        store = LocalSecretStore(SecretCipher([TEST_KEY]), sessionmaker)
        yield Backend(f"local-{request.param}", store, first, second, sessionmaker=sessionmaker)


def app_of(client: httpx.AsyncClient) -> FastAPI:
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    return cast(FastAPI, transport.app)


@pytest.fixture(params=["local", "azure"])
async def app_client(
    request: pytest.FixtureRequest, app_client: httpx.AsyncClient
) -> AsyncIterator[httpx.AsyncClient]:
    """The app client of tests/conftest.py, its secret store bound to the test: the local store
    writes inside the test's rolled-back transaction (the lifespan built it on the engine); the
    Azure store talks to a fake vault (found as `app.state.fake_vault`)."""
    app = app_of(app_client)
    runtime = services_of(app).tools
    original = runtime.secrets
    if request.param == "local":
        assert isinstance(original, LocalSecretStore)
        original.sessionmaker = request_sessionmaker(app)
        yield app_client
        return
    fake = FakeKeyVault()
    runtime.secrets = azure_store(fake)
    app.state.fake_vault = fake
    try:
        yield app_client
    finally:
        await runtime.secrets.close()
        runtime.secrets = original
