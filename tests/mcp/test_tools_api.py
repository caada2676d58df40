"""/mcp-tools/ and /mcp-tools/{id}/ (seed 003, docs/seeds/): create from a server (by id or
inline), one tool per selected remote tool, every field, replace and partial updates (re-pointing
reads the schema again), soft delete, pagination, roles and workspaces."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.mcp_server import FakeMcp
from tests.fixtures.app import Tenant
from tests.fixtures.mcp import assert_error, new_server

FIELDS = {
    "id",
    "name",
    "description",
    "created_at",
    "updated_at",
    "show_tool_message",
    "show_assistant_message",
    "edit_available",
    "portal_available",
    "server",
    "server_id",
    "parameters",
    "selected_tools",
}


async def create(tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    response = await tenant.admin.post("/mcp-tools/", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_create_from_a_server_id_returns_every_field(tenant: Tenant, fake: FakeMcp) -> None:
    server = await new_server(tenant, fake)
    body = {
        "name": "Adder",
        "description": "Adds for the help desk",
        "show_tool_message": False,
        "show_assistant_message": False,
        "edit_available": False,
        "portal_available": False,
        "server_id": server["id"],
        "selected_tools": ["add"],
    }
    response = await tenant.admin.post("/mcp-tools/", json=body)
    assert response.status_code == 201, response.text
    tool = response.json()
    assert set(tool) == FIELDS
    assert response.headers["X-Created-Ids"] == str(tool["id"])
    assert (tool["name"], tool["description"]) == ("Adder", "Adds for the help desk")
    assert (
        tool["show_tool_message"],
        tool["show_assistant_message"],
        tool["edit_available"],
        tool["portal_available"],
    ) == (False, False, False, False)
    assert tool["server_id"] == server["id"]
    assert tool["server"] == server
    assert tool["selected_tools"] == ["add"]
    assert [p["name"] for p in tool["parameters"]] == ["a", "b"]
    assert set(tool["parameters"][0]) == {
        "id",
        "name",
        "description",
        "type",
        "items",
        "required",
        "enum",
        "properties",
    }
    got = await tenant.member.get(f"/mcp-tools/{tool['id']}/")
    assert got.status_code == 200
    assert got.json() == tool


async def test_defaults_come_from_the_remote_tool(tenant: Tenant, fake: FakeMcp) -> None:
    server = await new_server(tenant, fake)
    tool = await create(tenant, {"server_id": server["id"], "selected_tools": ["echo"]})
    assert (tool["name"], tool["description"]) == ("echo", "Return the text unchanged.")
    assert tool["show_tool_message"] is True
    assert tool["portal_available"] is True


async def test_several_selected_tools_make_several_rows(tenant: Tenant, fake: FakeMcp) -> None:
    server = await new_server(tenant, fake)
    response = await tenant.admin.post(
        "/mcp-tools/", json={"server_id": server["id"], "selected_tools": ["add", "echo", "fail"]}
    )
    assert response.status_code == 201
    first = response.json()
    ids = [int(i) for i in response.headers["X-Created-Ids"].split(",")]
    assert ids[0] == first["id"]
    assert len(ids) == 3
    listed = (await tenant.admin.get("/mcp-tools/")).json()
    assert [(t["id"], t["name"]) for t in listed] == list(
        zip(ids, ["add", "echo", "fail"], strict=True)
    )
    # a name applies to one tool only
    error = assert_error(
        await tenant.admin.post(
            "/mcp-tools/",
            json={"server_id": server["id"], "selected_tools": ["big", "slow"], "name": "x"},
        ),
        400,
        "invalid",
    )
    assert error["errors"][0]["field"] == "body.name"


async def test_create_with_an_inline_server_creates_both(tenant: Tenant, fake: FakeMcp) -> None:
    body = {
        "server": {"name": "Inline", "url": fake.url, "headers": {"X-Tenant": "acme"}},
        "selected_tools": ["add"],
    }
    tool = await create(tenant, body)
    assert tool["server"]["name"] == "Inline"
    assert tool["server"]["headers"] == {"X-Tenant": "acme"}
    servers = (await tenant.admin.get("/mcp-servers/")).json()
    assert [s["id"] for s in servers] == [tool["server_id"]]
    assert fake.requests[0].headers["x-tenant"] == "acme"


async def test_nothing_is_written_when_the_inline_server_fails(
    tenant: Tenant, fake: FakeMcp
) -> None:
    body = {"server": {"name": "Inline", "url": fake.url}, "selected_tools": ["nope"]}
    assert_error(await tenant.admin.post("/mcp-tools/", json=body), 400, "unknown_remote_tool")
    fake.configure(fail_status=500)
    body["selected_tools"] = ["add"]
    assert_error(await tenant.admin.post("/mcp-tools/", json=body), 502, "mcp_error")
    assert (await tenant.admin.get("/mcp-servers/")).json() == []
    assert (await tenant.admin.get("/mcp-tools/")).json() == []


@pytest.mark.usefixtures("default_policy")
async def test_an_inline_server_url_is_checked_before_anything(tenant: Tenant) -> None:
    body = {
        "server": {"name": "Inline", "url": "https://169.254.169.254/"},
        "selected_tools": ["add"],
    }
    error = assert_error(await tenant.admin.post("/mcp-tools/", json=body), 400, "outbound_blocked")
    assert error["errors"][0]["field"] == "body.server.url"
    assert "link-local" in error["detail"]


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"selected_tools": ["add"]}, "no_server", "body.server_id"),
        ({"server_id": 987654321, "selected_tools": ["add"]}, "unknown_server", "body.server_id"),
        ({"server_id": "SERVER", "selected_tools": []}, "no_tools_selected", "body.selected_tools"),
        ({"server_id": "SERVER"}, "no_tools_selected", "body.selected_tools"),
        ({"server_id": "SERVER", "selected_tools": ["nope"]}, "unknown_remote_tool", ""),
        ({"server_id": "SERVER", "selected_tools": ["a", "a"]}, "invalid", "body.selected_tools"),
        ({"server_id": 0, "selected_tools": ["add"]}, "invalid", "body.server_id"),
        ({"server": {"url": "x"}, "selected_tools": ["add"]}, "invalid", "body.server.name"),
        ({"server_id": "SERVER", "selected_tools": ["add"], "name": ""}, "invalid", "body.name"),
    ],
)
async def test_bad_creates_are_400(
    tenant: Tenant, fake: FakeMcp, body: dict[str, Any], code: str, field: str
) -> None:
    server = await new_server(tenant, fake)
    payload = {k: server["id"] if v == "SERVER" else v for k, v in body.items()}
    error = assert_error(await tenant.admin.post("/mcp-tools/", json=payload), 400, code)
    if field:
        assert any(e["field"].startswith(field) for e in error["errors"]), error
    assert (await tenant.admin.get("/mcp-tools/")).json() == []


async def test_an_already_configured_remote_tool_is_a_409(tenant: Tenant, fake: FakeMcp) -> None:
    server = await new_server(tenant, fake)
    first = await create(tenant, {"server_id": server["id"], "selected_tools": ["add"]})
    error = assert_error(
        await tenant.admin.post(
            "/mcp-tools/", json={"server_id": server["id"], "selected_tools": ["add"]}
        ),
        409,
        "already_configured",
    )
    assert f"tool {first['id']}" in error["detail"]


async def test_an_inactive_server_gets_no_new_tools(tenant: Tenant, fake: FakeMcp) -> None:
    server = await new_server(tenant, fake, active=False)
    body = {"server_id": server["id"], "selected_tools": ["add"]}
    assert_error(await tenant.admin.post("/mcp-tools/", json=body), 409, "server_inactive")
    assert fake.requests == []


async def test_put_replaces_display_settings_without_calling_the_server(
    tenant: Tenant, fake: FakeMcp
) -> None:
    server = await new_server(tenant, fake)
    tool = await create(
        tenant,
        {"server_id": server["id"], "selected_tools": ["add"], "name": "Adder", "description": "d"},
    )
    path = f"/mcp-tools/{tool['id']}/"
    sent = len(fake.requests)
    # a client PUTs back what it got, with a change
    body = dict(tool, show_tool_message=False)
    response = await tenant.admin.put(path, json=body)
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["show_tool_message"] is False
    assert (updated["name"], updated["description"]) == ("Adder", "d")
    assert updated["parameters"] == tool["parameters"]  # same ids: nothing re-created
    assert len(fake.requests) == sent  # same server and remote tool: no call
    # a replace without name and description takes the remote tool's
    replaced = (await tenant.admin.put(path, json={"server_id": server["id"]})).json()
    assert (replaced["name"], replaced["description"]) == ("add", "Add two integers.")
    assert replaced["show_tool_message"] is True
    assert (await tenant.admin.get(path)).json() == replaced


async def test_patch_re_points_the_tool_and_reads_the_schema(tenant: Tenant, fake: FakeMcp) -> None:
    server = await new_server(tenant, fake)
    other = await new_server(tenant, fake, name="Same tools over SSE", url=fake.sse_url)
    tool = await create(tenant, {"server_id": server["id"], "selected_tools": ["add"]})
    path = f"/mcp-tools/{tool['id']}/"
    patched = await tenant.admin.patch(path, json={"selected_tools": ["echo"], "name": "Echo"})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["selected_tools"] == ["echo"]
    assert body["name"] == "Echo"
    assert [p["name"] for p in body["parameters"]] == ["text"]
    assert body["description"] == "Add two integers."  # not sent: unchanged
    moved = (await tenant.admin.patch(path, json={"server_id": other["id"]})).json()
    assert (moved["server_id"], moved["server"]["name"]) == (other["id"], "Same tools over SSE")
    assert moved["selected_tools"] == ["echo"]
    # null name and description: the remote tool's again
    reset = (await tenant.admin.patch(path, json={"name": None, "description": None})).json()
    assert (reset["name"], reset["description"]) == ("echo", "Return the text unchanged.")
    configured = (await tenant.admin.get(f"/mcp-servers/{other['id']}/configured-tools/")).json()
    assert [t["id"] for t in configured["configured_tools"]] == [tool["id"]]


async def test_bad_updates_are_400(tenant: Tenant, fake: FakeMcp) -> None:
    server = await new_server(tenant, fake)
    tool = await create(tenant, {"server_id": server["id"], "selected_tools": ["add"]})
    path = f"/mcp-tools/{tool['id']}/"
    cases = [
        ({"selected_tools": ["add", "echo"]}, "invalid"),
        ({"selected_tools": ["nope"]}, "unknown_remote_tool"),
        ({"server_id": 987654321}, "unknown_server"),
        ({"portal_available": None}, "invalid"),
        ({"show_tool_message": "sometimes"}, "invalid"),
    ]
    for body, code in cases:
        assert_error(await tenant.admin.patch(path, json=body), 400, code)
    assert (await tenant.admin.get(path)).json() == tool


async def test_delete_is_soft_and_drops_the_tool_from_assistants(
    tenant: Tenant, fake: FakeMcp
) -> None:
    server = await new_server(tenant, fake)
    tool = await create(tenant, {"server_id": server["id"], "selected_tools": ["add"]})
    assistant = await tenant.admin.post(
        "/assistants/", json={"description": "Calc", "tools": [tool["id"]]}
    )
    assert assistant.status_code == 201, assistant.text
    path = f"/mcp-tools/{tool['id']}/"
    response = await tenant.admin.delete(path)
    assert response.status_code == 204
    assert_error(await tenant.admin.get(path), 404, "not_found")
    assert_error(await tenant.admin.delete(path), 404, "not_found")
    assert (await tenant.admin.get(f"/assistants/{assistant.json()['id']}/")).json()["tools"] == []
    # the remote tool may be configured again
    again = await create(tenant, {"server_id": server["id"], "selected_tools": ["add"]})
    assert again["id"] != tool["id"]


async def test_the_list_is_a_paginated_array(tenant: Tenant, fake: FakeMcp) -> None:
    server = await new_server(tenant, fake)
    await create(tenant, {"server_id": server["id"], "selected_tools": ["add", "echo", "big"]})
    first = await tenant.member.get("/mcp-tools/", params={"page_size": 2})
    assert [t["name"] for t in first.json()] == ["add", "echo"]
    assert first.headers["X-Total-Count"] == "3"
    assert 'rel="next"' in first.headers["Link"]
    second = await tenant.member.get("/mcp-tools", params={"page_size": 2, "page": 2})
    assert [t["name"] for t in second.json()] == ["big"]
    assert set(second.json()[0]) == FIELDS


async def test_members_read_and_admins_write(tenant: Tenant, fake: FakeMcp) -> None:
    server = await new_server(tenant, fake)
    tool = await create(tenant, {"server_id": server["id"], "selected_tools": ["add"]})
    path = f"/mcp-tools/{tool['id']}/"
    assert (await tenant.member.get(path)).status_code == 200
    body = {"server_id": server["id"], "selected_tools": ["echo"]}
    assert_error(await tenant.member.post("/mcp-tools/", json=body), 403, "forbidden")
    assert_error(await tenant.member.put(path, json=body), 403, "forbidden")
    assert_error(await tenant.member.patch(path, json=body), 403, "forbidden")
    assert_error(await tenant.member.delete(path), 403, "forbidden")


async def test_another_workspace_sees_nothing_and_cannot_use_the_server(
    tenant: Tenant, other_tenant: Tenant, fake: FakeMcp
) -> None:
    server = await new_server(tenant, fake)
    tool = await create(tenant, {"server_id": server["id"], "selected_tools": ["add"]})
    path = f"/mcp-tools/{tool['id']}/"
    assert (await other_tenant.admin.get("/mcp-tools/")).json() == []
    assert_error(await other_tenant.admin.get(path), 404, "not_found")
    assert_error(await other_tenant.admin.patch(path, json={"name": "x"}), 404, "not_found")
    assert_error(await other_tenant.admin.delete(path), 404, "not_found")
    body = {"server_id": server["id"], "selected_tools": ["echo"]}
    assert_error(await other_tenant.admin.post("/mcp-tools/", json=body), 400, "unknown_server")


async def test_malformed_and_missing_ids(tenant: Tenant) -> None:
    assert_error(await tenant.admin.get("/mcp-tools/abc/"), 422, "invalid")
    assert_error(await tenant.admin.get("/mcp-tools/987654321/"), 404, "not_found")
    assert_error(await tenant.admin.delete("/mcp-tools/987654321"), 404, "not_found")


async def test_patch_with_an_inline_server_moves_the_tool_to_a_new_server(
    tenant: Tenant, fake: FakeMcp
) -> None:
    server = await new_server(tenant, fake)
    tool = await create(tenant, {"server_id": server["id"], "selected_tools": ["echo"]})
    path = f"/mcp-tools/{tool['id']}/"
    bad = {"server": {"name": "Elsewhere", "url": fake.sse_url}, "selected_tools": ["nope"]}
    assert_error(await tenant.admin.patch(path, json=bad), 400, "unknown_remote_tool")
    assert len((await tenant.admin.get("/mcp-servers/")).json()) == 1  # nothing half-written
    good = {"server": {"name": "Elsewhere", "url": fake.sse_url}}
    moved = await tenant.admin.patch(path, json=good)
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert body["server"]["name"] == "Elsewhere"
    assert body["server_id"] != server["id"]
    assert body["selected_tools"] == ["echo"]
    assert len((await tenant.admin.get("/mcp-servers/")).json()) == 2
