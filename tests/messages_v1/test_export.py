"""POST /api/v1/chat-messages/export: what is refused (400 before anything is enqueued: a callback
URL that is not HTTPS to a public server, a bad period or language, a missing field; 403 for
member keys), and what an accepted request stores: one export job with the period, the header
language and the callback, once per Idempotency-Key."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select

from chatsvc.jobs.models import Job
from tests.fixtures.messages_v1 import URL, V1

EXPORT = f"{URL}/export"
PUBLIC = "https://93.184.215.14/hooks/chatsvc"  # a literal public address: no DNS needed
START = "2026-11-01T00:00:00Z"


async def export_jobs(v1: V1) -> list[dict[str, Any]]:
    rows = await v1.connection.execute(
        select(Job.id, Job.payload)
        .where(Job.workspace_id == v1.tenant.workspace_id, Job.kind == "export")
        .order_by(Job.id)
    )
    return [{"id": row.id, **row.payload} for row in rows]


async def export(v1: V1, client: httpx.AsyncClient | None = None, **fields: Any) -> httpx.Response:
    body = {"rangeStart": START, "callbackUrl": PUBLIC, **fields}
    return await (client or v1.admin).post(EXPORT, json=body)


def error_fields(response: httpx.Response) -> set[str]:
    return {e["field"] for e in response.json()["errors"]}


async def test_an_export_is_one_job_with_the_period_language_and_callback(v1: V1) -> None:
    response = await export(v1, rangeEnd="2026-11-20T12:30:00+01:00", language="deDe")
    assert response.status_code == 200, response.text
    (job,) = await export_jobs(v1)
    assert set(response.json()) == {"message"}
    message = response.json()["message"]
    assert f"Export {job['id']} started" in message
    assert "https://93.184.215.14:443" in message and "/hooks/chatsvc" not in message
    assert response.headers["Link"] == f'</jobs/{job["id"]}/>; rel="monitor"'
    assert job["callback_url"] == PUBLIC
    filters = job["filters"]
    assert filters["start"] == "2026-11-01T00:00:00+00:00"
    assert filters["end"] == "2026-11-20T11:30:00+00:00"  # kept in UTC
    assert filters["language"] == "deDe"
    assert filters["chat_id"] is None and filters["assistant_id"] is None  # the whole workspace


async def test_range_end_defaults_to_now_and_language_to_en_us(v1: V1) -> None:
    before = datetime.now(UTC)
    response = await export(v1, rangeStart=None)
    after = datetime.now(UTC)
    assert response.status_code == 200, response.text
    assert "the first message" in response.json()["message"]
    (job,) = await export_jobs(v1)
    filters = job["filters"]
    assert filters["start"] is None and filters["language"] == "enUs"
    assert before <= datetime.fromisoformat(filters["end"]) <= after


async def test_a_repeated_idempotency_key_gives_the_same_export(v1: V1) -> None:
    headers = {"Idempotency-Key": "nightly-2026-11-25"}
    body = {"rangeStart": START, "callbackUrl": PUBLIC}
    first = await v1.admin.post(EXPORT, json=body, headers=headers)
    second = await v1.admin.post(EXPORT, json=body, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.headers["Link"] == second.headers["Link"]
    assert len(await export_jobs(v1)) == 1


async def test_callback_urls_must_be_https_to_a_public_server(v1: V1) -> None:
    refused = [
        "http://93.184.215.14/hook",  # not HTTPS
        "http://example.com/hook",
        "ftp://example.com/hook",
        "https://127.0.0.1/hook",  # loopback
        "https://[::1]/hook",
        "https://10.1.2.3/hook",  # private
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data",  # link-local: cloud metadata
        "https://localhost/hook",
        "https://printer.local/hook",
        "https://intranet/hook",  # not a public DNS name
        "https://93.184.215.14:8443/hook",  # a port the policy does not allow
        "not a url",
        "https://",
    ]
    for url in refused:
        response = await export(v1, callbackUrl=url)
        assert response.status_code == 400, (url, response.text)
        assert response.json()["code"] in ("callback_refused", "invalid"), response.text
        assert "body.callbackUrl" in error_fields(response), response.text
    assert await export_jobs(v1) == []  # nothing was enqueued


async def test_a_refused_callback_never_shows_its_path_or_query(v1: V1) -> None:
    secret = "tok_5f0c3b8e9a"
    response = await export(v1, callbackUrl=f"http://hooks.example.com/in/{secret}?sig={secret}")
    assert response.status_code == 400
    assert secret not in response.text
    assert "http://hooks.example.com:80" in response.json()["detail"]


async def test_bad_periods_languages_and_missing_fields_are_400_with_the_field(v1: V1) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"rangeStart": "2026-11-01T00:00:00"}, "body.rangeStart"),  # no time zone
        ({"rangeEnd": "2026-11-02T00:00:00"}, "body.rangeEnd"),
        ({"rangeStart": "yesterday"}, "body.rangeStart"),
        ({"rangeEnd": "2026-10-01T00:00:00Z"}, "body.rangeEnd"),  # before the start
        ({"rangeEnd": START}, "body.rangeEnd"),  # an empty period
        ({"language": "klingon"}, "body.language"),
        ({"language": "en"}, "body.language"),
    ]
    for fields, field in cases:
        response = await export(v1, **fields)
        assert response.status_code == 400, (fields, response.text)
        assert field in error_fields(response), (fields, response.text)
    for missing in ("rangeStart", "callbackUrl"):
        body = {"rangeStart": START, "callbackUrl": PUBLIC}
        del body[missing]
        response = await v1.admin.post(EXPORT, json=body)
        assert response.status_code == 400, response.text
        assert f"body.{missing}" in error_fields(response)
    assert await export_jobs(v1) == []


async def test_every_listed_language_is_accepted(v1: V1) -> None:
    for language in ("enUs", "esEs", "ptBr", "frFr", "deDe"):
        assert (await export(v1, language=language)).status_code == 200, language
    assert [j["filters"]["language"] for j in await export_jobs(v1)] == [
        "enUs",
        "esEs",
        "ptBr",
        "frFr",
        "deDe",
    ]


async def test_member_keys_cannot_export_the_workspace(v1: V1) -> None:
    response = await export(v1, v1.member)
    assert response.status_code == 403, response.text
    assert await export_jobs(v1) == []
