"""Running jobs: the registry of job kinds, `execute` (claim, run the handler under a renewed
lease, record the outcome, retry with backoff), the registry of domain recoveries and the sweeper
loop that runs them. The same code runs in the arq
worker and in the API process's in-process queue."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import json
import logging
import pkgutil
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Unpack

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import chatsvc
from chatsvc.config import Settings
from chatsvc.generation.runner import Generations
from chatsvc.jobs import service as job_service
from chatsvc.jobs.models import Job, JobState
from chatsvc.jobs.queue import JobQueue, with_configured_attempts
from chatsvc.jobs.service import JobOptions
from chatsvc.kit.db import unit_of_work, utcnow
from chatsvc.kit.errors import ChatsvcError
from chatsvc.kit.heartbeat import Heartbeat
from chatsvc.streaming.broker import StreamBroker

logger = logging.getLogger("chatsvc.jobs")
MAX_RETRY_DELAY_SECONDS = 60


class PermanentJobError(Exception):
    """Raised by a handler for a failure that retrying cannot fix (a bad payload, a peer that
    refuses the request): the job fails at once, with this message as its error."""


class LeaseLost(Exception):
    """This run no longer holds the job (its lease expired and another run took it over)."""


@dataclass
class JobContext:
    """What a job handler may use: the process's long-lived resources. One per process."""

    sessionmaker: async_sessionmaker[AsyncSession]
    settings: Settings
    queue: JobQueue
    http: httpx.AsyncClient
    broker: StreamBroker
    generations: Generations

    async def progress(self, job: Job, done: int, total: int | None = None) -> None:
        """Record the job's progress and renew its lease. Raises LeaseLost when another run has
        taken the job over, so the handler stops instead of doing the work twice."""
        async with unit_of_work(self.sessionmaker) as session:
            held = await job_service.progress(
                session,
                job.id,
                done,
                total,
                lease_seconds=self.settings.job_lease_seconds,
                attempt=job.attempts,
            )
        if not held:
            raise LeaseLost(f"job {job.id} attempt {job.attempts} lost its lease")

    async def run_here(
        self, workspace_id: int, kind: str, payload: dict[str, Any], **options: Unpack[JobOptions]
    ) -> Job:
        """Create a job and run it in this process now, not through the queue; the job as the
        run left it (readable afterwards like any other). Its row is committed first: the run
        reads it in sessions of its own."""
        options = with_configured_attempts(self.settings, options)
        async with unit_of_work(self.sessionmaker) as session:
            job, _created = await job_service.create_job(
                session, workspace_id, kind, payload, **options
            )
            job_id = job.id
        await execute(self, job_id)
        async with unit_of_work(self.sessionmaker) as session:
            return await job_service.get_job(session, workspace_id, job_id)


Handler = Callable[[JobContext, Job], Coroutine[Any, Any, dict[str, Any] | None]]
#: job kind → handler; a handler returns the job's result (JSON), may be run more than once for
#: one job (at-least-once delivery, crashes), and so must be idempotent
HANDLERS: dict[str, Handler] = {}


def register(kind: str) -> Callable[[Handler], Handler]:
    """Register the handler of a job kind: `@register("export")`."""

    def decorator(handler: Handler) -> Handler:
        existing = HANDLERS.get(kind)
        if existing is not None and existing is not handler:
            raise ValueError(f"job kind {kind!r} is registered twice")
        HANDLERS[kind] = handler
        return handler

    return decorator


Finisher = Callable[[JobContext, int], Coroutine[Any, Any, None]]
#: kind → what runs once a job of that kind ended for good (succeeded, or failed with no retry
#: left), after that state committed: e.g. the export's event webhooks
FINISHERS: dict[str, Finisher] = {}


def on_finished(kind: str) -> Callable[[Finisher], Finisher]:
    """Register what runs, with the job's id, when a job of `kind` has ended for good."""

    def decorator(finisher: Finisher) -> Finisher:
        FINISHERS[kind] = finisher
        return finisher

    return decorator


