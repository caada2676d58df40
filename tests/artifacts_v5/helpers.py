"""Factories shared by the artifacts-v5 tests: workspaces with an admin and a member, entries
(assistants), library items, attempts with messages, and the face's paths."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.artifacts import service as artifact_service
from chatsvc.artifacts.cache import MemoryStore, TagCache
from chatsvc.artifacts.kinds import ResourceKind
from chatsvc.artifacts.schemas import ResourceIn
from chatsvc.assistants import service as assistant_service
from chatsvc.assistants.schemas import AssistantIn
from chatsvc.auth import service as auth_service
from chatsvc.auth.models import Role
from chatsvc.auth.service import AuthContext
from chatsvc.chats.models import Chat, Message
from chatsvc.config import Settings

API = "/api/v5/artifacts/chat"


@dataclass
class People:
    workspace_id: int
    admin: AuthContext
    member: AuthContext
    other_member: AuthContext


async def people(session: AsyncSession, slug: str = "acme") -> People:
    workspace = await auth_service.create_workspace(session, slug)
    keys = []
    for role, username in ((Role.ADMIN, "ada"), (Role.MEMBER, "max"), (Role.MEMBER, "mia")):
        key, _raw = await auth_service.create_api_key(
            session, workspace.id, role, username=username
        )
        keys.append(AuthContext(workspace.id, key.principal_id, role, key.id))
    return People(workspace.id, *keys)


def memory_cache() -> TagCache:
    return TagCache(MemoryStore())


async def entry(session: AsyncSession, workspace_id: int, settings: Settings) -> int:
    assistant = await assistant_service.create_assistant(
        session, workspace_id, AssistantIn(description="Sales coach"), settings
    )
    return assistant.id


async def item(
    session: AsyncSession,
    auth: AuthContext,
    kind: ResourceKind,
    name: str,
    description: str = "",
    **data: Any,
) -> str:
    resource = await artifact_service.create_resource(
        session,
        auth,
        ResourceIn(kind=kind, name=name, description=description, data=data),
        memory_cache(),
    )
    return resource.id


async def attempt(
    session: AsyncSession,
    auth: AuthContext,
    entry_id: int,
    messages: list[tuple[str, bool]] = (),  # type: ignore[assignment]
    *,
    like: bool | None = None,
) -> Chat:
    """A chat of the entry by `auth`'s principal with (role, visible) messages."""
    chat = Chat(
        workspace_id=auth.workspace_id,
        assistant_id=entry_id,
        principal_id=auth.principal_id,
        max_responses=10,
        max_msg_length=1000,
        like=like,
    )
    session.add(chat)
    await session.flush()
    for number, (role, visible) in enumerate(messages, start=1):
        session.add(
            Message(
                chat_id=chat.id, msg_num=number, role=role, content=f"m{number}", visible=visible
            )
        )
    await session.flush()
    return chat


async def new_entry(client: httpx.AsyncClient, description: str = "Sales coach") -> int:
    response = await client.post("/assistants/", json={"description": description})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def new_item(
    client: httpx.AsyncClient, kind: str, name: str, description: str = "", **data: Any
) -> str:
    body = {"kind": kind, "name": name, "description": description, "data": data}
    response = await client.post(f"{API}/resources", json=body)
    assert response.status_code == 201, response.text
    found = response.json()["id"]
    assert isinstance(found, str)
    return found


async def patch(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await client.patch(f"{API}/draft", json=body)


async def get(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post(f"{API}/get", json=body)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found
