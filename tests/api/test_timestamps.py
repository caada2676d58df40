"""Every moment a response writes (JSON bodies, SSE payloads, the words of messages and error
details) is ISO 8601 in UTC with `Z`, on every face: one way, whichever code wrote it."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.fixtures.app import Live, live_tenant, make_settings
from tests.fixtures.sse import sse

#: a moment written with a numeric offset (`+00:00`, `+02:00`): never in a response
OFFSET = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:?\d\d")
#: a moment as every response writes it
UTC_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")
PUBLIC = "https://93.184.215.14/hooks/chatsvc"  # a literal public address: no DNS needed


class Seen:
    """What the responses of a test wrote, checked as they come."""

    def __init__(self) -> None:
        self.moments = 0

    def text(self, where: str, text: str) -> None:
        found = OFFSET.search(text)
        assert found is None, f"{where}: {found and found.group()} in {text[:300]}"

    def value(self, where: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                self.value(f"{where}.{key}", item)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.value(f"{where}[{index}]", item)
        elif isinstance(value, str) and re.match(r"\d{4}-\d\d-\d\dT", value):
            assert UTC_Z.match(value), f"{where}: {value}"
            self.moments += 1

    def response(self, response: httpx.Response, status: int) -> Any:
        assert response.status_code == status, response.text
        where = f"{response.request.method} {response.request.url.path}"
        self.text(where, response.text)
        body = response.json()
        self.value(where, body)
        return body


async def test_every_face_writes_moments_in_utc_with_z(live_pg_url: str) -> None:
    seen = Seen()
    async with live_tenant(make_settings(live_pg_url)) as live:
        await cognitive(live, seen)
        thread = await threads(live, seen)
        await messages_v1(live, seen, thread)
    assert seen.moments > 40


async def cognitive(live: Live, seen: Seen) -> None:
    admin = live.admin
    assistant = seen.response(await admin.post("/assistants/", json={"description": "Z"}), 201)
    seen.response(await admin.get(f"/assistants/{assistant['id']}/"), 200)
    question = {"name": "When?", "content": "Now."}
    url = f"/assistants/{assistant['id']}/common_questions/"
    seen.response(await admin.post(url, json=question), 201)
    chat = seen.response(
        await admin.post(f"/assistants/{assistant['id']}/", json={"message": "When?"}), 201
    )
    seen.response(await admin.get(f"/chats/{chat['id']}/full/"), 200)
    seen.response(await admin.get(f"/messages/{chat['messages'][-1]['id']}/"), 200)
    async with sse(admin, "POST", f"/chats_stream/{chat['id']}/", json={"message": "When?"}) as s:
        for event in await s.rest():
            seen.value(f"SSE {event.event}", event.data)
    report = {
        "chat": chat["id"],
        "category": "CORRECT",
        "reason": "OTHER",
        "severity": "INFO",
        "status": "OPEN",
        "description": "fine",
    }
    seen.response(await admin.post("/reports/", json=report), 200)
    seen.response(await admin.get("/reports/"), 200)
    job = seen.response(await admin.post("/exports/", json={"chat": chat["id"]}), 202)
    seen.response(await admin.get(f"/jobs/{job['id']}/"), 200)
    wrong = {"start": "2026-11-02T00:00:00+02:00", "end": "2026-11-01T00:00:00+02:00"}
    refused = seen.response(await admin.post("/exports/", json=wrong), 400)
    assert "2026-11-01T22:00:00Z" in refused["detail"], refused


async def threads(live: Live, seen: Seen) -> str:
    async with sse(live.member, "POST", "/api/chat/stream/", json={"input": "When?"}) as s:
        found = await s.rest()
    for event in found:
        seen.value(f"SSE {event.event}", event.data)
    thread: str = found[0].data["thread"]["uuid"]
    seen.response(await live.member.get("/api/chat-threads/"), 200)
    seen.response(await live.member.get(f"/api/chat-threads/{thread}/"), 200)
    seen.response(await live.member.get("/api/chat-sessions/"), 200)
    seen.response(await live.member.get("/api/chat-messages/", params={"thread": thread}), 200)
    return thread


async def messages_v1(live: Live, seen: Seen, thread: str) -> None:
    async with httpx.AsyncClient(
        base_url=live.base_url, headers={"authorization": live.admin_key}
    ) as v1:
        seen.response(await v1.get("/api/v1/chat-messages", params={"chatId": thread}), 200)
        period = {
            "rangeStart": "2026-11-01T00:00:00+02:00",
            "rangeEnd": "2026-11-20T12:30:00+01:00",
            "callbackUrl": PUBLIC,
        }
        started = seen.response(await v1.post("/api/v1/chat-messages/export", json=period), 200)
        assert "2026-10-31T22:00:00Z" in started["message"], started
        backwards = {**period, "rangeEnd": "2026-10-01T00:00:00Z"}
        refused = seen.response(await v1.post("/api/v1/chat-messages/export", json=backwards), 400)
        assert "2026-10-01T00:00:00Z" in refused["detail"], refused
