"""Chat job kinds and recovery: a generation run by a worker (background turns), how a turn's
answer is queued, and the sweeper's recovery of chats whose generation died. The job's body is
the same generation the API process runs for blocking and streamed turns; only where it runs
differs."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.auth.service import AuthContext
from chatsvc.chats.models import ExecutionStatus
from chatsvc.chats.repository import ChatRepository
from chatsvc.config import Settings
from chatsvc.generation.answers import TurnRef
from chatsvc.jobs.models import Job
from chatsvc.jobs.queue import JobQueue, submit
from chatsvc.jobs.runner import JobContext, Orphans, orphan_recovery, recovery, register
from chatsvc.kit.db import snapshot_reads, unit_of_work, utcnow
from chatsvc.kit.errors import Unavailable
from chatsvc.streaming import events

if TYPE_CHECKING:
    from chatsvc.chats.service import Turn

logger = logging.getLogger("chatsvc.chats")
CHAT_GENERATION = "chat_generation"
STUCK_CHAT_ERROR = (
    "The generation stopped (its process died); send the message again or GET the chat to retry."
)
ORPHAN_ERROR = (
    "The generation stopped: the server process running it died. Send the message again or GET "
    "the chat to retry."
)


@register(CHAT_GENERATION)
async def run_chat_generation(ctx: JobContext, job: Job) -> dict[str, Any] | None:
    turn = TurnRef(
        int(job.payload["chat_id"]),
        str(job.payload["generation_id"]),
        int(job.payload["user_msg_num"]),
    )
    async with snapshot_reads(ctx.sessionmaker)() as session:
        state = await ChatRepository(session).generation_state(turn.chat_id)
    # Idempotent: a redelivered or swept job whose generation was finished, failed or
    # superseded does nothing (a client GET retries a failed turn).
    if (
        state is None
        or state.generation_id != turn.generation_id
        or state.execution_status != ExecutionStatus.PROCESSING
    ):
        return {"skipped": True}
    await ctx.generations.run(turn)
    return {"chat": turn.chat_id, "generation_id": turn.generation_id}


async def enqueue_answer(
    session: AsyncSession,
    queue: JobQueue,
    settings: Settings,
    auth: AuthContext,
    turn: Turn | None,
) -> int | None:
    """Queue the turn's answer as a background job, triggered after the transaction commits
    (every face's background turns). None when there is nothing to answer (no turn, or a
    replayed one); one job per generation whatever the retries."""
    if turn is None or turn.generation_id is None or turn.replayed:
        return None
    job, _created = await submit(
        session,
        queue,
        settings,
        auth.workspace_id,
        CHAT_GENERATION,
        {
            "chat_id": turn.chat_id,
            "generation_id": turn.generation_id,
            "user_msg_num": turn.user_msg_num,
        },
        idempotency_key=f"generation-{turn.generation_id}",
        created_by=auth.principal_id,
    )
    return job.id


@orphan_recovery("generations")
async def fail_orphaned_generations(ctx: JobContext, orphans: Orphans) -> int:
    """The running generations of dead processes (their heartbeat stopped) fail at once: their
    chats become FAILED and a client following (or resuming) their streams gets the terminal
    `error` event. A process taken for dead while alive (stalled) is asked to stop them, as a
    cancel asks."""
    async with unit_of_work(ctx.sessionmaker) as session:
        failed = await ChatRepository(session).fail_orphaned(
            orphans.owners, all_but=orphans.all_but, now=utcnow(), error=ORPHAN_ERROR
        )
    await _end_streams(ctx, failed, ORPHAN_ERROR, cancel=True)
    return len(failed)


@recovery("stuck_generations")
async def fail_stuck_generations(ctx: JobContext) -> int:
    """Chats left PROCESSING by a dead process (lease expired: the last resort, when no
    heartbeat named the process dead) become FAILED, and a client still following the dead
    generation's stream gets its terminal `error` event."""
    async with unit_of_work(ctx.sessionmaker) as session:
        stuck = await ChatRepository(session).fail_expired(utcnow(), STUCK_CHAT_ERROR)
    await _end_streams(ctx, stuck, STUCK_CHAT_ERROR)
    return len(stuck)


async def _end_streams(
    ctx: JobContext, failed: list[tuple[int, str | None]], detail: str, *, cancel: bool = False
) -> None:
    """Each failed generation's stream ends with an `error` event (and, `cancel`, the
    generation is asked to stop wherever it may still run)."""
    error = Unavailable(detail, code="interrupted")
    for chat_id, generation_id in failed:
        logger.warning("chat %s: generation %s died; chat marked FAILED", chat_id, generation_id)
        if generation_id is None:
            continue
        key = events.stream_key(generation_id)
        try:
            await ctx.broker.append(key, events.ERROR, events.error_payload(error, chat_id))
            await ctx.broker.finish(key, ctx.settings.stream_ttl_seconds)
            if cancel:
                await ctx.broker.request_cancel(generation_id, ctx.settings.stream_ttl_seconds)
        except Exception:
            logger.warning("chat %s: could not end its stream", chat_id, exc_info=True)
