"""Job rules: create (idempotent per key), claim exactly once, renew the lease, record progress,
success and failure, and sweep what crashed processes left behind (expired job leases). Every state
change is one conditional UPDATE (jobs.repository), so concurrent workers, sweepers and
redeliveries agree without locks held across awaits."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, TypedDict, Unpack

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.jobs.models import Job, JobState
from chatsvc.jobs.repository import JobRepository
from chatsvc.kit.db import utcnow
from chatsvc.kit.errors import FieldError, Invalid, NotFound

DEFAULT_MAX_ATTEMPTS = 5
#: A queued job nobody claimed this long after it should have started gets its trigger sent
#: again: the enqueue after commit may have been lost (process died, Redis down). Long, because a
#: duplicate trigger is harmless but a backlog would otherwise be re-sent over and over.
REQUEUE_GRACE = timedelta(minutes=10)
LEASE_EXPIRED_ERROR = "The worker running this job stopped before finishing it (its lease expired)."


# --- creating and reading ------------------------------------------------------------------------


class JobOptions(TypedDict, total=False):
    """How a new job is made beyond its kind and payload (each may be left out or None)."""

    #: one job per (workspace, kind, key): creating it again finds the first
    idempotency_key: str | None
    #: attempts before it fails for good (default DEFAULT_MAX_ATTEMPTS)
    max_attempts: int | None
    #: the principal it is made for (who may read it)
    created_by: int | None


async def create_job(
    session: AsyncSession,
    workspace_id: int,
    kind: str,
    payload: dict[str, Any],
    **options: Unpack[JobOptions],
) -> tuple[Job, bool]:
    """A queued job, or the existing one with the same (workspace, kind, idempotency_key); the
    bool says whether it was created. The caller enqueues it only after its transaction commits
    (`chatsvc.jobs.queue.submit` does both): a worker must not look for a row it cannot see."""
    idempotency_key = options.get("idempotency_key")
    max_attempts = options.get("max_attempts")
    _validate(kind, payload, idempotency_key, max_attempts)
    jobs = JobRepository(session)
    if idempotency_key is not None:
        existing = await jobs.by_key(workspace_id, kind, idempotency_key)
        if existing is not None:
            return existing, False
    now = utcnow()
    job = Job(
        workspace_id=workspace_id,
        created_by=options.get("created_by"),
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
        return await jobs.add(job), True
    try:
        # A savepoint, so that losing the race to a concurrent create with the same key rolls
        # back only this insert, not the caller's transaction.
        async with session.begin_nested():
            await jobs.add(job)
    except IntegrityError:
        existing = await jobs.by_key(workspace_id, kind, idempotency_key)
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


async def get_job(
    session: AsyncSession, workspace_id: int, job_id: int, *, created_by: int | None = None
) -> Job:
    """The job in this workspace (and, when `created_by` is given, made by that principal)."""
    job = await JobRepository(session).get(workspace_id, job_id, created_by=created_by)
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
    return await JobRepository(session).claim(job_id, now, now + timedelta(seconds=lease_seconds))


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
    return await JobRepository(session).heartbeat(
        job_id, attempt, now, now + timedelta(seconds=lease_seconds)
    )


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
    lease_until = now + timedelta(seconds=lease_seconds) if lease_seconds is not None else None
    return await JobRepository(session).record_progress(
        job_id, attempt, now, done, total, lease_until=lease_until
    )


async def succeed(
    session: AsyncSession,
    job_id: int,
    result: dict[str, Any] | None,
    *,
    attempt: int | None = None,
    now: datetime | None = None,
) -> bool:
    """Running → succeeded with its result. False when this run no longer holds the job."""
    return await JobRepository(session).succeed(job_id, attempt, result, now or utcnow())


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
    # With `retry`, the row decides (in the same UPDATE) whether an attempt is left.
    retry_at = now + timedelta(seconds=defer_seconds) + REQUEUE_GRACE if retry else None
    return await JobRepository(session).fail(
        job_id, attempt, error[:10_000], now, retry_at=retry_at
    )


async def release(
    session: AsyncSession, job_id: int, *, attempt: int | None = None, now: datetime | None = None
) -> bool:
    """Hand an interrupted run back (the process is shutting down): queued again, the attempt not
    counted, due at once so that any worker's sweeper re-sends it."""
    return await JobRepository(session).release(job_id, attempt, now or utcnow())


# --- sweeping ------------------------------------------------------------------------------------


async def sweep(session: AsyncSession, now: datetime) -> list[int]:
    """Recover the jobs dead processes left behind: running jobs whose lease expired go back to
    queued (failed when out of attempts); queued jobs whose trigger seems lost are triggered
    again. The ids of jobs to enqueue again. Safe to run from many processes at once: each row
    changes once per expiry. (Each domain recovers its own rows: see jobs.runner.recovery.)"""
    jobs = JobRepository(session)
    await jobs.fail_expired(now, LEASE_EXPIRED_ERROR + " No attempts are left.")
    found = await jobs.requeue_expired(
        now, LEASE_EXPIRED_ERROR + " It will be tried again.", now + REQUEUE_GRACE
    )
    # Pushing the deadline forward means the next sweep does not send the trigger again at once.
    found.extend(await jobs.postpone_overdue(now, now + REQUEUE_GRACE))
    return found