async def _finished(ctx: JobContext, job: Job) -> None:
    finisher = FINISHERS.get(job.kind)
    if finisher is None:
        return
    try:
        await finisher(ctx, job.id)
    except Exception:
        # The job's outcome is recorded; what follows it must not change it.
        logger.exception("job %s (%s): its end could not be announced", job.id, job.kind)


Recovery = Callable[[JobContext], Coroutine[Any, Any, int]]
#: name → a domain's recovery of what dead processes left behind (e.g. chats stuck mid-answer);
#: the sweeper runs each on every sweep; it returns how many rows it recovered
RECOVERIES: dict[str, Recovery] = {}


def recovery(name: str) -> Callable[[Recovery], Recovery]:
    """Register a domain's recovery, run by every sweep: `@recovery("stuck_generations")`. It
    must be safe to run from many processes at once."""

    def decorator(recover: Recovery) -> Recovery:
        RECOVERIES[name] = recover
        return recover

    return decorator


@dataclass(frozen=True)
class Orphans:
    """Processes known to be dead, whose work is to be recovered: `owners`, or (`all_but`) every
    process but that one (the embedded mode's start: one process per database, so whatever an
    earlier run of it left running is dead)."""

    owners: frozenset[str] = frozenset()
    all_but: str | None = None


OrphanRecovery = Callable[[JobContext, Orphans], Coroutine[Any, Any, int]]
#: name → a domain's recovery of what dead processes owned (e.g. their running generations), run
#: as soon as a process's heartbeat stops (kit/heartbeat.py); it returns how many rows it recovered
ORPHAN_RECOVERIES: dict[str, OrphanRecovery] = {}


def orphan_recovery(name: str) -> Callable[[OrphanRecovery], OrphanRecovery]:
    """Register a domain's recovery of a dead process's work: `@orphan_recovery("generations")`.
    It must be safe to run from many processes at once, and more than once."""

    def decorator(recover: OrphanRecovery) -> OrphanRecovery:
        ORPHAN_RECOVERIES[name] = recover
        return recover

    return decorator


def load_handlers() -> None:
    """Import every domain's `jobs` module (chatsvc.<domain>.jobs), where its kinds register
    themselves; the worker and the API process call this at start-up."""
    for module in pkgutil.iter_modules(chatsvc.__path__):
        if not module.ispkg:
            continue
        name = f"chatsvc.{module.name}.jobs"
        if module.name != "jobs" and importlib.util.find_spec(name) is not None:
            importlib.import_module(name)


# --- one run -------------------------------------------------------------------------------------


async def execute(ctx: JobContext, job_id: int) -> None:
    """Run job `job_id` once, if it can be claimed. A trigger for a job that is finished, running
    elsewhere or out of attempts does nothing, so delivering a trigger twice is harmless."""
    async with unit_of_work(ctx.sessionmaker) as session:
        job = await job_service.claim(session, job_id, ctx.settings.job_lease_seconds)
    if job is None:
        logger.info(
            "job %s: not claimable (finished, running elsewhere or out of attempts)", job_id
        )
        return
    attempt = job.attempts
    handler = HANDLERS.get(job.kind)
    if handler is None:
        await _failed(ctx, job, f"No handler for job kind {job.kind!r}.", retry=False)
        return
    logger.info("job %s (%s): attempt %s of %s", job_id, job.kind, attempt, job.max_attempts)
    lost = asyncio.Event()
    work = asyncio.create_task(handler(ctx, job), name=f"job-{job_id}-{attempt}")
    keeper = asyncio.create_task(_keep_lease(ctx, job, work, lost))
    try:
        result = await work
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if lost.is_set() and not (current is not None and current.cancelling()):
            logger.warning("job %s attempt %s stopped: its lease was taken over", job_id, attempt)
            return
        # The process is stopping: hand the job back so that another run starts it at once.
        await asyncio.shield(_release(ctx, job))
        raise
    except LeaseLost:
        logger.warning("job %s attempt %s stopped: its lease was taken over", job_id, attempt)
    except PermanentJobError as exc:
        await _failed(ctx, job, str(exc) or type(exc).__name__, retry=False)
    except ChatsvcError as exc:
        await _failed(ctx, job, exc.message, retry=True)
    except Exception as exc:
        logger.exception("job %s (%s) attempt %s failed", job_id, job.kind, attempt)
        # The traceback is in the log; the status endpoint shows users no internals.
        await _failed(ctx, job, f"Internal error ({type(exc).__name__}).", retry=True)
    else:
        await _succeeded(ctx, job, result)
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper


