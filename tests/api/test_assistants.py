"""The assistants API of the cognitive face, on PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from chatsvc.tools.models import Tool
from tests.fixtures.app import Tenant
from tests.fixtures.db import sessionmaker_on

FULL: dict[str, Any] = {
    "generation_config": "offline",
    "generation_config_pretools": "second",
    "description": "Agente de licencias",
    "system_prompt": "You help with licences.",
    "temperature": 2,
    "max_responses": 2147483647,
    "max_msg_length": 570,
    "initial_message": "Hola, en que puedo ayudarte?",
    "end_message": "Gracias, hasta luego.",
    "add_to_user_message": "Answer in Spanish.",
    "max_consecutive_tool_calls": 3,
    "matrix_mode_available": True,
    "not_info_message": "No tengo esa información.",
    "strategy_to_optimize_tokens": "last_n:10",
    "faq_available": False,
    "fixed_available": True,
    "lessons_available": False,
    "realtime_available": True,
    "info": "Assistant",
    "colors": {"nameColor": "#000000", "primaryColor": "rgb(10, 20, 30)", "border": "teal"},
    "logo": "https://www.example.com/images/walter-avatar.jpg",
    "streaming_available": False,
    "tools": [],
    "pretools": [],
}
READ_ONLY = {
    "id",
    "created_at",
    "updated_at",
    "retrieval_faq",
    "retrieval_fixed_faq",
    "retrieval_lessons",
}


async def make_tools(connection: AsyncConnection, workspace_id: int, count: int) -> list[int]:
    async with sessionmaker_on(connection)() as db:
        tools = [Tool(workspace_id=workspace_id, kind="script", name=f"t{i}") for i in range(count)]
        db.add_all(tools)
        await db.commit()
        return [tool.id for tool in tools]


async def test_create_returns_every_field_of_the_seed(tenant: Tenant) -> None:
    response = await tenant.admin.post("/assistants/", json=FULL)
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == set(FULL) | READ_ONLY
    for key, value in FULL.items():
        assert body[key] == value, key
    assert body["retrieval_faq"] == body["retrieval_fixed_faq"] == body["retrieval_lessons"] == 0
    assert body["created_at"].endswith("Z")

    fetched = await tenant.member.get(f"/assistants/{body['id']}/")
    assert fetched.status_code == 200
    assert fetched.json() == body


async def test_minimal_create_takes_documented_defaults(tenant: Tenant) -> None:
    response = await tenant.admin.post("/assistants/", json={"description": "Help desk"})
    assert response.status_code == 201
    body = response.json()
    assert body["generation_config"] == "offline"
    assert body["temperature"] == 0.7
    assert (body["max_responses"], body["max_msg_length"], body["max_consecutive_tool_calls"]) == (
        1000,
        4000,
        5,
    )
    assert body["strategy_to_optimize_tokens"] == "none"
    assert body["tools"] == body["pretools"] == []
    assert body["colors"] is None and body["logo"] is None


async def test_tools_and_pretools_keep_their_order(
    tenant: Tenant, pg_connection: AsyncConnection
) -> None:
    a, b, c = await make_tools(pg_connection, tenant.workspace_id, 3)
    response = await tenant.admin.post(
        "/assistants/", json={"description": "x", "tools": [c, a], "pretools": [b, c]}
    )
    assert response.status_code == 201, response.text
    assert response.json()["tools"] == [c, a]
    assert response.json()["pretools"] == [b, c]
    assistant_id = response.json()["id"]
    patched = await tenant.admin.patch(f"/assistants/{assistant_id}/", json={"tools": [b]})
    assert patched.json()["tools"] == [b]
    assert patched.json()["pretools"] == [b, c]


async def test_tool_ids_must_exist_in_the_workspace(
    tenant: Tenant, other_tenant: Tenant, pg_connection: AsyncConnection
) -> None:
    (foreign,) = await make_tools(pg_connection, other_tenant.workspace_id, 1)
    response = await tenant.admin.post(
        "/assistants/", json={"description": "x", "tools": [foreign], "pretools": [999999]}
    )
    assert response.status_code == 400
    body = response.json()
    assert {e["field"] for e in body["errors"]} == {"body.tools", "body.pretools"}
    assert str(foreign) in body["detail"]
    assert (await tenant.admin.get("/assistants/")).json()["count"] == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", 2.5),
        ("temperature", -0.1),
        ("max_responses", 0),
        ("max_msg_length", 2147483648),
        ("max_consecutive_tool_calls", -1),
        ("colors", {"primaryColor": "not-a-colour"}),
        ("colors", {"primaryColor": "#12345"}),
        ("colors", ["#000"]),
        ("logo", "javascript:alert(1)"),
        ("logo", "not a url"),
        ("tools", [1, 1]),
        ("tools", ["abc"]),
        ("strategy_to_optimize_tokens", "everything"),
        ("description", ""),
        ("system_prompt", "bad\u0000byte"),
    ],
)
async def test_invalid_fields_are_400_with_the_field_named(
    tenant: Tenant, field: str, value: Any
) -> None:
    response = await tenant.admin.post("/assistants/", json={"description": "x", field: value})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "invalid"
    assert any(field in error["field"] for error in body["errors"]), body
    assert (await tenant.admin.get("/assistants/")).json()["count"] == 0


async def test_unknown_generator_app_is_refused_with_the_choices(tenant: Tenant) -> None:
    response = await tenant.admin.post(
        "/assistants/", json={"description": "x", "generation_config": "gpt-9"}
    )
    assert response.status_code == 400
    assert "offline" in response.json()["detail"] and "second" in response.json()["detail"]


async def test_body_that_is_not_json_is_refused(tenant: Tenant) -> None:
    response = await tenant.admin.post(
        "/assistants/", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    response = await tenant.admin.post("/assistants/", json=[1, 2])
    assert response.status_code == 400


async def test_put_replaces_and_patch_changes_only_what_is_sent(tenant: Tenant) -> None:
    created = (await tenant.admin.post("/assistants/", json=FULL)).json()
    url = f"/assistants/{created['id']}/"

    patched = await tenant.admin.patch(url, json={"temperature": 0.1, "info": None})
    assert patched.status_code == 200
    assert patched.json()["temperature"] == 0.1
    assert patched.json()["info"] is None
    assert patched.json()["system_prompt"] == FULL["system_prompt"]
    assert patched.json()["updated_at"] >= created["updated_at"]

    replaced = await tenant.admin.put(url, json={"description": "Replaced"})
    assert replaced.status_code == 200
    assert replaced.json()["description"] == "Replaced"
    assert replaced.json()["system_prompt"] == ""  # PUT replaces: omitted fields take defaults
    assert replaced.json()["colors"] is None

    # A client may PUT back what it GOT, read-only fields included.
    round_trip = await tenant.admin.put(url, json=(await tenant.admin.get(url)).json())
    assert round_trip.status_code == 200


async def test_put_and_patch_validate(tenant: Tenant) -> None:
    created = (await tenant.admin.post("/assistants/", json={"description": "x"})).json()
    url = f"/assistants/{created['id']}/"
    response = await tenant.admin.patch(url, json={"temperature": 3})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.temperature"
    response = await tenant.admin.patch(url, json={"description": None})
    assert response.status_code == 422
    response = await tenant.admin.put(url, json={"temperature": 1})
    assert response.status_code == 422
    assert any(e["field"] == "body.description" for e in response.json()["errors"])
    assert (await tenant.admin.get(url)).json()["temperature"] == 0.7


async def test_delete_hides_the_assistant(tenant: Tenant) -> None:
    created = (await tenant.admin.post("/assistants/", json={"description": "x"})).json()
    url = f"/assistants/{created['id']}/"
    response = await tenant.admin.delete(url)
    assert response.status_code == 204
    assert response.content == b""
    assert (await tenant.admin.get(url)).status_code == 404
    assert (await tenant.admin.delete(url)).status_code == 404
    assert (await tenant.admin.patch(url, json={"info": "x"})).status_code == 404
    assert (await tenant.admin.get("/assistants/")).json()["count"] == 0


async def test_list_is_paginated_with_absolute_links(tenant: Tenant) -> None:
    ids = [
        (await tenant.admin.post("/assistants/", json={"description": f"a{i}"})).json()["id"]
        for i in range(5)
    ]
    first = (await tenant.member.get("/assistants/?page_size=2")).json()
    assert first["count"] == 5
    assert [a["id"] for a in first["results"]] == ids[:2]
    assert first["previous"] is None
    assert first["next"] == "http://testserver/assistants/?page_size=2&page=2"
    last = (await tenant.member.get("/assistants/", params={"page": 3, "page_size": 2})).json()
    assert [a["id"] for a in last["results"]] == ids[4:]
    assert last["next"] is None
    previous = httpx.URL(last["previous"])
    assert (previous.host, previous.path) == ("testserver", "/assistants/")
    assert dict(previous.params) == {"page": "2", "page_size": "2"}
    beyond = (await tenant.member.get("/assistants/?page=9&page_size=2")).json()
    assert beyond["results"] == [] and beyond["count"] == 5


async def test_page_size_is_capped_and_bad_pages_are_refused(tenant: Tenant) -> None:
    for i in range(3):
        await tenant.admin.post("/assistants/", json={"description": f"a{i}"})
    capped = await tenant.admin.get("/assistants/?page_size=100000")
    assert capped.status_code == 200 and len(capped.json()["results"]) == 3
    for query in ("page=0", "page=abc", "page_size=0", "page_size=-3"):
        response = await tenant.admin.get(f"/assistants/?{query}")
        assert response.status_code == 422, query
        assert response.json()["errors"][0]["field"].startswith("query.")


async def test_info_list_has_only_what_the_chat_ui_needs(tenant: Tenant) -> None:
    await tenant.admin.post("/assistants/", json=FULL)
    response = await tenant.member.get("/assistants/info/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    (item,) = body["results"]
    assert set(item) == {
        "id",
        "info",
        "description",
        "initial_message",
        "max_msg_length",
        "streaming_available",
        "matrix_mode_available",
        "realtime_available",
        "logo",
        "colors",
    }
    assert item["colors"] == FULL["colors"]
    assert item["max_msg_length"] == 570


@pytest.mark.parametrize("path", ["/assistants/{id}/", "/assistants/{id}"])
async def test_paths_work_with_and_without_trailing_slash(tenant: Tenant, path: str) -> None:
    for listing in ("/assistants", "/assistants/", "/assistants/info", "/assistants/info/"):
        response = await tenant.admin.get(listing)
        assert response.status_code == 200, listing
    created = await tenant.admin.post("/assistants", json={"description": "no slash"})
    assert created.status_code == 201
    url = path.format(id=created.json()["id"])
    assert (await tenant.admin.get(url)).json()["description"] == "no slash"
    assert (await tenant.admin.patch(url, json={"info": "i"})).json()["info"] == "i"
    assert (await tenant.admin.delete(url)).status_code == 204


@pytest.mark.parametrize("bad", ["abc", "0", "99999999999999999999999"])
async def test_malformed_ids_are_refused_not_crashed(tenant: Tenant, bad: str) -> None:
    response = await tenant.admin.get(f"/assistants/{bad}/")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "path.id"


async def test_missing_id_is_404(tenant: Tenant) -> None:
    response = await tenant.admin.get("/assistants/424242/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert "424242" in response.json()["detail"]
