"""Job rules on PostgreSQL and SQLite (idempotency keys, claims, leases and their fencing,
failures and retries, the sweeper), and, on PostgreSQL with real transactions, what concurrency
must not break: one job per key, one claim per job, one re-enqueue per expiry."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import case, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chatsvc.assistants import service as assistant_service
from chatsvc.assistants.schemas import AssistantIn
from chatsvc.auth import service as auth_service
from chatsvc.auth.models import Role, Workspace
from chatsvc.chats.jobs import STUCK_CHAT_ERROR
from chatsvc.chats.models import Chat, ExecutionStatus
from chatsvc.chats.repository import ChatRepository
from chatsvc.config import Settings
from chatsvc.jobs import service as job_service
from chatsvc.jobs.models import Job, JobState
from chatsvc.kit.db import create_engine, create_sessionmaker, unit_of_work
from chatsvc.kit.errors import Invalid, NotFound

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LEASE = 30


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
async def workspace_id(session: AsyncSession) -> int:
    return (await auth_service.create_workspace(session, "jobs")).id


async def new_job(session: AsyncSession, workspace_id: int, **kwargs: object) -> Job:
    job, created = await job_service.create_job(
        session,
        workspace_id,
        "noop",
        {"steps": 1},
        **kwargs,  # type: ignore[arg-type]
    )
    assert created
    return job


async def reload(session: AsyncSession, job_id: int) -> Job:
    job = await session.scalar(
        select(Job).where(Job.id == job_id).execution_options(populate_existing=True)
    )
    assert job is not None
    return job


# --- creating and reading ------------------------------------------------------------------------


async def test_same_idempotency_key_gives_the_same_job(
    session: AsyncSession, workspace_id: int
) -> None:
    first, created = await job_service.create_job(
        session, workspace_id, "noop", {"steps": 1}, idempotency_key="k1"
    )
    again, created_again = await job_service.create_job(
        session, workspace_id, "noop", {"steps": 99}, idempotency_key="k1"
    )
    assert created and not created_again
    assert again.id == first.id and again.payload == {"steps": 1}
    other_kind, created_other = await job_service.create_job(
        session, workspace_id, "export", {}, idempotency_key="k1"
    )
    assert created_other and other_kind.id != first.id
    keyless = [await new_job(session, workspace_id) for _ in range(2)]
    assert keyless[0].id != keyless[1].id
    assert first.state == JobState.QUEUED and first.attempts == 0 and first.max_attempts == 5


async def test_a_payload_that_is_not_json_is_refused(
    session: AsyncSession, workspace_id: int
) -> None:
    with pytest.raises(Invalid) as raised:
        await job_service.create_job(session, workspace_id, "noop", {"when": T0})
    assert raised.value.errors[0].field == "payload"


async def test_get_job_is_scoped_to_the_workspace_and_creator(
    session: AsyncSession, workspace_id: int
) -> None:
    other = await auth_service.create_workspace(session, "elsewhere")
    key, _raw = await auth_service.create_api_key(session, workspace_id, Role.MEMBER, username="m")
    job = await new_job(session, workspace_id, created_by=key.principal_id)
    assert (await job_service.get_job(session, workspace_id, job.id)).id == job.id
    mine = await job_service.get_job(session, workspace_id, job.id, created_by=key.principal_id)
    assert mine.id == job.id
    with pytest.raises(NotFound):
        await job_service.get_job(session, other.id, job.id)
    with pytest.raises(NotFound):
        await job_service.get_job(session, workspace_id, job.id, created_by=key.principal_id + 1)


# --- claiming, leases, outcomes ------------------------------------------------------------------


async def test_claim_takes_a_queued_job_once_and_an_expired_lease_over(
    session: AsyncSession, workspace_id: int
) -> None:
    job = await new_job(session, workspace_id, max_attempts=2)
    claimed = await job_service.claim(session, job.id, LEASE, now=T0)
    assert claimed is not None
    assert (claimed.state, claimed.attempts) == (JobState.RUNNING, 1)
    assert claimed.lease_expires_at == at(LEASE) and claimed.started_at == T0
    assert await job_service.claim(session, job.id, LEASE, now=at(LEASE - 1)) is None
    # The first worker died: once its lease is past, another run takes the job over.
    taken = await job_service.claim(session, job.id, LEASE, now=at(LEASE + 1))
    assert taken is not None and taken.attempts == 2 and taken.started_at == T0
    # Out of attempts: even an expired lease is not claimable (the sweeper fails it).
    assert await job_service.claim(session, job.id, LEASE, now=at(10 * LEASE)) is None


async def test_a_run_whose_lease_was_taken_over_cannot_write(
    session: AsyncSession, workspace_id: int
) -> None:
    job = await new_job(session, workspace_id)
    await job_service.claim(session, job.id, LEASE, now=T0)
    await job_service.claim(session, job.id, LEASE, now=at(LEASE + 1))  # attempt 2
    assert not await job_service.heartbeat(session, job.id, LEASE, attempt=1, now=at(LEASE + 2))
    assert not await job_service.progress(session, job.id, 1, 2, attempt=1)
    assert not await job_service.succeed(session, job.id, {"stale": True}, attempt=1)
    assert await job_service.fail(session, job.id, "stale", True, attempt=1) is None
    assert await job_service.heartbeat(session, job.id, LEASE, attempt=2, now=at(LEASE + 2))
    current = await reload(session, job.id)
    assert (current.state, current.attempts, current.result) == (JobState.RUNNING, 2, None)
    assert current.lease_expires_at == at(2 * LEASE + 2)


async def test_progress_extends_the_lease_and_success_completes_it(
    session: AsyncSession, workspace_id: int
) -> None:
    job = await new_job(session, workspace_id)
    await job_service.claim(session, job.id, LEASE, now=T0)
    assert await job_service.progress(
        session, job.id, 1, 4, lease_seconds=LEASE, attempt=1, now=at(10)
    )
    current = await reload(session, job.id)
    assert (current.progress_done, current.progress_total) == (1, 4)
    assert current.lease_expires_at == at(10 + LEASE)
    with pytest.raises(Invalid):
        await job_service.progress(session, job.id, -1, 4)
    assert await job_service.succeed(session, job.id, {"rows": 4}, attempt=1, now=at(20))
    done = await reload(session, job.id)
    assert (done.state, done.result, done.error) == (JobState.SUCCEEDED, {"rows": 4}, None)
    assert (done.progress_done, done.progress_total) == (4, 4)
    assert done.finished_at == at(20) and done.lease_expires_at is None
    assert await job_service.claim(session, job.id, LEASE, now=at(1000)) is None
    assert not await job_service.succeed(session, job.id, {"rows": 5})


async def test_failures_retry_while_attempts_remain(
    session: AsyncSession, workspace_id: int
) -> None:
    job = await new_job(session, workspace_id, max_attempts=2)
    await job_service.claim(session, job.id, LEASE, now=T0)
    after = await job_service.fail(
        session, job.id, "boom", True, attempt=1, defer_seconds=4, now=at(1)
    )
    assert after is not None
    assert (after.state, after.error, after.finished_at) == (JobState.QUEUED, "boom", None)
    # If the retry's trigger were lost, the sweeper would send it again after the grace.
    assert after.lease_expires_at == at(5) + job_service.REQUEUE_GRACE
    await job_service.claim(session, job.id, LEASE, now=at(5))
    last = await job_service.fail(session, job.id, "boom again", True, attempt=2, now=at(6))
    assert last is not None
    assert (last.state, last.error, last.finished_at) == (JobState.FAILED, "boom again", at(6))
    assert last.lease_expires_at is None


async def test_a_permanent_failure_does_not_retry(session: AsyncSession, workspace_id: int) -> None:
    job = await new_job(session, workspace_id)
    await job_service.claim(session, job.id, LEASE, now=T0)
    after = await job_service.fail(session, job.id, "bad payload", False, now=at(1))
    assert after is not None and (after.state, after.attempts) == (JobState.FAILED, 1)


async def test_release_hands_an_interrupted_run_back_uncounted(
    session: AsyncSession, workspace_id: int
) -> None:
    job = await new_job(session, workspace_id)
    await job_service.claim(session, job.id, LEASE, now=T0)
    assert await job_service.release(session, job.id, attempt=1, now=at(1))
    current = await reload(session, job.id)
    assert (current.state, current.attempts, current.lease_expires_at) == (
        JobState.QUEUED,
        0,
        at(1),
    )


# --- the sweeper ---------------------------------------------------------------------------------


async def new_chat(session: AsyncSession, workspace_id: int, settings: Settings) -> Chat:
    assistant = await assistant_service.create_assistant(
        session, workspace_id, AssistantIn(description="Help desk"), settings
    )
    chat = Chat(
        workspace_id=workspace_id, assistant_id=assistant.id, max_responses=10, max_msg_length=100
    )
    session.add(chat)
    await session.flush()
    return chat


async def test_sweep_requeues_expired_jobs_and_fails_stuck_chats(
    session: AsyncSession, workspace_id: int, settings: Settings
) -> None:
    expired = await new_job(session, workspace_id)
    exhausted = await new_job(session, workspace_id, max_attempts=1)
    alive = await new_job(session, workspace_id)
    finished = await new_job(session, workspace_id)
    for job in (expired, exhausted, finished):
        await job_service.claim(session, job.id, LEASE, now=T0)
    await job_service.claim(session, alive.id, LEASE, now=at(LEASE))
    await job_service.succeed(session, finished.id, None)
    stuck = await new_chat(session, workspace_id, settings)
    healthy = await new_chat(session, workspace_id, settings)
    await session.execute(
        update(Chat)
        .where(Chat.id.in_([stuck.id, healthy.id]))
        .values(
            execution_status=ExecutionStatus.PROCESSING,
            generation_id="g-1",
            # the stuck one's lease is past, the healthy one's is not
            lease_expires_at=case((Chat.id == stuck.id, at(LEASE - 5)), else_=at(10 * LEASE)),
        )
    )

    job_ids = await job_service.sweep(session, at(LEASE + 1))
    # The chats domain's recovery, which the sweeper runs after the jobs' own.
    failed_chats = await ChatRepository(session).fail_expired(at(LEASE + 1), STUCK_CHAT_ERROR)

    assert job_ids == [expired.id]
    assert failed_chats == [(stuck.id, "g-1")]
    requeued = await reload(session, expired.id)
    assert (requeued.state, requeued.attempts) == (JobState.QUEUED, 1)
    assert requeued.error is not None and "lease expired" in requeued.error
    failed = await reload(session, exhausted.id)
    assert failed.state == JobState.FAILED and failed.finished_at == at(LEASE + 1)
    assert (await reload(session, alive.id)).state == JobState.RUNNING
    assert (await reload(session, finished.id)).state == JobState.SUCCEEDED
    chats = {
        chat.id: chat
        for chat in await session.scalars(
            select(Chat)
            .where(Chat.id.in_([stuck.id, healthy.id]))
            .execution_options(populate_existing=True)
        )
    }
    assert chats[stuck.id].execution_status == ExecutionStatus.FAILED
    assert chats[stuck.id].error == STUCK_CHAT_ERROR
    assert chats[stuck.id].lease_expires_at is None
    assert chats[healthy.id].execution_status == ExecutionStatus.PROCESSING
    # A second sweep has nothing left to do; the requeued job is claimable again.
    assert await job_service.sweep(session, at(LEASE + 2)) == []
    again = await job_service.claim(session, expired.id, LEASE, now=at(LEASE + 3))
    assert again is not None and again.attempts == 2


async def test_sweep_resends_the_trigger_of_a_queued_job_nobody_claimed(
    session: AsyncSession, workspace_id: int
) -> None:
    job = await new_job(session, workspace_id)
    assert job.lease_expires_at is not None
    soon = job.lease_expires_at - timedelta(seconds=1)
    assert await job_service.sweep(session, soon) == []
    later = job.lease_expires_at + timedelta(seconds=1)
    assert await job_service.sweep(session, later) == [job.id]
    assert await job_service.sweep(session, later) == []  # the deadline moved on


# --- the workspace's webhook secret --------------------------------------------------------------


async def test_webhook_secret_is_made_at_creation_and_lazily_for_older_workspaces(
    session: AsyncSession, workspace_id: int
) -> None:
    secret = await auth_service.webhook_secret(session, workspace_id)
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert await auth_service.webhook_secret(session, workspace_id) == secret
    await session.execute(
        update(Workspace).where(Workspace.id == workspace_id).values(webhook_secret=None)
    )
    made = await auth_service.webhook_secret(session, workspace_id)
    assert made.startswith("whsec_") and made != secret
    assert await auth_service.webhook_secret(session, workspace_id) == made
    with pytest.raises(NotFound):
        await auth_service.webhook_secret(session, workspace_id + 10_000)


# --- concurrency, with real transactions on PostgreSQL -------------------------------------------


@pytest.fixture
async def live_sessionmaker(live_pg_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(live_pg_url, pool_size=12)
    yield create_sessionmaker(engine)
    await engine.dispose()


async def live_workspace(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with unit_of_work(sessionmaker) as session:
        workspace = await auth_service.create_workspace(session, f"j-{uuid.uuid4().hex[:12]}")
        return workspace.id


async def test_ten_concurrent_creates_with_one_key_make_one_job(
    live_sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    workspace_id = await live_workspace(live_sessionmaker)

    async def create() -> tuple[int, bool]:
        async with unit_of_work(live_sessionmaker) as session:
            job, created = await job_service.create_job(
                session, workspace_id, "noop", {}, idempotency_key="same"
            )
            return job.id, created

    outcomes = await asyncio.gather(*(create() for _ in range(10)))
    assert len({job_id for job_id, _created in outcomes}) == 1
    assert sum(created for _job_id, created in outcomes) == 1


async def test_ten_concurrent_claims_give_the_job_to_one(
    live_sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    workspace_id = await live_workspace(live_sessionmaker)
    async with unit_of_work(live_sessionmaker) as session:
        job, _created = await job_service.create_job(session, workspace_id, "noop", {})

    async def claim() -> Job | None:
        async with unit_of_work(live_sessionmaker) as session:
            return await job_service.claim(session, job.id, LEASE)

    claims = await asyncio.gather(*(claim() for _ in range(10)))
    winners = [c for c in claims if c is not None]
    assert len(winners) == 1 and winners[0].attempts == 1


async def test_concurrent_sweeps_requeue_an_expired_job_once(
    live_sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    workspace_id = await live_workspace(live_sessionmaker)
    async with unit_of_work(live_sessionmaker) as session:
        job, _created = await job_service.create_job(session, workspace_id, "noop", {})
    async with unit_of_work(live_sessionmaker) as session:
        await job_service.claim(session, job.id, 1, now=datetime.now(UTC) - timedelta(seconds=5))

    async def sweep() -> list[int]:
        async with unit_of_work(live_sessionmaker) as session:
            return await job_service.sweep(session, datetime.now(UTC))

    found = [job_id for ids in await asyncio.gather(*(sweep() for _ in range(5))) for job_id in ids]
    assert found.count(job.id) == 1