async def _keep_lease(
    ctx: JobContext, job: Job, work: asyncio.Task[Any], lost: asyncio.Event
) -> None:
    """Renews the lease while the handler runs; stops the handler when the lease was lost."""
    lease = ctx.settings.job_lease_seconds
    while True:
        await asyncio.sleep(max(0.5, lease / 3))
        try:
            async with unit_of_work(ctx.sessionmaker) as session:
                held = await job_service.heartbeat(session, job.id, lease, attempt=job.attempts)
        except Exception:
            # A database hiccup: try again; if it lasts, the lease expires and the job moves on.
            logger.warning("job %s: renewing the lease failed", job.id, exc_info=True)
            continue
        if not held:
            lost.set()
            work.cancel()
            return


async def _succeeded(ctx: JobContext, job: Job, result: dict[str, Any] | None) -> None:
    if result is not None and not isinstance(result, dict):
        await _failed(ctx, job, "The job's handler returned a non-object result.", retry=False)
        return
    try:
        json.dumps(result, allow_nan=False)
    except (TypeError, ValueError):
        await _failed(ctx, job, "The job's handler returned a result that is not JSON.", False)
        return
    async with unit_of_work(ctx.sessionmaker) as session:
        recorded = await job_service.succeed(session, job.id, result, attempt=job.attempts)
    if recorded:
        logger.info("job %s (%s) succeeded on attempt %s", job.id, job.kind, job.attempts)
        await _finished(ctx, job)
    else:
        logger.warning(
            "job %s attempt %s: result dropped, another run holds it", job.id, job.attempts
        )


async def _failed(ctx: JobContext, job: Job, error: str, retry: bool) -> None:
    delay = min(2**job.attempts, MAX_RETRY_DELAY_SECONDS)
    async with unit_of_work(ctx.sessionmaker) as session:
        after = await job_service.fail(
            session, job.id, error, retry, attempt=job.attempts, defer_seconds=delay
        )
    if after is None or after.state != JobState.QUEUED:
        logger.info("job %s (%s) failed: %s", job.id, job.kind, error)
        if after is not None and after.state == JobState.FAILED:
            await _finished(ctx, job)
        return
    logger.info("job %s (%s) will be retried in %ss: %s", job.id, job.kind, delay, error)
    try:
        await ctx.queue.enqueue(job.id, defer_seconds=delay)
    except Exception:
        logger.exception("re-enqueueing job %s failed; the sweeper will send it again", job.id)


async def _release(ctx: JobContext, job: Job) -> None:
    try:
        async with unit_of_work(ctx.sessionmaker) as session:
            await job_service.release(session, job.id, attempt=job.attempts)
    except Exception:
        logger.exception("job %s: handing it back failed; its lease will expire", job.id)


# --- the sweeper ---------------------------------------------------------------------------------


@dataclass
class SweepReport:
    """What a sweep did: the jobs enqueued again, and per domain recovery how many rows it
    recovered."""

    job_ids: list[int] = field(default_factory=list)
    recovered: dict[str, int] = field(default_factory=dict)


