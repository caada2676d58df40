"""The tools API of the cognitive face, on PostgreSQL and SQLite: /tools/retrievals/,
/tools/scripts/ (every field, pagination, PUT and PATCH, soft deletion that takes a tool out of
assistants' lists, roles, workspaces) and POST /tools/update_filters/."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chatsvc.config import RetrievalBackend
from tests.fixtures.app import Live, SharedApps, Tenant, make_settings, make_tenant, requests_on
from tests.fixtures.db import rolled_back, sessionmaker_on

MISSING_ID = 987_654_321
BACKENDS = {
    1: RetrievalBackend(kind="knowledge", name="Workspace knowledge"),
    7: RetrievalBackend(kind="http", name="Docs", url="https://search.example.com/v1/search"),
}
PARAMETERS: list[dict[str, Any]] = [
    {"name": "query", "description": "What to look for", "type": "string", "required": True},
    {
        "name": "tags",
        "description": "Tags to prefer",
        "type": "array",
        "items": {"type": "string"},
        "required": False,
    },
    {"name": "lang", "description": "", "type": "string", "required": False, "enum": ["en", "es"]},
]
RETRIEVAL: dict[str, Any] = {
    "parameters": PARAMETERS,
    "name": "Search the docs",
    "description": "Searches the product documentation.",
    "show_tool_message": False,
    "show_assistant_message": True,
    "edit_available": False,
    "retrieval_id": 7,
    "answer": True,
}
SCRIPT: dict[str, Any] = {
    "parameters": [{"name": "input", "description": "User input", "type": "string"}],
    "name": "My Script",
    "description": "Performs an action",
    "show_tool_message": True,
    "show_assistant_message": False,
    "edit_available": True,
    "code": "console.log('Hello World');\nconst answer = {ok: true};\nanswer;",
}
READ_ONLY = {"id", "created_at", "updated_at"}
SYNTAX_ERROR = "const x = 1;\nconst y = ;\n"


# --- an app on each database -----------------------------------------------------------------
# These override conftest's fixtures of the same names: every test here runs on PostgreSQL and
# on the embedded SQLite, through the whole app.


@pytest.fixture(params=["postgresql", "sqlite"])
async def db_connection(
    request: pytest.FixtureRequest, pg_engine: AsyncEngine, sqlite_engine: AsyncEngine
) -> AsyncIterator[AsyncConnection]:
    engine = pg_engine if request.param == "postgresql" else sqlite_engine
    async for connection in rolled_back(engine):
        yield connection


@pytest.fixture
async def app_client(
    db_connection: AsyncConnection, pg_url: str, sqlite_url: str, shared_apps: SharedApps
) -> AsyncIterator[httpx.AsyncClient]:
    url = pg_url if db_connection.dialect.name == "postgresql" else sqlite_url
    app = await shared_apps.get(make_settings(url, retrieval_backends=BACKENDS))
    async with requests_on(app, sessionmaker_on(db_connection)) as client:
        yield client


@pytest.fixture
async def tenant(
    db_connection: AsyncConnection, app_client: httpx.AsyncClient
) -> AsyncIterator[Tenant]:
    found = await make_tenant(db_connection, app_client, "acme")
    yield found
    await found.admin.aclose()
    await found.member.aclose()


@pytest.fixture
async def other_tenant(
    db_connection: AsyncConnection, app_client: httpx.AsyncClient
) -> AsyncIterator[Tenant]:
    found = await make_tenant(db_connection, app_client, "globex")
    yield found
    await found.admin.aclose()
    await found.member.aclose()


# --- helpers -------------------------------------------------------------------------------------


async def create(client: httpx.AsyncClient, body: dict[str, Any], kind: str = "retrievals") -> Any:
    response = await client.post(f"/tools/{kind}/", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def retrieval(name: str = "Search", **fields: Any) -> dict[str, Any]:
    return {"name": name, "retrieval_id": 1, **fields}


def without_ids(parameters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in p.items() if k != "id"} for p in parameters]


def expanded(parameters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Parameters as the API answers them: every field, with its default."""
    defaults = {
        "description": "",
        "type": "string",
        "items": None,
        "required": True,
        "enum": None,
        "properties": None,
    }
    return [{**defaults, **p} for p in parameters]


# --- retrieval tools -----------------------------------------------------------------------------


