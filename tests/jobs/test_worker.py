"""The real arq worker (`python -m chatsvc.cli worker`) as a subprocess, on the live PostgreSQL
database and Redis db 13: a job runs to success; a worker killed mid-job (SIGKILL: no clean-up at
all) loses nothing, because the sweeper of the next worker re-enqueues the job once its lease
expires and the job then succeeds exactly once, on its second attempt."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from chatsvc.jobs.models import Job
from tests.fixtures.app import Live, live_tenant, make_settings
from tests.fixtures.jobs import ROOT, WORKER_REDIS_URL, finished, poll_job, submit_job, workers


@pytest.fixture
async def redis_db() -> str:
    redis = Redis.from_url(WORKER_REDIS_URL)
    try:
        await redis.flushdb()  # no arq triggers left over from an earlier run
    finally:
        await redis.aclose()
    return WORKER_REDIS_URL


@pytest.fixture
async def api(live_pg_url: str, redis_db: str) -> AsyncIterator[Live]:
    """The API on the same database and Redis: its queue is the arq queue the workers read."""
    async with live_tenant(make_settings(live_pg_url, redis_url=redis_db)) as live:
        yield live


async def test_the_worker_runs_a_job_to_success(
    api: Live, live_pg_url: str, tmp_path: Path
) -> None:
    with workers(live_pg_url, tmp_path) as pool:
        pool.start()
        job_id = await submit_job(api, "noop", {"steps": 2, "sleep": 0.1})
        body = await poll_job(api.admin, job_id, finished, wait_seconds=90, describe=pool.output)
        assert body["state"] == "succeeded", pool.output()
        assert (body["attempts"], body["result"]) == (1, {"steps": 2})
        assert body["progress"] == {"done": 2, "total": 2}


async def test_a_job_survives_its_worker_being_killed(
    api: Live, live_pg_url: str, tmp_path: Path
) -> None:
    with workers(live_pg_url, tmp_path) as pool:
        first = pool.start()
        job_id = await submit_job(api, "noop", {"steps": 6, "sleep": 1}, idempotency_key="slow")
        # The status endpoint shows the job part-way through on the first worker...
        running = await poll_job(
            api.admin,
            job_id,
            lambda b: b["state"] == "running" and b["progress"]["done"] >= 2,
            wait_seconds=90,
            describe=pool.output,
        )
        assert running["progress"]["total"] == 6 and running["attempts"] == 1
        first.send_signal(signal.SIGKILL)  # ...which dies without a word
        first.wait(timeout=30)
        pool.start()
        body = await poll_job(api.admin, job_id, finished, wait_seconds=120, describe=pool.output)
        assert body["state"] == "succeeded", pool.output()
        assert (body["attempts"], body["result"]) == (2, {"steps": 6})
        assert body["progress"] == {"done": 6, "total": 6} and body["error"] is None
    async with api.services.sessionmaker() as session:
        jobs = await session.scalar(
            select(func.count(Job.id)).where(
                Job.workspace_id == api.workspace_id, Job.idempotency_key == "slow"
            )
        )
    assert jobs == 1


async def test_a_worker_stopped_with_sigterm_hands_its_job_back(
    api: Live, live_pg_url: str, tmp_path: Path
) -> None:
    with workers(live_pg_url, tmp_path) as pool:
        first = pool.start()
        job_id = await submit_job(api, "noop", {"steps": 4, "sleep": 1})
        await poll_job(
            api.admin,
            job_id,
            lambda b: b["progress"]["done"] >= 1,
            wait_seconds=90,
            describe=pool.output,
        )
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == 0, pool.output()
        handed_back = (await api.admin.get(f"/jobs/{job_id}/")).json()
        # Back in the queue, and the interrupted attempt does not count against the job.
        assert (handed_back["state"], handed_back["attempts"]) == ("queued", 0), pool.output()
        pool.start()
        body = await poll_job(api.admin, job_id, finished, wait_seconds=120, describe=pool.output)
        assert (body["state"], body["attempts"]) == ("succeeded", 1), pool.output()


def test_without_redis_the_worker_explains_and_exits_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATSVC_")}
    env["CHATSVC_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'chatsvc.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "chatsvc.cli", "worker"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "CHATSVC_REDIS_URL" in done.stderr and "in its own process" in done.stderr