async def sweep_once(ctx: JobContext) -> SweepReport:
    """One sweep: expired jobs (committed, then their triggers sent), then each domain's
    recovery (see `recovery`), each on its own so that one failing does not stop the others."""
    report = SweepReport()
    async with unit_of_work(ctx.sessionmaker) as session:
        report.job_ids = await job_service.sweep(session, utcnow())
    for job_id in report.job_ids:
        try:
            await ctx.queue.enqueue(job_id)
        except Exception:
            logger.exception("re-enqueueing job %s failed; the next sweep tries again", job_id)
    for name, recover in RECOVERIES.items():
        try:
            report.recovered[name] = await recover(ctx)
        except Exception:
            logger.exception("recovery %s failed; the next sweep tries again", name)
    if report.job_ids or any(report.recovered.values()):
        logger.info(
            "sweep: %s job(s) re-enqueued, recovered %s", len(report.job_ids), report.recovered
        )
    return report


async def run_sweeper(ctx: JobContext) -> None:
    """Sweep every settings.sweep_interval_seconds until cancelled. Every worker may run one:
    each expired row is changed by one sweep only."""
    while True:
        try:
            await sweep_once(ctx)
        except Exception:
            logger.exception("sweep failed")
        await asyncio.sleep(ctx.settings.sweep_interval_seconds)


# --- heartbeats: a dead process's work recovered within seconds ---------------------------------


async def recover_orphans(ctx: JobContext, orphans: Orphans) -> dict[str, int] | None:
    """Run every domain's recovery of `orphans`' work; how many rows each recovered, or None when
    one failed (the next round tries again)."""
    recovered: dict[str, int] = {}
    for name, recover in ORPHAN_RECOVERIES.items():
        try:
            recovered[name] = await recover(ctx, orphans)
        except Exception:
            logger.exception("recovery %s of dead processes failed; trying again", name)
            return None
    if any(recovered.values()):
        logger.warning(
            "recovered the work of dead process(es) %s: %s",
            ", ".join(sorted(orphans.owners)) or f"other than {orphans.all_but}",
            recovered,
        )
    return recovered


async def beat_once(ctx: JobContext, heartbeat: Heartbeat) -> dict[str, float]:
    """One round: renew this process's heartbeat, then recover the work of every process whose
    heartbeat stopped. The owners found dead (each reported once)."""
    dead = await heartbeat.dead(await heartbeat.beat())
    if dead and await recover_orphans(ctx, Orphans(frozenset(dead))) is not None:
        heartbeat.reported(dead)
    return dead


async def run_heartbeat(ctx: JobContext, heartbeat: Heartbeat) -> None:
    """`beat_once` every settings.heartbeat_seconds until cancelled; every process runs one (API
    and worker), so any live process recovers a dead one's work."""
    while True:
        try:
            await beat_once(ctx, heartbeat)
        except Exception:
            logger.warning("heartbeat failed; trying again", exc_info=True)
        await asyncio.sleep(ctx.settings.heartbeat_seconds)


# --- a job kind for tests and smoke checks -------------------------------------------------------


@register("noop")
async def noop(ctx: JobContext, job: Job) -> dict[str, Any]:
    """Does nothing, slowly: `steps` steps (default 1), sleeping `sleep` seconds before each, with
    progress after each. `fail_times`: fail the first N attempts (to exercise retries). Result
    {"steps": steps}. Being idempotent is easy here: it starts over on every attempt."""
    try:
        steps = int(job.payload.get("steps", 1))
        sleep = float(job.payload.get("sleep", 0))
        fail_times = int(job.payload.get("fail_times", 0))
    except (TypeError, ValueError) as exc:
        raise PermanentJobError(f"Invalid noop payload: {exc}") from None
    if not 0 <= steps <= 10_000 or not 0 <= sleep <= 3600:
        raise PermanentJobError("A noop job takes 0 to 10000 steps of 0 to 3600 seconds.")
    await ctx.progress(job, 0, steps)
    for step in range(steps):
        if sleep:
            await asyncio.sleep(sleep)
        await ctx.progress(job, step + 1, steps)
    if job.attempts <= fail_times:
        raise RuntimeError(f"noop: failing attempt {job.attempts} as asked")
    return {"steps": steps}
