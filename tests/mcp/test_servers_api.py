"""/mcp-servers/ and /mcp-servers/{id}/ (seed 003, docs/seeds/): every field, defaults, replace
and partial updates, header rules and masking, URLs checked by the outbound policy when saved,
pagination, roles and workspaces."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.mcp_server import FakeMcp
from tests.fixtures.app import Tenant
from tests.fixtures.mcp import assert_error, new_server

MISSING = 987_654_321
FIELDS = {
    "id",
    "name",
    "description",
    "url",
    "headers",
    "protocol_version",
    "client_name",
    "client_version",
    "active",
    "created_at",
    "updated_at",
}


def full(fake: FakeMcp, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Billing tools",
        "description": "Invoices and refunds",
        "url": fake.url,
        "headers": {"X-Tenant": "acme", "Authorization": "Bearer {{secret:BILLING-TOKEN}}"},
        "protocol_version": "2025-06-18",
        "client_name": "helpdesk",
        "client_version": "2.0",
        "active": False,
    }
    body.update(changes)
    return body


async def test_create_returns_every_field_and_get_reads_it_back(
    tenant: Tenant, fake: FakeMcp
) -> None:
    response = await tenant.admin.post("/mcp-servers/", json=full(fake))
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == FIELDS
    expected = full(fake)
    assert {k: created[k] for k in expected} == expected
    got = await tenant.admin.get(f"/mcp-servers/{created['id']}/")
    assert got.status_code == 200
    assert got.json() == created
    assert fake.requests == []  # saving a server does not call it


async def test_defaults(tenant: Tenant, fake: FakeMcp) -> None:
    created = await new_server(tenant, fake)
    assert created["description"] == ""
    assert created["headers"] == {}
    assert created["protocol_version"] == ""
    assert created["client_name"] == ""
    assert created["client_version"] == ""
    assert created["active"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body.name"),
        ({"name": ""}, "body.name"),
        ({"name": "x" * 256}, "body.name"),
        ({"url": ""}, "body.url"),
        ({"headers": {"X-Bad Name": "v"}}, "body.headers.X-Bad Name.[key]"),
        ({"headers": {"X-Split": "a\r\nInjected: yes"}}, "body.headers"),
        ({"headers": {"Host": "evil.example"}}, "body.headers"),
        ({"headers": {"mcp-session-id": "s"}}, "body.headers"),
        ({"headers": {"x-a": "1", "X-A": "2"}}, "body.headers"),
        ({"headers": {"Authorization": "Bearer {{secret:bad name}}"}}, "body.headers"),
        ({"headers": {"X-N": 5}}, "body.headers.X-N"),
        ({"protocol_version": "1999-01-01"}, "body.protocol_version"),
        ({"active": "maybe"}, "body.active"),
    ],
)
async def test_invalid_bodies_are_400_with_the_field(
    tenant: Tenant, fake: FakeMcp, body: dict[str, Any], field: str
) -> None:
    payload = {"name": "n", "url": fake.url, **body}
    if body == {}:
        payload = {"url": fake.url}
    error = assert_error(await tenant.admin.post("/mcp-servers/", json=payload), 400, "invalid")
    assert any(e["field"].startswith(field) for e in error["errors"]), error


async def test_header_errors_say_why(tenant: Tenant, fake: FakeMcp) -> None:
    cases = {
        "X-Split": ("a\nb", "line break"),
        "Content-Type": ("text/plain", "set by the MCP client"),
        "Authorization": ("{{secret:}}", "malformed secret reference"),
    }
    for name, (value, why) in cases.items():
        body = {"name": "n", "url": fake.url, "headers": {name: value}}
        error = assert_error(await tenant.admin.post("/mcp-servers/", json=body), 400, "invalid")
        assert why in error["detail"], error


# -- the outbound policy, when the URL is saved --------------------------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://[::ffff:127.0.0.1]/mcp", "IPv6 form of 127.0.0.1, loopback"),
        ("https://[::ffff:169.254.169.254]/mcp", "IPv6 form of 169.254.169.254, link-local"),
        ("https://2130706433/mcp", "127.0.0.1 is loopback"),  # decimal
        ("https://0x7f000001/mcp", "127.0.0.1 is loopback"),  # hex
        ("https://10.1.2.3/mcp", "private"),
        ("https://localhost/mcp", "local name"),
        ("https://metadata.google.internal/", "local name"),
        ("http://mcp.example.com/", "scheme 'http' is not allowed"),
        ("ftp://mcp.example.com/", "scheme 'ftp' is not allowed"),
        ("https://mcp.example.com:8443/", "port 8443 is not allowed"),
        ("https://alice:hunter2@mcp.example.com/", "carries credentials"),
        ("not a url", "is not allowed"),
        ("https://127.0.0.1%2f/", "is not a valid DNS name"),
        ("https://a..b/", "is not a valid DNS name"),
        ("https://-mcp.example.com/", "is not a valid DNS name"),
    ],
)
@pytest.mark.usefixtures("default_policy")
async def test_urls_the_default_policy_refuses_are_400_when_saved(
    tenant: Tenant, url: str, why: str
) -> None:
    body = {"name": "n", "url": url}
    error = assert_error(
        await tenant.admin.post("/mcp-servers/", json=body), 400, "outbound_blocked"
    )
    assert why in error["detail"]
    assert error["errors"][0]["field"] == "body.url"
    assert "hunter2" not in str(error)
    assert (await tenant.admin.get("/mcp-servers/")).json() == []  # nothing stored


@pytest.mark.usefixtures("default_policy")
async def test_a_public_https_url_is_accepted_by_the_default_policy(tenant: Tenant) -> None:
    body = {"name": "n", "url": "https://mcp.example.com/mcp"}
    assert (await tenant.admin.post("/mcp-servers/", json=body)).status_code == 201


async def test_credentials_in_the_url_are_refused_and_not_echoed(
    tenant: Tenant, fake: FakeMcp
) -> None:
    url = f"http://alice:hunter2@127.0.0.1:{fake.port}/mcp"
    error = assert_error(
        await tenant.admin.post("/mcp-servers/", json={"name": "n", "url": url}),
        400,
        "outbound_blocked",
    )
    assert "credentials" in error["detail"]
    assert "hunter2" not in str(error) and "alice" not in str(error)


async def test_the_policy_is_checked_on_put_and_patch_too(tenant: Tenant, fake: FakeMcp) -> None:
    server = await new_server(tenant, fake)
    path = f"/mcp-servers/{server['id']}/"
    bad = "http://169.254.169.254/"
    assert_error(await tenant.admin.put(path, json=full(fake, url=bad)), 400, "outbound_blocked")
    assert_error(await tenant.admin.patch(path, json={"url": bad}), 400, "outbound_blocked")
    assert (await tenant.admin.get(path)).json()["url"] == fake.url


# -- updates -------------------------------------------------------------------------------


async def test_put_replaces_and_patch_changes_only_what_is_sent(
    tenant: Tenant, fake: FakeMcp
) -> None:
    server = await new_server(tenant, fake, **full(fake))
    path = f"/mcp-servers/{server['id']}/"
    replaced = await tenant.admin.put(path, json={"name": "Renamed", "url": fake.sse_url})
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert (body["name"], body["url"], body["description"], body["headers"]) == (
        "Renamed",
        fake.sse_url,
        "",
        {},
    )
    assert body["active"] is True  # the default again
    assert body["updated_at"] >= server["updated_at"]
    patched = await tenant.admin.patch(path, json={"description": "Now described", "active": False})
    assert patched.status_code == 200
    after = patched.json()
    assert (after["name"], after["description"], after["active"]) == (
        "Renamed",
        "Now described",
        False,
    )
    assert (await tenant.admin.get(path)).json() == after


async def test_patch_refuses_null_for_a_required_field(tenant: Tenant, fake: FakeMcp) -> None:
    server = await new_server(tenant, fake)
    error = assert_error(
        await tenant.admin.patch(f"/mcp-servers/{server['id']}/", json={"name": None}),
        400,
        "invalid",
    )
    assert "name may not be null" in error["detail"]


# -- headers: references shown, literal credentials masked ---------------------------------


async def test_literal_credentials_are_masked_and_references_shown(
    tenant: Tenant, fake: FakeMcp
) -> None:
    headers = {
        "Authorization": "Bearer sk-live-123",
        "X-Api-Key": "k-456",
        "X-Signed": "{{secret:SIG}}",
        "X-Session-Token": "part-{{secret:TOKEN}}",
        "X-Tenant": "acme",
        "Cookie": "",
    }
    server = await new_server(tenant, fake, headers=headers)
    shown = server["headers"]
    assert shown == {
        "Authorization": "Bearer ****",
        "X-Api-Key": "****",
        "X-Signed": "{{secret:SIG}}",
        "X-Session-Token": "****{{secret:TOKEN}}",
        "X-Tenant": "acme",
        "Cookie": "",
    }
    listed = (await tenant.admin.get("/mcp-servers/")).json()
    assert listed[0]["headers"] == shown
    for secret in ("sk-live-123", "k-456", "part-"):
        assert secret not in str(listed)


async def test_a_masked_value_sent_back_keeps_the_stored_one(tenant: Tenant, fake: FakeMcp) -> None:
    fake.configure(required_headers={"authorization": "Bearer sk-live-123"})
    server = await new_server(tenant, fake, headers={"Authorization": "Bearer sk-live-123"})
    path = f"/mcp-servers/{server['id']}/"
    # A client PUTs back what it got (masked), changing something else.
    got = (await tenant.admin.get(path)).json()
    got["description"] = "edited"
    assert (await tenant.admin.put(path, json=got)).status_code == 200
    # The server is still called with the real value.
    connected = (await tenant.admin.get(f"/mcp-servers/{server['id']}/connect/")).json()
    assert connected["connection_successful"] is True, connected
    # A new value replaces it.
    patched = await tenant.admin.patch(path, json={"headers": {"Authorization": "Bearer other"}})
    assert patched.json()["headers"] == {"Authorization": "Bearer ****"}
    connected = (await tenant.admin.get(f"/mcp-servers/{server['id']}/connect/")).json()
    assert connected["connection_successful"] is False
    assert "HTTP 401" in connected["errors"][0]


# -- lists, delete, roles, workspaces ------------------------------------------------------


async def test_the_list_is_a_paginated_array(tenant: Tenant, fake: FakeMcp) -> None:
    ids = [(await new_server(tenant, fake, name=f"s{i}"))["id"] for i in range(3)]
    first = await tenant.admin.get("/mcp-servers/", params={"page_size": 2})
    assert first.status_code == 200
    assert [s["id"] for s in first.json()] == ids[:2]
    assert first.headers["X-Total-Count"] == "3"
    assert 'rel="next"' in first.headers["Link"]
    second = await tenant.admin.get("/mcp-servers", params={"page_size": 2, "page": 2})
    assert [s["id"] for s in second.json()] == ids[2:]
    assert 'rel="prev"' in second.headers["Link"]
    assert set(second.json()[0]) == FIELDS


async def test_delete_is_204_then_404(tenant: Tenant, fake: FakeMcp) -> None:
    server = await new_server(tenant, fake)
    path = f"/mcp-servers/{server['id']}/"
    deleted = await tenant.admin.delete(path)
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert_error(await tenant.admin.get(path), 404, "not_found")
    assert_error(await tenant.admin.delete(path), 404, "not_found")


async def test_missing_and_malformed_ids(tenant: Tenant) -> None:
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        body = (
            {"name": "n", "url": "https://mcp.example.com/"} if method in ("PUT", "PATCH") else None
        )
        response = await tenant.admin.request(method, f"/mcp-servers/{MISSING}/", json=body)
        assert_error(response, 404, "not_found")
    assert_error(await tenant.admin.get("/mcp-servers/abc/"), 422, "invalid")
    assert_error(await tenant.admin.get("/mcp-servers/0/"), 422, "invalid")


async def test_members_read_and_admins_write(tenant: Tenant, fake: FakeMcp) -> None:
    server = await new_server(tenant, fake)
    path = f"/mcp-servers/{server['id']}/"
    assert (await tenant.member.get("/mcp-servers/")).status_code == 200
    assert (await tenant.member.get(path)).json()["id"] == server["id"]
    body = {"name": "n", "url": fake.url}
    assert_error(await tenant.member.post("/mcp-servers/", json=body), 403, "forbidden")
    assert_error(await tenant.member.put(path, json=body), 403, "forbidden")
    assert_error(await tenant.member.patch(path, json=body), 403, "forbidden")
    assert_error(await tenant.member.delete(path), 403, "forbidden")


async def test_another_workspace_sees_nothing(
    tenant: Tenant, other_tenant: Tenant, fake: FakeMcp
) -> None:
    server = await new_server(tenant, fake)
    path = f"/mcp-servers/{server['id']}/"
    assert (await other_tenant.admin.get("/mcp-servers/")).json() == []
    for method in ("GET", "DELETE"):
        assert_error(await other_tenant.admin.request(method, path), 404, "not_found")
    assert_error(await other_tenant.admin.patch(path, json={"name": "stolen"}), 404, "not_found")
    for suffix in ("configured-tools/", "connect/", "tools/"):
        assert_error(await other_tenant.admin.get(path + suffix), 404, "not_found")
    assert fake.requests == []


async def test_without_a_key_it_is_401(tenant: Tenant, fake: FakeMcp) -> None:
    server = await new_server(tenant, fake)
    anonymous = tenant.admin.headers.pop("X-Api-Key")
    try:
        assert_error(await tenant.admin.get("/mcp-servers/"), 401, "missing_api_key")
        assert_error(
            await tenant.admin.get(f"/mcp-servers/{server['id']}/connect/"), 401, "missing_api_key"
        )
    finally:
        tenant.admin.headers["X-Api-Key"] = anonymous
