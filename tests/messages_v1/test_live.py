"""messages-v1 on a real server with real commits: a posted user message is answered in the
background and the answer shows through this face and the cognitive one; concurrent posts with one
externalId store one message and start one answer; concurrent first uses of a senderId register
one identity; the period export is delivered, signed, to a real callback receiver, by the
in-process queue and by a real arq worker."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy import func, select, update

from chatsvc.chats.models import Chat, Message
from chatsvc.exports.service import HEADERS
from chatsvc.jobs import service as job_service
from chatsvc.jobs.models import Job, JobState
from chatsvc.jobs.runner import JobContext, execute
from chatsvc.kit.db import unit_of_work
from chatsvc.threads.models import ChatSession
from tests.fakes.callback_receiver import CallbackReceiver, running_callback_receiver
from tests.fixtures.app import Live, live_tenant, make_settings
from tests.fixtures.jobs import Workers, finished, poll_job, workers, workspace_secret

URL = "/api/v1/chat-messages"
WAIT = 60.0  # generous: nothing asserts on timing
#: the worker test's own Redis database (the other worker tests use 12 and 13)
WORKER_REDIS_URL = "redis://127.0.0.1:6379/11"
FAQ = {"name": "How do I reset my password?", "content": "Use the link on the sign-in page."}


@asynccontextmanager
async def embedded(
    live_pg_url: str, tmp_path: Path, receiver: CallbackReceiver | None = None
) -> AsyncIterator[Live]:
    """The app with no Redis (the in-process queue runs the jobs), a fast callback retry, and
    the receiver's loopback port admitted by the outbound policy."""
    overrides: dict[str, Any] = {
        "redis_url": None,
        "artifact_dir": str(tmp_path / "artifacts"),
        "webhook_base_delay_seconds": 0.1,
    }
    if receiver is not None:
        overrides.update(
            outbound_allowed_schemes=["https", "http"],
            outbound_allowed_ports=[receiver.port],
            outbound_allow_list=["127.0.0.1/32"],
        )
    async with live_tenant(make_settings(live_pg_url, **overrides)) as live:
        yield live


def v1_client(live: Live, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=live.base_url, headers={"authorization": key}, timeout=httpx.Timeout(WAIT)
    )


async def scalar(live: Live, statement: Any) -> Any:
    async with live.services.sessionmaker() as session:
        return await session.scalar(statement)


async def new_chat(live: Live, **assistant: Any) -> tuple[int, str]:
    made = await live.admin.post("/assistants/", json={"description": "Help desk", **assistant})
    assert made.status_code == 201, made.text
    added = await live.admin.post(f"/assistants/{made.json()['id']}/common_questions/", json=FAQ)
    assert added.status_code == 201, added.text
    chat = await live.admin.post(f"/assistants/{made.json()['id']}/", json={})
    assert chat.status_code == 201, chat.text
    chat_id = int(chat.json()["id"])
    return chat_id, str(await scalar(live, select(Chat.uuid).where(Chat.id == chat_id)))


async def admin_uuid(live: Live) -> str:
    """The admin key's UUID, as the threads face shows it."""
    response = await live.admin.get("/api/chat-sessions/current/")
    assert response.status_code == 200, response.text
    return str(response.json()["user"])


async def eventually(
    probe: Callable[[], Awaitable[Any]], until: Callable[[Any], bool], what: str
) -> Any:
    deadline = time.monotonic() + WAIT
    value = await probe()
    while not until(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} never happened; last seen: {value}")
        await asyncio.sleep(0.05)
        value = await probe()
    return value


async def test_a_posted_user_message_is_answered_and_seen_on_both_faces(
    live_pg_url: str, tmp_path: Path
) -> None:
    async with embedded(live_pg_url, tmp_path) as live, v1_client(live, live.admin_key) as v1:
        chat_id, chat = await new_chat(live)
        sender = await admin_uuid(live)
        posted = await v1.post(
            URL,
            json={
                "chatId": chat,
                "content": FAQ["name"],
                "senderId": sender,
                "role": "user",
                "externalId": "widget-msg-1",
            },
        )
        assert posted.status_code == 200, posted.text

        async def messages() -> list[dict[str, Any]]:
            response = await v1.get(URL, params={"chatId": chat})
            assert response.status_code == 200, response.text
            found: list[dict[str, Any]] = response.json()
            return found

        question, answer = await eventually(messages, lambda m: len(m) == 2, "the answer")
        assert question == posted.json()
        assert answer["role"] == "assistant"
        assert answer["content"] == FAQ["content"]
        assert answer["rawContent"] == answer["content"]  # generated: the raw text is shown
        assert answer["senderId"] is None and answer["externalId"] is None
        assert answer["chatThreadId"] is None and answer["chatId"] == chat

        cognitive = await live.admin.get(f"/chats/{chat_id}/")
        assert [(m["role"], m["content"]) for m in cognitive.json()["messages"]] == [
            ("user", FAQ["name"]),
            ("assistant", FAQ["content"]),
        ]
        # The chat is free again: the next user message is accepted and answered too.
        again = await v1.post(
            URL, json={"chatId": chat, "content": "thanks", "senderId": sender, "role": "user"}
        )
        assert again.status_code == 200, again.text
        await eventually(messages, lambda m: len(m) == 4, "the second answer")


