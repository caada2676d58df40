"""Concurrent writers on a real server, on PostgreSQL and on the embedded SQLite database: the
same answers on both (a race on one chat has one winner and 409s, never a 500 "database is
locked"), and nothing half-written (every accepted message stored once, numbered gap-free,
every refused one absent)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from chatsvc.chats.models import Chat, Message
from chatsvc.migrate import upgrade
from tests.fakes.openai_server import FakeOpenAI
from tests.fixtures.app import Live
from tests.fixtures.chats import live_with_fake, make_assistant, new_chat

WAIT = 60.0  # generous: nothing asserts on timing
WRITERS = 50
RACERS = 20


@pytest.fixture(params=["postgresql", "sqlite"])
async def backend(
    request: pytest.FixtureRequest, live_pg_url: str, tmp_path: Path
) -> AsyncIterator[tuple[Live, FakeOpenAI]]:
    """A live server (no Redis: the embedded setup's in-process broker and queue) whose
    generator "gpt" starts an answer and then hangs, so a claimed chat stays claimed."""
    url = live_pg_url
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'chatsvc.db'}"
        await asyncio.to_thread(upgrade, url)
    async with live_with_fake(url, redis=False, hang_after=1) as found:
        yield found


async def scalar(live: Live, statement: Any) -> Any:
    async with live.services.read_sessionmaker() as session:
        return await session.scalar(statement)


async def user_messages(live: Live, chat: int) -> list[tuple[int, str]]:
    """The chat's user messages: (number, text)."""
    async with live.services.read_sessionmaker() as session:
        found = await session.execute(
            select(Message.msg_num, Message.content)
            .where(Message.chat_id == chat, Message.role == "user")
            .order_by(Message.msg_num)
        )
        return [(number, content) for number, content in found]


def statuses(responses: list[httpx.Response]) -> Counter[int]:
    return Counter(r.status_code for r in responses)


async def test_fifty_concurrent_chat_creations_all_succeed(
    backend: tuple[Live, FakeOpenAI],
) -> None:
    live, _fake = backend
    assistant = await make_assistant(live.admin)  # the offline generator answers at once
    async with live.client(live.admin_key, timeout=httpx.Timeout(WAIT)) as client:
        responses = await asyncio.gather(
            *(
                client.post(f"/assistants/{assistant}/", json={"message": f"hello {n}"})
                for n in range(WRITERS)
            )
        )
    assert statuses(responses) == {201: WRITERS}, [r.text for r in responses if r.is_error]
    chats = {r.json()["id"] for r in responses}
    assert len(chats) == WRITERS
    texts: dict[int, str] = {}
    for response in responses:
        chat = response.json()["id"]
        [(number, text)] = await user_messages(live, chat)
        texts[chat] = text
        assert number == 1
    assert sorted(texts.values()) == sorted(f"hello {n}" for n in range(WRITERS))


async def test_concurrent_messages_to_one_chat_have_one_winner_on_messages_v1(
    backend: tuple[Live, FakeOpenAI],
) -> None:
    live, _fake = backend
    assistant = await make_assistant(live.admin, generation_config="gpt")
    chat = await new_chat(live.admin, assistant)
    chat_uuid = await scalar(live, select(Chat.uuid).where(Chat.id == chat))
    current = await live.admin.get("/api/chat-sessions/current/")
    body = {
        "chatId": chat_uuid,
        "chatThreadId": None,
        "externalId": None,
        "senderId": current.json()["user"],
        "role": "user",
    }
    async with httpx.AsyncClient(
        base_url=live.base_url,
        headers={"authorization": live.admin_key},
        timeout=httpx.Timeout(WAIT),
    ) as v1:
        responses = await asyncio.gather(
            *(
                v1.post("/api/v1/chat-messages", json={**body, "content": f"question {n}"})
                for n in range(RACERS)
            )
        )
    # As on PostgreSQL: the first message claims the chat for its answer; the others find it
    # answering (409 chat_busy), and none is stored.
    assert statuses(responses) == {200: 1, 409: RACERS - 1}, [r.text for r in responses]
    refused = {r.json()["code"] for r in responses if r.status_code == 409}
    assert len(refused) == 1, refused
    [won] = [r for r in responses if r.status_code == 200]
    assert await user_messages(live, chat) == [(1, won.json()["content"])]


async def test_concurrent_messages_to_one_chat_have_one_winner_on_the_cognitive_face(
    backend: tuple[Live, FakeOpenAI],
) -> None:
    live, _fake = backend
    assistant = await make_assistant(live.admin, generation_config="gpt")
    chat = await new_chat(live.admin, assistant)
    async with live.client(live.admin_key, timeout=httpx.Timeout(WAIT)) as client:
        responses = await asyncio.gather(
            *(
                client.post(f"/chats/{chat}/async/", json={"message": f"question {n}"})
                for n in range(RACERS)
            )
        )
    assert statuses(responses) == {201: 1, 409: RACERS - 1}, [r.text for r in responses]
    [(number, _text)] = await user_messages(live, chat)
    assert number == 1
    status = await scalar(live, select(Chat.execution_status).where(Chat.id == chat))
    assert status == "PROCESSING"
    messages = await scalar(live, select(func.count(Message.id)).where(Message.chat_id == chat))
    assert messages == 1  # the answer is still being generated: nothing half-written
