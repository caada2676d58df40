from __future__ import annotations

import httpx

from tests.conftest import Tenant


async def test_smoke(tenant: Tenant, app_client: httpx.AsyncClient) -> None:
    response = await tenant.admin.post("/assistants/", json={"description": "Help desk"})
    assert response.status_code == 201, response.text
    assert (await app_client.get("/assistants/")).status_code == 401