async def test_concurrent_posts_of_one_external_id_store_one_message(
    live_pg_url: str, tmp_path: Path
) -> None:
    async with embedded(live_pg_url, tmp_path) as live, v1_client(live, live.admin_key) as v1:
        sender = await admin_uuid(live)
        for role in ("assistant", "user"):
            chat_id, chat = await new_chat(live)
            body = {"chatId": chat, "content": "hi", "senderId": sender, "role": role}
            responses = await asyncio.gather(
                *(v1.post(URL, json={**body, "externalId": f"dup-{role}"}) for _ in range(8))
            )
            assert [r.status_code for r in responses] == [200] * 8, [r.text for r in responses]
            assert len({r.json()["id"] for r in responses}) == 1
            stored = await scalar(
                live,
                select(func.count(Message.id)).where(
                    Message.chat_id == chat_id, Message.external_id == f"dup-{role}"
                ),
            )
            assert stored == 1, role
        answers = await scalar(
            live,
            select(func.count(Job.id)).where(
                Job.workspace_id == live.workspace_id, Job.kind == "chat_generation"
            ),
        )
        assert answers == 1  # only the user message, once


async def test_concurrent_first_uses_of_a_sender_register_one_identity(
    live_pg_url: str, tmp_path: Path
) -> None:
    async with embedded(live_pg_url, tmp_path) as live, v1_client(live, live.admin_key) as v1:
        _chat_id, chat = await new_chat(live)
        customer = str(uuid.uuid4())
        body = {"chatId": chat, "senderId": customer, "role": "assistant"}
        responses = await asyncio.gather(
            *(v1.post(URL, json={**body, "content": f"m{n}"}) for n in range(8))
        )
        assert [r.status_code for r in responses] == [200] * 8, [r.text for r in responses]
        assert {r.json()["senderId"] for r in responses} == {customer}
        count = await scalar(
            live, select(func.count(ChatSession.id)).where(ChatSession.user_uuid == customer)
        )
        assert count == 1


# --- the export, end to end ----------------------------------------------------------------------


async def seed_messages(live: Live, v1: httpx.AsyncClient) -> str:
    """Three messages of one chat; the last one dated 30 days back. Returns a period start a
    day back, which leaves that one out."""
    _chat_id, chat = await new_chat(live)
    sender = await admin_uuid(live)
    for content in ("=SUM(A1:A9) looks odd", "Ticket closed", "ancient history"):
        body = {"chatId": chat, "content": content, "senderId": sender, "role": "assistant"}
        assert (await v1.post(URL, json=body)).status_code == 200
    async with unit_of_work(live.services.sessionmaker) as session:
        await session.execute(
            update(Message)
            .where(Message.content == "ancient history")
            .values(created_at=Message.created_at - func.make_interval(0, 0, 0, 30))
        )
    return (datetime.now(UTC) - timedelta(days=1)).isoformat()


async def jobs_of(live: Live) -> list[tuple[Any, ...]]:
    async with live.services.sessionmaker() as session:
        rows = await session.execute(
            select(Job.id, Job.kind, Job.state, Job.attempts, Job.error).where(
                Job.workspace_id == live.workspace_id
            )
        )
        return [tuple(row) for row in rows]


async def expect_delivery(
    live: Live,
    receiver: CallbackReceiver,
    response: httpx.Response,
    language: str,
    describe: Callable[[], str] = lambda: "",
) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    job_url = response.headers["Link"].split(">")[0].lstrip("<")
    job_id = int(job_url.strip("/").rsplit("/", 1)[1])
    done = await poll_job(live.admin, job_id, finished, wait_seconds=WAIT, describe=describe)
    assert done["state"] == "succeeded", (done, describe())
    if not await receiver.wait_for(1, within=WAIT):
        raise AssertionError(f"nothing delivered; the jobs: {await jobs_of(live)}\n{describe()}")
    (delivery,) = receiver.accepted
    assert delivery.signature_ok is True
    assert delivery.webhook_id == f"export-{job_id}"
    assert delivery.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(delivery.body.decode("utf-8"))))
    assert rows[0] == list(HEADERS[language].values())
    return [dict(zip(HEADERS["enUs"], row, strict=True)) for row in rows[1:]]


