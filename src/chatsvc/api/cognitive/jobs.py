"""Cognitive face: GET /jobs/{id}/ (a background job's state, progress, result and error) and
GET /jobs/{id}/artifact/ (the file a finished job produced). Translation only."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path as FilePath
from typing import Any

from fastapi import Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from chatsvc.api.cognitive.params import JobId
from chatsvc.api.deps import AuthDep
from chatsvc.auth.service import AuthContext
from chatsvc.jobs import service as job_service
from chatsvc.jobs.models import Job, JobState
from chatsvc.kit.errors import Gone, NotFound
from chatsvc.kit.web import SettingsDep, SlashRouter, error_responses
from chatsvc.services import ReadSessionDep, SessionDep

router = SlashRouter(tags=["jobs"])
NOT_FOUND = error_responses(
    {404: "No such job in this workspace (a member key sees only the jobs it started)."}
)


class JobProgressOut(BaseModel):
    """How far a job is: steps done of the total."""

    done: int = Field(description="Steps done.")
    total: int | None = Field(description="Steps in all; null while unknown.")


class JobOut(BaseModel):
    """A background job. `state` goes queued → running → succeeded or failed; a failed attempt
    with attempts left goes back to queued (its `error` says why) and is retried with backoff."""

    id: int
    kind: str = Field(description="What the job does, e.g. export.", examples=["export"])
    state: JobState
    attempts: int = Field(description="Attempts started so far.")
    max_attempts: int = Field(description="Attempts allowed before the job fails for good.")
    progress: JobProgressOut
    result: dict[str, Any] | None = Field(description="What the job produced, once succeeded.")
    result_url: str | None = Field(
        description="Absolute URL of the file the job produced (GET /jobs/{id}/artifact/), when "
        "it produced one."
    )
    error: str | None = Field(
        description="Why the last attempt failed (kept while a retry is pending)."
    )
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = Field(description="When the first attempt started.")
    finished_at: datetime | None = Field(description="When the job succeeded or failed for good.")


def _artifact_name(job: Job) -> str | None:
    """The file a succeeded job names in its result: only a plain file name (no directory, not
    hidden), so a result can never point outside artifact_dir."""
    name = (job.result or {}).get("artifact")
    if job.state != JobState.SUCCEEDED or not isinstance(name, str) or not name:
        return None
    if any(c in name for c in "/\\\0") or name.startswith("."):
        return None
    return name


def job_out(request: Request, job: Job) -> JobOut:
    artifact = _artifact_name(job)
    return JobOut(
        id=job.id,
        kind=job.kind,
        state=JobState(job.state),
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        progress=JobProgressOut(done=job.progress_done, total=job.progress_total),
        result=job.result,
        result_url=str(request.url_for("get_job_artifact", id=job.id)) if artifact else None,
        error=job.error,
        created_at=job.created_at,
        updated_at=job.updated_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


def _owner(auth: AuthContext) -> int | None:
    return None if auth.is_admin else auth.principal_id


@router.get(
    "/jobs/{id}/", response_model=JobOut, responses=NOT_FOUND, summary="A background job's status"
)
async def get_job(request: Request, id: JobId, session: ReadSessionDep, auth: AuthDep) -> JobOut:
    """State, progress (done of total), result, a link to its file and the last error. Poll it
    until `state` is succeeded or failed."""
    job = await job_service.get_job(session, auth.workspace_id, id, created_by=_owner(auth))
    return job_out(request, job)


@router.get(
    "/jobs/{id}/artifact/",
    response_class=FileResponse,
    responses={
        200: {
            # Export jobs, the only kind that makes a file, write CSV (exports/jobs.py);
            # FileResponse sends the type of the file's name: text/csv; charset=utf-8.
            "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}},
            "description": "The file, as an attachment (`Content-Disposition: attachment; "
            "filename=...`): the CSV an export job wrote.",
        },
        **error_responses(
            {
                404: "No such job in this workspace, or it produced no file (yet).",
                410: "The job's file was removed after CHATSVC_ARTIFACT_RETENTION_HOURS: "
                "start the export again.",
            }
        ),
    },
    summary="Download the file a job produced",
)
async def get_job_artifact(
    id: JobId, session: SessionDep, auth: AuthDep, settings: SettingsDep
) -> FileResponse:
    """The file a succeeded job produced (its `result_url`): today the CSV of an export, sent
    as `text/csv`. 404 until the job has succeeded, and for jobs that make no file; 410 once
    the sweeper removed the file (CHATSVC_ARTIFACT_RETENTION_HOURS after it was written)."""
    job = await job_service.get_job(session, auth.workspace_id, id, created_by=_owner(auth))
    name = _artifact_name(job)
    path = await asyncio.to_thread(_artifact_path, settings.artifact_dir, name)
    if path is None and name is not None:
        raise Gone(
            f"Job {id}'s file was removed: export files are kept "
            f"{settings.artifact_retention_hours:g} hours (CHATSVC_ARTIFACT_RETENTION_HOURS). "
            "Start the export again.",
            code="artifact_expired",
        )
    if path is None:
        raise NotFound(f"Job {id} has no file to download.", code="no_artifact")
    return FileResponse(path, filename=path.name, media_type="text/csv; charset=utf-8")


def _artifact_path(artifact_dir: str, name: str | None) -> FilePath | None:
    """The file `name` directly inside artifact_dir, if it is there (a symlink out of the
    directory does not count)."""
    if name is None:
        return None
    directory = FilePath(artifact_dir).resolve()
    path = (directory / name).resolve()
    if path.parent != directory or not path.is_file():
        return None
    return path
