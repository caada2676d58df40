"""The runner on the in-process queue (the embedded default), against the live PostgreSQL
database: jobs run to success through the status endpoint, retry with backoff, fail for good,
never run twice at once, stop when their lease is taken over, are handed back on shutdown, and are
recovered by the in-process sweeper when their run died."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chatsvc.assistants import service as assistant_service
from chatsvc.assistants.schemas import AssistantIn
from chatsvc.chats.jobs import STUCK_CHAT_ERROR
from chatsvc.chats.models import Chat, ExecutionStatus
from chatsvc.jobs import service as job_service
from chatsvc.jobs.models import Job, JobState
from chatsvc.jobs.queue import InProcessQueue
from chatsvc.jobs.runner import JobContext, execute, register
from chatsvc.kit.db import unit_of_work, utcnow
from chatsvc.streaming import events
from tests.fixtures.app import Live, live_tenant, make_settings
from tests.fixtures.jobs import finished, poll_job, submit_job

LEASE_SECONDS = 3
#: what the test handlers saw, by job id
seen: dict[int, list[str]] = {}


@register("test_count")
async def count_runs(ctx: JobContext, job: Job) -> dict[str, Any]:
    seen.setdefault(job.id, []).append("start")
    await asyncio.sleep(0.5)
    return {"runs": len(seen[job.id])}


@register("test_wait")
async def wait_forever(ctx: JobContext, job: Job) -> dict[str, Any]:
    seen.setdefault(job.id, []).append("start")
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        seen[job.id].append("cancelled")
        raise
    return {}


@pytest.fixture
async def embedded(live_pg_url: str) -> AsyncIterator[Live]:
    """The app with no Redis: the in-process queue and sweeper, a short lease, a fast sweep."""
    settings = make_settings(
        live_pg_url,
        redis_url=None,
        job_lease_seconds=LEASE_SECONDS,
        sweep_interval_seconds=0.3,
    )
    async with live_tenant(settings) as live:
        assert isinstance(live.services.queue, InProcessQueue)
        yield live


async def load(live: Live, job_id: int) -> Job:
    sessionmaker: async_sessionmaker[AsyncSession] = live.services.sessionmaker
    async with sessionmaker() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        return job


async def test_a_noop_job_runs_to_success_in_process(embedded: Live) -> None:
    job_id = await submit_job(embedded, "noop", {"steps": 3, "sleep": 0.2})
    body = await poll_job(embedded.admin, job_id, finished)
    assert body["state"] == "succeeded", body
    assert body["kind"] == "noop" and body["attempts"] == 1
    assert body["result"] == {"steps": 3} and body["result_url"] is None
    assert body["progress"] == {"done": 3, "total": 3}
    assert body["error"] is None and body["started_at"] and body["finished_at"]


async def test_a_failing_attempt_is_retried_after_a_backoff(embedded: Live) -> None:
    job_id = await submit_job(embedded, "noop", {"steps": 1, "fail_times": 1})
    retrying = await poll_job(
        embedded.admin, job_id, lambda b: b["state"] == "queued" and b["attempts"] == 1
    )
    assert retrying["error"] == "Internal error (RuntimeError)."
    body = await poll_job(embedded.admin, job_id, finished)
    assert (body["state"], body["attempts"], body["result"]) == ("succeeded", 2, {"steps": 1})
    assert body["error"] is None


async def test_a_permanent_error_or_an_unknown_kind_fails_at_once(embedded: Live) -> None:
    bad = await submit_job(embedded, "noop", {"steps": -1})
    unknown = await submit_job(embedded, "nobody-handles-this", {})
    for job_id, message in ((bad, "0 to 10000 steps"), (unknown, "No handler")):
        body = await poll_job(embedded.admin, job_id, finished)
        assert (body["state"], body["attempts"]) == ("failed", 1), body
        assert message in body["error"]


async def test_two_triggers_for_one_job_run_it_once(embedded: Live) -> None:
    ctx: JobContext = embedded.services.jobs
    async with unit_of_work(ctx.sessionmaker) as session:
        job, _created = await job_service.create_job(
            session, embedded.workspace_id, "test_count", {}
        )
    await asyncio.gather(*(execute(ctx, job.id) for _ in range(5)))
    await execute(ctx, job.id)  # a late redelivery of a finished job does nothing either
    assert seen[job.id] == ["start"]
    done = await load(embedded, job.id)
    assert (done.state, done.attempts, done.result) == (JobState.SUCCEEDED, 1, {"runs": 1})


async def test_a_run_whose_lease_was_taken_over_stops_without_writing(embedded: Live) -> None:
    job_id = await submit_job(embedded, "test_wait", {})
    await poll_job(embedded.admin, job_id, lambda b: b["state"] == "running")
    # Another run takes the job over, as after a lease that expired during a long pause.
    async with unit_of_work(embedded.services.sessionmaker) as session:
        await session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(attempts=Job.attempts + 1, lease_expires_at=utcnow() + timedelta(hours=1))
        )
    for _ in range(200):
        if "cancelled" in seen.get(job_id, []):
            break
        await asyncio.sleep(0.1)
    assert seen[job_id] == ["start", "cancelled"]
    queue = embedded.services.queue
    assert isinstance(queue, InProcessQueue)
    await queue.join()
    job = await load(embedded, job_id)
    assert (job.state, job.attempts, job.result, job.error) == (JobState.RUNNING, 2, None, None)
    async with unit_of_work(embedded.services.sessionmaker) as session:
        await job_service.fail(session, job_id, "test over", False)  # keep the sweeper quiet


async def test_stopping_the_process_hands_running_jobs_back(embedded: Live) -> None:
    job_id = await submit_job(embedded, "noop", {"steps": 100, "sleep": 0.1})
    await poll_job(embedded.admin, job_id, lambda b: b["progress"]["done"] >= 1)
    queue = embedded.services.queue
    assert isinstance(queue, InProcessQueue)
    queue.grace_seconds = 0
    await queue.close()
    job = await load(embedded, job_id)
    assert (job.state, job.attempts) == (JobState.QUEUED, 0)  # the interrupted try is not counted
    async with unit_of_work(embedded.services.sessionmaker) as session:
        await session.execute(update(Job).where(Job.id == job_id).values(state=JobState.FAILED))


async def test_the_in_process_sweeper_recovers_a_job_whose_run_died(embedded: Live) -> None:
    ctx: JobContext = embedded.services.jobs
    async with unit_of_work(ctx.sessionmaker) as session:
        job, _created = await job_service.create_job(
            session, embedded.workspace_id, "noop", {"steps": 2}
        )
    # A run claimed it and died: nobody renewed the lease and nobody enqueues it again. The claim
    # is dated (`now`) so that its lease has already run out, instead of the test waiting for it.
    claimed_at = utcnow() - timedelta(seconds=2 * LEASE_SECONDS)
    async with unit_of_work(ctx.sessionmaker) as session:
        claimed = await job_service.claim(session, job.id, LEASE_SECONDS, now=claimed_at)
        assert claimed is not None and claimed.lease_expires_at is not None
        assert claimed.lease_expires_at < utcnow()
    body = await poll_job(embedded.admin, job.id, finished)
    assert (body["state"], body["attempts"], body["result"]) == ("succeeded", 2, {"steps": 2})


async def test_the_sweeper_fails_a_stuck_chat_and_ends_its_stream(embedded: Live) -> None:
    state = embedded.services
    generation_id = str(uuid.uuid4())
    async with unit_of_work(state.sessionmaker) as session:
        assistant = await assistant_service.create_assistant(
            session, embedded.workspace_id, AssistantIn(description="Desk"), state.settings
        )
        chat = Chat(
            workspace_id=embedded.workspace_id,
            assistant_id=assistant.id,
            max_responses=10,
            max_msg_length=100,
            execution_status=ExecutionStatus.PROCESSING,
            generation_id=generation_id,
            lease_expires_at=utcnow() - timedelta(seconds=1),
        )
        session.add(chat)
    entries = await state.broker.read(events.stream_key(generation_id), None, block_seconds=30)
    assert [e.event for e in entries] == [events.ERROR]
    assert entries[0].data["detail"] == STUCK_CHAT_ERROR
    async with state.sessionmaker() as session:
        stored = await session.scalar(select(Chat).where(Chat.id == chat.id))
    assert stored is not None and stored.execution_status == ExecutionStatus.FAILED
