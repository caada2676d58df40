"""Background work end to end, as a client sees it: the API under uvicorn and REAL arq worker
subprocesses (`python -m chatsvc.cli worker`) sharing one PostgreSQL database, Redis db 12 and one
artifact directory. Async chats answered by a worker (polled and followed over SSE), idempotent
export requests, a callback delivered once through failures, an export that survives its worker
being SIGKILLed, and a chat that never stays PROCESSING after its worker died."""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy import func, select, text

from chatsvc.config import GeneratorApp
from chatsvc.jobs.models import Job
from chatsvc.kit.db import unit_of_work
from tests.fakes.callback_receiver import running_callback_receiver
from tests.fakes.openai_server import running_openai_server
from tests.fixtures.app import Live, live_tenant, make_settings
from tests.fixtures.jobs import Workers, finished, poll_job, workers, workspace_secret
from tests.fixtures.sse import completed, names, sse, text_of

REDIS_URL = "redis://127.0.0.1:6379/12"
WAIT = 45.0
FAQ_QUESTION = "How do I reset my password?"
#: long enough, with a pause between words, that an SSE client joins while it is generated
FAQ_ANSWER = " ".join(["Use the reset link on the sign-in page, then choose a new password."] * 4)
OFFLINE = GeneratorApp(kind="offline", token_delay_seconds=0.05)


# --- one environment: API + workers on the same database, Redis and artifact dir -------------


@dataclass
class Stack:
    live: Live
    pool: Workers
    artifacts: Path


def _env_value(value: object) -> str:
    if isinstance(value, GeneratorApp):
        return json.dumps(value.model_dump(mode="json", exclude_none=True))
    if isinstance(value, dict):
        return json.dumps(
            {
                k: v.model_dump(mode="json", exclude_none=True)
                if isinstance(v, GeneratorApp)
                else v
                for k, v in value.items()
            }
        )
    if isinstance(value, list):
        return json.dumps(value)
    return str(value)


@asynccontextmanager
async def stack(
    live_pg_url: str,
    tmp_path: Path,
    *,
    receiver_port: int | None = None,
    apps: dict[str, GeneratorApp] | None = None,
) -> AsyncIterator[Stack]:
    """The API (live_tenant) and a worker pool configured alike; every worker is killed after."""
    redis = Redis.from_url(REDIS_URL)
    try:
        await redis.flushdb()  # no arq trigger left over from an earlier test
    finally:
        await redis.aclose()
    artifacts = tmp_path / "artifacts"
    logs = tmp_path / "logs"
    artifacts.mkdir()
    logs.mkdir()
    shared: dict[str, Any] = {
        "redis_url": REDIS_URL,
        "artifact_dir": str(artifacts),
        "webhook_base_delay_seconds": 0.2,
        "webhook_max_delay_seconds": 1,
        "generation_lease_seconds": 5,
        "job_lease_seconds": 3,
        "sweep_interval_seconds": 1,
        "generator_apps": {"offline": OFFLINE, **(apps or {})},
    }
    if receiver_port is not None:
        shared.update(
            outbound_allowed_schemes=["https", "http"],
            outbound_allowed_ports=[receiver_port],
            outbound_allow_list=["127.0.0.1/32"],
        )
    async with live_tenant(make_settings(live_pg_url, **shared)) as live:
        with workers(live_pg_url, logs) as pool:
            pool.env.update({f"CHATSVC_{k.upper()}": _env_value(v) for k, v in shared.items()})
            yield Stack(live, pool, artifacts)


async def eventually(
    probe: Callable[[], Awaitable[dict[str, Any]]],
    until: Callable[[dict[str, Any]], bool],
    *,
    wait_seconds: float = WAIT,
    describe: Callable[[], str] = lambda: "",
) -> dict[str, Any]:
    deadline = time.monotonic() + wait_seconds
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = await probe()
        if until(body):
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"never got there; last {body}\n{describe()}")


