"""Event webhooks: endpoints registered over /webhooks/ (admin only), and chat.completed /
chat.failed delivered signed, once each, to a real loopback receiver, then seen in the log."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from chatsvc.config import GeneratorApp
from chatsvc.webhooks.signing import verify
from tests.api.test_chats import make_assistant, make_chat
from tests.fakes.callback_receiver import CallbackReceiver, running_callback_receiver
from tests.fixtures.app import Live, live_tenant, make_settings

WAIT = 60.0
CLOSED = "http://127.0.0.1:9/v1"  # nothing listens on the discard port


@asynccontextmanager
async def hooked(
    live_pg_url: str, receiver: CallbackReceiver, **overrides: Any
) -> AsyncIterator[Live]:
    """The embedded app (in-process jobs), a fast retry, the receiver's port admitted, and an
    upstream that is down for the assistants configured with "down"."""
    apps = {
        "offline": GeneratorApp(kind="offline"),
        "down": GeneratorApp(kind="openai", base_url=CLOSED, model="m", timeout_seconds=2),
    }
    settings = make_settings(
        live_pg_url,
        redis_url=None,
        generator_apps=apps,
        webhook_base_delay_seconds=0.1,
        outbound_allowed_schemes=["https", "http"],
        outbound_allowed_ports=[receiver.port],
        outbound_allow_list=["127.0.0.1/32"],
        **overrides,
    )
    async with live_tenant(settings) as live:
        yield live


async def register(live: Live, receiver: CallbackReceiver, **fields: Any) -> dict[str, Any]:
    body = {"url": receiver.url, "events": ["chat.completed", "chat.failed"], **fields}
    response = await live.admin.post("/webhooks/", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_a_completed_and_a_failed_chat_each_deliver_one_signed_event(
    live_pg_url: str,
) -> None:
    async with running_callback_receiver() as receiver, hooked(live_pg_url, receiver) as live:
        endpoint = await register(live, receiver)
        secret = endpoint["secret"]
        assert secret.startswith("whsec_")
        receiver.secret = secret

        ok_chat = await make_chat(live, await make_assistant(live))
        answered = await live.admin.post(f"/chats/{ok_chat}/", json={"message": "hello"})
        assert answered.status_code == 200, answered.text
        assert await receiver.wait_for(1, within=WAIT), receiver.deliveries

        down = await make_assistant(live, generation_config="down")
        bad_chat = await make_chat(live, down)
        failed = await live.admin.post(f"/chats/{bad_chat}/", json={"message": "hello"})
        assert failed.status_code == 502
        assert await receiver.wait_for(2, within=WAIT), receiver.deliveries

        events: dict[str, dict[str, Any]] = {}
        for delivery in receiver.accepted:
            verify(secret, delivery.headers, delivery.body)  # raises when not signed by secret
            assert delivery.signature_ok is True
            event = json.loads(delivery.body)
            events[event["type"]] = event
        assert len(receiver.accepted) == 2  # one delivery each, no duplicate
        assert events["chat.completed"]["data"]["chat_id"] == ok_chat
        assert events["chat.completed"]["data"]["message"]["role"] == "assistant"
        assert events["chat.failed"]["data"]["chat_id"] == bad_chat
        assert events["chat.failed"]["data"]["error"]

        log = await live.admin.get(f"/webhooks/{endpoint['id']}/deliveries/")
        assert log.status_code == 200, log.text
        entries = log.json()["results"]
        assert [e["event_type"] for e in entries] == ["chat.failed", "chat.completed"]
        assert all(e["succeeded"] and e["status_code"] == 200 for e in entries)
        assert {e["webhook_id"] for e in entries} == receiver.distinct_ids
        page = await live.admin.get(f"/webhooks/{endpoint['id']}/deliveries/", params={"limit": 1})
        assert len(page.json()["results"]) == 1 and page.json()["next"]
        older = await live.admin.get(page.json()["next"])
        assert [e["event_type"] for e in older.json()["results"]] == ["chat.completed"]
        assert older.json()["next"] is None


async def test_endpoints_are_managed_by_admins_and_hidden_from_members(
    live_pg_url: str,
) -> None:
    async with running_callback_receiver() as receiver, hooked(live_pg_url, receiver) as live:
        given = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="
        endpoint = await register(live, receiver, secret=given, events=["export.completed"])
        assert endpoint["secret"] == given
        path = f"/webhooks/{endpoint['id']}/"

        listed = (await live.admin.get("/webhooks/")).json()
        assert [e["id"] for e in listed["results"]] == [endpoint["id"]]
        assert "secret" not in listed["results"][0]
        assert "secret" not in (await live.admin.get(path)).json()

        changed = await live.admin.patch(path, json={"events": ["chat.failed"], "enabled": False})
        assert changed.status_code == 200, changed.text
        assert changed.json()["events"] == ["chat.failed"] and changed.json()["enabled"] is False

        for method, url in (("GET", "/webhooks/"), ("GET", path), ("DELETE", path),
                            ("GET", f"{path}deliveries/")):  # fmt: skip
            assert (await live.member.request(method, url)).status_code == 404
        body = {"url": receiver.url, "events": ["chat.failed"]}
        refused = await live.member.post("/webhooks/", json=body)
        assert refused.status_code == 404

        outside = await live.admin.post(
            "/webhooks/", json={"url": "http://10.0.0.1:8080/x", "events": ["chat.failed"]}
        )
        assert outside.status_code == 400, outside.text
        bad_secret = await live.admin.post(
            "/webhooks/", json={"url": receiver.url, "events": ["chat.failed"], "secret": "nope!"}
        )
        assert bad_secret.status_code == 400, bad_secret.text
        unknown = await live.admin.post(
            "/webhooks/", json={"url": receiver.url, "events": ["chat.deleted"]}
        )
        assert unknown.status_code in (400, 422)
        moved = await live.admin.patch(path, json={"url": "ftp://127.0.0.1/x"})
        assert moved.status_code == 400, moved.text
        nulled = await live.admin.patch(path, json={"enabled": None})
        assert nulled.status_code == 400, nulled.text

        assert (await live.admin.delete(path)).status_code == 204
        assert (await live.admin.get(path)).status_code == 404


async def test_a_finished_export_delivers_export_completed_once_its_job_succeeded(
    live_pg_url: str, tmp_path: Path
) -> None:
    async with (
        running_callback_receiver() as receiver,
        hooked(live_pg_url, receiver, artifact_dir=str(tmp_path)) as live,
    ):
        endpoint = await register(live, receiver, events=["export.completed", "export.failed"])
        receiver.secret = endpoint["secret"]
        ok_chat = await make_chat(live, await make_assistant(live))
        answered = await live.admin.post(f"/chats/{ok_chat}/", json={"message": "hello"})
        assert answered.status_code == 200, answered.text

        started = await live.admin.post("/exports/", json={"chat": ok_chat})
        assert started.status_code == 202, started.text
        job_id = started.json()["id"]
        assert await receiver.wait_for(1, within=WAIT), receiver.deliveries
        (delivery,) = receiver.accepted  # chat.completed is not subscribed: only the export
        assert delivery.signature_ok is True
        event = json.loads(delivery.body)
        assert event["type"] == "export.completed"
        assert event["data"]["job_id"] == job_id
        assert event["data"]["download_path"] == f"/jobs/{job_id}/artifact/"
        # Announced after the job's end committed: what a receiver reads back is final.
        job = (await live.admin.get(f"/jobs/{job_id}/")).json()
        assert job["state"] == "succeeded"
        assert job["result"]["rows"] == event["data"]["rows"]
