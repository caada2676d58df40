"""GET /jobs/{id}/ and GET /jobs/{id}/artifact/ on the cognitive face: who sees which job, the
status body, and the download that never leaves artifact_dir."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from chatsvc.auth.models import ApiKey, Role
from chatsvc.config import Settings
from chatsvc.jobs import service as job_service
from tests.fixtures.app import Tenant, make_settings
from tests.fixtures.db import sessionmaker_on


@pytest.fixture(scope="module")
def artifact_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory for the module, so its tests get the same settings (one app); the tests
    write into it and next to it (a path outside it) under names no other test uses."""
    found = tmp_path_factory.mktemp("jobs-api") / "artifacts"
    found.mkdir()
    return found


@pytest.fixture
def settings(pg_url: str, artifact_dir: Path) -> Settings:
    return make_settings(pg_url, artifact_dir=str(artifact_dir))


async def principal_of(connection: AsyncConnection, workspace_id: int, role: Role) -> int:
    async with sessionmaker_on(connection)() as session:
        found = await session.scalar(
            select(ApiKey.principal_id).where(
                ApiKey.workspace_id == workspace_id, ApiKey.role == role
            )
        )
    assert found is not None
    return found


async def make_job(
    connection: AsyncConnection,
    workspace_id: int,
    *,
    created_by: int | None = None,
    result: dict[str, Any] | None = None,
    progress: tuple[int, int] | None = None,
) -> int:
    """A job; with `progress` it is running, with `result` it has succeeded."""
    async with sessionmaker_on(connection)() as session:
        job, _created = await job_service.create_job(
            session, workspace_id, "export", {"chat": 1}, created_by=created_by
        )
        if progress is not None or result is not None:
            await job_service.claim(session, job.id, 60)
        if progress is not None:
            await job_service.progress(session, job.id, *progress)
        if result is not None:
            await job_service.succeed(session, job.id, result)
        await session.commit()
        return job.id


async def test_status_shows_state_progress_and_times(
    tenant: Tenant, pg_connection: AsyncConnection
) -> None:
    job_id = await make_job(pg_connection, tenant.workspace_id, progress=(2, 5))
    for path in (f"/jobs/{job_id}/", f"/jobs/{job_id}"):
        response = await tenant.admin.get(path)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["id"] == job_id and body["kind"] == "export"
        assert (body["state"], body["attempts"], body["max_attempts"]) == ("running", 1, 5)
        assert body["progress"] == {"done": 2, "total": 5}
        assert body["result"] is None and body["result_url"] is None and body["error"] is None
        assert body["created_at"] and body["updated_at"] and body["started_at"]
        assert body["finished_at"] is None


async def test_members_see_their_own_jobs_admins_all_other_workspaces_none(
    tenant: Tenant, other_tenant: Tenant, pg_connection: AsyncConnection
) -> None:
    member = await principal_of(pg_connection, tenant.workspace_id, Role.MEMBER)
    admin = await principal_of(pg_connection, tenant.workspace_id, Role.ADMIN)
    members_job = await make_job(pg_connection, tenant.workspace_id, created_by=member)
    admins_job = await make_job(pg_connection, tenant.workspace_id, created_by=admin)
    assert (await tenant.member.get(f"/jobs/{members_job}/")).status_code == 200
    assert (await tenant.admin.get(f"/jobs/{members_job}/")).status_code == 200
    hidden = await tenant.member.get(f"/jobs/{admins_job}/")
    assert hidden.status_code == 404 and hidden.json()["code"] == "not_found"
    assert (await other_tenant.admin.get(f"/jobs/{members_job}/")).status_code == 404
    assert (await tenant.admin.get("/jobs/999999999/")).status_code == 404
    assert (await tenant.admin.get("/jobs/0/")).status_code == 422
    assert (
        await tenant.admin.get(f"/jobs/{members_job}/", headers={"X-Api-Key": ""})
    ).status_code == 401


async def test_a_result_naming_a_file_links_to_its_download(
    tenant: Tenant, pg_connection: AsyncConnection, settings: Settings
) -> None:
    (Path(settings.artifact_dir) / "chat-1.csv").write_text("id,content\n1,hello\n")
    job_id = await make_job(
        pg_connection, tenant.workspace_id, result={"artifact": "chat-1.csv", "rows": 1}
    )
    body = (await tenant.admin.get(f"/jobs/{job_id}/")).json()
    assert body["state"] == "succeeded" and body["result"]["rows"] == 1
    assert body["result_url"] == f"http://testserver/jobs/{job_id}/artifact/"
    download = await tenant.admin.get(body["result_url"])
    assert download.status_code == 200
    assert download.text == "id,content\n1,hello\n"
    assert 'filename="chat-1.csv"' in download.headers["content-disposition"]


@pytest.mark.parametrize("name", ["../secret.txt", "sub/secret.txt", ".hidden", "..", "a\\b"])
async def test_a_result_naming_a_path_is_never_followed(
    tenant: Tenant, pg_connection: AsyncConnection, settings: Settings, name: str
) -> None:
    outside = Path(settings.artifact_dir).parent / "secret.txt"
    outside.write_text("not yours")
    job_id = await make_job(pg_connection, tenant.workspace_id, result={"artifact": name})
    assert (await tenant.admin.get(f"/jobs/{job_id}/")).json()["result_url"] is None
    response = await tenant.admin.get(f"/jobs/{job_id}/artifact/")
    assert response.status_code == 404 and response.json()["code"] == "no_artifact"


async def test_no_file_means_404_and_a_removed_file_410(
    tenant: Tenant, pg_connection: AsyncConnection, settings: Settings
) -> None:
    plain = await make_job(pg_connection, tenant.workspace_id, result={"rows": 3})
    running = await make_job(pg_connection, tenant.workspace_id, progress=(0, 1))
    for job_id in (plain, running):
        response = await tenant.admin.get(f"/jobs/{job_id}/artifact/")
        assert response.status_code == 404, response.text
    # A finished export whose file the sweeper removed (past CHATSVC_ARTIFACT_RETENTION_HOURS).
    gone = await make_job(pg_connection, tenant.workspace_id, result={"artifact": "gone.csv"})
    response = await tenant.admin.get(f"/jobs/{gone}/artifact/")
    assert response.status_code == 410, response.text
    body = response.json()
    assert body["code"] == "artifact_expired"
    assert "CHATSVC_ARTIFACT_RETENTION_HOURS" in body["detail"]
    assert "export again" in body["detail"]


async def test_the_endpoints_are_documented(app_client: httpx.AsyncClient) -> None:
    document = (await app_client.get("/openapi.json")).json()
    operation = document["paths"]["/jobs/{id}/"]["get"]
    assert operation["operationId"] == "get_job" and operation["tags"] == ["jobs"]
    schema = document["components"]["schemas"]["JobOut"]
    assert {"state", "progress", "result", "result_url", "error"} <= schema["properties"].keys()
    artifact = document["paths"]["/jobs/{id}/artifact/"]["get"]
    assert artifact["operationId"] == "get_job_artifact"
