"""The OpenAPI document as SDK generators read it: valid, one meaningful name per schema, security
on every authenticated operation, a description on every operation and schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from chatsvc.config import Settings
from chatsvc.main import create_app
from tests.fixtures.app import Live
from tests.fixtures.chats import make_assistant, new_chat
from tests.fixtures.sse import names, sse
from tests.fixtures.threads import stream

#: The operations anyone may call (probes and the Prometheus scrape).
PUBLIC = {("get", "/healthz"), ("get", "/readyz"), ("get", "/metrics")}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app(Settings()).openapi()


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def test_the_document_is_valid_openapi(spec: dict[str, Any]) -> None:
    validate(spec)


def test_schema_names_are_plain_and_unique_per_shape(spec: dict[str, Any]) -> None:
    names = list(spec["components"]["schemas"])
    assert [name for name in names if "__" in name or "." in name] == []
    assert "ThreadMessageOut" in names and "V1ChatMessageOut" in names


def test_every_operation_but_the_probes_declares_the_key_schemes(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    # One documented way per header.
    assert schemes["ApiKeyAuth"] | {"description": ""} == {
        "type": "apiKey",
        "in": "header",
        "name": "X-Api-Key",
        "description": "",
    }
    assert (schemes["BearerAuth"]["type"], schemes["BearerAuth"]["scheme"]) == ("http", "bearer")
    assert set(schemes) == {"ApiKeyAuth", "BearerAuth"}
    for method, path, operation in operations(spec):
        if (method, path) in PUBLIC:
            assert "security" not in operation, (method, path)
        else:
            assert operation["security"] == [{"ApiKeyAuth": []}, {"BearerAuth": []}], (
                method,
                path,
            )
        # The key headers are never plain parameters as well.
        headers = {
            p["name"].lower() for p in operation.get("parameters", []) if p["in"] == "header"
        }
        assert not headers & {"x-api-key", "authorization"}, (method, path)


# --- Server-Sent Events -------------------------------------------------------------------------

STREAMS = {
    ("get", "/chats_stream/{id}/"): {"Accept", "Last-Event-ID", "last_event_id"},
    ("post", "/chats_stream/{id}/"): {"Accept"},
    ("post", "/assistants/{assistant}/chats_stream/"): {"Accept"},
    ("post", "/api/chat/stream/"): {"Accept", "Last-Event-ID", "last_event_id"},
}


def test_streams_declare_their_events_and_resume_parameters(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    for (method, path), wanted in STREAMS.items():
        operation = spec["paths"][path][method]
        assert {p["name"] for p in operation["parameters"]} >= wanted, (method, path)
        (success,) = [r for s, r in operation["responses"].items() if s in ("200", "201")]
        stream = success["content"]["text/event-stream"]
        listed = stream["x-sse-events"]
        assert {"message.created", "delta", "message.completed", "error"} <= set(listed)
        for name, ref in listed.items():
            schema = schemas[ref["$ref"].rsplit("/", 1)[-1]]
            assert schema["description"], name
            assert f"`{name}`" in success["description"]


def event_validator(spec: dict[str, Any], ref: dict[str, str]) -> OAS31Validator:
    return OAS31Validator({**ref, "components": spec["components"]})


async def test_real_streams_match_their_documented_events(live: Live, spec: dict[str, Any]) -> None:
    assistant = await make_assistant(live.admin, generation_config="offline")
    chat = await new_chat(live.admin, assistant)
    async with sse(live.admin, "POST", f"/chats_stream/{chat}/", json={"message": "hi"}) as source:
        cognitive = await source.rest()
    _response, threads = await stream(live.admin, {"input": "hello", "assistant": assistant})
    async with sse(live.admin, "GET", f"/chats_stream/{chat}/") as source:
        idle = await source.rest()  # nothing runs: the chat as it is
    for path, method, found in (
        ("/chats_stream/{id}/", "post", cognitive),
        ("/api/chat/stream/", "post", threads),
        ("/chats_stream/{id}/", "get", idle),
    ):
        responses = spec["paths"][path][method]["responses"]
        (success,) = [r for s, r in responses.items() if s in ("200", "201")]
        listed = success["content"]["text/event-stream"]["x-sse-events"]
        assert found, path
        for event in found:
            event_validator(spec, listed[event.event]).validate(event.data)
    assert names(idle) == ["chat"]
    assert "turn" in names(threads) and "message.completed" in names(cognitive)


def test_the_job_artifact_is_binary_csv(spec: dict[str, Any]) -> None:
    success = spec["paths"]["/jobs/{id}/artifact/"]["get"]["responses"]["200"]
    assert success["content"] == {"text/csv": {"schema": {"type": "string", "format": "binary"}}}


def test_domain_enums_are_enums(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    ref = "#/components/schemas/{}".format
    message = schemas["MessageOut"]["properties"]
    assert message["role"]["$ref"] == ref("Role")
    assert message["status"]["$ref"] == ref("MessageStatus")
    assert message["severity"]["$ref"] == ref("ModerationSeverity")
    assert message["action_taken"]["$ref"] == ref("ModerationAction")
    assert schemas["ChatOut"]["properties"]["execution_status"]["$ref"] == ref("ExecutionStatus")
    assert schemas["ThreadMessageOut"]["properties"]["severity"]["$ref"] == ref(
        "ModerationSeverity"
    )
    assert schemas["ModerationSeverity"]["enum"] == ["none", "low", "medium", "high", "critical"]


def test_every_operation_and_schema_has_a_description(spec: dict[str, Any]) -> None:
    undescribed = [
        (m, p) for m, p, operation in operations(spec) if not operation.get("description")
    ]
    assert undescribed == []
    schemas = spec["components"]["schemas"]
    assert [name for name, schema in schemas.items() if not schema.get("description")] == []
