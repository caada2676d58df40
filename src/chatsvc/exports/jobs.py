"""The export job: write the CSV artifact (with progress on the job), then, when a callback URL
was given, hand its delivery to a job of its own (retried on its own, delivered once per id)."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from chatsvc.exports import service as export_service
from chatsvc.exports.schemas import ExportFilters
from chatsvc.jobs.models import Job, JobState
from chatsvc.jobs.queue import submit
from chatsvc.jobs.runner import JobContext, on_finished, recovery, register
from chatsvc.kit.db import unit_of_work
from chatsvc.webhooks.events import WebhookEvents
from chatsvc.webhooks.jobs import DELIVER_CALLBACK

EXPORT = "export"
logger = logging.getLogger(__name__)


#: the files export jobs write in artifact_dir (`artifact_name`): what retention may remove
ARTIFACT_GLOB = "export-*.csv"


def artifact_name(job_id: int) -> str:
    return f"export-{job_id}.csv"


def filters_payload(filters: ExportFilters) -> dict[str, Any]:
    return {
        "chat_id": filters.chat_id,
        "assistant_id": filters.assistant_id,
        "start": filters.start.isoformat() if filters.start else None,
        "end": filters.end.isoformat() if filters.end else None,
        "language": filters.language,
        "visible_only": filters.visible_only,
    }


def filters_from(workspace_id: int, payload: dict[str, Any]) -> ExportFilters:
    def moment(value: Any) -> datetime | None:
        return datetime.fromisoformat(value) if value else None

    return ExportFilters(
        workspace_id=workspace_id,
        chat_id=payload.get("chat_id"),
        assistant_id=payload.get("assistant_id"),
        start=moment(payload.get("start")),
        end=moment(payload.get("end")),
        language=payload.get("language") or "enUs",
        visible_only=bool(payload.get("visible_only", False)),
    )


@register(EXPORT)
async def run_export(ctx: JobContext, job: Job) -> dict[str, Any]:
    filters = filters_from(job.workspace_id, job.payload["filters"])

    async def progress(done: int, total: int | None) -> None:
        await ctx.progress(job, done, total)

    # The file name is the export's identity: a retried job finds the finished file.
    result = await export_service.export_to_file(
        ctx.sessionmaker,
        filters,
        Path(ctx.settings.artifact_dir),
        artifact_name(job.id),
        progress,
        # (header, value) pairs a face adds to every row, e.g. the artifacts-v5 chat bundle
        extra_columns=[(str(h), str(v)) for h, v in job.payload.get("extra_columns") or []],
    )
    callback = job.payload.get("callback_url")
    if callback:
        async with unit_of_work(ctx.sessionmaker) as session:
            await submit(
                session,
                ctx.queue,
                ctx.settings,
                job.workspace_id,
                DELIVER_CALLBACK,
                {"export_job_id": job.id, "url": callback},
                idempotency_key=f"export-{job.id}",
                created_by=job.created_by,
            )
    return {
        "artifact": result.path.name,
        "rows": result.rows,
        "bytes": result.bytes,
        "sha256": result.sha256,
    }


@on_finished(EXPORT)
async def announce_export(ctx: JobContext, job_id: int) -> None:
    """export.completed or export.failed to the workspace's event webhooks, once the export's
    final state committed (a receiver reading GET /jobs/{id}/ sees it)."""
    async with unit_of_work(ctx.sessionmaker) as session:
        job = await session.get(Job, job_id)
        if job is None or job.state not in (JobState.SUCCEEDED, JobState.FAILED):
            return
        succeeded = job.state == JobState.SUCCEEDED
        event_type = "export.completed" if succeeded else "export.failed"
        data: dict[str, Any] = {"job_id": job.id, "state": str(job.state)}
        if succeeded:
            result = job.result or {}
            data.update(
                rows=result.get("rows"),
                bytes=result.get("bytes"),
                sha256=result.get("sha256"),
                download_path=f"/jobs/{job.id}/artifact/",
            )
        else:
            data["error"] = job.error
        events = WebhookEvents(ctx.sessionmaker, ctx.settings, ctx.queue)
        await events.emit(session, job.workspace_id, event_type, f"{event_type}-{job.id}", data)


@recovery("orphaned_export_files")
async def remove_orphaned_export_files(ctx: JobContext) -> int:
    """The temporary files of exports whose process died mid-write (`.<name>.*.part` in the
    artifact directory, untouched for two job leases: a live export writes on and renews its
    lease far more often), so that repeated crashes do not fill the disk."""
    directory = Path(ctx.settings.artifact_dir)
    before = time.time() - 2 * ctx.settings.job_lease_seconds
    removed = await asyncio.to_thread(remove_stale_parts, directory, before)
    for path in removed:
        logger.warning("removed %s, left by an export that did not finish", path.name)
    return len(removed)


@recovery("expired_export_artifacts")
async def remove_expired_export_artifacts(ctx: JobContext) -> int:
    """The files of exports written longer ago than CHATSVC_ARTIFACT_RETENTION_HOURS (0 keeps
    them): downloads of such a job answer 410 artifact_expired, and the disk does not fill."""
    hours = ctx.settings.artifact_retention_hours
    if not hours:
        return 0
    directory = Path(ctx.settings.artifact_dir)
    before = time.time() - hours * 3600
    removed = await asyncio.to_thread(remove_stale_parts, directory, before, ARTIFACT_GLOB)
    for path in removed:
        logger.info("removed %s, kept for its %g hours", path.name, hours)
    return len(removed)


def remove_stale_parts(directory: Path, before: float, pattern: str = ".*.part") -> list[Path]:
    """Delete the files in `directory` matching `pattern` (by default an export's temporary
    files) last modified before `before` (a Unix time); the files removed."""
    if not directory.is_dir():
        return []
    removed = []
    for path in directory.glob(pattern):
        try:
            if path.stat().st_mtime < before:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:  # another process's sweep took it first
            continue
    return removed
