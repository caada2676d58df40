"""API keys, roles and workspace isolation."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from chatsvc.auth.models import ApiKey
from chatsvc.kit.db import utcnow
from tests.fixtures.app import Tenant


async def test_no_key_is_401_with_a_hint(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/assistants/")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = response.json()
    assert body["code"] == "missing_api_key"
    assert "X-Api-Key" in body["detail"]


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Api-Key": "csk_not-a-real-key"},
        {"Authorization": "Bearer csk_not-a-real-key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"X-Api-Key": "x" * 5000},
    ],
)
async def test_wrong_key_is_401(
    app_client: httpx.AsyncClient, tenant: Tenant, headers: dict[str, str]
) -> None:
    response = await app_client.get("/assistants/", headers=headers)
    assert response.status_code == 401
    assert "csk_not-a-real-key" not in response.text  # the key is never echoed


async def test_both_header_forms_are_accepted(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    for headers in (
        {"X-Api-Key": tenant.admin_key},
        {"Authorization": f"Bearer {tenant.admin_key}"},
    ):
        assert (await app_client.get("/assistants/", headers=headers)).status_code == 200


async def test_revoked_key_is_401(
    app_client: httpx.AsyncClient, tenant: Tenant, pg_connection: AsyncConnection
) -> None:
    await pg_connection.execute(
        update(ApiKey).where(ApiKey.workspace_id == tenant.workspace_id).values(revoked_at=utcnow())
    )
    response = await app_client.get("/assistants/", headers={"X-Api-Key": tenant.admin_key})
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_api_key"


async def test_member_reads_but_cannot_change_assistants(tenant: Tenant) -> None:
    created = (await tenant.admin.post("/assistants/", json={"description": "x"})).json()
    url = f"/assistants/{created['id']}/"
    assert (await tenant.member.get("/assistants/")).status_code == 200
    assert (await tenant.member.get("/assistants/info/")).status_code == 200
    assert (await tenant.member.get(url)).status_code == 200
    for response in (
        await tenant.member.post("/assistants/", json={"description": "y"}),
        await tenant.member.put(url, json={"description": "y"}),
        await tenant.member.patch(url, json={"description": "y"}),
        await tenant.member.delete(url),
    ):
        assert response.status_code == 403
        assert response.json()["code"] == "forbidden"
    assert (await tenant.admin.get(url)).json()["description"] == "x"
    assert (await tenant.admin.get("/assistants/")).json()["count"] == 1


async def test_other_workspace_sees_nothing(tenant: Tenant, other_tenant: Tenant) -> None:
    created = (await tenant.admin.post("/assistants/", json={"description": "secret"})).json()
    url = f"/assistants/{created['id']}/"
    assert (await other_tenant.admin.get("/assistants/")).json()["count"] == 0
    assert (await other_tenant.admin.get("/assistants/info/")).json()["count"] == 0
    for response in (
        await other_tenant.admin.get(url),
        await other_tenant.admin.put(url, json={"description": "stolen"}),
        await other_tenant.admin.patch(url, json={"description": "stolen"}),
        await other_tenant.admin.delete(url),
        await other_tenant.member.get(url),
    ):
        assert response.status_code == 404
        assert "secret" not in response.text
    assert (await tenant.admin.get(url)).json()["description"] == "secret"
