"""Chat job kinds: a generation run by a worker (async chats). The body is the same generation
the API process runs for blocking and streamed turns; only where it runs differs."""

from __future__ import annotations

from typing import Any

from chatsvc.chats.models import Chat, ExecutionStatus
from chatsvc.jobs.models import Job
from chatsvc.jobs.runner import JobContext, register

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
