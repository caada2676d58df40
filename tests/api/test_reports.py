"""The reports API of the cognitive face, on PostgreSQL: reports on a workspace's chats, admin-only
changes, filtered counts with every enum value as a key, the paginated list next to them, and a
member seeing only the reports on its own chats."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from chatsvc.auth import service as auth_service
from chatsvc.auth.models import Role
from chatsvc.chats.models import Chat
from chatsvc.reports.models import Report
from tests.fixtures.app import Tenant
from tests.fixtures.db import sessionmaker_on

MISSING_ID = 987_654_321
SEED_KEYS = {
    "id",
    "category",
    "reason",
    "severity",
    "topic",
    "comments",
    "status",
    "created_at",
    "updated_at",
    "chat",
}
METRIC_KEYS = {
    "total_reports",
    "status_counts",
    "category_counts",
    "reason_counts",
    "severity_counts",
    "token_usage",
}
STATUSES = ["NO_ISSUES", "OPEN", "IN_REVIEW", "RESOLVED", "DISMISSED"]
CATEGORIES = ["CORRECT", "INCORRECT", "INCOMPLETE", "IRRELEVANT", "INAPPROPRIATE", "OTHER"]
REASONS = [
    "NOT_IN_DOCS",
    "WRONG_INFO",
    "OUTDATED_INFO",
    "MISUNDERSTOOD",
    "HALLUCINATION",
    "TOOL_ERROR",
    "SLOW",
    "OTHER",
]
SEVERITIES = ["INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"]


# --- helpers -------------------------------------------------------------------------------------


async def new_assistant(client: httpx.AsyncClient) -> int:
    response = await client.post("/assistants/", json={"description": "Help desk"})
    assert response.status_code == 201, response.text
    assistant_id: int = response.json()["id"]
    return assistant_id


async def new_chat(
    connection: AsyncConnection, workspace_id: int, assistant_id: int, principal_id: int | None
) -> int:
    """A chat made by `principal_id` (the member of the tests reports on its own chats)."""
    async with sessionmaker_on(connection)() as db:
        chat = Chat(
            workspace_id=workspace_id,
            assistant_id=assistant_id,
            principal_id=principal_id,
            max_responses=10,
            max_msg_length=100,
        )
        db.add(chat)
        await db.commit()
        return chat.id


async def set_created_at(connection: AsyncConnection, report_id: int, moment: datetime) -> None:
    async with sessionmaker_on(connection)() as db:
        await db.execute(update(Report).where(Report.id == report_id).values(created_at=moment))
        await db.commit()


def body(chat: int, **overrides: Any) -> dict[str, Any]:
    return {
        "category": "INCORRECT",
        "reason": "WRONG_INFO",
        "severity": "HIGH",
        "topic": "billing",
        "comments": "The refund window is 30 days, not 14.",
        "status": "OPEN",
        "chat": chat,
        **overrides,
    }


async def report(client: httpx.AsyncClient, chat: int, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/reports/", json=body(chat, **overrides))
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()
    return created


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()
    assert error["code"] == code
    assert isinstance(error["detail"], str) and error["detail"]
    return error


async def total(client: httpx.AsyncClient) -> int:
    response = await client.get("/reports/metrics/")
    assert response.status_code == 200, response.text
    count: int = response.json()["total_reports"]
    return count


@pytest.fixture
async def assistant_id(tenant: Tenant) -> int:
    return await new_assistant(tenant.admin)


@pytest.fixture
async def chat_id(tenant: Tenant, assistant_id: int, pg_connection: AsyncConnection) -> int:
    return await new_chat(
        pg_connection, tenant.workspace_id, assistant_id, tenant.member_principal_id
    )


@pytest.fixture
async def foreign_chat_id(other_tenant: Tenant, pg_connection: AsyncConnection) -> int:
    assistant = await new_assistant(other_tenant.admin)
    return await new_chat(
        pg_connection, other_tenant.workspace_id, assistant, other_tenant.member_principal_id
    )


@dataclass
class SecondMember:
    """Another member key of the tenant's workspace (member B next to the tenant's member A)."""

    principal_id: int
    client: httpx.AsyncClient


@pytest.fixture
async def second_member(
    tenant: Tenant, pg_connection: AsyncConnection
) -> AsyncIterator[SecondMember]:
    async with sessionmaker_on(pg_connection)() as db:
        row, key = await auth_service.create_api_key(
            db, tenant.workspace_id, Role.MEMBER, username="acme-bea", full_name="Bea Member"
        )
        principal_id = row.principal_id
        await db.commit()
    client = httpx.AsyncClient(
        transport=tenant.member._transport,
        base_url="http://testserver",
        headers={"X-Api-Key": key},
    )
    yield SecondMember(principal_id, client)
    await client.aclose()


async def listed_ids(client: httpx.AsyncClient, **params: Any) -> list[int]:
    response = await client.get("/reports/", params=params)
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["results"]]


# --- create and read -----------------------------------------------------------------------------


async def test_create_returns_200_with_every_seed_field(tenant: Tenant, chat_id: int) -> None:
    sent = body(chat_id)
    response = await tenant.admin.post("/reports/", json=sent)

    assert response.status_code == 200, response.text
    created = response.json()
    assert set(created) == SEED_KEYS
    for key, value in sent.items():
        assert created[key] == value, key
    assert isinstance(created["id"], int)
    assert created["created_at"].endswith("Z")

    fetched = await tenant.member.get(f"/reports/{created['id']}/")
    assert fetched.status_code == 200
    assert fetched.json() == created


async def test_the_seed_example_is_accepted_and_any_key_may_report(
    tenant: Tenant, chat_id: int
) -> None:
    seed = {
        "category": "CORRECT",
        "reason": "NOT_IN_DOCS",
        "severity": "INFO",
        "topic": "string",
        "comments": "string",
        "status": "NO_ISSUES",
        "chat": chat_id,
    }
    response = await tenant.member.post("/reports", json=seed)  # the slashless form too
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "NO_ISSUES"

    minimal = {k: v for k, v in seed.items() if k not in {"topic", "comments"}}
    response = await tenant.member.post("/reports/", json=minimal)
    assert response.status_code == 200, response.text
    assert (response.json()["topic"], response.json()["comments"]) == ("", "")


async def test_a_chat_of_another_workspace_or_none_is_404_and_nothing_is_stored(
    tenant: Tenant, other_tenant: Tenant, chat_id: int, foreign_chat_id: int
) -> None:
    for chat in (foreign_chat_id, MISSING_ID):
        response = await tenant.member.post("/reports/", json=body(chat))
        error = assert_error(response, 404, "chat_not_found")
        assert str(chat) in error["detail"]
    assert await total(tenant.admin) == 0
    assert await total(other_tenant.admin) == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"category": None}, "body.category", id="null-category"),
        pytest.param({"category": "correct"}, "body.category", id="lowercase-category"),
        pytest.param({"reason": "BORED"}, "body.reason", id="unknown-reason"),
        pytest.param({"severity": 3}, "body.severity", id="severity-not-text"),
        pytest.param({"status": "CLOSED"}, "body.status", id="unknown-status"),
        pytest.param({"topic": "t" * 256}, "body.topic", id="topic-too-long"),
        pytest.param({"comments": "bad\u0000byte"}, "body.comments", id="nul-in-comments"),
        pytest.param({"chat": "abc"}, "body.chat", id="chat-not-a-number"),
        pytest.param({"chat": 0}, "body.chat", id="chat-zero"),
        pytest.param({"chat": None}, "body.chat", id="null-chat"),
    ],
)
async def test_invalid_bodies_are_400_naming_the_field(
    tenant: Tenant, chat_id: int, change: dict[str, Any], field: str
) -> None:
    response = await tenant.member.post("/reports/", json={**body(chat_id), **change})

    error = assert_error(response, 400, "invalid")
    assert field in {e["field"] for e in error["errors"]}, error
    assert await total(tenant.admin) == 0


@pytest.mark.parametrize("missing", ["category", "reason", "severity", "status", "chat"])
async def test_required_fields_are_400_when_missing(
    tenant: Tenant, chat_id: int, missing: str
) -> None:
    sent = body(chat_id)
    del sent[missing]
    response = await tenant.member.post("/reports/", json=sent)

    error = assert_error(response, 400, "invalid")
    assert f"body.{missing}" in {e["field"] for e in error["errors"]}


async def test_a_body_that_is_not_a_json_object_is_400(tenant: Tenant) -> None:
    response = await tenant.member.post(
        "/reports/", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400, "invalid")
    assert_error(await tenant.member.post("/reports/", json=[1, 2]), 400, "invalid")


async def test_a_missing_or_foreign_report_is_404(
    tenant: Tenant, other_tenant: Tenant, chat_id: int
) -> None:
    created = await report(tenant.admin, chat_id)
    url = f"/reports/{created['id']}/"

    assert_error(await tenant.admin.get(f"/reports/{MISSING_ID}/"), 404, "not_found")
    assert_error(await other_tenant.member.get(url), 404, "not_found")
    assert_error(await other_tenant.admin.put(url, json=body(chat_id)), 404, "not_found")
    assert_error(await other_tenant.admin.patch(url, json={"status": "OPEN"}), 404, "not_found")
    assert_error(await other_tenant.admin.delete(url), 404, "not_found")
    assert (await tenant.admin.get(url)).json() == created


async def test_requests_without_a_key_are_401(app_client: httpx.AsyncClient) -> None:
    assert_error(await app_client.get("/reports/"), 401, "missing_api_key")
    assert_error(await app_client.post("/reports/", json={}), 401, "missing_api_key")


# --- update and delete ---------------------------------------------------------------------------


async def test_put_replaces_and_patch_changes_only_what_is_sent(
    tenant: Tenant, chat_id: int, assistant_id: int, pg_connection: AsyncConnection
) -> None:
    created = await report(tenant.member, chat_id)
    url = f"/reports/{created['id']}/"

    patched = await tenant.admin.patch(url, json={"status": "RESOLVED", "comments": "FAQ fixed."})
    assert patched.status_code == 200, patched.text
    assert patched.json() == {
        **created,
        "status": "RESOLVED",
        "comments": "FAQ fixed.",
        "updated_at": patched.json()["updated_at"],
    }
    assert patched.json()["updated_at"] >= created["updated_at"]

    second_chat = await new_chat(
        pg_connection, tenant.workspace_id, assistant_id, tenant.member_principal_id
    )
    replacement = {
        "category": "CORRECT",
        "reason": "NOT_IN_DOCS",
        "severity": "INFO",
        "status": "NO_ISSUES",
        "chat": second_chat,
    }
    replaced = await tenant.admin.put(url, json=replacement)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json() == {
        **replacement,
        "topic": "",  # PUT replaces: omitted fields take their defaults
        "comments": "",
        "id": created["id"],
        "created_at": created["created_at"],
        "updated_at": replaced.json()["updated_at"],
    }
    assert (await tenant.member.get(url)).json() == replaced.json()

    # A client may PUT back what it GOT, read-only fields included.
    round_trip = await tenant.admin.put(url, json=replaced.json())
    assert round_trip.status_code == 200
    assert round_trip.json()["chat"] == second_chat


@pytest.mark.parametrize(
    ("method", "sent", "field"),
    [
        pytest.param("put", {"category": "CORRECT"}, "body.reason", id="put-missing-fields"),
        pytest.param("put", {}, "body.chat", id="put-empty"),
        pytest.param("patch", {"status": None}, "body", id="patch-null"),
        pytest.param("patch", {"severity": "URGENT"}, "body.severity", id="patch-unknown-value"),
        pytest.param("patch", {"chat": -1}, "body.chat", id="patch-bad-chat"),
    ],
)
async def test_put_and_patch_validate_with_400(
    tenant: Tenant, chat_id: int, method: str, sent: dict[str, Any], field: str
) -> None:
    created = await report(tenant.admin, chat_id)
    url = f"/reports/{created['id']}/"

    response = await tenant.admin.request(method.upper(), url, json=sent)

    error = assert_error(response, 400, "invalid")
    assert any(e["field"].startswith(field) for e in error["errors"]), error
    assert (await tenant.admin.get(url)).json() == created


async def test_moving_a_report_to_a_foreign_chat_is_404_and_changes_nothing(
    tenant: Tenant, chat_id: int, foreign_chat_id: int
) -> None:
    created = await report(tenant.admin, chat_id)
    url = f"/reports/{created['id']}/"

    patch = await tenant.admin.patch(url, json={"chat": foreign_chat_id, "status": "RESOLVED"})
    assert_error(patch, 404, "chat_not_found")
    put = await tenant.admin.put(url, json=body(MISSING_ID))
    assert_error(put, 404, "chat_not_found")
    assert (await tenant.admin.get(url)).json() == created


async def test_only_admin_keys_may_change_or_delete(tenant: Tenant, chat_id: int) -> None:
    created = await report(tenant.member, chat_id)
    url = f"/reports/{created['id']}/"

    assert_error(
        await tenant.member.put(url, json=body(chat_id, status="DISMISSED")), 403, "forbidden"
    )
    assert_error(await tenant.member.patch(url, json={"status": "DISMISSED"}), 403, "forbidden")
    assert_error(await tenant.member.delete(url), 403, "forbidden")
    # Refused before the body is even looked at.
    assert_error(await tenant.member.patch(url, json={"status": None}), 403, "forbidden")
    assert (await tenant.member.get(url)).json() == created


async def test_delete_is_204_and_permanent(tenant: Tenant, chat_id: int) -> None:
    kept = await report(tenant.admin, chat_id)
    gone = await report(tenant.admin, chat_id)
    url = f"/reports/{gone['id']}/"

    response = await tenant.admin.delete(url)
    assert response.status_code == 204
    assert response.content == b""

    assert_error(await tenant.admin.get(url), 404, "not_found")
    assert_error(await tenant.admin.delete(url), 404, "not_found")
    listed = (await tenant.admin.get("/reports/")).json()
    assert [r["id"] for r in listed["results"]] == [kept["id"]]


# --- counts and the list -------------------------------------------------------------------------


async def test_counts_list_every_enum_value_even_with_no_reports(tenant: Tenant) -> None:
    for path in ("/reports/", "/reports/metrics/", "/reports", "/reports/metrics"):
        response = await tenant.member.get(path)
        assert response.status_code == 200, (path, response.text)
        found = response.json()
        assert found["total_reports"] == 0
        assert found["status_counts"] == dict.fromkeys(STATUSES, 0)
        assert found["category_counts"] == dict.fromkeys(CATEGORIES, 0)
        assert found["reason_counts"] == dict.fromkeys(REASONS, 0)
        assert found["severity_counts"] == dict.fromkeys(SEVERITIES, 0)


async def test_list_and_metrics_count_each_dimension_within_the_workspace(
    tenant: Tenant, other_tenant: Tenant, chat_id: int, foreign_chat_id: int
) -> None:
    first = await report(tenant.member, chat_id)
    second = await report(tenant.member, chat_id, status="RESOLVED", severity="LOW")
    third = await report(
        tenant.member,
        chat_id,
        category="CORRECT",
        reason="NOT_IN_DOCS",
        severity="INFO",
        status="NO_ISSUES",
    )
    await report(other_tenant.member, foreign_chat_id, status="DISMISSED")

    metrics = (await tenant.member.get("/reports/metrics/")).json()
    assert set(metrics) == METRIC_KEYS
    assert metrics["total_reports"] == 3
    assert metrics["status_counts"] == {
        "NO_ISSUES": 1,
        "OPEN": 1,
        "IN_REVIEW": 0,
        "RESOLVED": 1,
        "DISMISSED": 0,
    }
    assert metrics["category_counts"] == {
        **dict.fromkeys(CATEGORIES, 0),
        "INCORRECT": 2,
        "CORRECT": 1,
    }
    assert metrics["reason_counts"] == {
        **dict.fromkeys(REASONS, 0),
        "WRONG_INFO": 2,
        "NOT_IN_DOCS": 1,
    }
    assert metrics["severity_counts"] == {
        "INFO": 1,
        "LOW": 1,
        "MEDIUM": 0,
        "HIGH": 1,
        "CRITICAL": 0,
    }

    listed = (await tenant.member.get("/reports/")).json()
    assert set(listed) == METRIC_KEYS | {"count", "next", "previous", "results"}
    assert {k: listed[k] for k in METRIC_KEYS} == metrics
    assert listed["count"] == 3
    assert (listed["next"], listed["previous"]) == (None, None)
    assert listed["results"] == [first, second, third]  # oldest first, as created

    theirs = (await other_tenant.member.get("/reports/")).json()
    assert theirs["total_reports"] == theirs["count"] == 1
    assert theirs["status_counts"]["DISMISSED"] == 1


async def test_the_list_pages_with_links_that_keep_the_filters(
    tenant: Tenant, chat_id: int
) -> None:
    ids = [(await report(tenant.member, chat_id, topic="billing"))["id"] for _ in range(5)]
    await report(tenant.member, chat_id, topic="shipping")

    page1 = await tenant.member.get("/reports/", params={"topic": "billing", "page_size": 2})
    assert page1.status_code == 200, page1.text
    first = page1.json()
    assert (first["count"], first["total_reports"]) == (5, 5)
    assert [r["id"] for r in first["results"]] == ids[:2]
    assert first["previous"] is None
    next_url = httpx.URL(first["next"])
    assert next_url.host == "testserver"
    assert dict(next_url.params) == {"topic": "billing", "page_size": "2", "page": "2"}

    second = (await tenant.member.get(first["next"])).json()
    assert [r["id"] for r in second["results"]] == ids[2:4]
    assert second["total_reports"] == 5  # the counts cover every match, not the page
    assert httpx.URL(second["previous"]).params["page"] == "1"
    third = (await tenant.member.get(second["next"])).json()
    assert [r["id"] for r in third["results"]] == ids[4:]
    assert third["next"] is None
    assert httpx.URL(third["previous"]).params["page"] == "2"

    beyond = (await tenant.member.get("/reports/", params={"page": 9, "page_size": 2})).json()
    assert beyond["results"] == [] and beyond["count"] == 6
    assert_error(await tenant.member.get("/reports/", params={"page": 0}), 422, "invalid")


async def test_topic_and_assistant_filters(
    tenant: Tenant, assistant_id: int, chat_id: int, pg_connection: AsyncConnection
) -> None:
    other_assistant = await new_assistant(tenant.admin)
    other_chat = await new_chat(
        pg_connection, tenant.workspace_id, other_assistant, tenant.member_principal_id
    )
    a = await report(tenant.member, chat_id, topic="billing")
    b = await report(tenant.member, chat_id, topic="shipping", status="RESOLVED")
    c = await report(tenant.member, other_chat, topic="billing")

    async def matching(**params: Any) -> list[int]:
        listed = await tenant.member.get("/reports/", params=params)
        metrics = await tenant.member.get("/reports/metrics/", params=params)
        assert listed.status_code == metrics.status_code == 200, (listed.text, metrics.text)
        assert metrics.json()["total_reports"] == listed.json()["count"]
        return [r["id"] for r in listed.json()["results"]]

    assert await matching(topic="billing") == [a["id"], c["id"]]
    assert await matching(topic="BILLING") == []
    assert await matching(topic="") == [a["id"], b["id"], c["id"]]  # empty means no filter
    assert await matching(assistant=assistant_id) == [a["id"], b["id"]]
    assert await matching(assistant=other_assistant) == [c["id"]]
    assert await matching(assistant=assistant_id, topic="billing") == [a["id"]]
    assert await matching(assistant=MISSING_ID) == []

    filtered = await tenant.member.get("/reports/metrics/", params={"assistant": assistant_id})
    assert filtered.json()["status_counts"] == {
        **dict.fromkeys(STATUSES, 0),
        "OPEN": 1,
        "RESOLVED": 1,
    }

    response = await tenant.member.get("/reports/", params={"assistant": "abc"})
    error = assert_error(response, 422, "invalid")  # a malformed id, as on every other list
    assert error["errors"][0]["field"] == "query.assistant"


async def test_date_filters_include_both_whole_days_in_utc(
    tenant: Tenant, chat_id: int, pg_connection: AsyncConnection
) -> None:
    moments = {
        "before": datetime(2025, 4, 30, 23, 59, 59, 999_999, tzinfo=UTC),
        "first": datetime(2025, 5, 1, 0, 0, tzinfo=UTC),
        "middle": datetime(2025, 5, 15, 12, 0, tzinfo=UTC),
        "last": datetime(2025, 5, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        "after": datetime(2025, 6, 1, 0, 0, tzinfo=UTC),
    }
    for name, moment in moments.items():
        created = await report(tenant.member, chat_id, topic=name)
        await set_created_at(pg_connection, created["id"], moment)

    async def matching(**params: str) -> list[str]:
        listed = await tenant.member.get("/reports/", params=params)
        metrics = await tenant.member.get("/reports/metrics/", params=params)
        assert listed.status_code == metrics.status_code == 200, (listed.text, metrics.text)
        assert metrics.json()["total_reports"] == listed.json()["count"]
        return [r["topic"] for r in listed.json()["results"]]

    assert await matching(start_date="2025-05-01", end_date="2025-05-31") == [
        "first",
        "middle",
        "last",
    ]
    assert await matching(start_date="2025-05-31") == ["last", "after"]
    assert await matching(end_date="2025-05-01") == ["before", "first"]
    assert await matching(start_date="2025-05-15", end_date="2025-05-15") == ["middle"]
    assert await matching(start_date="2025-06-02") == []
    assert await matching(start_date="", end_date="") == list(moments)  # empty means no filter


@pytest.mark.parametrize("path", ["/reports/", "/reports/metrics/"])
@pytest.mark.parametrize("name", ["start_date", "end_date"])
@pytest.mark.parametrize("value", ["2025-13-01", "2025-02-30", "2025-5-1", "01/05/2025", "today"])
async def test_a_malformed_date_is_400_naming_the_parameter(
    tenant: Tenant, path: str, name: str, value: str
) -> None:
    response = await tenant.member.get(path, params={name: value})

    error = assert_error(response, 400, "invalid_date")
    assert error["detail"].startswith(f"{name} must be a date as YYYY-MM-DD")
    assert value in error["detail"]


@pytest.mark.parametrize("path", ["/reports/", "/reports/metrics/"])
async def test_a_start_after_the_end_is_400(tenant: Tenant, path: str) -> None:
    response = await tenant.member.get(
        path, params={"start_date": "2025-05-02", "end_date": "2025-05-01"}
    )

    error = assert_error(response, 400, "invalid_date_range")
    assert "start_date" in error["detail"] and "end_date" in error["detail"]


async def test_a_nul_in_the_topic_filter_is_400(tenant: Tenant) -> None:
    response = await tenant.member.get("/reports/metrics/", params={"topic": "bad\x00topic"})
    assert_error(response, 400, "invalid")


# --- the contract --------------------------------------------------------------------------------


async def test_openapi_documents_the_seed_paths_statuses_and_enums(
    app_client: httpx.AsyncClient,
) -> None:
    spec = (await app_client.get("/openapi.json")).json()
    paths = {p: item for p, item in spec["paths"].items() if p.startswith("/reports")}

    wanted = {
        "/reports/": {"get": ("list_reports", "200"), "post": ("create_report", "200")},
        "/reports/metrics/": {"get": ("report_metrics", "200")},
        "/reports/{id}/": {
            "get": ("get_report", "200"),
            "put": ("update_report", "200"),
            "patch": ("partial_update_report", "200"),
            "delete": ("delete_report", "204"),
        },
    }
    assert {p: sorted(item) for p, item in paths.items()} == {
        p: sorted(methods) for p, methods in wanted.items()
    }
    for path, methods in wanted.items():
        for method, (operation_id, status) in methods.items():
            operation = paths[path][method]
            assert operation["operationId"] == operation_id
            assert operation["tags"] == ["reports"]
            assert status in operation["responses"], (path, method)
    assert "201" not in paths["/reports/"]["post"]["responses"]
    for path, method in [
        ("/reports/", "post"),
        ("/reports/{id}/", "put"),
        ("/reports/{id}/", "patch"),
        ("/reports/", "get"),
        ("/reports/metrics/", "get"),
    ]:
        assert "400" in paths[path][method]["responses"], (path, method)
    for method in ("get", "put", "patch", "delete"):
        assert "404" in paths["/reports/{id}/"][method]["responses"]

    schemas = spec["components"]["schemas"]
    assert schemas["ReportStatus"]["enum"] == STATUSES
    assert schemas["ReportCategory"]["enum"] == CATEGORIES
    assert schemas["ReportReason"]["enum"] == REASONS
    assert schemas["ReportSeverity"]["enum"] == SEVERITIES
    assert all(
        schemas[name]["description"] for name in ("ReportStatus", "ReportCategory", "ReportReason")
    )
    page = schemas["ReportPage"]["properties"]
    assert set(page) == METRIC_KEYS | {"count", "next", "previous", "results"}
    assert page["status_counts"]["propertyNames"] == {"$ref": "#/components/schemas/ReportStatus"}
    assert set(schemas["ReportOut"]["properties"]) == SEED_KEYS


async def test_a_member_reports_only_on_chats_it_made(
    tenant: Tenant, pg_connection: AsyncConnection
) -> None:
    assistant = await new_assistant(tenant.admin)
    admins_chat = await new_chat(pg_connection, tenant.workspace_id, assistant, None)
    refused = await tenant.member.post("/reports/", json=body(admins_chat))
    assert_error(refused, 404, "chat_not_found")
    assert (await tenant.admin.post("/reports/", json=body(admins_chat))).status_code == 200


# --- what a member sees --------------------------------------------------------------------------


async def test_a_member_sees_only_reports_on_chats_it_can_open(
    tenant: Tenant, second_member: SecondMember, pg_connection: AsyncConnection
) -> None:
    assistant = await new_assistant(tenant.admin)
    a_chat = await new_chat(
        pg_connection, tenant.workspace_id, assistant, tenant.member_principal_id
    )
    b_chat = await new_chat(
        pg_connection, tenant.workspace_id, assistant, second_member.principal_id
    )
    a_report = await report(tenant.member, a_chat, topic="secret-a", comments="A's words")
    b_report = await report(second_member.client, b_chat, topic="secret-b")

    # A: its own report, in the list and by id.
    assert await listed_ids(tenant.member) == [a_report["id"]]
    own = await tenant.member.get(f"/reports/{a_report['id']}/")
    assert own.status_code == 200 and own.json() == a_report

    # B: not in its list, and by id exactly like a missing report.
    b = second_member.client
    assert await listed_ids(b) == [b_report["id"]]
    assert await listed_ids(b, topic="secret-a") == []
    assert await listed_ids(b, assistant=assistant) == [b_report["id"]]
    hidden = assert_error(await b.get(f"/reports/{a_report['id']}/"), 404, "not_found")
    missing = assert_error(await b.get(f"/reports/{MISSING_ID}/"), 404, "not_found")
    assert hidden["detail"] == missing["detail"].replace(str(MISSING_ID), str(a_report["id"]))
    assert "secret-a" not in (await b.get("/reports/")).text

    # The admin sees both members' reports.
    assert await listed_ids(tenant.admin) == [a_report["id"], b_report["id"]]
    for created in (a_report, b_report):
        fetched = await tenant.admin.get(f"/reports/{created['id']}/")
        assert fetched.status_code == 200 and fetched.json() == created


async def test_a_members_counts_cover_only_the_reports_it_sees(
    tenant: Tenant, second_member: SecondMember, pg_connection: AsyncConnection
) -> None:
    assistant = await new_assistant(tenant.admin)
    a_chat = await new_chat(
        pg_connection, tenant.workspace_id, assistant, tenant.member_principal_id
    )
    admins_chat = await new_chat(pg_connection, tenant.workspace_id, assistant, None)
    await report(tenant.member, a_chat, status="OPEN")
    await report(tenant.admin, a_chat, status="RESOLVED")  # on A's chat: A sees it too
    await report(tenant.admin, admins_chat, status="DISMISSED")

    for path in ("/reports/", "/reports/metrics/"):
        a_counts = (await tenant.member.get(path)).json()
        assert a_counts["total_reports"] == 2, path
        assert a_counts["status_counts"]["DISMISSED"] == 0, path
        b_counts = (await second_member.client.get(path)).json()
        assert b_counts["total_reports"] == 0, path
        assert (await tenant.admin.get(path)).json()["total_reports"] == 3, path
    assert (await tenant.member.get("/reports/")).json()["count"] == 2


async def test_another_member_cannot_change_or_delete_a_report(
    tenant: Tenant, second_member: SecondMember, chat_id: int
) -> None:
    created = await report(tenant.member, chat_id)
    url = f"/reports/{created['id']}/"
    b = second_member.client

    assert_error(await b.get(url), 404, "not_found")
    assert_error(await b.put(url, json=body(chat_id, status="DISMISSED")), 403, "forbidden")
    assert_error(await b.patch(url, json={"status": "DISMISSED"}), 403, "forbidden")
    assert_error(await b.delete(url), 403, "forbidden")
    assert (await tenant.admin.get(url)).json() == created