async def test_create_retrieval_tool_returns_every_field_of_the_seed(tenant: Tenant) -> None:
    body = await create(tenant.admin, RETRIEVAL)
    assert set(body) == set(RETRIEVAL) | READ_ONLY
    for key, value in RETRIEVAL.items():
        if key != "parameters":
            assert body[key] == value, key
    assert without_ids(body["parameters"]) == expanded(PARAMETERS)
    assert all(isinstance(p["id"], int) for p in body["parameters"])

    fetched = await tenant.member.get(f"/tools/retrievals/{body['id']}/")
    assert fetched.status_code == 200
    assert fetched.json() == body


async def test_minimal_retrieval_tool_takes_the_defaults(tenant: Tenant) -> None:
    body = await create(tenant.admin, {"name": "Search", "retrieval_id": 1})
    assert body["parameters"] == []
    assert body["description"] == ""
    assert body["show_tool_message"] and body["show_assistant_message"] and body["edit_available"]
    assert body["answer"] is False


async def test_retrieval_id_must_name_a_configured_backend(tenant: Tenant) -> None:
    response = await tenant.admin.post("/tools/retrievals/", json=retrieval(retrieval_id=3))
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["code"] == "unknown_retrieval_backend"
    assert "1, 7" in error["detail"]
    assert [e["field"] for e in error["errors"]] == ["body.retrieval_id"]
    assert (await tenant.admin.get("/tools/retrievals/")).json()["count"] == 0

    created = await create(tenant.admin, retrieval())
    url = f"/tools/retrievals/{created['id']}/"
    for method in ("put", "patch"):
        response = await tenant.admin.request(method, url, json=retrieval(retrieval_id=99))
        assert response.status_code == 400, method
        assert "1, 7" in response.json()["detail"]
    assert (await tenant.admin.get(url)).json() == created


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", ""),
        ("name", "x" * 256),
        ("retrieval_id", -1),
        ("retrieval_id", 2_147_483_648),
        ("retrieval_id", "one"),
        ("answer", "maybe"),
        ("parameters", [{"name": "q"}, {"name": "q"}]),
        ("parameters", [{"name": "q", "type": "text"}]),
        ("parameters", [{"name": "1st"}]),
        ("parameters", [{"name": "q", "enum": []}]),
    ],
)
async def test_invalid_fields_are_refused_with_the_field_named(
    tenant: Tenant, field: str, value: Any
) -> None:
    # The seed documents 400 for PUT and PATCH; creating a retrieval tool has no 400, so 422.
    response = await tenant.admin.post("/tools/retrievals/", json={**retrieval(), field: value})
    assert response.status_code == 422, response.text
    assert any(e["field"].startswith(f"body.{field}") for e in response.json()["errors"])
    created = await create(tenant.admin, retrieval())
    url = f"/tools/retrievals/{created['id']}/"
    for method in ("put", "patch"):
        response = await tenant.admin.request(method, url, json={**retrieval(), field: value})
        assert response.status_code == 400, (method, response.text)
        error = response.json()
        assert error["code"] == "invalid"
        assert any(e["field"].startswith(f"body.{field}") for e in error["errors"]), error
    assert (await tenant.admin.get(url)).json() == created
    assert (await tenant.admin.get("/tools/retrievals/")).json()["count"] == 1


