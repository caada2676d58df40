"""Job queries. Every state change is one conditional UPDATE on the job's row (no lock held
across awaits): of concurrent claims, renewals and sweeps, the row decides which one applies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, null, or_, select, update

from chatsvc.jobs.models import Job, JobState
from chatsvc.kit.db import UTCDateTime
from chatsvc.kit.repository import RepositoryBase


def _running(job_id: int, attempt: int | None) -> ColumnElement[bool]:
    """The run that holds the job: still running and, when given, the same attempt (a worker whose
    lease expired and was taken over must not write over the new run)."""
    condition = and_(Job.id == job_id, Job.state == JobState.RUNNING)
    if attempt is not None:
        condition = and_(condition, Job.attempts == attempt)
    return condition


class JobRepository(RepositoryBase[Job]):
    model = Job

    async def by_key(self, workspace_id: int, kind: str, key: str) -> Job | None:
        found: Job | None = await self.session.scalar(
            select(Job).where(
                Job.workspace_id == workspace_id, Job.kind == kind, Job.idempotency_key == key
            )
        )
        return found

    async def get(
        self, workspace_id: int, job_id: int, *, created_by: int | None = None
    ) -> Job | None:
        """The job in this workspace (made by `created_by` when given), read afresh."""
        statement = select(Job).where(Job.id == job_id, Job.workspace_id == workspace_id)
        if created_by is not None:
            statement = statement.where(Job.created_by == created_by)
        found: Job | None = await self.session.scalar(
            statement.execution_options(populate_existing=True)
        )
        return found

    async def claim(self, job_id: int, now: datetime, lease_until: datetime) -> Job | None:
        """Queued (or running with an expired lease) and attempts left → running, attempts + 1,
        leased until `lease_until`; None when the row does not qualify."""
        claimable = and_(
            Job.id == job_id,
            Job.attempts < Job.max_attempts,
            or_(
                Job.state == JobState.QUEUED,
                and_(Job.state == JobState.RUNNING, Job.lease_expires_at < now),
            ),
        )
        job: Job | None = await self.session.scalar(
            update(Job)
            .where(claimable)
            .values(
                state=JobState.RUNNING,
                attempts=Job.attempts + 1,
                lease_expires_at=lease_until,
                started_at=func.coalesce(Job.started_at, now),
                updated_at=now,
            )
            .returning(Job)
            .execution_options(populate_existing=True)
        )
        return job

    async def _update_run(self, job_id: int, attempt: int | None, values: dict[str, Any]) -> bool:
        """Set `values` on the job if this run still holds it; whether it did."""
        result = await self.session.execute(
            update(Job)
            .where(_running(job_id, attempt))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def heartbeat(
        self, job_id: int, attempt: int | None, now: datetime, lease_until: datetime
    ) -> bool:
        return await self._update_run(
            job_id, attempt, {"lease_expires_at": lease_until, "updated_at": now}
        )

    async def record_progress(
        self,
        job_id: int,
        attempt: int | None,
        now: datetime,
        done: int,
        total: int | None,
        *,
        lease_until: datetime | None = None,
    ) -> bool:
        """Progress (done of total), and the lease extended to `lease_until` when given."""
        values: dict[str, Any] = {"progress_done": done, "progress_total": total, "updated_at": now}
        if lease_until is not None:
            values["lease_expires_at"] = lease_until
        return await self._update_run(job_id, attempt, values)

    async def succeed(
        self, job_id: int, attempt: int | None, result: dict[str, Any] | None, now: datetime
    ) -> bool:
        return await self._update_run(
            job_id,
            attempt,
            {
                "state": JobState.SUCCEEDED,
                "result": result,
                "error": None,
                # a handler that reported "3 of 3" or nothing at all both end complete
                "progress_done": func.coalesce(Job.progress_total, Job.progress_done),
                "lease_expires_at": None,
                "finished_at": now,
                "updated_at": now,
            },
        )

    async def fail(
        self,
        job_id: int,
        attempt: int | None,
        error: str,
        now: datetime,
        *,
        retry_at: datetime | None,
    ) -> Job | None:
        """Record a failed attempt: with `retry_at` the job is queued again, due then, if it has
        attempts left (the row decides, in the same UPDATE); otherwise, or without `retry_at`,
        it is failed for good. None when this run no longer holds the job."""
        values: dict[str, Any] = {"error": error, "updated_at": now}
        if retry_at is not None:
            again = Job.attempts < Job.max_attempts
            values["state"] = case((again, JobState.QUEUED.value), else_=JobState.FAILED.value)
            values["lease_expires_at"] = case(
                (again, literal(retry_at, UTCDateTime())), else_=null()
            )
            values["finished_at"] = case((again, null()), else_=literal(now, UTCDateTime()))
        else:
            values.update(state=JobState.FAILED.value, lease_expires_at=None, finished_at=now)
        job: Job | None = await self.session.scalar(
            update(Job)
            .where(_running(job_id, attempt))
            .values(**values)
            .returning(Job)
            .execution_options(populate_existing=True)
        )
        return job

    async def release(self, job_id: int, attempt: int | None, now: datetime) -> bool:
        """Running → queued, the attempt not counted, due at `now`."""
        return await self._update_run(
            job_id,
            attempt,
            {
                "state": JobState.QUEUED,
                "attempts": Job.attempts - 1,
                "lease_expires_at": now,
                "updated_at": now,
            },
        )

    # --- sweeping --------------------------------------------------------------------------------

    async def fail_expired(self, now: datetime, error: str) -> None:
        """Running jobs whose lease expired and that have no attempt left → failed."""
        await self.session.execute(
            update(Job)
            .where(_expired(now), Job.attempts >= Job.max_attempts)
            .values(
                state=JobState.FAILED,
                error=error,
                lease_expires_at=None,
                finished_at=now,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )

    async def requeue_expired(self, now: datetime, error: str, due: datetime) -> list[int]:
        """Running jobs whose lease expired and that have attempts left → queued, due at `due`;
        their ids."""
        rows = await self.session.scalars(
            update(Job)
            .where(_expired(now), Job.attempts < Job.max_attempts)
            .values(state=JobState.QUEUED, error=error, lease_expires_at=due, updated_at=now)
            .returning(Job.id)
            .execution_options(synchronize_session=False)
        )
        return list(rows.all())

    async def postpone_overdue(self, now: datetime, due: datetime) -> list[int]:
        """Queued jobs past their deadline get the next one, `due`; their ids."""
        rows = await self.session.scalars(
            update(Job)
            .where(Job.state == JobState.QUEUED, Job.lease_expires_at < now)
            .values(lease_expires_at=due)
            .returning(Job.id)
            .execution_options(synchronize_session=False)
        )
        return list(rows.all())


def _expired(now: datetime) -> ColumnElement[bool]:
    return and_(Job.state == JobState.RUNNING, Job.lease_expires_at < now)
