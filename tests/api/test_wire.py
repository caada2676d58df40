"""The strict wire (issue 14): a JSON body only as JSON (415 otherwise; a BOM or UTF-16 is 400),
JSON types taken as sent (0 is not false), empty filter values documented as "no filter", and
every status an operation may answer in the OpenAPI document."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chatsvc.config import Settings
from chatsvc.main import create_app
from tests.fixtures.app import Tenant
from tests.fixtures.chats import make_assistant, new_chat

BODY = json.dumps({"description": "A helpful assistant"})


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"],
)
async def test_a_body_not_sent_as_json_is_415(tenant: Tenant, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await tenant.admin.post("/assistants/", content=BODY, headers=headers)
    assert response.status_code == 415, response.text
    assert response.json()["code"] == "unsupported_media_type"
    assert "application/json" in response.json()["detail"]
    assert (await tenant.admin.get("/assistants/")).json()["count"] == 0


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=UTF-8", "application/x+json"]
)
async def test_json_content_types_are_read(tenant: Tenant, content_type: str) -> None:
    response = await tenant.admin.post(
        "/assistants/", content=BODY, headers={"Content-Type": content_type}
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("encoded", "named"),
    [
        (b"\xef\xbb\xbf" + BODY.encode(), "UTF-8 with a byte-order mark"),
        (BODY.encode("utf-16"), "UTF-16"),
        (BODY.encode("utf-16-le"), "UTF-16"),
    ],
)
async def test_json_that_is_not_plain_utf8_is_400(
    tenant: Tenant, encoded: bytes, named: str
) -> None:
    response = await tenant.admin.post(
        "/assistants/", content=encoded, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_encoding"
    assert named in response.json()["detail"]
    assert (await tenant.admin.get("/assistants/")).json()["count"] == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [("streaming_available", 0), ("streaming_available", "true"), ("temperature", "0.5")],
)
async def test_booleans_and_numbers_are_not_coerced(tenant: Tenant, field: str, value: Any) -> None:
    response = await tenant.admin.post("/assistants/", json={"description": "Strict", field: value})
    assert response.status_code == 400, response.text
    assert [e["field"] for e in response.json()["errors"]] == [f"body.{field}"]


async def test_matrix_mode_zero_is_refused(tenant: Tenant) -> None:
    chat = await new_chat(tenant.admin, await make_assistant(tenant.admin))
    refused = await tenant.admin.put(f"/chats/{chat}/", json={"matrix_mode": 0})
    assert refused.status_code in (400, 422), refused.text
    assert "JSON boolean" in refused.json()["detail"]


async def test_an_empty_filter_value_means_no_filter(tenant: Tenant) -> None:
    for path in (
        "/api/chat-threads/?user=",
        "/api/chat-messages/?thread=",
        "/reports/?start_date=",
    ):
        assert (await tenant.admin.get(path)).status_code == 200, path
    spec = create_app(Settings()).openapi()
    (user,) = (
        p for p in spec["paths"]["/api/chat-threads/"]["get"]["parameters"] if p["name"] == "user"
    )
    assert {"type": "string", "maxLength": 0, "description": "Empty: no filter."} in user["schema"][
        "anyOf"
    ]


def test_every_operation_documents_the_statuses_of_the_wire() -> None:
    spec = create_app(Settings()).openapi()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            statuses = set(operation["responses"])
            if path.startswith("/v1/"):
                # The OpenAI-compatible face answers a request validation error as OpenAI
                # does, 400 invalid_request_error: it never sends a 422, nor documents one.
                assert {"400", "431"} <= statuses and "422" not in statuses, (method, path)
            else:
                assert {"400", "422", "431"} <= statuses, (method, path)
            if "requestBody" in operation:
                assert {"413", "415"} <= statuses, (method, path)


def test_sparse_fieldsets_and_files_are_documented_as_sent() -> None:
    spec = create_app(Settings()).openapi()
    one = spec["paths"]["/api/chat-threads/{uuid}/"]["get"]["responses"]["200"]
    refs = [s["$ref"] for s in one["content"]["application/json"]["schema"]["anyOf"]]
    assert refs == ["#/components/schemas/ThreadOut", "#/components/schemas/ThreadOutFieldset"]
    fieldset = spec["components"]["schemas"]["ThreadOutFieldset"]
    assert "required" not in fieldset
    assert set(fieldset["properties"]) == set(
        spec["components"]["schemas"]["ThreadOut"]["properties"]
    )
    artifact = spec["paths"]["/jobs/{id}/artifact/"]["get"]["responses"]["200"]
    assert list(artifact["content"]) == ["text/csv"]


async def test_an_empty_idempotency_key_is_refused_not_stored(tenant: Tenant) -> None:
    """An empty key was stored as a key: the second chat made with one hit the workspace's
    unique constraint (500)."""
    assistant = await make_assistant(tenant.admin)
    for _ in range(2):
        refused = await tenant.admin.post(
            f"/assistants/{assistant}/", json={}, headers={"Idempotency-Key": ""}
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == "header.idempotency-key"
