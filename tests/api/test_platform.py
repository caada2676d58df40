"""What every endpoint shares: health, metrics, request ids, body limits, errors, OpenAPI."""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from chatsvc.config import Settings
from chatsvc.main import create_app
from tests.fixtures.app import Live, Tenant, make_settings

SEEDS = Path(__file__).resolve().parents[2] / "docs" / "seeds"


async def test_healthz_and_readyz(app_client: httpx.AsyncClient) -> None:
    assert (await app_client.get("/healthz")).json() == {"status": "ok"}
    response = await app_client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}


async def test_readyz_reports_a_dead_redis(pg_url: str) -> None:
    app = create_app(make_settings(pg_url, redis_url="redis://127.0.0.1:1/0"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "ok"
    assert response.json()["checks"]["redis"].startswith("error")


async def test_metrics_count_requests_by_route_template(tenant: Tenant) -> None:
    await tenant.admin.get("/assistants/77/")
    await tenant.admin.get("/assistants/77")
    text = (await tenant.admin.get("/metrics")).text
    line = next(
        line
        for line in text.splitlines()
        if line.startswith("chatsvc_http_requests_total{")
        and 'route="/assistants/{id}/"' in line
        and 'status="404"' in line
    )
    assert float(line.rsplit(" ", 1)[1]) >= 2


async def test_request_id_is_echoed_or_made(app_client: httpx.AsyncClient) -> None:
    given = await app_client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert given.headers["X-Request-Id"] == "abc-123"
    made = await app_client.get("/healthz", headers={"X-Request-Id": "bad id\twith spaces"})
    assert len(made.headers["X-Request-Id"]) == 32
    error = await app_client.get("/assistants/", headers={"X-Request-Id": "req-42"})
    assert error.json()["request_id"] == "req-42"


async def test_oversized_body_is_413(tenant: Tenant) -> None:
    huge = {"description": "x", "system_prompt": "a" * 1_100_000}
    response = await tenant.admin.post("/assistants/", json=huge)
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"a" * 65536

    streamed = await tenant.admin.post(
        "/assistants/", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert (await tenant.admin.get("/assistants/")).json()["count"] == 0


async def test_oversized_headers_are_431_on_a_real_server(live: Live) -> None:
    big = {"X-Padding": "p" * 70_000}  # over the 64 KiB default (CHATSVC_MAX_HEADER_BYTES)
    refused = await live.admin.get("/assistants/", headers=big)
    assert refused.status_code == 431
    assert refused.json()["code"] == "headers_too_large"
    assert "CHATSVC_MAX_HEADER_BYTES" in refused.json()["detail"]
    fine = await live.admin.get("/assistants/", headers={"X-Padding": "p" * 8_000})
    assert fine.status_code == 200


async def test_unknown_paths_and_methods_use_the_error_body(tenant: Tenant) -> None:
    missing = await tenant.admin.get("/nope/")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    assert "/docs" in missing.json()["detail"]
    wrong = await tenant.admin.put("/healthz")
    assert wrong.status_code == 405
    assert wrong.json()["code"] == "method_not_allowed"


async def test_docs_pages_and_their_assets_are_served_here(app_client: httpx.AsyncClient) -> None:
    """No key needed; nothing from a CDN (the browser check is tests/ui/test_docs_pages.py)."""
    for page in ("/docs", "/redoc"):
        response = await app_client.get(page)
        assert response.status_code == 200
        assert response.headers["content-security-policy"].startswith("default-src 'self';")
        assert "https://" not in response.text
    for asset, kind in (
        ("swagger-ui-bundle.js", "text/javascript"),
        ("swagger-ui.css", "text/css"),
        ("redoc.standalone.js", "text/javascript"),
    ):
        response = await app_client.get(f"/docs-assets/{asset}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(kind)
    missing = await app_client.get("/docs-assets/nope.js")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    redirect = await app_client.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200


def _contract() -> list[dict[str, str]]:
    with (SEEDS / "endpoints.tsv").open() as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def test_openapi_has_unique_operation_ids_and_the_seed_statuses() -> None:
    spec = create_app(Settings()).openapi()
    operations = [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    ]
    ids = [operation["operationId"] for _p, _m, operation in operations]
    assert len(ids) == len(set(ids))
    assert "create_assistant" in ids and "update_fixed_response" in ids
    assert not any(path.endswith("_alt") for path in ids)

    wanted = {
        "/assistants/": {"get": "200", "post": "201"},
        "/assistants/info/": {"get": "200"},
        "/assistants/{id}/": {"get": "200", "put": "200", "patch": "200", "delete": "204"},
        "/assistants/{assistant}/common_questions/": {"get": "200"},
        "/assistants/{assistant}/common_questions/{question}/": {"put": "200", "delete": "200"},
        "/assistants/{assistant}/fixed_questions/": {"get": "200", "post": "201"},
        "/assistants/{assistant}/fixed_questions/{question}/": {"put": "201", "delete": "200"},
        "/assistants/{assistant}/lessons/": {"get": "200", "post": "201"},
        "/assistants/{assistant}/lessons/{lesson}": {"put": "200", "delete": "200"},
    }
    for path, methods in wanted.items():
        for method, status in methods.items():
            operation = spec["paths"][path][method]
            assert status in operation["responses"], (path, method)
            assert operation["tags"], (path, method)
    create = spec["paths"]["/assistants/"]["post"]
    assert "400" in create["responses"]
    assert "security" in create


def test_every_seed_assistant_and_knowledge_endpoint_is_present() -> None:
    spec = create_app(Settings()).openapi()
    declared = {
        (method.upper(), path.rstrip("/")): set(operation["responses"])
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    }
    rows = [
        row
        for row in _contract()
        if row["face"] == "cognitive"
        and row["path"].startswith("/assistants/")
        and "chats" not in row["path"]
        and row["path"] != "/assistants/{assistant}/"
    ]
    assert len(rows) == 18  # the 18 assistant, info and knowledge endpoints
    for row in rows:
        path = row["path"].rstrip("/")
        key = (row["method"], path)
        assert key in declared, key
        assert row["success_status"] in declared[key], key


def test_production_refuses_placeholder_secrets() -> None:
    with pytest.raises(ValueError, match="CHATSVC_SECRET_KEY"):
        Settings(env="production")
    with pytest.raises(ValueError, match="BOOTSTRAP_API_KEY"):
        Settings(env="production", secret_key="s" * 40, bootstrap_api_key="changeme")
    ok = Settings(env="production", secret_key="s" * 40)
    assert ok.env == "production"


async def test_browsers_may_read_the_headers_the_docs_point_them_to(live_pg_url: str) -> None:
    settings = make_settings(live_pg_url, cors_origins=["https://app.example"])
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://chatsvc") as client:
        response = await client.get("/healthz", headers={"Origin": "https://app.example"})
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    exposed = {
        h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")
    }
    assert {"x-chat-id", "x-request-id", "x-total-count", "link"} <= exposed


def test_settings_errors_name_the_variable() -> None:
    with pytest.raises(ValueError, match="CHATSVC_DEFAULT_GENERATOR"):
        Settings(default_generator="missing")
    assert json.loads(Settings(cors_origins="http://a, http://b").model_dump_json())[
        "cors_origins"
    ] == ["http://a", "http://b"]


async def test_secrets_never_reach_logs_or_bodies(
    tenant: Tenant, caplog: pytest.LogCaptureFixture, pg_connection: AsyncConnection
) -> None:
    caplog.set_level("INFO")
    await tenant.admin.get("/assistants/")
    await tenant.admin.get("/assistants/", headers={"X-Api-Key": "csk_wrong_secret_value"})
    assert tenant.admin_key not in caplog.text
    assert "csk_wrong_secret_value" not in caplog.text
