"""The endpoints that talk to an MCP server (seed 003, docs/seeds/): connect/ (a report, never a
500), tools/ (the remote list, marked, cached, refreshed), the selection (POST creates, PUT
synchronises, DELETE removes), configured-tools/ (no call), secrets in headers, inactive
servers, deadlines and the outbound policy at connect time."""

from __future__ import annotations

import socket
from ipaddress import ip_address
from typing import Any

import httpx
import pytest

from chatsvc.kit import outbound
from chatsvc.kit.outbound import IPAddress
from tests.fakes.mcp_server import FakeMcp
from tests.fixtures.app import Tenant, app_of, services_of
from tests.fixtures.mcp import SHORT_CALL, SHORT_CONNECT, assert_error, new_server

TOOLS = ["add", "echo", "slow", "fail", "big"]


async def select(tenant: Tenant, server_id: int, *names: str) -> dict[str, Any]:
    response = await tenant.admin.post(
        f"/mcp-servers/{server_id}/tools/", json={"selected_tools": list(names)}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def create_secret(tenant: Tenant, name: str, value: str) -> None:
    response = await tenant.admin.post("/secrets/", json={"name": name, "value": value})
    assert response.status_code == 201, response.text


# -- connect/ ------------------------------------------------------------------------------


async def test_connect_reports_the_remote_tools(tenant: Tenant, fake: FakeMcp) -> None:
    server = await new_server(tenant, fake, name="Fake tools")
    response = await tenant.member.get(f"/mcp-servers/{server['id']}/connect/")
    assert response.status_code == 200
    assert response.json() == {
        "server_name": "Fake tools",
        "connection_successful": True,
        "available_tools_count": 5,
        "available_tools": TOOLS,
        "errors": [],
    }


async def test_connect_to_an_older_sse_server(tenant: Tenant, fake: FakeMcp) -> None:
    server = await new_server(tenant, fake, url=fake.sse_url)
    report = (await tenant.admin.get(f"/mcp-servers/{server['id']}/connect/")).json()
    assert report["connection_successful"] is True
    assert report["available_tools"] == TOOLS
    assert any(r.method == "GET" and r.path == "/sse" for r in fake.requests)


async def test_connect_always_asks_the_server(tenant: Tenant, fake: FakeMcp) -> None:
    server = await new_server(tenant, fake)
    for _ in range(2):
        await tenant.admin.get(f"/mcp-servers/{server['id']}/connect/")
    assert fake.rpc_count("tools/list") == 2


async def test_an_inactive_server_is_not_called(tenant: Tenant, fake: FakeMcp) -> None:
    server = await new_server(tenant, fake, active=False)
    base = f"/mcp-servers/{server['id']}"
    report = (await tenant.admin.get(f"{base}/connect/")).json()
    assert report["connection_successful"] is False
    assert report["available_tools_count"] == 0
    assert "inactive" in report["errors"][0]
    assert_error(await tenant.admin.get(f"{base}/tools/"), 409, "server_inactive")
    body = {"selected_tools": ["add"]}
    assert_error(await tenant.admin.post(f"{base}/tools/", json=body), 409, "server_inactive")
    assert_error(await tenant.admin.put(f"{base}/tools/", json=body), 409, "server_inactive")
    assert fake.requests == []


@pytest.mark.usefixtures("short_deadlines")
async def test_a_server_that_hangs_gives_a_report_after_the_connect_deadline(
    tenant: Tenant, fake: FakeMcp
) -> None:
    server = await new_server(tenant, fake)
    fake.configure(hang_on={"*"})
    report = (await tenant.admin.get(f"/mcp-servers/{server['id']}/connect/")).json()
    assert report["connection_successful"] is False
    assert report["errors"] == [
        f"MCP server http://127.0.0.1:{fake.port} did not respond within {SHORT_CONNECT:g} s "
        "while connecting"
    ]


@pytest.mark.usefixtures("short_deadlines")
async def test_a_server_that_hangs_on_tools_list_is_a_504(tenant: Tenant, fake: FakeMcp) -> None:
    server = await new_server(tenant, fake)
    fake.configure(hang_on={"tools/list"})
    error = assert_error(
        await tenant.admin.get(f"/mcp-servers/{server['id']}/tools/"), 504, "upstream_timeout"
    )
    assert f"within {SHORT_CALL:g} s while listing tools" in error["detail"]


async def test_a_failing_server_is_a_502_and_a_report(tenant: Tenant, fake: FakeMcp) -> None:
    server = await new_server(tenant, fake)
    fake.configure(fail_status=503)
    error = assert_error(
        await tenant.admin.get(f"/mcp-servers/{server['id']}/tools/"), 502, "mcp_error"
    )
    assert "answered HTTP 503 Service Unavailable" in error["detail"]
    report = (await tenant.admin.get(f"/mcp-servers/{server['id']}/connect/")).json()
    assert report["connection_successful"] is False
    assert "HTTP 503" in report["errors"][0]


# -- the outbound policy at connect time ---------------------------------------------------


async def test_a_name_resolving_to_a_private_address_is_refused_at_connect(
    monkeypatch: pytest.MonkeyPatch, tenant: Tenant, fake: FakeMcp
) -> None:
    async def resolve(host: str, port: int) -> list[IPAddress]:
        if host == "tools.example.com":
            return [ip_address("10.0.0.7")]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(outbound, "resolve", resolve)
    server = await new_server(tenant, fake, url=fake.url_for("tools.example.com"))
    report = (await tenant.admin.get(f"/mcp-servers/{server['id']}/connect/")).json()
    assert report["connection_successful"] is False
    assert "tools.example.com (which resolves to 10.0.0.7)" in report["errors"][0]
    assert "private" in report["errors"][0]
    error = assert_error(
        await tenant.admin.get(f"/mcp-servers/{server['id']}/tools/"), 400, "outbound_blocked"
    )
    assert "10.0.0.7" in error["detail"]
    assert fake.requests == []


async def test_a_redirect_to_a_private_address_is_not_followed_at_connect(
    tenant: Tenant, fake: FakeMcp
) -> None:
    server = await new_server(tenant, fake)
    fake.configure(redirect_to="http://169.254.169.254/latest/meta-data/")
    report = (await tenant.admin.get(f"/mcp-servers/{server['id']}/connect/")).json()
    assert report["connection_successful"] is False
    assert "redirect (HTTP 307 to http://169.254.169.254:80, not followed)" in report["errors"][0]


async def test_a_url_the_policy_no_longer_admits_is_refused_at_connect(
    tenant: Tenant, fake: FakeMcp, app_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await new_server(tenant, fake)
    # The operator tightens the policy after the server was saved (undone after the test: the
    # app is the session's).
    monkeypatch.setattr(
        services_of(app_of(app_client)).tools.mcp, "policy", outbound.OutboundPolicy()
    )
    report = (await tenant.admin.get(f"/mcp-servers/{server['id']}/connect/")).json()
    assert report["connection_successful"] is False
    assert "scheme 'http' is not allowed" in report["errors"][0]
    assert fake.requests == []


# -- secrets in headers --------------------------------------------------------------------


async def test_header_secrets_are_resolved_at_call_time_and_never_returned(
    tenant: Tenant, fake: FakeMcp, caplog: pytest.LogCaptureFixture
) -> None:
    fake.configure(required_headers={"authorization": "Bearer s3cr3t-value"})
    headers = {"Authorization": "Bearer {{secret:FAKE-TOKEN}}"}
    server = await new_server(tenant, fake, headers=headers)
    assert server["headers"] == headers
    base = f"/mcp-servers/{server['id']}"
    # No such secret yet: a clear failure naming the reference.
    report = (await tenant.admin.get(f"{base}/connect/")).json()
    assert report["connection_successful"] is False
    assert "FAKE-TOKEN" in report["errors"][0]
    assert_error(await tenant.admin.get(f"{base}/tools/"), 400, "secret_not_found")
    assert fake.requests == []
    await create_secret(tenant, "FAKE-TOKEN", "s3cr3t-value")
    report = (await tenant.admin.get(f"{base}/connect/")).json()
    assert report["connection_successful"] is True, report
    assert fake.requests[0].headers["authorization"] == "Bearer s3cr3t-value"
    for path in ("", "/tools/", "/configured-tools/"):
        assert "s3cr3t-value" not in (await tenant.admin.get(base + path)).text
    assert "s3cr3t-value" not in caplog.text
    # A rotated secret is used at the next call (the cached list is keyed by it too).
    response = await tenant.admin.put("/secrets/", json={"name": "FAKE-TOKEN", "value": "rotated"})
    assert response.status_code == 200, response.text
    report = (await tenant.admin.get(f"{base}/connect/")).json()
    assert report["connection_successful"] is False
    assert "HTTP 401" in report["errors"][0]
    assert "rotated" not in str(report)


# -- tools/ --------------------------------------------------------------------------------


async def test_tools_lists_remote_tools_with_parameters_and_marks_configured_ones(
    tenant: Tenant, fake: FakeMcp
) -> None:
    server = await new_server(tenant, fake)
    created = await select(tenant, server["id"], "add")
    tool_id = created["tools"][0]["id"]
    response = await tenant.member.get(f"/mcp-servers/{server['id']}/tools/")
    assert response.status_code == 200, response.text
    body = response.json()
    assert [t["name"] for t in body["tools"]] == TOOLS
    add = body["tools"][0]
    assert add["description"] == "Add two integers."
    assert add["already_configured"] is True
    assert add["input_schema"]["required"] == ["a", "b"]
    assert add["parameters"] == [
        {
            "name": "a",
            "type": "integer",
            "description": "A",
            "required": True,
            "enum": None,
            "properties": None,
            "items": None,
        },
        {
            "name": "b",
            "type": "integer",
            "description": "B",
            "required": True,
            "enum": None,
            "properties": None,
            "items": None,
        },
    ]
    assert [t["already_configured"] for t in body["tools"][1:]] == [False] * 4
    assert body["configured_tools"] == [
        {"id": tool_id, "name": "add", "description": "Add two integers.", "configured": True}
    ]


async def test_tools_uses_the_cache_and_refresh_asks_again(tenant: Tenant, fake: FakeMcp) -> None:
    server = await new_server(tenant, fake)
    path = f"/mcp-servers/{server['id']}/tools/"
    await tenant.admin.get(path)
    sent = len(fake.requests)
    assert fake.rpc_count("tools/list") == 1
    assert (await tenant.admin.get(path)).status_code == 200
    assert len(fake.requests) == sent  # served from the cache: the server saw nothing
    fake.add_tool(lambda: "pong", name="ping")
    try:
        assert [t["name"] for t in (await tenant.admin.get(path)).json()["tools"]] == TOOLS
        fresh = await tenant.admin.get(path, params={"refresh": "true"})
        assert [t["name"] for t in fresh.json()["tools"]] == [*TOOLS, "ping"]
        assert fake.rpc_count("tools/list") == 2
    finally:
        fake.remove_tool("ping")


async def test_editing_a_server_reads_its_tools_again(tenant: Tenant, fake: FakeMcp) -> None:
    server = await new_server(tenant, fake)
    path = f"/mcp-servers/{server['id']}"
    await tenant.admin.get(f"{path}/tools/")
    await tenant.admin.patch(path + "/", json={"headers": {"X-Tenant": "other"}})
    await tenant.admin.get(f"{path}/tools/")
    assert fake.rpc_count("tools/list") == 2
    assert fake.requests[-1].headers["x-tenant"] == "other"


async def test_post_creates_a_tool_per_selected_remote_tool(tenant: Tenant, fake: FakeMcp) -> None:
    server = await new_server(tenant, fake)
    body = await select(tenant, server["id"], "add", "echo")
    assert body["success"] is True
    assert body["message"] == "Created 2 tools"
    assert body["result_data"] == {"created": ["add", "echo"], "kept": [], "deleted": []}
    assert body["server_info"]["id"] == server["id"]
    add, echo = body["tools"]
    assert (add["name"], add["description"], add["server_id"]) == (
        "add",
        "Add two integers.",
        server["id"],
    )
    assert add["selected_tools"] == ["add"]
    assert [(p["name"], p["type"], p["required"]) for p in add["parameters"]] == [
        ("a", "integer", True),
        ("b", "integer", True),
    ]
    assert echo["parameters"][0]["name"] == "text"
    # selecting again keeps what exists
    again = await select(tenant, server["id"], "add", "fail")
    assert again["result_data"] == {"created": ["fail"], "kept": ["add"], "deleted": []}
    assert again["message"] == "Created 1 tool; already configured: add"
    listed = (await tenant.admin.get("/mcp-tools/")).json()
    assert [t["name"] for t in listed] == ["add", "echo", "fail"]


async def test_post_with_nothing_selected_is_400(tenant: Tenant, fake: FakeMcp) -> None:
    server = await new_server(tenant, fake)
    path = f"/mcp-servers/{server['id']}/tools/"
    bodies: list[dict[str, Any]] = [{"selected_tools": []}, {}]
    for body in bodies:
        error = assert_error(await tenant.admin.post(path, json=body), 400, "no_tools_selected")
        assert error["errors"][0]["field"] == "body.selected_tools"
    assert fake.requests == []


async def test_unknown_or_repeated_remote_tools_are_400(tenant: Tenant, fake: FakeMcp) -> None:
    server = await new_server(tenant, fake)
    path = f"/mcp-servers/{server['id']}/tools/"
    error = assert_error(
        await tenant.admin.post(path, json={"selected_tools": ["add", "nope"]}),
        400,
        "unknown_remote_tool",
    )
    assert "'nope'" in error["detail"]
    assert "it offers: add, big, echo, fail, slow" in error["detail"]
    assert (await tenant.admin.get("/mcp-tools/")).json() == []  # nothing half-written
    assert_error(
        await tenant.admin.post(path, json={"selected_tools": ["add", "add"]}), 400, "invalid"
    )


async def test_a_remote_tool_added_since_the_cache_is_found(tenant: Tenant, fake: FakeMcp) -> None:
    server = await new_server(tenant, fake)
    await tenant.admin.get(f"/mcp-servers/{server['id']}/tools/")  # cached without it

    def ping() -> str:
        """Answers pong."""
        return "pong"

    fake.add_tool(ping)
    try:
        body = await select(tenant, server["id"], "ping")
        assert body["tools"][0]["description"] == "Answers pong."
    finally:
        fake.remove_tool("ping")


async def test_put_synchronises_the_selection(
    tenant: Tenant, fake: FakeMcp, app_client: httpx.AsyncClient
) -> None:
    server = await new_server(tenant, fake)
    path = f"/mcp-servers/{server['id']}/tools/"
    first = await select(tenant, server["id"], "add", "echo")
    add_id = first["tools"][0]["id"]
    response = await tenant.admin.put(path, json={"selected_tools": ["add", "big"]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["result_data"] == {"created": ["big"], "kept": ["add"], "deleted": ["echo"]}
    assert body["message"] == "Created 1, kept 1, deleted 1 tool"
    assert [t["name"] for t in body["tools"]] == ["add", "big"]
    assert body["tools"][0]["id"] == add_id  # kept, not re-created
    listed = (await tenant.admin.get("/mcp-tools/")).json()
    assert [t["name"] for t in listed] == ["add", "big"]
    # an empty selection removes them all
    emptied = await tenant.admin.put(path, json={"selected_tools": []})
    assert emptied.status_code == 200
    assert emptied.json()["result_data"]["deleted"] == ["add", "big"]
    assert (await tenant.admin.get("/mcp-tools/")).json() == []


async def test_put_refreshes_the_schema_of_kept_tools(tenant: Tenant, fake: FakeMcp) -> None:
    def tool_v1(query: str) -> str:
        """Version one."""
        return query

    def tool_v2(query: str, limit: int = 10) -> str:
        """Version two."""
        return query

    fake.add_tool(tool_v1, name="search")
    try:
        server = await new_server(tenant, fake)
        created = (await select(tenant, server["id"], "search"))["tools"][0]
        assert [p["name"] for p in created["parameters"]] == ["query"]
        fake.remove_tool("search")
        fake.add_tool(tool_v2, name="search")
        path = f"/mcp-servers/{server['id']}/tools/"
        await tenant.admin.get(path, params={"refresh": "true"})
        synced = (await tenant.admin.put(path, json={"selected_tools": ["search"]})).json()
        kept = synced["tools"][0]
        assert kept["id"] == created["id"]
        assert [(p["name"], p["required"]) for p in kept["parameters"]] == [
            ("query", True),
            ("limit", False),
        ]
    finally:
        fake.remove_tool("search")


async def test_delete_removes_every_tool_of_the_server(tenant: Tenant, fake: FakeMcp) -> None:
    server = await new_server(tenant, fake)
    created = await select(tenant, server["id"], "add", "echo")
    response = await tenant.admin.delete(f"/mcp-servers/{server['id']}/tools/")
    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "message": "Deleted 2 tools",
        "result_data": {
            "deleted": ["add", "echo"],
            "ids": [t["id"] for t in created["tools"]],
        },
    }
    assert (await tenant.admin.get("/mcp-tools/")).json() == []
    assert (await tenant.admin.get(f"/mcp-servers/{server['id']}/")).status_code == 200
    configured = (await tenant.admin.get(f"/mcp-servers/{server['id']}/configured-tools/")).json()
    assert configured["configured_tools"] == []


async def test_configured_tools_does_not_call_the_server(tenant: Tenant, fake: FakeMcp) -> None:
    server = await new_server(tenant, fake, name="Fake", description="The fake")
    created = await select(tenant, server["id"], "echo")
    fake.reset(hang_on={"*"})  # it would hang if it were called
    response = await tenant.member.get(f"/mcp-servers/{server['id']}/configured-tools/")
    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "message": f"1 tool configured for MCP server {server['id']}",
        "configured_tools": [
            {
                "id": created["tools"][0]["id"],
                "name": "echo",
                "description": "Return the text unchanged.",
            }
        ],
        "server_info": {"id": server["id"], "name": "Fake", "description": "The fake"},
    }
    assert fake.requests == []


async def test_members_may_look_but_not_select(tenant: Tenant, fake: FakeMcp) -> None:
    server = await new_server(tenant, fake)
    path = f"/mcp-servers/{server['id']}/tools/"
    assert (await tenant.member.get(path)).status_code == 200
    body = {"selected_tools": ["add"]}
    assert_error(await tenant.member.post(path, json=body), 403, "forbidden")
    assert_error(await tenant.member.put(path, json=body), 403, "forbidden")
    assert_error(await tenant.member.delete(path), 403, "forbidden")


async def test_deleting_a_server_deletes_its_tools_and_drops_them_from_assistants(
    tenant: Tenant, fake: FakeMcp
) -> None:
    server = await new_server(tenant, fake)
    tools = (await select(tenant, server["id"], "add", "echo"))["tools"]
    ids = [t["id"] for t in tools]
    assistant = await tenant.admin.post(
        "/assistants/", json={"description": "Calculator", "tools": ids, "pretools": ids[:1]}
    )
    assert assistant.status_code == 201, assistant.text
    assert assistant.json()["tools"] == ids
    assert (await tenant.admin.delete(f"/mcp-servers/{server['id']}/")).status_code == 204
    assert (await tenant.admin.get("/mcp-tools/")).json() == []
    for tool_id in ids:
        assert_error(await tenant.admin.get(f"/mcp-tools/{tool_id}/"), 404, "not_found")
    after = (await tenant.admin.get(f"/assistants/{assistant.json()['id']}/")).json()
    assert (after["tools"], after["pretools"]) == ([], [])
    # ... and an assistant may not name them again
    refused = await tenant.admin.patch(
        f"/assistants/{assistant.json()['id']}/", json={"tools": ids[:1]}
    )
    assert refused.status_code == 400


async def test_a_secret_is_sent_only_to_its_allowed_origins(
    tenant: Tenant, fake: FakeMcp, caplog: pytest.LogCaptureFixture
) -> None:
    fake.configure(required_headers={"authorization": "Bearer s3cr3t-value"})
    response = await tenant.admin.post(
        "/secrets/",
        json={
            "name": "FAKE-TOKEN",
            "value": "s3cr3t-value",
            "allowed_origins": ["https://crm.example.com"],
        },
    )
    assert response.status_code == 201, response.text
    headers = {"Authorization": "Bearer {{secret:FAKE-TOKEN}}"}
    # Configuration time: a server whose origin the secret does not allow is refused.
    refused = await tenant.admin.post(
        "/mcp-servers/", json={"name": "Fake tools", "url": fake.url, "headers": headers}
    )
    body = assert_error(refused, 400, "secret_origin_not_allowed")
    assert body["errors"][0]["field"] == "body.headers.Authorization"
    assert fake.base_url in body["detail"] and "https://crm.example.com" in body["detail"]
    # Allowed: saved and called with the value.
    allow = {"name": "FAKE-TOKEN", "value": "s3cr3t-value", "allowed_origins": [fake.base_url]}
    assert (await tenant.admin.put("/secrets/", json=allow)).status_code == 200
    server = await new_server(tenant, fake, headers=headers)
    base = f"/mcp-servers/{server['id']}"
    report = (await tenant.admin.get(f"{base}/connect/")).json()
    assert report["connection_successful"] is True, report
    assert fake.requests[0].headers["authorization"] == "Bearer s3cr3t-value"
    # Call time: once the secret no longer allows the server's origin, it is never sent.
    elsewhere = {**allow, "allowed_origins": ["https://crm.example.com"]}
    assert (await tenant.admin.put("/secrets/", json=elsewhere)).status_code == 200
    fake.requests.clear()
    assert_error(await tenant.admin.get(f"{base}/tools/"), 400, "secret_origin_not_allowed")
    report = (await tenant.admin.get(f"{base}/connect/")).json()
    assert report["connection_successful"] is False
    assert "may not be sent to" in report["errors"][0]
    assert fake.requests == []  # the server was not even asked
    # An edit of the server's headers is checked against the secret too.
    edited = await tenant.admin.patch(f"{base}/", json={"headers": {**headers, "X-Tenant": "a"}})
    assert_error(edited, 400, "secret_origin_not_allowed")
    assert "s3cr3t-value" not in caplog.text
