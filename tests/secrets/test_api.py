"""API tests of /secrets/ (seed 003, docs/seeds/), on both backends (the app client's store is the
local one inside the test's transaction, or Key Vault through the fake vault): admin only,
write-only values, 409/404/400/422 with reasons, per-workspace isolation, and no value in any error
body or log record."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from chatsvc.kit.errors import NotFound
from chatsvc.secrets.store import SecretStore, resolve_references
from tests.fixtures.app import Tenant, app_of, services_of

DESTINATION = "https://api.example.com/v1/search"
VALUE = "sk-live-5e6f7a8b-not-for-logs-or-bodies"
MASK = "********"


def store_of(client: httpx.AsyncClient) -> SecretStore:
    store: SecretStore = services_of(app_of(client)).tools.secrets
    return store


async def create(client: httpx.AsyncClient, name: str, value: str = VALUE) -> dict[str, Any]:
    response = await client.post("/secrets/", json={"name": name, "value": value})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_the_seed_flow_with_masked_values(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    admin = tenant.admin
    assert (await admin.get("/secrets/")).json() == []
    assert await create(admin, "OPENAI-API-KEY") == {
        "name": "OPENAI-API-KEY",
        "value": MASK,
        "allowed_origins": None,
    }
    await create(admin, "crm-token", "another value")
    listed = await admin.get("/secrets/")
    assert listed.status_code == 200
    assert listed.json() == [
        {"name": "crm-token", "value": MASK, "allowed_origins": None},
        {"name": "OPENAI-API-KEY", "value": MASK, "allowed_origins": None},
    ]
    updated = await admin.put("/secrets/", json={"name": "openai-api-key", "value": "rotated"})
    assert updated.status_code == 200
    assert updated.json() == {"name": "OPENAI-API-KEY", "value": MASK, "allowed_origins": None}
    # What tools get, at call time.
    store = store_of(app_client)
    assert await store.get(tenant.workspace_id, "OPENAI-API-KEY") == "rotated"
    deleted = await admin.request("DELETE", "/secrets/", json={"name": "OPENAI-API-KEY"})
    assert deleted.status_code == 200
    assert deleted.json() == {"name": "OPENAI-API-KEY"}
    assert (await admin.get("/secrets/")).json() == [
        {"name": "crm-token", "value": MASK, "allowed_origins": None}
    ]
    with pytest.raises(NotFound):
        await store.get(tenant.workspace_id, "OPENAI-API-KEY")


async def test_paths_without_the_trailing_slash(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    admin = tenant.admin
    created = await admin.post("/secrets", json={"name": "k", "value": VALUE})
    assert created.status_code == 201
    assert (await admin.put("/secrets", json={"name": "k", "value": "v2"})).status_code == 200
    assert (await admin.get("/secrets")).json() == [
        {"name": "k", "value": MASK, "allowed_origins": None}
    ]
    assert (await admin.request("DELETE", "/secrets", json={"name": "k"})).status_code == 200


async def test_delete_ignores_a_value_in_its_body(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await create(tenant.admin, "old-key")
    response = await tenant.admin.request(
        "DELETE", "/secrets/", json={"name": "old-key", "value": "not the value at all"}
    )
    assert response.status_code == 200
    assert response.json() == {"name": "old-key"}


async def test_a_deleted_name_can_be_created_again(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await create(tenant.admin, "reborn", "first")
    deleted = await tenant.admin.request("DELETE", "/secrets/", json={"name": "reborn"})
    assert deleted.status_code == 200
    assert await create(tenant.admin, "reborn", "second") == {
        "name": "reborn",
        "value": MASK,
        "allowed_origins": None,
    }
    assert await store_of(app_client).get(tenant.workspace_id, "reborn") == "second"


async def test_secrets_are_for_admins_only(app_client: httpx.AsyncClient, tenant: Tenant) -> None:
    await create(tenant.admin, "admin-made")
    calls = [
        ("GET", None),
        ("POST", {"name": "member-made", "value": VALUE}),
        ("PUT", {"name": "admin-made", "value": "member's value"}),
        ("DELETE", {"name": "admin-made"}),
    ]
    for method, body in calls:
        refused = await tenant.member.request(method, "/secrets/", json=body)
        assert refused.status_code == 403, (method, refused.text)
        assert refused.json()["code"] == "forbidden"
        assert (
            "admin API key is required to manage the workspace's secrets"
            in (refused.json()["detail"])
        )
        anonymous = await app_client.request(method, "/secrets/", json=body)
        assert anonymous.status_code == 401
    assert (await tenant.admin.get("/secrets/")).json() == [
        {"name": "admin-made", "value": MASK, "allowed_origins": None}
    ]
    assert await store_of(app_client).get(tenant.workspace_id, "admin-made") == VALUE


async def test_creating_an_existing_name_is_409(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await create(tenant.admin, "Stripe-Key")
    for name in ("Stripe-Key", "stripe-key"):
        response = await tenant.admin.post("/secrets/", json={"name": name, "value": "other"})
        assert response.status_code == 409
        body = response.json()
        assert body["code"] == "secret_exists"
        assert "'Stripe-Key' already exists" in body["detail"]
        assert "PUT /secrets/" in body["detail"]
    assert await store_of(app_client).get(tenant.workspace_id, "Stripe-Key") == VALUE


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_changing_a_missing_name_is_404(
    app_client: httpx.AsyncClient, tenant: Tenant, method: str
) -> None:
    response = await tenant.admin.request(
        method, "/secrets/", json={"name": "never-made", "value": VALUE}
    )
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "secret_not_found"
    assert body["detail"] == "No secret named 'never-made' in this workspace."
    assert (await tenant.admin.get("/secrets/")).json() == []


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("my_key", "may contain only letters A-Z a-z, digits 0-9 and dashes (found '_')"),
        ("", "must not be empty"),
        ("x" * 130, "is 130 characters long; the limit is"),
        ("OPENAI API KEY", "may contain only letters A-Z a-z, digits 0-9 and dashes (found ' ')"),
    ],
)
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_a_bad_name_is_400_with_the_rule(
    app_client: httpx.AsyncClient, tenant: Tenant, method: str, name: str, message: str
) -> None:
    response = await tenant.admin.request(method, "/secrets/", json={"name": name, "value": VALUE})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_name"
    assert body["errors"][0]["field"] == "body.name"
    assert body["errors"][0]["message"].startswith(message)
    assert (await tenant.admin.get("/secrets/")).json() == []


async def test_the_name_limit_counts_the_vault_prefix_on_azure(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await tenant.admin.post("/secrets/", json={"name": "n" * 127, "value": VALUE})
    if not hasattr(app_of(app_client).state, "fake_vault"):
        assert response.status_code == 201  # local: Key Vault's 127
        return
    prefix = len(f"ws{tenant.workspace_id}-")
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == (
        f"is 127 characters long; the limit is {127 - prefix} here (Key Vault's 127 include "
        f"this workspace's prefix of {prefix} characters)"
    )
    fits = await tenant.admin.post("/secrets/", json={"name": "n" * (127 - prefix), "value": "v"})
    assert fits.status_code == 201


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({"value": VALUE}, "body.name", 422),
        ({"name": "k"}, "body.value", 422),
        ({"name": "k", "value": 12345}, "body.value", 422),
        ({"name": ["k"], "value": VALUE}, "body.name", 422),
        ({"name": "k", "value": ""}, "body.value", 400),
        ({"name": "k", "value": "x" * 25_601}, "body.value", 400),
        ({"name": "k", "value": f"{VALUE}\x00"}, "body.value", 422),
    ],
)
async def test_a_malformed_body_names_the_field(
    app_client: httpx.AsyncClient,
    tenant: Tenant,
    body: dict[str, Any],
    field: str,
    status: int,
) -> None:
    response = await tenant.admin.post("/secrets/", json=body)
    assert response.status_code == status, response.text
    assert response.json()["errors"][0]["field"] == field
    assert VALUE not in response.text


async def test_workspaces_do_not_see_each_others_secrets(
    app_client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    await create(tenant.admin, "shared-name", "acme's value")
    other = other_tenant.admin
    assert (await other.get("/secrets/")).json() == []
    changed = await other.put("/secrets/", json={"name": "shared-name", "value": "globex's"})
    assert changed.status_code == 404
    gone = await other.request("DELETE", "/secrets/", json={"name": "shared-name"})
    assert gone.status_code == 404
    # Its own secret of the same name is another secret.
    await create(other, "shared-name", "globex's value")
    store = store_of(app_client)
    assert await store.get(tenant.workspace_id, "shared-name") == "acme's value"
    assert await store.get(other_tenant.workspace_id, "shared-name") == "globex's value"
    await other.request("DELETE", "/secrets/", json={"name": "shared-name"})
    # A tool of the other workspace cannot resolve acme's secret.
    with pytest.raises(NotFound) as missing:
        await resolve_references(
            store,
            other_tenant.workspace_id,
            "Bearer {{secret:shared-name}}",
            destination=DESTINATION,
        )
    assert "acme's value" not in missing.value.message
    resolved = await resolve_references(
        store, tenant.workspace_id, "{{secret:shared-name}}", destination=DESTINATION
    )
    assert resolved == "acme's value"


async def test_no_value_in_any_error_body_or_log_record(
    app_client: httpx.AsyncClient,
    tenant: Tenant,
    other_tenant: Tenant,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    admin = tenant.admin
    responses = [
        await admin.post("/secrets/", json={"name": "leaky", "value": VALUE}),
        await admin.post("/secrets/", json={"name": "leaky", "value": VALUE}),  # 409
        await admin.post("/secrets/", json={"name": "bad_name", "value": VALUE}),  # 400
        await admin.post("/secrets/", json={"name": "big", "value": VALUE * 1000}),  # 400
        await admin.post(  # a lone surrogate (JSON-escaped): not storable, 422
            "/secrets/",
            content=f'{{"name": "k", "value": "{VALUE}\\ud800"}}'.encode(),
            headers={"Content-Type": "application/json"},
        ),
        await admin.post(
            "/secrets/",
            content=f'{{"name": "k", "value": "{VALUE}"'.encode(),  # malformed JSON: 422
            headers={"Content-Type": "application/json"},
        ),
        await admin.put("/secrets/", json={"name": "absent", "value": VALUE}),  # 404
        await admin.put("/secrets/", json={"name": "leaky", "value": VALUE + "-2"}),
        await other_tenant.admin.put("/secrets/", json={"name": "leaky", "value": VALUE}),
        await tenant.member.post("/secrets/", json={"name": "m", "value": VALUE}),  # 403
        await admin.get("/secrets/"),
        await admin.request("DELETE", "/secrets/", json={"name": "leaky", "value": VALUE}),
        await admin.request("DELETE", "/secrets/", json={"name": "leaky", "value": VALUE}),
    ]
    statuses = [r.status_code for r in responses]
    assert statuses == [201, 409, 400, 400, 422, 422, 404, 200, 404, 403, 200, 200, 404]
    for response in responses:
        assert VALUE not in response.text
    for record in caplog.records:
        assert VALUE not in record.getMessage()
        assert VALUE not in (record.exc_text or "")
        assert VALUE not in repr(record.args)


async def test_openapi_documents_the_four_operations(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    schema = (await app_client.get("/openapi.json")).json()
    operations = schema["paths"]["/secrets/"]
    assert {m: op["operationId"] for m, op in operations.items()} == {
        "get": "list_secrets",
        "post": "create_secret",
        "put": "update_secret",
        "delete": "delete_secret",
    }
    assert operations["post"]["responses"].keys() >= {"201", "400", "409", "422"}
    assert "requestBody" in operations["delete"]


async def test_allowed_origins_go_in_and_come_out(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    admin = tenant.admin
    body = {"name": "crm-token", "value": VALUE, "allowed_origins": ["https://CRM.example.com/"]}
    made = await admin.post("/secrets/", json=body)
    assert made.status_code == 201, made.text
    restricted = {
        "name": "crm-token",
        "value": MASK,
        "allowed_origins": ["https://crm.example.com"],
    }
    assert made.json() == restricted
    assert (await admin.get("/secrets/")).json() == [restricted]
    # PUT without the field keeps the origins; with null it lifts them.
    kept = await admin.put("/secrets/", json={"name": "crm-token", "value": "new value"})
    assert kept.json() == restricted
    lifted = await admin.put(
        "/secrets/", json={"name": "crm-token", "value": "v3", "allowed_origins": None}
    )
    assert lifted.json() == {"name": "crm-token", "value": MASK, "allowed_origins": None}
    bad = await admin.put(
        "/secrets/",
        json={"name": "crm-token", "value": "v4", "allowed_origins": ["https://crm.example.com/x"]},
    )
    assert bad.status_code == 400, bad.text
    assert bad.json()["code"] == "invalid_origins"
    assert bad.json()["errors"][0]["field"] == "body.allowed_origins[0]"
    assert "v4" not in bad.text
