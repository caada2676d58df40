"""Export requests, as every face hands them over: validated (scope, period, callback URL) before
anything is stored, then one export job per idempotency key."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints
from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.auth.service import AuthContext
from chatsvc.config import Settings
from chatsvc.exports import service as export_service
from chatsvc.exports.jobs import EXPORT, filters_payload
from chatsvc.exports.schemas import ExportFilters
from chatsvc.jobs.models import Job
from chatsvc.jobs.queue import JobQueue, submit
from chatsvc.kit.outbound import OutboundPolicy, check_url
from chatsvc.kit.validation import MAX_ID, InputModel


class ExportRequestIn(InputModel):
    """Which conversations to export (all of the workspace by default) and where to send them."""

    chat: Annotated[int, Field(ge=1, le=MAX_ID)] | None = None
    assistant: Annotated[int, Field(ge=1, le=MAX_ID)] | None = None
    start: datetime | None = Field(default=None, description="From (inclusive), with a zone.")
    end: datetime | None = Field(default=None, description="Until (exclusive), with a zone.")
    language: Annotated[str, StringConstraints(max_length=8)] = "enUs"
    callback_url: Annotated[str, StringConstraints(max_length=2048)] | None = Field(
        default=None,
        description="Public HTTPS URL that receives the CSV, signed per Standard Webhooks.",
    )


async def request_export(
    session: AsyncSession,
    queue: JobQueue,
    settings: Settings,
    auth: AuthContext,
    data: ExportRequestIn,
    idempotency_key: str | None,
) -> tuple[Job, bool]:
    """The export job `auth`'s caller asks for (the existing one for a repeated idempotency
    key)."""
    filters = ExportFilters(
        workspace_id=auth.workspace_id,
        chat_id=data.chat,
        assistant_id=data.assistant,
        start=data.start,
        end=data.end,
        language=data.language,
    )
    await export_service.check_scope(session, filters)
    if data.callback_url is not None:
        check_url(data.callback_url, OutboundPolicy.from_settings(settings))
    return await submit(
        session,
        queue,
        settings,
        auth.workspace_id,
        EXPORT,
        {"filters": filters_payload(filters), "callback_url": data.callback_url},
        idempotency_key=idempotency_key,
        created_by=auth.principal_id,
    )
