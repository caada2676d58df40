"""MCP tests: one real MCP server (the SDK's server side, tests/fakes/mcp_server.py) on loopback
for the run, reset before each test, and an app whose outbound policy admits it (http on its
port, 127.0.0.1/32 allow-listed) with short MCP deadlines."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from chatsvc.config import Settings
from chatsvc.kit.outbound import OutboundPolicy
from chatsvc.secrets.local import LocalSecretStore
from chatsvc.tools.mcp_client import McpClient
from tests.fakes.mcp_server import FakeMcp
from tests.fixtures.app import app_of, make_settings, request_sessionmaker, services_of
from tests.fixtures.mcp import (
    CALL_TIMEOUT,
    CONNECT_TIMEOUT,
    SHORT_CALL,
    SHORT_CONNECT,
    loopback_policy,
)


@pytest.fixture(scope="session")
def mcp_server() -> Iterator[FakeMcp]:
    with FakeMcp() as fake:
        yield fake


@pytest.fixture
def fake(mcp_server: FakeMcp) -> FakeMcp:
    """The run's MCP server, with default behaviour and nothing recorded."""
    mcp_server.reset()
    return mcp_server


@pytest.fixture
def client(fake: FakeMcp) -> McpClient:
    """An MCP client admitted to the fake, with the deadlines the app gets in these tests."""
    return McpClient(
        loopback_policy(fake),
        connect_timeout_seconds=CONNECT_TIMEOUT,
        call_timeout_seconds=CALL_TIMEOUT,
    )


@pytest.fixture
def short_client(fake: FakeMcp) -> McpClient:
    """An MCP client with short deadlines, for tests that expect them to pass."""
    return McpClient(
        loopback_policy(fake),
        connect_timeout_seconds=SHORT_CONNECT,
        call_timeout_seconds=SHORT_CALL,
    )


@pytest.fixture
def settings(pg_url: str, fake: FakeMcp) -> Settings:
    return make_settings(
        pg_url,
        outbound_allowed_schemes=["http", "https"],
        outbound_allowed_ports=[fake.port],
        outbound_allow_list=["127.0.0.1/32"],
        mcp_connect_timeout_seconds=CONNECT_TIMEOUT,
        mcp_call_timeout_seconds=CALL_TIMEOUT,
    )


@pytest.fixture
async def app_client(
    app_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    """The app client of tests/conftest.py with its local secret store writing inside the test's
    rolled-back transaction (the lifespan built it on the engine) and an MCP client of the
    test's own (the client keeps what it learnt of an endpoint — its transport, its discover
    result — and every test talks to the same fake). The app is the session's: every change
    here is undone after the test (monkeypatch)."""
    app = app_of(app_client)
    runtime = services_of(app).tools
    store = runtime.secrets
    assert isinstance(store, LocalSecretStore)
    monkeypatch.setattr(store, "sessionmaker", request_sessionmaker(app))
    mcp = McpClient.from_settings(runtime.settings)
    monkeypatch.setattr(runtime, "mcp", mcp)
    try:
        yield app_client
    finally:
        await mcp.close()


@pytest.fixture
def default_policy(
    app_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> OutboundPolicy:
    """The app with the default outbound policy (public HTTPS only), as a deployment has it."""
    policy = OutboundPolicy.from_settings(Settings())
    runtime = services_of(app_of(app_client)).tools
    monkeypatch.setattr(runtime, "policy", policy)
    monkeypatch.setattr(runtime.mcp, "policy", policy)
    return policy


@pytest.fixture
def short_deadlines(app_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's MCP client with short deadlines, for tests that expect them to pass."""
    mcp = services_of(app_of(app_client)).tools.mcp
    monkeypatch.setattr(mcp, "connect_timeout_seconds", SHORT_CONNECT)
    monkeypatch.setattr(mcp, "call_timeout_seconds", SHORT_CALL)
