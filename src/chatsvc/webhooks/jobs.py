"""The callback delivery job: POST a finished export to the URL its requester gave, through the
guarded outbound client, signed per Standard Webhooks under the workspace's secret. The
webhook-id is the export job's, so a delivery repeated after a crash is one delivery to a receiver
that deduplicates by id, as the standard asks receivers to."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from chatsvc.auth import service as auth_service
from chatsvc.jobs.models import Job, JobState
from chatsvc.jobs.runner import JobContext, PermanentJobError, register
from chatsvc.kit.db import unit_of_work
from chatsvc.kit.errors import ChatsvcError
from chatsvc.kit.outbound import OutboundPolicy, guarded_client
from chatsvc.webhooks.delivery import DeliveryFailed, DeliveryResult, deliver
from chatsvc.webhooks.events import DELIVER_EVENT
from chatsvc.webhooks.models import WebhookDelivery, WebhookEndpoint

DELIVER_CALLBACK = "deliver_callback"


@register(DELIVER_CALLBACK)
async def run_delivery(ctx: JobContext, job: Job) -> dict[str, Any]:
    export_id = int(job.payload["export_job_id"])
    async with ctx.sessionmaker() as session:
        export = await session.get(Job, export_id)
        if export is None or export.workspace_id != job.workspace_id:
            raise PermanentJobError(f"export job {export_id} is gone")
        if export.state in (JobState.QUEUED, JobState.RUNNING):  # triggered before it was done
            raise ChatsvcError(f"export job {export_id} is not finished yet", "export_pending")
        if export.state != JobState.SUCCEEDED or not export.result:
            raise PermanentJobError(f"export job {export_id} has no file to deliver")
        secret = await auth_service.webhook_secret(session, job.workspace_id)
        await session.commit()  # webhook_secret may have created the secret
    path = Path(ctx.settings.artifact_dir) / str(export.result["artifact"])
    size = path.stat().st_size
    if size <= ctx.settings.webhook_max_file_bytes:
        body, content_type = await asyncio.to_thread(path.read_bytes), "text/csv; charset=utf-8"
    else:
        notice = {
            "type": "export.completed",
            "job_id": export_id,
            "rows": export.result.get("rows"),
            "bytes": size,
            "sha256": export.result.get("sha256"),
            "download_path": f"/jobs/{export_id}/artifact/",
        }
        body, content_type = json.dumps(notice).encode(), "application/json"
    settings = ctx.settings
    async with guarded_client(OutboundPolicy.from_settings(settings)) as client:
        try:
            result = await deliver(
                client,
                str(job.payload["url"]),
                body,
                secret=secret,
                msg_id=f"export-{export_id}",
                content_type=content_type,
                attempts=settings.webhook_attempts,
                base_delay=settings.webhook_base_delay_seconds,
                max_delay=settings.webhook_max_delay_seconds,
            )
        except DeliveryFailed as exc:
            if exc.permanent:
                raise PermanentJobError(exc.message) from exc
            raise
    return {"attempts": result.attempts, "status": result.status_code, "msg_id": result.msg_id}


@register(DELIVER_EVENT)
async def run_event_delivery(ctx: JobContext, job: Job) -> dict[str, Any]:
    """One event to one endpoint; every run is recorded in the endpoint's delivery log."""
    endpoint_id = int(job.payload["endpoint_id"])
    msg_id = str(job.payload["msg_id"])
    async with ctx.sessionmaker() as session:
        endpoint = await session.get(WebhookEndpoint, endpoint_id)
        if endpoint is None or endpoint.workspace_id != job.workspace_id:
            raise PermanentJobError(f"webhook endpoint {endpoint_id} is gone")
        url, secret = endpoint.url, endpoint.secret
    settings = ctx.settings
    result: DeliveryResult | None = None
    failure: DeliveryFailed | None = None
    async with guarded_client(OutboundPolicy.from_settings(settings)) as client:
        try:
            result = await deliver(
                client,
                url,
                str(job.payload["body"]).encode(),
                secret=secret,
                msg_id=msg_id,
                attempts=settings.webhook_attempts,
                base_delay=settings.webhook_base_delay_seconds,
                max_delay=settings.webhook_max_delay_seconds,
            )
        except DeliveryFailed as exc:
            failure = exc
    async with unit_of_work(ctx.sessionmaker) as session:
        if await session.get(WebhookEndpoint, endpoint_id) is not None:
            session.add(
                WebhookDelivery(
                    endpoint_id=endpoint_id,
                    event_type=str(job.payload["type"]),
                    msg_id=msg_id,
                    succeeded=result is not None,
                    attempts=result.attempts if result else failure.attempts if failure else 0,
                    status_code=result.status_code
                    if result
                    else failure.status_code
                    if failure
                    else None,
                    error=failure.message if failure else None,
                )
            )
    if failure is not None:
        if failure.permanent:
            raise PermanentJobError(failure.message) from failure
        raise failure
    assert result is not None
    return {"attempts": result.attempts, "status": result.status_code, "msg_id": result.msg_id}
