"""Fixtures of the messages-v1 tests: clients that send the key in the `authorization` header,
a chat made through the cognitive face, and the UUIDs of the tenant's principals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from chatsvc.config import Settings
from tests.conftest import Tenant, make_settings

URL = "/api/v1/chat-messages"


@pytest.fixture
def settings(pg_url: str, tmp_path: Path) -> Settings:
    # No Redis queue: a job triggered after a (savepoint) commit runs in process and finds nothing
    # to claim in the rolled-back transaction, instead of waiting in Redis for a worker.
    return make_settings(pg_url, redis_url=None, artifact_dir=str(tmp_path / "artifacts"))


@dataclass
class V1:
    """A tenant's clients on this face (raw key in `authorization`) and its principals' UUIDs."""

    tenant: Tenant
    admin: httpx.AsyncClient
    member: httpx.AsyncClient
    admin_uuid: str
    member_uuid: str
    connection: AsyncConnection

    async def scalar(self, sql: str, **params: Any) -> Any:
        return (await self.connection.execute(text(sql), params)).scalar()

    async def assistant(self, **fields: Any) -> int:
        body = {"description": "Help desk", **fields}
        response = await self.tenant.admin.post("/assistants/", json=body)
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    async def chat(self, assistant: int | None = None, *, member: bool = False) -> str:
        """A new chat (the admin's, or the member's) and its UUID."""
        assistant = assistant or await self.assistant()
        client = self.tenant.member if member else self.tenant.admin
        response = await client.post(f"/assistants/{assistant}/", json={})
        assert response.status_code == 201, response.text
        return str(
            await self.scalar("SELECT uuid FROM chats WHERE id = :id", id=response.json()["id"])
        )

    async def post(
        self, chat_id: str, *, client: httpx.AsyncClient | None = None, **fields: Any
    ) -> httpx.Response:
        body = {
            "chatId": chat_id,
            "chatThreadId": None,
            "content": "Hello there",
            "externalId": None,
            "senderId": self.admin_uuid,
            "role": "assistant",
            **fields,
        }
        return await (client or self.admin).post(URL, json=body)

    async def count(self, sql: str, **params: Any) -> int:
        return int(await self.scalar(sql, **params))


async def user_uuid(client: httpx.AsyncClient) -> str:
    """The caller's UUID, as the threads face shows it (the `user` of its current session)."""
    response = await client.get("/api/chat-sessions/current/")
    assert response.status_code == 200, response.text
    return str(response.json()["user"])


def v1_client(app_client: httpx.AsyncClient, authorization: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=app_client._transport,
        base_url="http://testserver",
        headers={"authorization": authorization},
    )


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
