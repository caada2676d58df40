"""What the threads tests on a live server share: streaming a turn and reading the thread back.
The SSE reader comes from the cognitive face's stream tests."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.test_streams import Event, completed, names, sse, text_of

STREAM = "/api/chat/stream/"

__all__ = ["STREAM", "Event", "completed", "names", "sse", "text_of"]


async def stream(
    client: httpx.AsyncClient, body: dict[str, Any], **kwargs: Any
) -> tuple[httpx.Response, list[Event]]:
    """One streamed turn read to its last event."""
    async with sse(client, "POST", STREAM, json=body, **kwargs) as source:
        if source.response.status_code != 200:
            await source.response.aread()
            raise AssertionError(f"{source.response.status_code}: {source.response.text}")
        return source.response, await source.rest()


def turn_of(found: list[Event]) -> dict[str, Any]:
    assert found and found[0].event == "turn", names(found)
    data: dict[str, Any] = found[0].data
    return data


async def messages(
    client: httpx.AsyncClient, thread: str, *, history: bool = False
) -> list[dict[str, Any]]:
    params = {"thread": thread, "include_history": "true" if history else "false"}
    response = await client.get("/api/chat-messages/", params=params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


async def thread_of(client: httpx.AsyncClient, thread: str) -> dict[str, Any]:
    response = await client.get(f"/api/chat-threads/{thread}/")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def sent_to_model(body: Any) -> list[tuple[str, str]]:
    """(role, content) of the chat messages a generator request carried."""
    return [(m["role"], m.get("content") or "") for m in body["messages"]]
