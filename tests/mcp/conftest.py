"""MCP tests: one real MCP server (the SDK's server side, tests/fakes/mcp_server.py) on loopback
for the run, reset before each test, and an app whose outbound policy admits it (http on its
port, 127.0.0.1/32 allow-listed) with short MCP deadlines."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI

from chatsvc.config import Settings
from chatsvc.kit.outbound import OutboundPolicy
from chatsvc.secrets.local import LocalSecretStore
from chatsvc.tools.mcp_client import McpClient
from tests.conftest import Tenant, make_settings, request_sessionmaker, services_of
from tests.fakes.mcp_server import FakeMcp

#: generous, so a loaded machine does not fail the tests that expect an answer
CONNECT_TIMEOUT = 10.0
CALL_TIMEOUT = 15.0
#: what the tests of deadlines use (`short_deadlines`), expecting no answer
SHORT_CONNECT = 0.5
SHORT_CALL = 1.0


@pytest.fixture(scope="session")
def mcp_server() -> Iterator[FakeMcp]:
    with FakeMcp() as fake:
        yield fake


@pytest.fixture
def fake(mcp_server: FakeMcp) -> FakeMcp:
    """The run's MCP server, with default behaviour and nothing recorded."""
    mcp_server.reset()
    return mcp_server


def loopback_policy(fake: FakeMcp, **changes: Any) -> OutboundPolicy:
    values: dict[str, Any] = {
        "allowed_schemes": {"http", "https"},
        "allowed_ports": {fake.port},
        "allow_list": ["127.0.0.1/32"],
    }
    values.update(changes)
    return OutboundPolicy(**values)


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


def app_of(client: httpx.AsyncClient) -> FastAPI:
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    return cast(FastAPI, transport.app)


@pytest.fixture
async def app_client(app_client: httpx.AsyncClient) -> httpx.AsyncClient:
    """The app client of tests/conftest.py with its local secret store writing inside the test's
    rolled-back transaction (the lifespan built it on the engine)."""
    app = app_of(app_client)
    store = services_of(app).tools.secrets
    assert isinstance(store, LocalSecretStore)
    store.sessionmaker = request_sessionmaker(app)
    return app_client


@pytest.fixture
def default_policy(app_client: httpx.AsyncClient) -> OutboundPolicy:
    """The app with the default outbound policy (public HTTPS only), as a deployment has it."""
    policy = OutboundPolicy.from_settings(Settings())
    runtime = services_of(app_of(app_client)).tools
    runtime.policy = policy
    runtime.mcp.policy = policy
    return policy


@pytest.fixture
def short_deadlines(app_client: httpx.AsyncClient) -> None:
    """The app's MCP client with short deadlines, for tests that expect them to pass."""
    mcp = services_of(app_of(app_client)).tools.mcp
    mcp.connect_timeout_seconds = SHORT_CONNECT
    mcp.call_timeout_seconds = SHORT_CALL


async def new_server(tenant: Tenant, fake: FakeMcp, **fields: Any) -> dict[str, Any]:
    body = {"name": "Fake tools", "url": fake.url, **fields}
    response = await tenant.admin.post("/mcp-servers/", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["detail"]
    return body
