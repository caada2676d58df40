"""The artifacts-v5 face under a real uvicorn with real commits: twenty concurrent draft patches
against one version (PostgreSQL, real concurrent transactions), the chat export end to end (the
export job, the file downloaded and read back), and the embedded SQLite mode (in-process queue,
in-process cache, analytics tables)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from chatsvc.artifacts.kinds import KINDS
from chatsvc.chats.models import Message
from chatsvc.exports.service import COLUMNS, HEADERS
from chatsvc.kit.db import unit_of_work
from chatsvc.migrate import upgrade
from tests.fixtures.app import Live, live_tenant, make_settings
from tests.fixtures.artifacts import API, get, new_entry, new_item, patch

CONCURRENT = 20
KIND_HEADERS = [spec.plural.replace("_", " ").capitalize() for spec in KINDS]


@pytest.fixture
async def server(live_pg_url: str, tmp_path: Path) -> AsyncIterator[Live]:
    settings = make_settings(live_pg_url, artifact_dir=str(tmp_path / "artifacts"))
    async with live_tenant(settings) as found:
        yield found


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[Live]:
    """The embedded mode: a SQLite file built by the migrations, no Redis."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'chatsvc.db'}"
    await asyncio.to_thread(upgrade, url)
    settings = make_settings(url, redis_url=None, artifact_dir=str(tmp_path / "artifacts"))
    async with live_tenant(settings) as found:
        yield found


