"""Job rules: create (idempotent per key), claim exactly once, renew the lease, record progress,
success and failure, and sweep what crashed processes left behind (expired job leases, chats stuck
in PROCESSING). Every state change is one conditional UPDATE, so concurrent workers, sweepers and
redeliveries agree without locks held across awaits."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, literal, null, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.jobs.models import Job, JobState
from chatsvc.kit.db import UTCDateTime, utcnow
from chatsvc.kit.errors import FieldError, Invalid, NotFound

DEFAULT_MAX_ATTEMPTS = 5
#: A queued job nobody claimed this long after it should have started gets its trigger sent
#: again: the enqueue after commit may have been lost (process died, Redis down). Long, because a
#: duplicate trigger is harmless but a backlog would otherwise be re-sent over and over.
REQUEUE_GRACE = timedelta(minutes=10)
LEASE_EXPIRED_ERROR = "The worker running this job stopped before finishing it (its lease expired)."


# --- creating and reading ------------------------------------------------------------------------


async def create_job(
    session: AsyncSession,
    workspace_id: int,
    kind: str,
    payload: dict[str, Any],
    *,
    idempotency_key: str | None = None,
    max_attempts: int | None = None,
    created_by: int | None = None,
) -> tuple[Job, bool]:
    """A queued job, or the existing one with the same (workspace, kind, idempotency_key); the
    bool says whether it was created. The caller enqueues it only after its transaction commits
    (`chatsvc.jobs.queue.submit` does both): a worker must not look for a row it cannot see."""
    _validate(kind, payload, idempotency_key, max_attempts)
    if idempotency_key is not None:
        existing = await _by_key(session, workspace_id, kind, idempotency_key)
        if existing is not None:
            return existing, False
    now = utcnow()
    job = Job(
        workspace_id=workspace_id,
        created_by=created_by,
        kind=kind,
        state=JobState.QUEUED,
        attempts=0,
        max_attempts=max_attempts or DEFAULT_MAX_ATTEMPTS,
        idempotency_key=idempotency_key,
        payload=payload,
        progress_done=0,
        lease_expires_at=now + REQUEUE_GRACE,
        created_at=now,
        updated_at=now,
    )
    if idempotency_key is None:
        session.add(job)
        await session.flush()
        return job, True
    try:
        # A savepoint, so that losing the race to a concurrent create with the same key rolls
        # back only this insert, not the caller's transaction.
        async with session.begin_nested():
            session.add(job)
            await session.flush()
    except IntegrityError:
        existing = await _by_key(session, workspace_id, kind, idempotency_key)
        if existing is None:
            raise
        return existing, False
    return job, True


def _validate(
    kind: str, payload: dict[str, Any], idempotency_key: str | None, max_attempts: int | None
) -> None:
    errors: list[FieldError] = []
    if not kind or len(kind) > 64:
        errors.append(FieldError("kind", "must be 1 to 64 characters"))
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 255:
        errors.append(FieldError("idempotency_key", "must be 1 to 255 characters"))
    if max_attempts is not None and max_attempts < 1:
        errors.append(FieldError("max_attempts", "must be at least 1"))
    try:
        # Payloads travel as JSON (never pickle); refuse what would not survive the trip.
        json.dumps(payload, allow_nan=False)
    except (TypeError, ValueError) as exc:
        errors.append(FieldError("payload", f"must be JSON: {exc}"))
    if errors:
        raise Invalid("Invalid job.", errors=errors)


async def _by_key(session: AsyncSession, workspace_id: int, kind: str, key: str) -> Job | None:
    found: Job | None = await session.scalar(
        select(Job).where(
            Job.workspace_id == workspace_id, Job.kind == kind, Job.idempotency_key == key
        )
    )
    return found


async def get_job(
    session: AsyncSession, workspace_id: int, job_id: int, *, created_by: int | None = None
) -> Job:
    """The job in this workspace (and, when `created_by` is given, made by that principal)."""
    statement = select(Job).where(Job.id == job_id, Job.workspace_id == workspace_id)
    if created_by is not None:
        statement = statement.where(Job.created_by == created_by)
    job: Job | None = await session.scalar(statement.execution_options(populate_existing=True))
    if job is None:
        raise NotFound(f"No job {job_id} in this workspace.")
    return job


# --- running -------------------------------------------------------------------------------------


async def claim(
    session: AsyncSession, job_id: int, lease_seconds: float, *, now: datetime | None = None
) -> Job | None:
    """Take the job for one attempt: queued (or running with an expired lease: its worker died)
    and attempts left → running, attempts + 1, leased. Of concurrent claims exactly one gets the
    job; the others (and redeliveries of a finished job) get None."""
    now = now or utcnow()
    claimable = and_(
        Job.id == job_id,
        Job.attempts < Job.max_attempts,
        or_(
            Job.state == JobState.QUEUED,
            and_(Job.state == JobState.RUNNING, Job.lease_expires_at < now),
        ),
    )
    job: Job | None = await session.scalar(
        update(Job)
        .where(claimable)
        .values(
            state=JobState.RUNNING,
            attempts=Job.attempts + 1,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            started_at=func.coalesce(Job.started_at, now),
            updated_at=now,
        )
        .returning(Job)
        .execution_options(populate_existing=True)
    )
    return job


def _running(job_id: int, attempt: int | None) -> Any:
    """The run that holds the job: still running and, when given, the same attempt (a worker whose
    lease expired and was taken over must not write over the new run)."""
    condition = and_(Job.id == job_id, Job.state == JobState.RUNNING)
    if attempt is not None:
        condition = and_(condition, Job.attempts == attempt)
    return condition


async def heartbeat(
    session: AsyncSession,
    job_id: int,
    lease_seconds: float,
    *,
    attempt: int | None = None,
    now: datetime | None = None,
) -> bool:
    """Extend the lease; False when this run no longer holds the job."""
    now = now or utcnow()
    result = await session.execute(
        update(Job)
        .where(_running(job_id, attempt))
        .values(lease_expires_at=now + timedelta(seconds=lease_seconds), updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def progress(
    session: AsyncSession,
    job_id: int,
    done: int,
    total: int | None = None,
    *,
    lease_seconds: float | None = None,
    attempt: int | None = None,
    now: datetime | None = None,
) -> bool:
    """Record progress (done of total; total None = unknown) and, given `lease_seconds`, extend
    the lease too. False when this run no longer holds the job."""
    if done < 0 or (total is not None and total < 0):
        raise Invalid("Progress counts must not be negative.")
    now = now or utcnow()
    values: dict[str, Any] = {"progress_done": done, "progress_total": total, "updated_at": now}
    if lease_seconds is not None:
        values["lease_expires_at"] = now + timedelta(seconds=lease_seconds)
    result = await session.execute(
        update(Job)
        .where(_running(job_id, attempt))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def succeed(
    session: AsyncSession,
    job_id: int,
    result: dict[str, Any] | None,
    *,
    attempt: int | None = None,
    now: datetime | None = None,
) -> bool:
    """Running → succeeded with its result. False when this run no longer holds the job."""
    now = now or utcnow()
    outcome = await session.execute(
        update(Job)
        .where(_running(job_id, attempt))
        .values(
            state=JobState.SUCCEEDED,
            result=result,
            error=None,
            # a handler that reported "3 of 3" or nothing at all both end complete
            progress_done=func.coalesce(Job.progress_total, Job.progress_done),
            lease_expires_at=None,
            finished_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(outcome.rowcount)  # type: ignore[attr-defined]


async def fail(
    session: AsyncSession,
    job_id: int,
    error: str,
    retry: bool,
    *,
    attempt: int | None = None,
    defer_seconds: float = 0,
    now: datetime | None = None,
) -> Job | None:
    """Record a failed attempt. With `retry` and attempts left the job goes back to queued (the
    caller enqueues it again, deferred by `defer_seconds`); otherwise it is failed for good.
    None when this run no longer holds the job."""
    now = now or utcnow()
    values: dict[str, Any] = {"error": error[:10_000], "updated_at": now}
    if retry:
        # One UPDATE decides from the row itself whether an attempt is left.
        again = Job.attempts < Job.max_attempts
        retry_at = now + timedelta(seconds=defer_seconds) + REQUEUE_GRACE
        values["state"] = case((again, JobState.QUEUED.value), else_=JobState.FAILED.value)
        values["lease_expires_at"] = case((again, literal(retry_at, UTCDateTime())), else_=null())
        values["finished_at"] = case((again, null()), else_=literal(now, UTCDateTime()))
    else:
        values.update(state=JobState.FAILED.value, lease_expires_at=None, finished_at=now)
    job: Job | None = await session.scalar(
        update(Job)
        .where(_running(job_id, attempt))
        .values(**values)
        .returning(Job)
        .execution_options(populate_existing=True)
    )
    return job


async def release(
    session: AsyncSession, job_id: int, *, attempt: int | None = None, now: datetime | None = None
) -> bool:
    """Hand an interrupted run back (the process is shutting down): queued again, the attempt not
    counted, due at once so that any worker's sweeper re-sends it."""
    now = now or utcnow()
    result = await session.execute(
        update(Job)
        .where(_running(job_id, attempt))
        .values(
            state=JobState.QUEUED,
            attempts=Job.attempts - 1,
            lease_expires_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


# --- sweeping ------------------------------------------------------------------------------------


async def sweep(session: AsyncSession, now: datetime) -> list[int]:
    """Recover the jobs dead processes left behind: running jobs whose lease expired go back to
    queued (failed when out of attempts); queued jobs whose trigger seems lost are triggered
    again. The ids of jobs to enqueue again. Safe to run from many processes at once: each row
    changes once per expiry. (Each domain recovers its own rows: see jobs.runner.recovery.)"""
    found: list[int] = []
    expired = and_(Job.state == JobState.RUNNING, Job.lease_expires_at < now)
    await session.execute(
        update(Job)
        .where(expired, Job.attempts >= Job.max_attempts)
        .values(
            state=JobState.FAILED,
            error=LEASE_EXPIRED_ERROR + " No attempts are left.",
            lease_expires_at=None,
            finished_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    requeued = await session.scalars(
        update(Job)
        .where(expired, Job.attempts < Job.max_attempts)
        .values(
            state=JobState.QUEUED,
            error=LEASE_EXPIRED_ERROR + " It will be tried again.",
            lease_expires_at=now + REQUEUE_GRACE,
            updated_at=now,
        )
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    )
    found.extend(requeued.all())
    # Pushing the deadline forward means the next sweep does not send the trigger again at once.
    retriggered = await session.scalars(
        update(Job)
        .where(Job.state == JobState.QUEUED, Job.lease_expires_at < now)
        .values(lease_expires_at=now + REQUEUE_GRACE)
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    )
    found.extend(retriggered.all())
    return found
