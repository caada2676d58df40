"""Key management over the API: /api-keys/ (admin only; member keys get 404), and a revoked,
rotated-out or expired key refused at once on every replica sharing the database and Redis."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from chatsvc.auth.models import ApiKey
from chatsvc.kit.db import iso_utc, unit_of_work, utcnow
from chatsvc.migrate import upgrade
from tests.fixtures.app import Live, Tenant, live_tenant, make_settings, serve, services_of


async def _status(client: httpx.AsyncClient, key: str) -> int:
    response = await client.get("/assistants/", headers={"X-Api-Key": key})
    return response.status_code


async def test_create_use_rotate_revoke_on_two_replicas(live: Live, live_pg_url: str) -> None:
    # A second replica: its own process-wide key cache, the same database and Redis.
    async with (
        serve(make_settings(live_pg_url)) as (other_url, other_app),
        httpx.AsyncClient(base_url=live.base_url) as one,
        httpx.AsyncClient(base_url=other_url) as two,
    ):
        assert services_of(other_app).authenticator is not live.services.authenticator
        created = await live.admin.post(
            "/api-keys/", json={"role": "member", "user": "kim", "name": "kim's laptop"}
        )
        assert created.status_code == 201, created.text
        body = created.json()
        first, first_id = body["key"], body["id"]
        assert first.startswith(body["prefix"])
        assert (body["role"], body["user"], body["revoked_at"]) == ("member", "kim", None)

        # In use on both replicas (each now keeps it in its cache).
        assert (await _status(one, first), await _status(two, first)) == (200, 200)

        rotated = await live.admin.post(
            f"/api-keys/{first_id}/rotate/", json={"grace_seconds": 3600}
        )
        assert rotated.status_code == 201, rotated.text
        second, second_id = rotated.json()["key"], rotated.json()["id"]
        assert second != first and rotated.json()["user"] == "kim"
        # The old key works through its grace period; the new one works.
        for key in (first, second):
            assert (await _status(one, key), await _status(two, key)) == (200, 200)
        old = (await live.admin.get(f"/api-keys/{first_id}/")).json()
        assert old["expires_at"] is not None and old["revoked_at"] is None
        assert old["last_used_at"] is not None

        # Revoked on one replica: refused at once on both.
        revoked = await two.delete(f"/api-keys/{first_id}/", headers={"X-Api-Key": live.admin_key})
        assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
        for client in (one, two):
            refused = await client.get("/assistants/", headers={"X-Api-Key": first})
            assert refused.status_code == 401
            assert refused.json()["code"] == "invalid_api_key"
        assert (await _status(one, second), await _status(two, second)) == (200, 200)

        # A rotation without grace ends the old key at once, everywhere.
        third = await live.admin.post(f"/api-keys/{second_id}/rotate", json={"grace_seconds": 0})
        assert third.status_code == 201
        assert (await _status(one, second), await _status(two, second)) == (401, 401)
        new = third.json()["key"]
        assert (await _status(one, new), await _status(two, new)) == (200, 200)

        # The listing shows all three, newest first, and never a secret.
        listing = await live.admin.get("/api-keys/", params={"page_size": 100})
        assert listing.status_code == 200
        page = listing.json()
        ids = [item["id"] for item in page["results"]]
        assert ids == sorted(ids, reverse=True)
        assert {first_id, second_id, third.json()["id"]} <= set(ids)
        for secret in (first, second, new):
            assert secret not in listing.text
        assert all("key" not in item for item in page["results"])


async def test_an_expired_key_is_401(live: Live) -> None:
    created = await live.admin.post(
        "/api-keys/",
        json={"role": "admin", "expires_at": iso_utc(utcnow() + timedelta(hours=1))},
    )
    assert created.status_code == 201
    assert created.json()["expires_at"] is not None
    raw = created.json()["key"]
    async with httpx.AsyncClient(base_url=live.base_url) as client:
        assert await _status(client, raw) == 200
        # Its expiry passes (written in the database; a key not yet kept by the replica).
        later = (await live.admin.post("/api-keys/", json={"role": "admin"})).json()
        async with unit_of_work(live.services.sessionmaker) as db:
            await db.execute(
                update(ApiKey)
                .where(ApiKey.id == later["id"])
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
        refused = await client.get("/assistants/", headers={"X-Api-Key": later["key"]})
        assert refused.status_code == 401
        assert refused.json()["code"] == "invalid_api_key"


async def test_an_expiry_in_the_past_is_refused(tenant: Tenant) -> None:
    response = await tenant.admin.post(
        "/api-keys/", json={"role": "admin", "expires_at": "2020-01-01T00:00:00Z"}
    )
    assert response.status_code == 400
    assert "future" in response.json()["detail"]


async def test_a_member_key_needs_a_user(tenant: Tenant) -> None:
    response = await tenant.admin.post("/api-keys/", json={"role": "member"})
    assert response.status_code == 400
    assert "user" in response.json()["detail"]


async def test_grace_longer_than_the_maximum_is_refused(tenant: Tenant) -> None:
    key_id = (await tenant.admin.post("/api-keys/", json={"role": "admin"})).json()["id"]
    response = await tenant.admin.post(f"/api-keys/{key_id}/rotate/", json={"grace_seconds": 10**9})
    assert response.status_code == 422


async def test_rotating_a_revoked_key_is_409(tenant: Tenant) -> None:
    key_id = (await tenant.admin.post("/api-keys/", json={"role": "admin"})).json()["id"]
    assert (await tenant.admin.delete(f"/api-keys/{key_id}/")).status_code == 200
    assert (await tenant.admin.delete(f"/api-keys/{key_id}/")).status_code == 200
    assert (await tenant.admin.post(f"/api-keys/{key_id}/rotate/")).status_code == 409


async def test_keys_of_another_workspace_are_404(tenant: Tenant, other_tenant: Tenant) -> None:
    key_id = (await other_tenant.admin.post("/api-keys/", json={"role": "admin"})).json()["id"]
    assert (await tenant.admin.get(f"/api-keys/{key_id}/")).status_code == 404
    assert (await tenant.admin.delete(f"/api-keys/{key_id}/")).status_code == 404
    listed = (await tenant.admin.get("/api-keys/")).json()["results"]
    assert key_id not in [item["id"] for item in listed]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api-keys/"),
        ("POST", "/api-keys/"),
        ("GET", "/api-keys/{id}/"),
        ("DELETE", "/api-keys/{id}/"),
        ("POST", "/api-keys/{id}/rotate/"),
    ],
)
async def test_member_keys_get_404(tenant: Tenant, method: str, path: str) -> None:
    key_id = (await tenant.admin.post("/api-keys/", json={"role": "admin"})).json()["id"]
    response = await tenant.member.request(
        method, path.format(id=key_id), json={"role": "admin"} if method == "POST" else None
    )
    assert response.status_code == 404
    assert "api" not in response.json()["detail"].lower()


async def test_a_key_cannot_revoke_or_rotate_itself(tenant: Tenant) -> None:
    created = (await tenant.admin.post("/api-keys/", json={"role": "admin"})).json()
    headers = {"X-Api-Key": created["key"]}
    for method, path in (("DELETE", "/api-keys/{}/"), ("POST", "/api-keys/{}/rotate/")):
        response = await tenant.admin.request(method, path.format(created["id"]), headers=headers)
        assert response.status_code == 409
        assert "itself" in response.json()["detail"]
    # The key still works.
    assert (await tenant.admin.get("/api-keys/", headers=headers)).status_code == 200


@pytest.mark.sqlite
async def test_embedded_revocation_and_expiry_without_redis(tmp_path: Path) -> None:
    """One process, SQLite, no Redis: the process forgets its kept keys itself; expiry is
    compared in SQL on SQLite too."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'chatsvc.db'}"
    await asyncio.to_thread(upgrade, url)
    settings = make_settings(url, redis_url=None, job_queue="in-process")
    async with live_tenant(settings) as live, httpx.AsyncClient(base_url=live.base_url) as client:
        assert live.services.redis is None
        later = iso_utc(utcnow() + timedelta(hours=1))
        body = (
            await live.admin.post(
                "/api-keys/", json={"role": "member", "user": "kim", "expires_at": later}
            )
        ).json()
        assert await _status(client, body["key"]) == 200  # now kept by the process
        assert (await live.admin.delete(f"/api-keys/{body['id']}/")).status_code == 200
        assert await _status(client, body["key"]) == 401
        expired = (await live.admin.post("/api-keys/", json={"role": "admin"})).json()
        async with unit_of_work(live.services.sessionmaker) as db:
            await db.execute(
                update(ApiKey)
                .where(ApiKey.id == expired["id"])
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
        assert await _status(client, expired["key"]) == 401
