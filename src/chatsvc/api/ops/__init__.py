"""Operational endpoints: liveness, readiness and Prometheus metrics (no auth)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from chatsvc.kit.web import operation_id
from chatsvc.services import EngineDep, RedisDep

router = APIRouter(tags=["operations"], generate_unique_id_function=operation_id)


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    """Answers 200 while the process runs; it checks nothing else (/readyz checks the database and
    Redis). No API key."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: the database (and Redis when configured) answer",
    responses={503: {"description": "A dependency is down."}},
)
async def readyz(engine: EngineDep, redis: RedisDep) -> Response:
    """200 when the database (and Redis, when configured) answer a trivial query, else 503 with the
    error of each failed check. No API key."""
    checks: dict[str, Any] = {}
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # readiness reports, never raises
        checks["database"] = f"error: {type(exc).__name__}"
    if redis is not None:
        try:
            await redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
    ok = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics() -> Response:
    """The process's metrics in the Prometheus text format (requests, latencies, generations). No
    API key."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
