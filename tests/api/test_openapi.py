"""The OpenAPI document as SDK generators read it: valid, one meaningful name per schema, security
on every authenticated operation, a description on every operation and schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from openapi_spec_validator import validate

from chatsvc.config import Settings
from chatsvc.main import create_app

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