async def test_required_fields_are_named(tenant: Tenant) -> None:
    response = await tenant.admin.post("/tools/retrievals/", json={"description": "x"})
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {
        "body.name",
        "body.retrieval_id",
    }
    response = await tenant.admin.post(
        "/tools/retrievals/", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith("Invalid input")


async def test_put_replaces_everything_parameters_included(tenant: Tenant) -> None:
    created = await create(tenant.admin, RETRIEVAL)
    url = f"/tools/retrievals/{created['id']}/"
    ids = {p["name"]: p["id"] for p in created["parameters"]}

    replaced = await tenant.admin.put(
        url,
        json={
            "name": "Renamed",
            "retrieval_id": 1,
            "parameters": [{"name": "lang", "type": "string"}, {"name": "topic"}],
        },
    )
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert body["name"] == "Renamed"
    assert body["retrieval_id"] == 1
    # PUT replaces: what was left out takes its default.
    assert body["description"] == "" and body["answer"] is False
    assert body["show_tool_message"] and body["edit_available"]
    assert [p["name"] for p in body["parameters"]] == ["lang", "topic"]
    assert body["parameters"][0]["id"] == ids["lang"]  # a kept name keeps its row
    assert body["parameters"][0]["enum"] is None  # ... but every field of it is replaced
    assert body["created_at"] == created["created_at"]
    assert body["updated_at"] > created["updated_at"]
    assert (await tenant.admin.get(url)).json() == body

    # A client may PUT back what it GOT (read-only fields included): nothing changes but time.
    again = await tenant.admin.put(url, json=body)
    assert again.status_code == 200
    assert again.json()["parameters"] == body["parameters"]


async def test_patch_changes_only_what_is_sent(tenant: Tenant) -> None:
    created = await create(tenant.admin, RETRIEVAL)
    url = f"/tools/retrievals/{created['id']}/"

    patched = await tenant.admin.patch(url, json={"answer": False, "description": "New"})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["answer"] is False and body["description"] == "New"
    assert body["parameters"] == created["parameters"]
    for key in ("name", "retrieval_id", "show_tool_message", "edit_available"):
        assert body[key] == created[key], key
    assert body["updated_at"] > created["updated_at"]

    patched = await tenant.admin.patch(url, json={"parameters": [{"name": "query"}]})
    assert without_ids(patched.json()["parameters"]) == expanded([{"name": "query"}])
    assert patched.json()["answer"] is False

    cleared = await tenant.admin.patch(url, json={"parameters": []})
    assert cleared.json()["parameters"] == []

    for field in ("name", "answer", "parameters", "retrieval_id"):
        response = await tenant.admin.patch(url, json={field: None})
        assert response.status_code == 400, field
        assert f"{field} may not be null" in response.json()["detail"]
    assert (await tenant.admin.get(url)).json() == cleared.json()


async def test_list_is_paginated_in_id_order_with_absolute_links(tenant: Tenant) -> None:
    ids = [(await create(tenant.admin, retrieval(f"t{i}")))["id"] for i in range(5)]
    first = (await tenant.member.get("/tools/retrievals/?page_size=2")).json()
    assert first["count"] == 5
    assert [t["id"] for t in first["results"]] == ids[:2]
    assert first["previous"] is None
    assert first["next"] == "http://testserver/tools/retrievals/?page_size=2&page=2"
    assert set(first["results"][0]) == set(RETRIEVAL) | READ_ONLY
    last = (
        await tenant.member.get("/tools/retrievals/", params={"page": 3, "page_size": 2})
    ).json()
    assert [t["id"] for t in last["results"]] == ids[4:]
    assert last["next"] is None
    assert last["previous"] is not None and "page=2" in last["previous"]
    beyond = (await tenant.member.get("/tools/retrievals/?page=9")).json()
    assert beyond == {"count": 5, "next": None, "previous": beyond["previous"], "results": []}
    for query in ("page=0", "page_size=0", "page=x"):
        response = await tenant.member.get(f"/tools/retrievals/?{query}")
        assert response.status_code == 422, query
        assert response.json()["errors"][0]["field"].startswith("query.")


async def test_kinds_are_kept_apart(tenant: Tenant) -> None:
    created = await create(tenant.admin, retrieval())
    assert (await tenant.admin.get("/tools/scripts/")).json()["count"] == 0
    response = await tenant.admin.get(f"/tools/scripts/{created['id']}/")
    assert response.status_code == 404
    assert response.json()["detail"] == f"Script tool {created['id']} not found."
    assert (await tenant.admin.delete(f"/tools/scripts/{created['id']}/")).status_code == 404
    assert (await tenant.admin.get(f"/tools/retrievals/{created['id']}/")).status_code == 200


async def test_delete_hides_the_tool(tenant: Tenant) -> None:
    created = await create(tenant.admin, retrieval())
    url = f"/tools/retrievals/{created['id']}/"
    response = await tenant.admin.delete(url)
    assert response.status_code == 204
    assert response.content == b""
    assert (await tenant.admin.get(url)).status_code == 404
    assert (await tenant.admin.delete(url)).status_code == 404
    assert (await tenant.admin.patch(url, json={"name": "x"})).status_code == 404
    assert (await tenant.admin.put(url, json=retrieval())).status_code == 404
    assert (await tenant.admin.get("/tools/retrievals/")).json()["count"] == 0


async def test_a_deleted_tool_leaves_assistants_lists(tenant: Tenant) -> None:
    a, b, c = [(await create(tenant.admin, retrieval(f"t{i}")))["id"] for i in range(3)]
    assistant = await tenant.admin.post(
        "/assistants/", json={"description": "Help", "tools": [a, b, c], "pretools": [b]}
    )
    assert assistant.status_code == 201, assistant.text
    url = f"/assistants/{assistant.json()['id']}/"

    assert (await tenant.admin.delete(f"/tools/retrievals/{b}/")).status_code == 204
    after = (await tenant.member.get(url)).json()
    assert after["tools"] == [a, c]  # the others keep their order
    assert after["pretools"] == []
    # ... and a deleted tool cannot be put back.
    response = await tenant.admin.patch(url, json={"pretools": [b]})
    assert response.status_code == 400
    assert str(b) in response.json()["detail"]
    # The remaining list still edits as usual.
    assert (await tenant.admin.patch(url, json={"tools": [c, a]})).json()["tools"] == [c, a]


async def test_members_read_and_only_admins_write(tenant: Tenant) -> None:
    created = await create(tenant.admin, retrieval())
    url = f"/tools/retrievals/{created['id']}/"
    assert (await tenant.member.get("/tools/retrievals/")).status_code == 200
    assert (await tenant.member.get(url)).status_code == 200
    attempts = [
        tenant.member.post("/tools/retrievals/", json=retrieval()),
        tenant.member.put(url, json=retrieval("Mine")),
        tenant.member.patch(url, json={"name": "Mine"}),
        tenant.member.delete(url),
        tenant.member.post("/tools/scripts/", json=SCRIPT),
        tenant.member.post(
            "/tools/update_filters/", json={"metadata_config_id": 1, "name": "year"}
        ),
    ]
    for attempt in attempts:
        response = await attempt
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "forbidden"
    assert (await tenant.admin.get(url)).json() == created
    anonymous = await tenant.admin.get("/tools/retrievals/", headers={"X-Api-Key": "nope"})
    assert anonymous.status_code == 401


async def test_other_workspaces_cannot_see_or_touch_the_tool(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    created = await create(tenant.admin, retrieval())
    url = f"/tools/retrievals/{created['id']}/"
    assert (await other_tenant.admin.get("/tools/retrievals/")).json()["count"] == 0
    for method, body in (("get", None), ("put", retrieval()), ("patch", {"name": "x"})):
        response = await other_tenant.admin.request(method, url, json=body)
        assert response.status_code == 404, method
    assert (await other_tenant.admin.delete(url)).status_code == 404
    # Nor put it on an assistant of theirs.
    response = await other_tenant.admin.post(
        "/assistants/", json={"description": "x", "tools": [created["id"]]}
    )
    assert response.status_code == 400
    assert (await tenant.admin.get(url)).json() == created


@pytest.mark.parametrize("bad", ["abc", "0", "99999999999999999999999"])
async def test_malformed_ids_are_refused_not_crashed(tenant: Tenant, bad: str) -> None:
    for kind in ("retrievals", "scripts"):
        response = await tenant.admin.get(f"/tools/{kind}/{bad}/")
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "path.id"


async def test_missing_id_is_404_naming_it(tenant: Tenant) -> None:
    response = await tenant.admin.get(f"/tools/retrievals/{MISSING_ID}/")
    assert response.status_code == 404
    assert response.json() == {
        "detail": f"Retrieval tool {MISSING_ID} not found.",
        "code": "not_found",
        "errors": [],
        "request_id": response.headers["x-request-id"],
    }


async def test_paths_work_without_the_trailing_slash(tenant: Tenant) -> None:
    created = await tenant.admin.post("/tools/retrievals", json=retrieval())
    assert created.status_code == 201
    url = f"/tools/retrievals/{created.json()['id']}"
    assert (await tenant.admin.get("/tools/retrievals")).json()["count"] == 1
    assert (await tenant.admin.patch(url, json={"name": "n"})).json()["name"] == "n"
    assert (await tenant.admin.get(url)).status_code == 200
    assert (await tenant.admin.delete(url)).status_code == 204
    response = await tenant.admin.post(
        "/tools/update_filters", json={"metadata_config_id": 1, "name": "year"}
    )
    assert response.status_code == 200


# --- script tools ----------------------------------------------------------------------------


async def test_create_script_tool_returns_every_field_of_the_seed(tenant: Tenant) -> None:
    body = await create(tenant.admin, SCRIPT, "scripts")
    assert set(body) == set(SCRIPT) | READ_ONLY
    for key, value in SCRIPT.items():
        if key != "parameters":
            assert body[key] == value, key
    assert without_ids(body["parameters"]) == expanded(SCRIPT["parameters"])
    fetched = await tenant.member.get(f"/tools/scripts/{body['id']}/")
    assert fetched.json() == body
    listed = (await tenant.member.get("/tools/scripts/")).json()
    assert listed["count"] == 1 and listed["results"] == [body]
    assert (await tenant.member.get("/tools/retrievals/")).json()["count"] == 0


async def test_script_put_patch_and_delete(tenant: Tenant) -> None:
    created = await create(tenant.admin, SCRIPT, "scripts")
    url = f"/tools/scripts/{created['id']}/"
    replaced = await tenant.admin.put(
        url, json={"name": "Updated Script", "code": "console.log('Updated');"}
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["code"] == "console.log('Updated');"
    assert replaced.json()["parameters"] == [] and replaced.json()["description"] == ""
    patched = await tenant.admin.patch(url, json={"code": "1 + 1;"})
    assert patched.json()["code"] == "1 + 1;"
    assert patched.json()["name"] == "Updated Script"
    assert (await tenant.admin.delete(url)).status_code == 204
    assert (await tenant.admin.get(url)).status_code == 404


async def test_script_syntax_errors_are_400_with_the_line(tenant: Tenant) -> None:
    response = await tenant.admin.post("/tools/scripts/", json={**SCRIPT, "code": SYNTAX_ERROR})
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["code"] == "script_syntax_error"
    assert "line 2" in error["detail"]
    assert [e["field"] for e in error["errors"]] == ["body.code"]
    assert (await tenant.admin.get("/tools/scripts/")).json()["count"] == 0

    created = await create(tenant.admin, SCRIPT, "scripts")
    url = f"/tools/scripts/{created['id']}/"
    for method in ("put", "patch"):
        response = await tenant.admin.request(method, url, json={**SCRIPT, "code": SYNTAX_ERROR})
        assert response.status_code == 400, method
        assert "line 2" in response.json()["detail"]
    assert (await tenant.admin.get(url)).json() == created


async def test_script_fields_are_validated(tenant: Tenant) -> None:
    # The seed documents 400 for every write of a script tool.
    for body in ({"name": "x"}, {"name": "x", "code": ""}, {"code": "1;"}):
        response = await tenant.admin.post("/tools/scripts/", json=body)
        assert response.status_code == 400, body
        assert response.json()["errors"], body
    response = await tenant.admin.post("/tools/scripts/", json={"name": "x", "code": "x" * 100_001})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "body.code"
    # Under the character cap but over the sandbox's 100 KB of UTF-8: refused by the sandbox.
    response = await tenant.admin.post("/tools/scripts/", json={"name": "x", "code": "é" * 60_000})
    assert response.status_code == 400
    assert "100 KB" in response.json()["detail"]
    assert response.json()["errors"][0]["field"] == "body.code"
    assert (await tenant.admin.get("/tools/scripts/")).json()["count"] == 0


# --- update_filters --------------------------------------------------------------------------


async def update_filters(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await client.post("/tools/update_filters/", json=body)


def definitions(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    return [
        {k: f[k] for k in ("metadata_config_id", "name", "type", "possible_values", "format")}
        for f in response.json()["filters"]
    ]


async def test_update_filters_creates_replaces_and_deletes(tenant: Tenant) -> None:
    response = await update_filters(
        tenant.admin,
        metadata_config_id=1,
        name="year",
        type="integer",
        possible_values=["2024", "2025"],
        format="",
        delete=False,
    )
    assert response.json()["metadata_config_id"] == 1
    assert definitions(response) == [
        {
            "metadata_config_id": 1,
            "name": "year",
            "type": "integer",
            "possible_values": ["2024", "2025"],
            "format": "",
        }
    ]
    (first,) = response.json()["filters"]
    assert set(first) == {
        "id",
        "metadata_config_id",
        "name",
        "type",
        "possible_values",
        "format",
        "created_at",
        "updated_at",
    }

    response = await update_filters(
        tenant.admin, metadata_config_id=1, name="published", type="date", format="DD/MM/YYYY"
    )
    assert [f["name"] for f in definitions(response)] == ["published", "year"]

    # The same name again replaces the definition (same row).
    response = await update_filters(
        tenant.admin, metadata_config_id=1, name="year", type="enum", possible_values=["old"]
    )
    year = next(f for f in response.json()["filters"] if f["name"] == "year")
    assert year["id"] == first["id"]
    assert (year["type"], year["possible_values"]) == ("enum", ["old"])
    assert year["updated_at"] > first["updated_at"]

    # Another backend has filters of its own.
    response = await update_filters(tenant.admin, metadata_config_id=7, name="year")
    assert definitions(response) == [
        {
            "metadata_config_id": 7,
            "name": "year",
            "type": "string",
            "possible_values": [],
            "format": "",
        }
    ]

    response = await update_filters(tenant.admin, metadata_config_id=1, name="year", delete=True)
    assert [f["name"] for f in definitions(response)] == ["published"]
    response = await update_filters(tenant.admin, metadata_config_id=1, name="year", delete=True)
    assert response.status_code == 404
    assert "year" in response.json()["detail"]


async def test_a_date_filter_defaults_to_iso(tenant: Tenant) -> None:
    response = await update_filters(tenant.admin, metadata_config_id=1, name="day", type="date")
    assert definitions(response)[0]["format"] == "%Y-%m-%d"
    response = await update_filters(
        tenant.admin,
        metadata_config_id=1,
        name="day",
        type="date",
        format="%d/%m/%Y",
        possible_values=["25/11/2026"],
    )
    assert definitions(response)[0]["format"] == "%d/%m/%Y"


async def test_nulls_mean_the_defaults(tenant: Tenant) -> None:
    response = await update_filters(
        tenant.admin,
        metadata_config_id=1,
        name="team",
        type=None,
        possible_values=None,
        format=None,
        delete=None,
    )
    assert definitions(response)[0]["type"] == "string"


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"type": "text"}, "body.type", "Input should be"),
        ({"type": "enum"}, "body.possible_values", "at least one value"),
        ({"type": "date", "format": "%Y"}, "body.format", "year, month and day"),
        ({"type": "date", "format": "%Q"}, "body.format", "year, month and day"),
        ({"type": "date", "format": "MM/DD"}, "body.format", "year, month and day"),
        ({"type": "string", "format": "%Y-%m-%d"}, "body.format", "date filters only"),
        ({"type": "integer", "possible_values": ["1", "x"]}, "body.possible_values[1]", "integer"),
        (
            {"type": "number", "possible_values": ["1.5", "nan"]},
            "body.possible_values[1]",
            "number",
        ),
        ({"type": "boolean", "possible_values": ["maybe"]}, "body.possible_values[0]", "true or"),
        ({"type": "date", "possible_values": ["2026-13-01"]}, "body.possible_values[0]", "date"),
        ({"type": "enum", "possible_values": ["a", "A"]}, "body.possible_values[1]", "twice"),
        ({"possible_values": [""]}, "body.possible_values[0]", "at least 1"),
        ({"name": "has space"}, "body.name", "pattern"),
        ({"name": ""}, "body.name", "at least 1"),
        ({"metadata_config_id": 5}, "body.metadata_config_id", "1, 7"),
        ({"metadata_config_id": -1}, "body.metadata_config_id", "greater than"),
    ],
)
async def test_update_filters_refuses_bad_definitions_with_400(
    tenant: Tenant, body: dict[str, Any], field: str, reason: str
) -> None:
    response = await update_filters(tenant.admin, **{"metadata_config_id": 1, "name": "f", **body})
    assert response.status_code == 400, response.text
    error = response.json()
    assert any(e["field"] == field and reason in e["message"] for e in error["errors"]), error
    check = await update_filters(tenant.admin, metadata_config_id=1, name="probe")
    assert [f["name"] for f in definitions(check)] == ["probe"]  # nothing else was stored


async def test_filters_belong_to_their_workspace(tenant: Tenant, other_tenant: Tenant) -> None:
    await update_filters(tenant.admin, metadata_config_id=1, name="year")
    response = await update_filters(other_tenant.admin, metadata_config_id=1, name="team")
    assert [f["name"] for f in definitions(response)] == ["team"]
    response = await update_filters(
        other_tenant.admin, metadata_config_id=1, name="year", delete=True
    )
    assert response.status_code == 404
    response = await update_filters(tenant.admin, metadata_config_id=1, name="year", delete=True)
    assert definitions(response) == []


# --- concurrent writes (a real server, real transactions) ------------------------------------


async def test_concurrent_replaces_of_one_tool_take_turns(live: Live) -> None:
    created = await create(live.admin, retrieval(parameters=[{"name": "old"}]))
    url = f"/tools/retrievals/{created['id']}/"
    bodies = [
        retrieval(f"v{n}", parameters=[{"name": "query"}, {"name": f"p{n % 3}"}]) for n in range(12)
    ]
    responses = await asyncio.gather(*(live.admin.put(url, json=body) for body in bodies))
    assert [r.status_code for r in responses] == [200] * 12, [r.text for r in responses]
    final = (await live.admin.get(url)).json()
    winner = next(body for body in bodies if body["name"] == final["name"])
    assert [p["name"] for p in final["parameters"]] == [p["name"] for p in winner["parameters"]]
