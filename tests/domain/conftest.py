"""Fixtures of the domain tests that commit: a workspace wired to real services (no HTTP server)
on PostgreSQL with Redis (production) and on SQLite with the in-process broker and queue (the
embedded default)."""

from __future__ import annotations

import asyncio
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from chatsvc.migrate import upgrade
from tests.fakes.openai_server import FakeOpenAI, running_openai_server
from tests.fixtures.app import make_settings
from tests.fixtures.turns import World, turn_apps, world_of


@pytest.fixture(scope="session")
async def embedded_url() -> AsyncIterator[str]:
    """An embedded database of its own: what these tests commit stays out of the others'."""
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'turns.db'}"
        await asyncio.to_thread(upgrade, url)
        yield url


@pytest.fixture(scope="session")
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def upstream() -> Iterator[FakeOpenAI]:
    """An OpenAI-compatible server on loopback; a test sets its behaviour with `reset`."""
    with running_openai_server() as fake:
        yield fake


@pytest.fixture(params=["postgresql", "embedded"])
async def world(
    request: pytest.FixtureRequest,
    live_pg_url: str,
    embedded_url: str,
    closed_port: int,
    upstream: FakeOpenAI,
) -> AsyncIterator[World]:
    apps = turn_apps(closed_port, upstream.base_url)
    if request.param == "postgresql":
        # Redis carries the streams; background jobs run in this process (no worker here).
        settings = make_settings(live_pg_url, generator_apps=apps, job_queue="in-process")
    else:
        settings = make_settings(embedded_url, redis_url=None, generator_apps=apps)
    async with world_of(settings) as found:
        yield found