async def get_json(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    response = await client.get(url)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def make_assistant(live: Live, **fields: Any) -> int:
    response = await live.admin.post("/assistants/", json={"description": "Help desk", **fields})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def job_count(live: Live) -> int:
    async with live.services.sessionmaker() as session:
        found = await session.scalar(
            select(func.count(Job.id)).where(Job.workspace_id == live.workspace_id)
        )
    return int(found or 0)


async def delivery_job(live: Live, export_id: int) -> int:
    async with live.services.sessionmaker() as session:
        found = await session.scalar(
            select(Job.id).where(
                Job.workspace_id == live.workspace_id,
                Job.idempotency_key == f"export-{export_id}",
            )
        )
    assert found is not None
    return int(found)


async def export(live: Live, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return await live.admin.post("/exports/", json=body, headers=headers)


# --- 1. async chats ------------------------------------------------------------------------------


async def test_async_chat_is_answered_by_the_worker_polled_and_streamed(
    live_pg_url: str, tmp_path: Path
) -> None:
    async with stack(live_pg_url, tmp_path) as env:
        live, pool = env.live, env.pool
        pool.start()
        assistant = await make_assistant(live, generation_config="offline")
        faq = {"name": FAQ_QUESTION, "content": FAQ_ANSWER}
        added = await live.admin.post(f"/assistants/{assistant}/common_questions/", json=faq)
        assert added.status_code == 201, added.text

        created = await live.admin.post(
            f"/assistants/{assistant}/chats/async/", json={"message": FAQ_QUESTION}
        )
        assert created.status_code == 201, created.text
        assert created.json()["execution_status"] == "PROCESSING"
        chat_id = int(created.json()["id"])
        url = f"/chats/{chat_id}/async/"
        chat = await eventually(
            lambda: get_json(live.admin, url),
            lambda b: b["execution_status"] != "PROCESSING",
            describe=pool.output,
        )
        assert chat["execution_status"] == "AVAILABLE", (chat, pool.output())
        assert [(m["role"], m["content"]) for m in chat["messages"]] == [
            ("user", FAQ_QUESTION),
            ("assistant", FAQ_ANSWER),
        ]

        # A second turn, followed over SSE while the worker generates it.
        posted = await live.admin.post(url, json={"message": FAQ_QUESTION})
        assert posted.status_code == 201, posted.text
        assert posted.json()["execution_status"] == "PROCESSING"
        async with sse(live.admin, "GET", f"/chats_stream/{chat_id}/") as reader:
            assert reader.response.status_code == 200
            found = await reader.rest()
        assert "delta" in names(found), names(found)
        assert completed(found)["content"] == FAQ_ANSWER
        assert text_of(found) == FAQ_ANSWER
        chat = await get_json(live.admin, url)
        assert chat["execution_status"] == "AVAILABLE"
        assert [m["role"] for m in chat["messages"]] == ["user", "assistant"] * 2

        liked = await live.admin.put(url, json={"like": True})
        assert liked.status_code == 200, liked.text
        assert (await get_json(live.admin, url))["like"] is True

        offline_only = await make_assistant(live, realtime_available=False)
        refused = await live.admin.post(
            f"/assistants/{offline_only}/chats/async/", json={"message": "hi"}
        )
        assert refused.status_code == 400, refused.text


# --- 2. export requests ---------------------------------------------------------------------------


async def test_an_export_key_gives_one_job_and_a_private_callback_is_refused(
    live_pg_url: str, tmp_path: Path
) -> None:
    # Default outbound settings: public HTTPS only. No worker needed: nothing has to run.
    async with stack(live_pg_url, tmp_path) as env:
        live = env.live
        assistant = await make_assistant(live)
        chat = await live.admin.post(f"/assistants/{assistant}/", json={})
        assert chat.status_code == 201, chat.text
        body = {"chat": chat.json()["id"]}
        first = await export(live, body, "same-key")
        second = await export(live, body, "same-key")
        assert first.status_code == 202, first.text
        assert second.status_code == 200, second.text
        assert first.json()["id"] == second.json()["id"]
        assert await job_count(live) == 1

        for callback in ("http://127.0.0.1:9/cb", "https://127.0.0.1/cb", "http://example.com/"):
            refused = await export(live, {**body, "callback_url": callback}, f"k-{callback}")
            assert refused.status_code == 400, (callback, refused.text)
        assert await job_count(live) == 1  # nothing was enqueued for the refused ones


# --- 3. callback delivery through failures ------------------------------------------------------


async def test_a_callback_is_retried_and_delivered_once_signed_with_the_file(
    live_pg_url: str, tmp_path: Path
) -> None:
    async with (
        running_callback_receiver(fail_first=2) as receiver,
        stack(live_pg_url, tmp_path, receiver_port=receiver.port) as env,
    ):
        live, pool = env.live, env.pool
        receiver.secret = await workspace_secret(live)
        pool.start()
        assistant = await make_assistant(live)
        chat = await live.admin.post(f"/assistants/{assistant}/", json={"message": "hello"})
        assert chat.status_code == 201, chat.text
        started = await export(live, {"chat": chat.json()["id"], "callback_url": receiver.url})
        assert started.status_code == 202, started.text
        job_id = int(started.json()["id"])
        done = await poll_job(live.admin, job_id, finished, wait_seconds=WAIT, describe=pool.output)
        assert done["state"] == "succeeded", (done, pool.output())
        assert await receiver.wait_for(1, within=WAIT), (receiver.deliveries, pool.output())
        delivery = await poll_job(
            live.admin, await delivery_job(live, job_id), finished, describe=pool.output
        )
        assert delivery["state"] == "succeeded", delivery

        artifact = await live.admin.get(f"/jobs/{job_id}/artifact/")
        assert artifact.status_code == 200, artifact.text
        assert [d.status for d in receiver.deliveries] == [500, 500, 200]
        assert all(d.signature_ok for d in receiver.deliveries), receiver.deliveries
        assert receiver.distinct_ids == {f"export-{job_id}"}
        assert {d.webhook_id for d in receiver.deliveries} == {f"export-{job_id}"}
        assert all(d.body == artifact.content for d in receiver.deliveries)
        assert artifact.content == (env.artifacts / f"export-{job_id}.csv").read_bytes()
        assert done["result"]["rows"] == 2  # the question and its answer


# --- 4. an export survives its worker being killed --------------------------------------------


MESSAGES = 200_000


async def insert_messages(live: Live, chat_id: int, count: int) -> None:
    async with unit_of_work(live.services.sessionmaker) as session:
        await session.execute(
            text(
                """
                INSERT INTO messages (uuid, chat_id, msg_num, role, content, "references",
                    visible, metadata, status, created_at, updated_at)
                SELECT gen_random_uuid()::text, :chat, n, 'user', 'message ' || n, '[]',
                    true, '{}', 'complete', now(), now()
                FROM generate_series(1, :count) AS n
                """
            ),
            {"chat": chat_id, "count": count},
        )
        await session.execute(
            text("UPDATE chats SET last_msg_num = :count WHERE id = :chat"),
            {"chat": chat_id, "count": count},
        )


async def test_an_export_survives_its_worker_being_killed_and_calls_back_once(
    live_pg_url: str, tmp_path: Path
) -> None:
    async with (
        running_callback_receiver() as receiver,
        stack(live_pg_url, tmp_path, receiver_port=receiver.port) as env,
    ):
        live, pool = env.live, env.pool
        receiver.secret = await workspace_secret(live)
        assistant = await make_assistant(live)
        chat = await live.admin.post(f"/assistants/{assistant}/", json={})
        assert chat.status_code == 201, chat.text
        chat_id = int(chat.json()["id"])
        await insert_messages(live, chat_id, MESSAGES)
        first = pool.start()
        started = await export(live, {"chat": chat_id, "callback_url": receiver.url}, "big")
        assert started.status_code == 202, started.text
        job_id = int(started.json()["id"])
        running = await poll_job(
            live.admin,
            job_id,
            lambda b: finished(b) or (b["state"] == "running" and b["progress"]["done"] > 0),
            wait_seconds=WAIT,
            describe=pool.output,
        )
        assert running["state"] == "running", ("finished before the kill", running)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        assert running["progress"]["done"] < MESSAGES

        pool.start()
        done = await poll_job(live.admin, job_id, finished, wait_seconds=WAIT, describe=pool.output)
        assert done["state"] == "succeeded", (done, pool.output())
        assert done["attempts"] == 2 and done["result"]["rows"] == MESSAGES
        assert await receiver.wait_for(1, within=WAIT), (len(receiver.deliveries), pool.output())
        delivery = await poll_job(
            live.admin, await delivery_job(live, job_id), finished, describe=pool.output
        )
        assert delivery["state"] == "succeeded", delivery
        await asyncio.sleep(1.5)  # a duplicate delivery would have arrived by now
        assert receiver.distinct_ids == {f"export-{job_id}"}
        assert len(receiver.accepted) == 1
        artifact = (env.artifacts / f"export-{job_id}.csv").read_bytes()
        assert artifact.count(b"\r\n") == MESSAGES + 1  # the header and one row per message
        # Over webhook_max_file_bytes (20 MiB): the callback is the JSON notice naming the file.
        notice = json.loads(receiver.accepted[0].body)
        assert notice["type"] == "export.completed" and notice["job_id"] == job_id
        assert (notice["rows"], notice["bytes"]) == (MESSAGES, len(artifact))
        assert notice["sha256"] == hashlib.sha256(artifact).hexdigest()
        async with live.services.sessionmaker() as session:
            exports = await session.scalar(
                select(func.count(Job.id)).where(
                    Job.workspace_id == live.workspace_id, Job.kind == "export"
                )
            )
        assert exports == 1


# --- 5. a chat never stays PROCESSING after its worker died ---------------------------------


async def test_a_chat_does_not_stay_processing_after_its_worker_died(
    live_pg_url: str, tmp_path: Path
) -> None:
    async with running_openai_server(ttft=0.05, gap=0.05, hang_after=2) as fake:
        # The upstream hangs: the worker is killed mid-answer, long before this timeout (which
        # only ends a retried generation that hangs again); a shorter one could fail the turn
        # on a loaded machine before the test sees it run.
        gpt = GeneratorApp(kind="openai", base_url=fake.base_url, model="m", timeout_seconds=10)
        async with stack(live_pg_url, tmp_path, apps={"gpt": gpt}) as env:
            live, pool = env.live, env.pool
            first = pool.start()
            assistant = await make_assistant(live, generation_config="gpt")
            created = await live.admin.post(
                f"/assistants/{assistant}/chats/async/", json={"message": "tell me"}
            )
            assert created.status_code == 201, created.text
            chat_id = int(created.json()["id"])
            url = f"/chats/{chat_id}/async/"
            await _until(lambda: fake.streams_started >= 1, pool.output)
            assert (await get_json(live.admin, url))["execution_status"] == "PROCESSING"
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)

            pool.start()
            # Watched through /full/, which only reads: GET /chats/{id}/async/ would retry the
            # failed turn at once (a new generation), so a poller of it never sees FAILED.
            chat = await eventually(
                lambda: get_json(live.admin, f"/chats/{chat_id}/full/"),
                lambda b: b["execution_status"] != "PROCESSING",
                describe=pool.output,
            )
            assert chat["execution_status"] in ("FAILED", "AVAILABLE"), chat
            if chat["execution_status"] == "FAILED":
                assert chat["error"], chat

            fake.reset(ttft=0.01, gap=0.01)  # the upstream answers again
            posted = await live.admin.post(url, json={"message": "try again"})
            assert posted.status_code == 201, posted.text
            chat = await eventually(
                lambda: get_json(live.admin, url),
                lambda b: b["execution_status"] != "PROCESSING",
                describe=pool.output,
            )
            assert chat["execution_status"] == "AVAILABLE", (chat, pool.output())
            assert chat["messages"][-1]["role"] == "assistant"
            assert chat["messages"][-1]["content"] == "You said: try again"


async def _until(condition: Callable[[], bool], describe: Callable[[], str]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition never held\n{describe()}")
        await asyncio.sleep(0.05)
