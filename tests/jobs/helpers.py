"""Shared steps of the job tests: submit a job the way application code does, and poll its status
endpoint until a condition holds (never asserting on timing)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx

from chatsvc.jobs.queue import submit
from chatsvc.kit.db import unit_of_work
from tests.conftest import Live


async def submit_job(live: Live, kind: str, payload: dict[str, Any], **kwargs: Any) -> int:
    """Create a job and trigger it after the commit, through the app's own queue."""
    state = live.services
    async with unit_of_work(state.sessionmaker) as session:
        job, _created = await submit(
            session, state.queue, state.settings, live.workspace_id, kind, payload, **kwargs
        )
        return job.id


async def poll_job(
    client: httpx.AsyncClient,
    job_id: int,
    until: Callable[[dict[str, Any]], bool],
    *,
    wait_seconds: float = 60.0,
    describe: Callable[[], str] = lambda: "",
) -> dict[str, Any]:
    """GET /jobs/{id}/ until `until(body)`; fails with the last body after `wait_seconds`."""
    deadline = time.monotonic() + wait_seconds
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await client.get(f"/jobs/{job_id}/")
        assert response.status_code == 200, response.text
        body = response.json()
        if until(body):
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} never got there; last status {body}\n{describe()}")


def finished(body: dict[str, Any]) -> bool:
    return body["state"] in ("succeeded", "failed")
