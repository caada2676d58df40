"""The artifacts-v5 face (seed 000: docs/seeds/000_bbeed2de861aaa6f.txt):
`/api/v5/artifacts/chat/…`, string ids, snake_case, drafts with `expected_version`. `mount(app)`
adds its routes and its 409 body."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from chatsvc.api.artifacts_v5.router import router
from chatsvc.api.artifacts_v5.schemas import VersionConflictBody
from chatsvc.artifacts.errors import VersionConflict
from chatsvc.kit.web import FieldErrorBody, add_routes_of

__all__ = ["mount", "router"]


async def _version_conflict(request: Request, exc: Exception) -> JSONResponse:
    """The one error of this face with more than the shared body: the current version."""
    assert isinstance(exc, VersionConflict)
    body = VersionConflictBody(
        detail=exc.message,
        code=exc.code,
        errors=[FieldErrorBody(field=f"body.{e.field}", message=e.message) for e in exc.errors],
        request_id=request.scope.get("state", {}).get("request_id"),
        current_version=exc.current_version,
        draft_id=exc.draft_id,
    )
    return JSONResponse(body.model_dump(), status_code=409)


def mount(app: FastAPI) -> None:
    add_routes_of(app, router)
    app.add_exception_handler(VersionConflict, _version_conflict)
