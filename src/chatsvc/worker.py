"""The arq worker (`chatsvc worker`): runs job triggers from Redis and the sweeper. Job functions
only call the runner, which calls domain services; the job table decides what runs, so arq's own
retries and results are turned off or out of the way."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from arq.connections import RedisSettings
from arq.worker import func, run_worker

from chatsvc.config import Settings, get_settings
from chatsvc.jobs.queue import RUN_JOB, ArqQueue, dump_json, load_json
from chatsvc.jobs.runner import execute, load_handlers, run_sweeper
from chatsvc.kit.logging import configure_logging
from chatsvc.services import Services

logger = logging.getLogger("chatsvc.worker")
#: arq cancels a run after this; our lease (renewed while the handler runs) is what detects a dead
#: worker, so this is only a backstop against a handler that hangs for good
JOB_TIMEOUT_SECONDS = 24 * 3600


async def run_job(ctx: dict[str, Any], job_id: int) -> None:
    """The only arq function: run job `job_id` of the job table (claiming it first)."""
    await execute(ctx["chatsvc"], int(job_id))


async def startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx.get("settings") or get_settings()
    configure_logging(settings.log_level)
    load_handlers()
    assert settings.redis_url is not None
    # Triggers go through arq's own pool (JSON serializer set by WorkerSettings); arq closes it.
    services = Services.build(settings, queue=ArqQueue(ctx["redis"], owned=False))
    await services.start()
    ctx.update(
        services=services,
        chatsvc=services.jobs,
        sweeper=asyncio.create_task(run_sweeper(services.jobs), name="sweeper"),
    )
    logger.info("worker ready; sweeping every %ss", settings.sweep_interval_seconds)


async def shutdown(ctx: dict[str, Any]) -> None:
    sweeper: asyncio.Task[None] | None = ctx.get("sweeper")
    if sweeper is not None:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
    services: Services | None = ctx.get("services")
    if services is not None:
        await services.close()


class WorkerSettings:
    """arq settings; `chatsvc worker` adds the Redis settings and the chatsvc Settings."""

    functions = [func(run_job, name=RUN_JOB)]
    on_startup = startup
    on_shutdown = shutdown
    job_serializer = dump_json
    job_deserializer = load_json
    # Our retries are new triggers decided by the job table; arq only re-runs a trigger whose
    # worker died or stopped, and must not give up on it before the job table does.
    max_tries = 1000
    job_timeout = JOB_TIMEOUT_SECONDS
    # Results live in the job table; keeping none in Redis also lets a trigger id be reused.
    keep_result = 0
    max_jobs = 10


def run(settings: Settings) -> None:
    """Run the worker until SIGINT/SIGTERM (arq cancels running jobs; they are handed back)."""
    if not settings.redis_url:
        raise ValueError("the worker needs CHATSVC_REDIS_URL")
    run_worker(
        WorkerSettings,  # type: ignore[arg-type]
        redis_settings=RedisSettings.from_dsn(settings.redis_url),
        queue_name=settings.arq_queue,
        ctx={"settings": settings},
    )
