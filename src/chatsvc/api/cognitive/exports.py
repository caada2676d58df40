"""Cognitive face: POST /exports/ starts a CSV export of conversations as a background job
(not in the seed: the messages-v1 face's period export uses the same job)."""

from __future__ import annotations

from fastapi import Request, Response

from chatsvc.api.cognitive.jobs import JobOut, job_out
from chatsvc.api.deps import AdminDep, IdempotencyKey
from chatsvc.exports.requests import ExportRequestIn, request_export
from chatsvc.kit.web import SettingsDep, SlashRouter, error_responses, invalid_is_400
from chatsvc.services import QueueDep, SessionDep

router = SlashRouter(tags=["jobs"])


@router.post(
    "/exports/",
    response_model=JobOut,
    status_code=202,
    summary="Export conversations as CSV",
    description="One row per message. Follow the job at GET /jobs/{id}/; the file is at "
    "GET /jobs/{id}/artifact/ once it succeeded, and is POSTed to `callback_url` when given. "
    "A repeated Idempotency-Key returns the first job (200).",
    responses={
        200: {"model": JobOut, "description": "The job of an earlier request with this key."},
        **error_responses({404: "The chat or assistant is not in the workspace."}),
    },
)
@invalid_is_400
async def create_export(
    request: Request,
    response: Response,
    body: ExportRequestIn,
    session: SessionDep,
    auth: AdminDep,
    settings: SettingsDep,
    queue: QueueDep,
    idempotency_key: IdempotencyKey = None,
) -> JobOut:
    job, created = await request_export(session, queue, settings, auth, body, idempotency_key)
    response.status_code = 202 if created else 200
    return job_out(request, job)
