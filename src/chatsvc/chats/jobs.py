"""Chat job kinds: a generation run by a worker (async chats). The body is the same generation
the API process runs for blocking and streamed turns; only where it runs differs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.auth.service import AuthContext
from chatsvc.chats.models import Chat, ExecutionStatus
from chatsvc.config import Settings
from chatsvc.jobs.models import Job
from chatsvc.jobs.queue import JobQueue, submit
from chatsvc.jobs.runner import JobContext, register

if TYPE_CHECKING:
    from chatsvc.chats.service import Turn

CHAT_GENERATION = "chat_generation"


@register(CHAT_GENERATION)
async def run_chat_generation(ctx: JobContext, job: Job) -> dict[str, Any] | None:
    chat_id = int(job.payload["chat_id"])
    generation_id = str(job.payload["generation_id"])
    async with ctx.sessionmaker() as session:
        chat = await session.get(Chat, chat_id)
        # Idempotent: a redelivered or swept job whose generation was finished, failed or
        # superseded does nothing (a client GET retries a failed turn).
        if (
            chat is None
            or chat.generation_id != generation_id
            or chat.execution_status != ExecutionStatus.PROCESSING
        ):
            return {"skipped": True}
    await ctx.generations.run(chat_id, generation_id, int(job.payload["user_msg_num"]))
    return {"chat": chat_id, "generation_id": generation_id}


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
