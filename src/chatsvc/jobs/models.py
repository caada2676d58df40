"""The job table: PostgreSQL (or the embedded SQLite) is the source of truth for background work;
the queue only says "look at job N now"."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from chatsvc.kit.db import Base, IdType, StrEnumType, TimestampMixin


class JobState(StrEnum):
    """Where a job is: queued, running, succeeded or failed."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


#: states a job never leaves
FINISHED_STATES = (JobState.SUCCEEDED, JobState.FAILED)


class Job(TimestampMixin, Base):
    __tablename__ = "jobs"
    __table_args__ = (
        # NULL keys never collide, so jobs without a key are unconstrained.
        UniqueConstraint("workspace_id", "kind", "idempotency_key"),
        # The sweeper's query: running (or queued) jobs whose lease is past.
        Index("ix_jobs_state_lease_expires_at", "state", "lease_expires_at"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    #: who asked for it: a member sees only the jobs it created
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("principals.id", ondelete="SET NULL"), index=True, default=None
    )
    kind: Mapped[str] = mapped_column(String(64))
    state: Mapped[JobState] = mapped_column(StrEnumType(JobState, 16), default=JobState.QUEUED)
    #: claims so far; the claim that makes it running increments it, so it also fences a run:
    #: a worker whose lease was taken over no longer matches and cannot overwrite the new run
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int | None] = mapped_column(Integer, default=None)
    result: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    #: running: the worker must renew it before then or the job is taken back;
    #: queued: when the sweeper re-sends the trigger if no worker has claimed it (a lost enqueue)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