async def race(client: httpx.AsyncClient, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    """Send every PATCH at once, each on its own connection and transaction."""
    return list(await asyncio.gather(*(patch(client, **body) for body in bodies)))


def outcome(responses: list[httpx.Response]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    won = [r.json() for r in responses if r.status_code == 200]
    lost = [r.json() for r in responses if r.status_code == 409]
    assert len(won) + len(lost) == len(responses), [r.text for r in responses]
    return won, lost


# --- concurrency ---------------------------------------------------------------------------------


async def test_twenty_concurrent_first_patches_create_one_draft(server: Live) -> None:
    entry = await new_entry(server.admin)
    bodies = [{"chat_entry_id": str(entry), "name": f"take {n}"} for n in range(CONCURRENT)]
    won, lost = outcome(await race(server.member, bodies))
    assert len(won) == 1 and len(lost) == CONCURRENT - 1
    (winner,) = won
    assert winner["new_version"] == 1
    assert {(e["current_version"], e["draft_id"]) for e in lost} == {(1, winner["draft_id"])}
    stored = await get(server.member, chat_entry_id=str(entry), draft_id=winner["draft_id"])
    assert stored["names"]["selected"][0]["name"] == winner["form_state"]["name"]
    drafts = (await server.member.post(f"{API}/drafts")).json()["entries"]
    assert [d["draft_id"] for d in drafts] == [winner["draft_id"]]


async def test_twenty_concurrent_patches_of_one_version_exactly_one_succeeds(
    server: Live,
) -> None:
    entry = await new_entry(server.admin)
    draft = (await patch(server.member, chat_entry_id=str(entry), name="start")).json()
    draft_id = draft["draft_id"]
    bodies = [
        {"input_draft_id": draft_id, "expected_version": 1, "objectives": [f"goal {n}"]}
        for n in range(CONCURRENT)
    ]
    won, lost = outcome(await race(server.member, bodies))
    assert len(won) == 1 and len(lost) == CONCURRENT - 1
    (winner,) = won
    assert winner["new_version"] == 2
    assert {(e["current_version"], e["draft_id"], e["code"]) for e in lost} == {
        (2, draft_id, "version_conflict")
    }
    stored = await get(server.member, chat_entry_id=str(entry), draft_id=draft_id)
    assert stored["draft_version"] == 2
    assert [i["name"] for i in stored["objectives"]["selected"]] == winner["form_state"][
        "objectives"
    ]
    # The losers reload and retry against the current version: the next one goes through.
    retry = await patch(server.member, input_draft_id=draft_id, expected_version=2, name="again")
    assert (retry.status_code, retry.json()["new_version"]) == (200, 3)


# --- export --------------------------------------------------------------------------------------


async def chat_with_messages(live: Live, client: httpx.AsyncClient, entry: int) -> dict[str, Any]:
    response = await client.post(f"/assistants/{entry}/", json={"message": "Hello there"})
    assert response.status_code == 201, response.text
    chat: dict[str, Any] = response.json()
    for path, text in (
        ("add_user_message", '=HYPERLINK("http://evil")'),
        ("add_assistant_message", "Let us talk, about prices"),
        ("add_user_message", "this one gets hidden"),
    ):
        said = await client.post(f"/chats/{chat['id']}/{path}/", json={"message": text})
        assert said.status_code == 201, said.text
    # An edit superseded the last message: hidden, so a clean export leaves it out.
    async with unit_of_work(live.services.sessionmaker) as db:
        await db.execute(
            update(Message)
            .where(Message.chat_id == chat["id"], Message.content == "this one gets hidden")
            .values(visible=False)
        )
    return chat


async def download(client: httpx.AsyncClient, url: str) -> list[dict[str, str]]:
    response = await client.get(url)
    assert response.status_code == 200, response.text
    text = response.content.decode("utf-8")
    assert "\r\n" in text  # RFC 4180 records
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    assert header == [HEADERS["enUs"][key] for key in COLUMNS] + ["Bundle", *KIND_HEADERS]
    return [dict(zip(header, row, strict=True)) for row in reader]


async def test_export_writes_one_chat_with_its_bundle_through_the_export_job(
    server: Live,
) -> None:
    entry = await new_entry(server.admin)
    anna = await new_item(server.admin, "persona", "Anna")
    bert = await new_item(server.admin, "persona", "Bert")
    guide = await new_item(server.admin, "document", "Guide, 2nd edition")
    published = await patch(
        server.admin,
        chat_entry_id=str(entry),
        persona_ids=[anna],
        document_ids=[guide],
        publish=True,
    )
    assert published.status_code == 200, published.text
    chat = await chat_with_messages(server, server.member, entry)

    response = await server.member.post(
        f"{API}/export", json={"chat_entry_id": str(entry), "attempt_id": str(chat["id"])}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    job_id = body["upload_id"]
    assert body["file_name"] == f"export-{job_id}.csv"
    assert body["downloadable"] is True
    assert body["download_url"] == f"{server.base_url}/jobs/{job_id}/artifact/"
    assert body["attempt_id"] == str(chat["id"])
    rows = await download(server.member, body["download_url"])
    assert body["row_count"] == len(rows) == 4  # hello, its answer, two added; not the hidden
    assert [r["Role"] for r in rows] == ["user", "assistant", "user", "assistant"]
    assert [r["Message number"] for r in rows] == ["1", "2", "3", "4"]
    assert rows[0]["Content"] == "Hello there"
    assert rows[2]["Content"] == '\'=HYPERLINK("http://evil")'  # a formula, neutralised
    assert rows[3]["Content"] == "Let us talk, about prices"
    for row in rows:
        assert (row["Chat ID"], row["Assistant ID"]) == (str(chat["id"]), str(entry))
        assert row["Chat user"] == "max"
        assert row["Bundle"] == f"{entry}:1"
        assert json.loads(row["Personas"]) == ["Anna"]
        assert json.loads(row["Documents"]) == ["Guide, 2nd edition"]
        assert json.loads(row["Images"]) == []
    job = (await server.member.get(f"/jobs/{job_id}/")).json()
    assert (job["kind"], job["state"], job["result"]["rows"]) == ("export", "succeeded", 4)

    # A draft's bundle instead of the attempt's; the caller's newest chat when none is named.
    draft = await patch(server.member, chat_entry_id=str(entry), persona_ids=[bert], name="B")
    draft_id = draft.json()["draft_id"]
    again = await server.member.post(
        f"{API}/export", json={"chat_entry_id": str(entry), "draft_id": draft_id}
    )
    assert again.status_code == 200, again.text
    assert again.json()["attempt_id"] == str(chat["id"])
    assert again.json()["upload_id"] != job_id
    rows = await download(server.member, again.json()["download_url"])
    assert {r["Bundle"] for r in rows} == {f"{entry}:1 draft {draft_id} v1"}
    assert {r["Personas"] for r in rows} == {'["Bert"]'}
    assert {r["Names"] for r in rows} == {'["B"]'}


async def test_export_is_scoped_like_chats(server: Live) -> None:
    entry = await new_entry(server.admin)
    admins = await server.admin.post(f"/assistants/{entry}/", json={})
    refused = await server.member.post(
        f"{API}/export",
        json={"chat_entry_id": str(entry), "attempt_id": str(admins.json()["id"])},
    )
    assert (refused.status_code, refused.json()["code"]) == (404, "attempt_not_found")
    none_yet = await server.member.post(f"{API}/export", json={"chat_entry_id": str(entry)})
    assert none_yet.status_code == 404
    assert none_yet.json()["detail"] == f"Chat entry {entry} has no attempt of yours to export yet."
    bad = await server.member.post(f"{API}/export", json={"chat_entry_id": "x"})
    assert bad.status_code == 400
    # The admin's export is the admin's job: a member cannot download it.
    exported = await server.admin.post(
        f"{API}/export", json={"chat_entry_id": str(entry), "attempt_id": str(admins.json()["id"])}
    )
    assert exported.json()["row_count"] == 0
    hidden = await server.member.get(exported.json()["download_url"])
    assert hidden.status_code == 404


# --- the embedded mode ---------------------------------------------------------------------------


async def test_embedded_sqlite_drafts_export_and_refresh(embedded: Live) -> None:
    entry = await new_entry(embedded.admin)
    bodies = [{"chat_entry_id": str(entry), "name": f"take {n}"} for n in range(5)]
    won, lost = outcome(await race(embedded.member, bodies))
    assert (len(won), {e["current_version"] for e in lost}) == (1, {1})
    published = await patch(
        embedded.admin, input_draft_id=won[0]["draft_id"], expected_version=1, publish=True
    )
    assert published.status_code == 200, published.text
    chat = await chat_with_messages(embedded, embedded.member, entry)

    exported = await embedded.member.post(f"{API}/export", json={"chat_entry_id": str(entry)})
    assert exported.status_code == 200, exported.text
    rows = await download(embedded.member, exported.json()["download_url"])
    assert exported.json()["row_count"] == len(rows) == 4
    assert {r["Names"] for r in rows} == {json.dumps([won[0]["form_state"]["name"]])}

    refreshed = await embedded.admin.post(f"{API}/refresh")
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["refreshed_views"] == [
        "artifact_assistant_stats",
        "artifact_chat_stats",
    ]
    stats = (await get(embedded.member, chat_entry_id=str(entry), attempt_id=str(chat["id"])))[
        "statistics"
    ]
    assert (stats["entry"]["chat_count"], stats["entry"]["message_count"]) == (1, 4)
    assert stats["attempt"]["user_message_count"] == 2
