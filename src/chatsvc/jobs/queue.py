"""The job queue: a trigger that says "run job N now (or in a while)". Kept behind a two-method
interface so arq (in maintenance mode) can be swapped: the job table, not the queue, holds the
state, so a queue only has to deliver at least once. `ArqQueue` sends triggers through Redis to
`chatsvc worker`; `InProcessQueue` runs them as tasks of the API process (the embedded default)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, Unpack

from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from chatsvc.config import Settings
from chatsvc.jobs import service as job_service
from chatsvc.jobs.models import Job
from chatsvc.jobs.service import JobOptions

logger = logging.getLogger("chatsvc.jobs")

#: the arq function every trigger calls (chatsvc.worker.run_job)
RUN_JOB = "run_job"


class JobQueue(Protocol):
    async def enqueue(self, job_id: int, *, defer_seconds: float = 0) -> None: ...

    async def close(self) -> None: ...


# --- arq -----------------------------------------------------------------------------------------


def dump_json(data: dict[str, Any]) -> bytes:
    """arq's serializer: JSON instead of pickle, so a message in Redis can never run code. repr()
    stands in for what JSON cannot hold (arq stores a failed run's exception)."""
    return json.dumps(data, separators=(",", ":"), default=repr).encode()


def load_json(raw: bytes) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(raw)
    return data


class ArqQueue:
    """Triggers through arq. Each trigger has an arq job id of its own: arq drops an enqueue whose
    id is still queued or running, and after a crash the dead worker's arq job still is, so a
    re-enqueue with the same id would be lost. Duplicate triggers are harmless: only one claim of
    the job row succeeds."""

    def __init__(self, pool: ArqRedis, *, owned: bool = True) -> None:
        self.pool = pool
        self.owned = owned

    @classmethod
    def from_url(cls, redis_url: str, queue_name: str) -> ArqQueue:
        """A queue on its own connection pool; nothing connects until the first enqueue."""
        pool = ArqRedis(
            ConnectionPool.from_url(redis_url),
            job_serializer=dump_json,
            job_deserializer=load_json,
            default_queue_name=queue_name,
        )
        return cls(pool)

    async def enqueue(self, job_id: int, *, defer_seconds: float = 0) -> None:
        await self.pool.enqueue_job(
            RUN_JOB,
            job_id,
            _job_id=f"chatsvc-job-{job_id}-{time.time_ns()}",
            _defer_by=defer_seconds if defer_seconds > 0 else None,
        )

    async def close(self) -> None:
        if self.owned:
            await self.pool.aclose(close_connection_pool=True)


# --- in process ----------------------------------------------------------------------------------


class InProcessQueue:
    """Runs `handler(job_id)` as a task of this process. close() gives running jobs
    `grace_seconds` to finish, then cancels them (the runner hands their rows back to queued);
    triggers still waiting out a delay are dropped at once, the sweeper re-sends them after a
    restart."""

    def __init__(
        self, handler: Callable[[int], Awaitable[None]], *, grace_seconds: float = 10.0
    ) -> None:
        self.handler = handler
        self.grace_seconds = grace_seconds
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiting: set[asyncio.Task[None]] = set()
        self._closed = False

    async def enqueue(self, job_id: int, *, defer_seconds: float = 0) -> None:
        if self._closed:
            logger.warning("job %s not started: the in-process queue is closed", job_id)
            return
        task = asyncio.create_task(self._run(job_id, defer_seconds), name=f"job-{job_id}")
        self._tasks.add(task)
        if defer_seconds > 0:
            self._waiting.add(task)
        task.add_done_callback(self._forget)

    async def _run(self, job_id: int, defer_seconds: float) -> None:
        if defer_seconds > 0:
            await asyncio.sleep(defer_seconds)
        current = asyncio.current_task()
        if current is not None:
            self._waiting.discard(current)
        await self.handler(job_id)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._waiting.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("job task %s failed", task.get_name(), exc_info=task.exception())

    async def join(self) -> None:
        """Wait until every trigger sent so far (and those they send) has run."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def close(self) -> None:
        self._closed = True
        for task in list(self._waiting):
            task.cancel()
        pending = set(self._tasks)
        if pending:
            _done, pending = await asyncio.wait(pending, timeout=self.grace_seconds)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=10)


# --- enqueue after commit ------------------------------------------------------------------------

_PENDING = "chatsvc.jobs.pending"
#: triggers sent after a commit, referenced until done so they are not garbage-collected
_sending: set[asyncio.Task[None]] = set()


def enqueue_after_commit(
    session: AsyncSession, queue: JobQueue, job_id: int, *, defer_seconds: float = 0
) -> None:
    """Send the trigger once the session's transaction commits, and never if it rolls back: a
    worker must not look for a row it cannot see yet. A trigger lost anyway (process died right
    after the commit, Redis down) is re-sent by the sweeper."""
    sync_session = session.sync_session
    if _PENDING not in sync_session.info:
        sync_session.info[_PENDING] = []
        event.listen(sync_session, "after_commit", _send_pending)
        event.listen(sync_session, "after_rollback", _drop_pending)
    sync_session.info[_PENDING].append((queue, job_id, defer_seconds))


def _send_pending(sync_session: Session) -> None:
    pending: list[tuple[JobQueue, int, float]] = sync_session.info[_PENDING]
    if not pending:
        return
    batch = list(pending)
    pending.clear()
    # after_commit is synchronous; the event loop is the one the async session runs in.
    task = asyncio.get_running_loop().create_task(_send(batch))
    _sending.add(task)
    task.add_done_callback(_sending.discard)


def _drop_pending(sync_session: Session) -> None:
    sync_session.info[_PENDING].clear()


async def _send(batch: list[tuple[JobQueue, int, float]]) -> None:
    for queue, job_id, defer_seconds in batch:
        try:
            await queue.enqueue(job_id, defer_seconds=defer_seconds)
        except Exception:
            logger.exception("enqueueing job %s failed; the sweeper will send it again", job_id)


async def flush_sent() -> None:
    """Wait for triggers being sent after commits (tests, shutdown)."""
    while _sending:
        with contextlib.suppress(Exception):
            await asyncio.gather(*_sending)


async def submit(
    session: AsyncSession,
    queue: JobQueue,
    settings: Settings,
    workspace_id: int,
    kind: str,
    payload: dict[str, Any],
    **options: Unpack[JobOptions],
) -> tuple[Job, bool]:
    """Create a job (or find it by its idempotency key) and trigger it after the commit. The one
    call a request or a job needs to start background work."""
    options = with_configured_attempts(settings, options)
    job, created = await job_service.create_job(session, workspace_id, kind, payload, **options)
    if created:
        enqueue_after_commit(session, queue, job.id)
    return job, created


def with_configured_attempts(settings: Settings, options: JobOptions) -> JobOptions:
    """`options` with max_attempts defaulting to the deployment's (CHATSVC_JOB_MAX_ATTEMPTS)
    rather than the service's: what a job made by the application gets."""
    return {**options, "max_attempts": options.get("max_attempts") or settings.job_max_attempts}
