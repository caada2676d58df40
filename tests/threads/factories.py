"""Rows for threads tests that need exact dates, verdicts and histories: threads (chats) and their
messages written straight to the test's transaction, as the chat service would have stored them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from chatsvc.auth.models import Principal
from chatsvc.chats.models import Chat, Message
from tests.conftest import _sessionmaker


def day(text: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(text).replace(hour=hour, tzinfo=UTC)


@dataclass
class Msg:
    role: str
    content: str
    visible: bool = True
    replaces: int | None = None  # index, in this thread's list, of the message replaced
    verdict: dict[str, Any] = field(default_factory=dict)


async def principal_id(connection: AsyncConnection, workspace_id: int, username: str) -> int:
    async with _sessionmaker(connection)() as db:
        found = await db.scalar(
            select(Principal.id).where(
                Principal.workspace_id == workspace_id, Principal.username == username
            )
        )
    assert found is not None
    return int(found)


async def new_assistant(client: httpx.AsyncClient, **fields: Any) -> int:
    response = await client.post("/assistants/", json={"description": "Help desk", **fields})
    assert response.status_code == 201, response.text
    assistant_id: int = response.json()["id"]
    return assistant_id


async def make_thread(
    connection: AsyncConnection,
    *,
    workspace_id: int,
    assistant_id: int,
    principal: int,
    title: str,
    created: datetime,
    modified: datetime,
    messages: list[Msg],
    archived: bool = False,
    severity: int = 0,
    flags: tuple[str, ...] = (),
) -> tuple[str, list[str]]:
    """A thread and its messages; returns the thread's uuid and its messages' uuids."""
    async with _sessionmaker(connection)() as db:
        chat = Chat(
            workspace_id=workspace_id,
            assistant_id=assistant_id,
            principal_id=principal,
            title=title,
            max_responses=100,
            max_msg_length=4000,
            is_archived=archived,
            is_flagged=bool(flags),
            max_severity=severity,
            flags=list(flags),
            last_msg_num=len(messages),
            created_at=created,
            updated_at=modified,
        )
        db.add(chat)
        await db.flush()
        rows: list[Message] = []
        for number, item in enumerate(messages, start=1):
            row = Message(
                chat_id=chat.id,
                msg_num=number,
                role=item.role,
                content=item.content,
                visible=item.visible,
                replaces_id=rows[item.replaces].id if item.replaces is not None else None,
                created_at=created,
                updated_at=created,
                **item.verdict,
            )
            db.add(row)
            await db.flush()
            rows.append(row)
        await db.commit()
        return chat.uuid, [row.uuid for row in rows]
