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
from chatsvc.kit.errors import ChatsvcError
from chatsvc.kit.outbound import OutboundPolicy, guarded_client
from chatsvc.webhooks.delivery import DeliveryFailed, deliver

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