async def test_the_export_reaches_the_callback_signed_in_process(
    live_pg_url: str, tmp_path: Path
) -> None:
    async with (
        running_callback_receiver() as receiver,
        embedded(live_pg_url, tmp_path, receiver) as live,
        v1_client(live, live.admin_key) as v1,
    ):
        receiver.secret = await workspace_secret(live)
        start = await seed_messages(live, v1)
        response = await v1.post(
            f"{URL}/export",
            json={"rangeStart": start, "callbackUrl": receiver.url, "language": "frFr"},
        )
        rows = await expect_delivery(live, receiver, response, "frFr")
        assert [row["content"] for row in rows] == [
            "'=SUM(A1:A9) looks odd",  # a formula is neutralised for spreadsheets
            "Ticket closed",
        ]
        assert {row["role"] for row in rows} == {"assistant"}


@asynccontextmanager
async def with_worker(
    live_pg_url: str, tmp_path: Path, receiver: CallbackReceiver
) -> AsyncIterator[tuple[Live, Workers]]:
    """The API with the arq queue and a real `chatsvc worker` process, on a Redis database of
    their own (so no other test's worker takes these triggers), configured alike."""
    redis = Redis.from_url(WORKER_REDIS_URL)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()
    shared: dict[str, Any] = {
        "redis_url": WORKER_REDIS_URL,
        "artifact_dir": str(tmp_path / "artifacts"),
        "webhook_base_delay_seconds": 0.1,
        "outbound_allowed_schemes": ["https", "http"],
        "outbound_allowed_ports": [receiver.port],
        "outbound_allow_list": ["127.0.0.1/32"],
    }
    env = {
        f"CHATSVC_{key.upper()}": json.dumps(value) if isinstance(value, list) else str(value)
        for key, value in shared.items()
    }
    logs = tmp_path / "logs"
    logs.mkdir()
    async with live_tenant(make_settings(live_pg_url, **shared)) as live:
        with workers(live_pg_url, logs) as pool:
            pool.env.update(env)
            yield live, pool


async def test_the_export_reaches_the_callback_through_a_real_worker(
    live_pg_url: str, tmp_path: Path
) -> None:
    async with (
        running_callback_receiver(fail_first=1) as receiver,
        with_worker(live_pg_url, tmp_path, receiver) as (live, pool),
        v1_client(live, live.admin_key) as v1,
    ):
        receiver.secret = await workspace_secret(live)
        pool.start()
        await seed_messages(live, v1)
        response = await v1.post(  # from the first message on
            f"{URL}/export", json={"rangeStart": None, "callbackUrl": receiver.url}
        )
        rows = await expect_delivery(live, receiver, response, "enUs", pool.output)
        assert [d.status for d in receiver.deliveries] == [500, 200]  # retried once
        assert [row["content"] for row in rows] == [
            "'=SUM(A1:A9) looks odd",
            "Ticket closed",
            "ancient history",
        ]


async def test_a_delivery_that_runs_before_its_export_is_recorded_done_is_retried(
    live_pg_url: str, tmp_path: Path
) -> None:
    # The export job triggers its delivery before the runner records the export as succeeded; on
    # the in-process queue the delivery may run first. It must wait, not give up for good.
    async with embedded(live_pg_url, tmp_path) as live:
        ctx: JobContext = live.services.jobs
        async with unit_of_work(ctx.sessionmaker) as session:
            export, _created = await job_service.create_job(
                session, live.workspace_id, "export", {}
            )
            assert await job_service.claim(session, export.id, 60) is not None  # running
            delivery, _created = await job_service.create_job(
                session,
                live.workspace_id,
                "deliver_callback",
                {"export_job_id": export.id, "url": "https://93.184.215.14/hook"},
            )
        await execute(ctx, delivery.id)
        async with ctx.sessionmaker() as session:
            found = await session.get(Job, delivery.id)
        assert found is not None
        assert (found.state, found.attempts) == (JobState.QUEUED, 1), (found.state, found.error)
        assert found.error is not None and "not finished" in found.error
        async with unit_of_work(ctx.sessionmaker) as session:  # keep the retries quiet
            for job_id in (export.id, delivery.id):
                await job_service.fail(session, job_id, "test over", False)
