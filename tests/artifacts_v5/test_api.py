"""The artifacts-v5 face over HTTP (PostgreSQL, Redis-backed read cache): every field of /get,
/draft, /drafts, /refresh and /docs, the three headers of seed 000 (docs/seeds/), the error
bodies, and cached reads that change when what they show changes."""

from __future__ import annotations

import re
from typing import Any

import httpx

from chatsvc.artifacts.kinds import KINDS, ResourceKind
from tests.fixtures.app import Tenant
from tests.fixtures.artifacts import API, get, new_entry, new_item, patch

SEED_SECTIONS = [
    "names",
    "descriptions",
    "flags",
    "departments",
    "personas",
    "documents",
    "parameter_fields",
    "scenarios",
    "fields",
    "questions",
    "options",
    "videos",
    "images",
    "problem_statements",
    "objectives",
]
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def selected(body: dict[str, Any], section: str) -> list[str]:
    return [item["name"] for item in body[section]["selected"]]


def available(body: dict[str, Any], section: str) -> list[str]:
    return [item["name"] for item in body[section]["available"]]


async def new_chat(client: httpx.AsyncClient, entry: int, *messages: str) -> dict[str, Any]:
    response = await client.post(f"/assistants/{entry}/", json={})
    assert response.status_code == 201, response.text
    chat: dict[str, Any] = response.json()
    for text in messages:
        said = await client.post(f"/chats/{chat['id']}/add_user_message/", json={"message": text})
        assert said.status_code == 201, said.text
    return chat


# --- headers -------------------------------------------------------------------------------------


async def test_the_key_comes_in_x_api_key_or_authorization_and_x_mcp_is_accepted(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    entry = await new_entry(tenant.admin)
    body = {"chat_entry_id": str(entry)}
    ways = [
        {"X-Api-Key": tenant.member_key},
        {"authorization": f"Bearer {tenant.member_key}"},
        {"authorization": f"bearer {tenant.member_key}"},
        {"authorization": tenant.member_key},
        {"X-Api-Key": tenant.member_key, "X-MCP": "1"},
        {"authorization": tenant.member_key, "X-MCP": "claude-desktop"},
    ]
    answers = []
    for headers in ways:
        response = await app_client.post(f"{API}/get", json=body, headers=headers)
        assert response.status_code == 200, (headers, response.text)
        answers.append(response.json())
    assert all(answer == answers[0] for answer in answers)

    missing = await app_client.post(f"{API}/get", json=body)
    assert missing.status_code == 401
    assert missing.json()["code"] == "missing_api_key"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    for bad in (
        {"authorization": f"Basic {tenant.member_key}"},
        {"X-Api-Key": "csk_nope_nope_nope"},
    ):
        refused = await app_client.post(f"{API}/get", json=body, headers=bad)
        assert refused.status_code == 401, refused.text
        assert refused.json()["code"] == "invalid_api_key"
        assert tenant.member_key not in refused.text


async def test_the_openapi_document_declares_the_seed_headers_on_every_operation(
    app_client: httpx.AsyncClient,
) -> None:
    spec = (await app_client.get("/openapi.json")).json()
    operations = [
        (path, method, op)
        for path, item in spec["paths"].items()
        if path.startswith(API)
        for method, op in item.items()
    ]
    assert len(operations) == 7
    for path, method, op in operations:
        # The key headers are the security schemes every face declares (one documented way
        # per header); X-MCP, the face's own, is a header parameter.
        headers = [p["name"] for p in op["parameters"] if p["in"] == "header"]
        assert headers == ["X-MCP"], (path, method)
        assert op["security"] == [{"ApiKeyAuth": []}, {"BearerAuth": []}], (path, method)
    assert spec["paths"][f"{API}/draft"]["patch"]["responses"]["409"]["content"][
        "application/json"
    ]["schema"] == {"$ref": "#/components/schemas/VersionConflictBody"}


# --- POST /get -----------------------------------------------------------------------------------


async def test_get_answers_every_section_with_group_and_statistics(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    entry = await new_entry(tenant.admin)
    body = await get(tenant.member, chat_entry_id=str(entry))
    assert body["chat_entry_id"] == str(entry)
    assert (body["attempt_id"], body["draft_id"], body["draft_version"]) == (None, None, None)
    assert (body["group_id"], body["revision"]) == (f"{entry}:0", 0)
    for section in [*SEED_SECTIONS, "parameters"]:
        assert body[section] == {
            "search": None,
            "show_selected": False,
            "available_total": 0,
            "kind": section.removesuffix("s"),
            "selected": [],
            "available": [],
        }, section
    assert body["statistics"]["entry"]["chat_count"] == 0
    assert body["statistics"]["attempt"] is None


async def test_get_searches_each_section_and_honours_show_selected(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    entry = await new_entry(tenant.admin)
    anna = await new_item(tenant.admin, "persona", "Anna", "a tough buyer", tone="curt")
    await new_item(tenant.admin, "persona", "Bert", "friendly")
    await new_item(tenant.admin, "persona", "Carla the Buyer")
    guide = await new_item(tenant.admin, "document", "Buyer guide", url="https://docs.example/g")
    await new_item(tenant.admin, "document", "Price list")
    for kind in ("description", "problem_statement", "image", "video", "question", "option"):
        data = {"url": f"https://cdn.example/{kind}"} if kind in ("image", "video") else {}
        await new_item(tenant.admin, kind, f"{kind} about buyers", **data)
        await new_item(tenant.admin, kind, f"{kind} about sellers", **data)
    published = await patch(
        tenant.admin,
        chat_entry_id=str(entry),
        persona_ids=[anna],
        document_ids=[guide],
        publish=True,
    )
    assert published.status_code == 200, published.text

    plain = await get(tenant.member, chat_entry_id=str(entry))
    assert selected(plain, "personas") == ["Anna"]
    assert available(plain, "personas") == ["Bert", "Carla the Buyer"]
    (anna_out,) = plain["personas"]["selected"]
    assert anna_out == {
        "id": anna,
        "name": "Anna",
        "description": "a tough buyer",
        "selected": True,
        "position": 0,
        "new": False,
        "kind": "persona",
        "data": {"role": "", "tone": "curt", "instructions": "", "avatar_url": None},
    }
    searches = {
        f"{kind}_search": "BUYER"
        for kind in ("description", "persona", "document", "problem_statement", "image", "video")
    }
    searches |= {"question_search": "buyers", "option_search": "sellers"}
    body = await get(
        tenant.member,
        chat_entry_id=str(entry),
        **searches,
        persona_show_selected=True,
        document_show_selected=False,
    )
    assert [(i["name"], i["selected"]) for i in body["personas"]["available"]] == [
        ("Anna", True),
        ("Carla the Buyer", False),
    ]
    assert body["personas"]["search"] == "BUYER" and body["personas"]["show_selected"] is True
    assert available(body, "documents") == []  # the only match is selected, and not shown
    assert body["documents"]["available_total"] == 0
    assert selected(body, "documents") == ["Buyer guide"]
    for section in ("descriptions", "problem_statements", "images", "videos"):
        assert available(body, section) == [f"{section[:-1]} about buyers"], section
    assert available(body, "questions") == ["question about buyers"]
    assert available(body, "options") == ["option about sellers"]
    limited = await get(tenant.member, chat_entry_id=str(entry), limit=1)
    assert available(limited, "personas") == ["Bert"]
    assert limited["personas"]["available_total"] == 2


async def test_get_of_an_attempt_and_of_a_draft(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    entry = await new_entry(tenant.admin)
    flag = await new_item(tenant.admin, "flag", "Beta", key="beta")
    chat = await new_chat(tenant.member, entry, "hello")
    draft = await patch(tenant.member, chat_entry_id=str(entry), flag_ids=[flag], name="Coach A")
    assert draft.status_code == 200, draft.text
    draft_id = draft.json()["draft_id"]

    of_attempt = await get(tenant.member, chat_entry_id=str(entry), attempt_id=str(chat["id"]))
    assert of_attempt["attempt_id"] == str(chat["id"])
    assert of_attempt["statistics"]["attempt"] is not None
    by_uuid = await get(tenant.member, chat_entry_id=str(entry), attempt_id=chat["uuid"].upper())
    assert by_uuid["attempt_id"] == str(chat["id"])

    of_draft = await get(tenant.member, chat_entry_id=str(entry), draft_id=draft_id)
    assert (of_draft["draft_id"], of_draft["draft_version"]) == (draft_id, 1)
    assert of_draft["group_id"] == f"{entry}:0"
    assert selected(of_draft, "flags") == ["Beta"]
    assert of_draft["names"]["selected"] == [
        {
            "id": None,
            "name": "Coach A",
            "description": "Coach A",
            "selected": True,
            "position": 0,
            "new": True,
            "kind": "name",
            "data": {},
        }
    ]


async def test_get_refuses_what_the_caller_cannot_see_or_send(
    app_client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    entry = await new_entry(tenant.admin)
    admins = (await new_chat(tenant.admin, entry))["uuid"]
    at = str(entry)
    draft = (await patch(tenant.admin, chat_entry_id=str(entry), name="x")).json()["draft_id"]
    cases: list[tuple[httpx.AsyncClient, dict[str, Any], int, str]] = [
        (other_tenant.admin, {"chat_entry_id": str(entry)}, 404, "not_found"),
        (tenant.member, {"chat_entry_id": "987654321"}, 404, "not_found"),
        (tenant.member, {"chat_entry_id": at, "attempt_id": admins}, 404, "attempt_not_found"),
        (tenant.member, {"chat_entry_id": str(entry), "draft_id": draft}, 404, "draft_not_found"),
        (tenant.member, {"chat_entry_id": "twelve"}, 400, "invalid"),
        (tenant.member, {"chat_entry_id": "99999999999999999999"}, 400, "invalid"),
        (tenant.member, {"chat_entry_id": str(entry), "draft_id": "nope"}, 400, "invalid"),
        (tenant.member, {"chat_entry_id": str(entry), "limit": 0}, 400, "invalid"),
        (tenant.member, {"chat_entry_id": str(entry), "persona_search": "a\x00b"}, 400, "invalid"),
        (tenant.member, {}, 400, "invalid"),
    ]  # fmt: skip
    for client, body, status, code in cases:
        response = await client.post(f"{API}/get", json=body)
        assert response.status_code == status, (body, response.text)
        error = response.json()
        assert error["code"] == code, (body, error)
        assert error["detail"] and error["request_id"]
        if status == 400:
            assert error["errors"][0]["field"].startswith("body"), error


async def test_cached_reads_change_when_what_they_show_changes(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    entry = await new_entry(tenant.admin)
    query = {"chat_entry_id": str(entry), "persona_search": "an"}
    assert available(await get(tenant.member, **query), "personas") == []
    anna = await new_item(tenant.admin, "persona", "Anna")
    assert available(await get(tenant.member, **query), "personas") == ["Anna"]
    await patch(tenant.admin, chat_entry_id=str(entry), persona_ids=[anna], publish=True)
    after = await get(tenant.member, **query)
    assert (selected(after, "personas"), available(after, "personas")) == (["Anna"], [])
    draft = (await patch(tenant.member, chat_entry_id=str(entry), persona_ids=[])).json()
    in_draft = {**query, "draft_id": draft["draft_id"]}
    assert selected(await get(tenant.member, **in_draft), "personas") == []
    await patch(
        tenant.member, input_draft_id=draft["draft_id"], expected_version=1, persona_ids=[anna]
    )
    assert selected(await get(tenant.member, **in_draft), "personas") == ["Anna"]
    # An entry deleted through the cognitive face disappears at once, cache or not.
    assert (await tenant.admin.delete(f"/assistants/{entry}/")).status_code == 204
    gone = await tenant.member.post(f"{API}/get", json=query)
    assert gone.status_code == 404


# --- PATCH /draft, POST /drafts ------------------------------------------------------------------


async def test_patch_creates_then_updates_the_callers_draft(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    entry = await new_entry(tenant.admin)
    dept = await new_item(tenant.admin, "department", "Sales", code="S1")
    created = await patch(
        tenant.member,
        chat_entry_id=str(entry),
        expected_version=0,
        name="Objection drill",
        description="Practise the price objection.",
        problem_statement="The client says we are too expensive.",
        objectives=["Keep the discount under 5%"],
        images=[{"name": "Chart", "url": "https://cdn.example/chart.png", "width": 800}],
        videos=[{"name": "Intro", "url": "https://cdn.example/intro.mp4", "duration_seconds": 30}],
        questions=[{"name": "Budget?", "answer_type": "number"}],
        options=[{"name": "Accept", "value": "accept"}],
        department_ids=[dept],
    )
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["success"] is True and UUID.match(body["draft_id"])
    assert body["new_version"] == 1
    assert body["message"] == "Draft created at version 1."
    assert body["published_revision"] is None
    state = body["form_state"]
    assert state["chat_entry_id"] == str(entry) and state["base_revision"] == 0
    assert state["images"] == [
        {
            "name": "Chart",
            "description": "",
            "url": "https://cdn.example/chart.png",
            "alt_text": "",
            "mime_type": None,
            "width": 800,
            "height": None,
        }
    ]
    assert state["videos"][0]["duration_seconds"] == 30
    assert state["questions"][0]["answer_type"] == "number"
    assert state["options"][0]["value"] == "accept"
    assert state["department_ids"] == [dept]
    assert {f"{spec.kind.value}_ids" for spec in KINDS} <= set(state)

    updated = await patch(
        tenant.member, input_draft_id=body["draft_id"], expected_version=1, objectives=None
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["new_version"] == 2
    assert updated.json()["message"] == "Draft saved at version 2."
    assert updated.json()["form_state"]["objectives"] == []
    assert updated.json()["form_state"]["name"] == "Objection drill"


async def test_a_stale_expected_version_gets_409_with_the_current_version(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    entry = await new_entry(tenant.admin)
    first = (await patch(tenant.member, chat_entry_id=str(entry), name="a")).json()
    await patch(tenant.member, chat_entry_id=str(entry), expected_version=1, name="b")
    stale = await patch(tenant.member, chat_entry_id=str(entry), expected_version=1, name="c")
    assert stale.status_code == 409
    error = stale.json()
    assert (error["current_version"], error["draft_id"]) == (2, first["draft_id"])
    assert error["code"] == "version_conflict"
    assert error["errors"] == [
        {"field": "body.expected_version", "message": "the current version is 2"}
    ]
    assert error["request_id"] == stale.headers["X-Request-Id"]
    unsent = await patch(tenant.member, chat_entry_id=str(entry), name="d")  # defaults to 0
    assert (unsent.status_code, unsent.json()["current_version"]) == (409, 2)
    fresh = await get(tenant.member, chat_entry_id=str(entry), draft_id=first["draft_id"])
    assert selected(fresh, "names") == ["b"] and fresh["draft_version"] == 2


async def test_patch_refuses_bad_input_with_the_field_at_fault(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    entry = await new_entry(tenant.admin)
    doc = await new_item(tenant.admin, "document", "Guide")
    missing = "3f2c1a9e-0000-4000-8000-000000000000"
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"name": "no entry"}, 400, "body.chat_entry_id"),
        ({"chat_entry_id": str(entry), "persona_ids": [doc]}, 400, "body.persona_ids[0]"),
        ({"chat_entry_id": str(entry), "persona_ids": [missing]}, 400, "body.persona_ids[0]"),
        ({"chat_entry_id": str(entry), "document_ids": [doc, doc]}, 400, "body.document_ids"),
        ({"chat_entry_id": str(entry), "images": [{"name": "x"}]}, 400, "body.images[0].url"),
        ({"chat_entry_id": str(entry), "expected_version": -1}, 400, "body.expected_version"),
        ({"chat_entry_id": str(entry), "name": ""}, 400, "body.name"),
        ({"chat_entry_id": str(entry), "input_draft_id": missing}, 404, ""),
        ({"chat_entry_id": "987654321"}, 404, ""),
    ]
    for body, status, field in cases:
        response = await patch(tenant.member, **body)
        assert response.status_code == status, (body, response.text)
        if field:
            assert response.json()["errors"][0]["field"] == field, response.json()
    drafts = await tenant.member.post(f"{API}/drafts")
    assert drafts.json() == {"entries": []}  # nothing was written
    other = await new_entry(tenant.admin)
    elsewhere = (await patch(tenant.admin, chat_entry_id=str(other), name="x")).json()
    mismatch = await patch(
        tenant.admin,
        chat_entry_id=str(entry),
        input_draft_id=elsewhere["draft_id"],
        expected_version=1,
    )
    assert mismatch.status_code == 400
    assert mismatch.json()["errors"] == [
        {"field": "body.input_draft_id", "message": f"is a draft of chat entry {other}"}
    ]


async def test_publishing_is_for_admins_and_updates_the_entry(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    entry = await new_entry(tenant.admin)
    draft = (await patch(tenant.member, chat_entry_id=str(entry), name="Coach")).json()
    refused = await patch(
        tenant.member, input_draft_id=draft["draft_id"], expected_version=1, publish=True
    )
    assert refused.status_code == 403
    published = await patch(
        tenant.admin, input_draft_id=draft["draft_id"], expected_version=1, publish=True
    )
    assert published.status_code == 200, published.text
    body = published.json()
    assert (body["new_version"], body["published_revision"]) == (2, 1)
    assert body["message"] == (
        f"Draft published as revision 1 of chat entry {entry}; the draft is removed."
    )
    (name_id,) = body["form_state"]["name_ids"]
    assert body["form_state"]["name"] is None
    now = await get(tenant.member, chat_entry_id=str(entry))
    assert (now["group_id"], now["names"]["selected"][0]["id"]) == (f"{entry}:1", name_id)
    assert (await tenant.member.post(f"{API}/drafts")).json() == {"entries": []}
    gone = await patch(tenant.admin, input_draft_id=draft["draft_id"], expected_version=2)
    assert gone.status_code == 404


async def test_publishing_an_older_draft_says_what_it_replaces(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    entry = await new_entry(tenant.admin)
    older = (await patch(tenant.member, chat_entry_id=str(entry), name="older")).json()
    await patch(tenant.admin, chat_entry_id=str(entry), name="newer", publish=True)
    late = await patch(
        tenant.admin, input_draft_id=older["draft_id"], expected_version=1, publish=True
    )
    assert late.status_code == 200, late.text
    assert late.json()["message"] == (
        f"Draft published as revision 2 of chat entry {entry} (it started from revision 0; "
        "what was published since is replaced); the draft is removed."
    )
    assert selected(await get(tenant.member, chat_entry_id=str(entry)), "names") == ["older"]


async def test_drafts_lists_only_the_callers_drafts(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    first, second = await new_entry(tenant.admin), await new_entry(tenant.admin)
    a = (await patch(tenant.member, chat_entry_id=str(first), name="a")).json()
    b = (await patch(tenant.member, chat_entry_id=str(second), name="b")).json()
    await patch(tenant.member, input_draft_id=a["draft_id"], expected_version=1, name="a2")
    await patch(tenant.admin, chat_entry_id=str(first), name="admin's")

    response = await tenant.member.post(f"{API}/drafts")
    assert response.status_code == 200
    entries = response.json()["entries"]
    assert [(e["draft_id"], e["chat_entry_id"], e["version"]) for e in entries] == [
        (a["draft_id"], str(first), 2),  # most recently changed first
        (b["draft_id"], str(second), 1),
    ]
    assert entries[0]["form_state"]["name"] == "a2" and entries[0]["base_revision"] == 0
    assert entries[0]["created_at"] <= entries[0]["updated_at"]
    assert response.headers["X-Total-Count"] == "2"
    paged = await tenant.member.post(f"{API}/drafts?page=2&page_size=1")
    assert [e["draft_id"] for e in paged.json()["entries"]] == [b["draft_id"]]
    assert 'rel="prev"' in paged.headers["Link"]
    theirs = (await tenant.admin.post(f"{API}/drafts")).json()["entries"]
    assert [e["form_state"]["name"] for e in theirs] == ["admin's"]


# --- POST /refresh -------------------------------------------------------------------------------


async def test_refresh_updates_the_statistics_that_get_shows(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    entry = await new_entry(tenant.admin)
    before = await get(tenant.member, chat_entry_id=str(entry))
    chat = await new_chat(tenant.member, entry, "one", "two")
    liked = await tenant.member.put(f"/chats/{chat['id']}/", json={"like": True})
    assert liked.status_code == 200, liked.text
    cached = await get(tenant.member, chat_entry_id=str(entry))
    assert cached["statistics"] == before["statistics"]  # as of the last refresh

    refused = await tenant.member.post(f"{API}/refresh")
    assert refused.status_code == 403
    response = await tenant.admin.post(f"{API}/refresh")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "success": True,
        "refreshed_views": ["artifact_assistant_stats", "artifact_chat_stats"],
        "invalidated_tags": ["analytics", f"workspace:{tenant.workspace_id}"],
    }
    after = await get(tenant.member, chat_entry_id=str(entry), attempt_id=str(chat["id"]))
    stats = after["statistics"]
    assert stats["entry"]["chat_count"] == 1
    assert stats["entry"]["user_message_count"] == 2
    assert stats["entry"]["liked_chat_count"] == 1
    assert stats["attempt"]["message_count"] == 2
    assert stats["refreshed_at"] is not None


# --- POST /docs ----------------------------------------------------------------------------------


async def test_docs_are_composed_from_the_code(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await tenant.member.post(f"{API}/docs")
    assert response.status_code == 200, response.text
    docs = response.json()
    assert (docs["name"], docs["artifact"]) == ("chat artifacts", None)
    assert "sixteen kinds" in docs["description"]
    # Every kind of the registry, with its data model's fields.
    assert [r["id"] for r in docs["resources"]] == [spec.kind.value for spec in KINDS]
    image = next(r for r in docs["resources"] if r["id"] == "image")
    fields = {f["name"]: f for f in image["fields"]}
    assert fields["data.url"]["required"] is True
    assert fields["data.width"]["required"] is False
    assert fields["name"]["required"] is True
    # Entities from the mapped models, their docstrings and columns.
    entities = {e["id"]: e for e in docs["entries"]}
    assert set(entities) == {
        "chat_entry",
        "attempt",
        "resource",
        "bundle",
        "attachment",
        "draft",
        "assistant_stats",
        "chat_stats",
    }
    assert "optimistic concurrency" in entities["draft"]["description"]
    assert {f["name"] for f in entities["draft"]["fields"]} >= {"version", "form_state"}
    assert entities["chat_stats"]["type"].startswith("analytics artifact_chat_stats")
    # Operations from the OpenAPI document, roles from each route's dependencies.
    spec = (await app_client.get("/openapi.json")).json()
    expected = {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        if path.startswith(API)
        for method in item
    }
    assert {(o["method"], o["path"]) for o in docs["api_operations"]} == expected
    roles = {o["operation_id"]: o["roles"] for o in docs["permissions"]}
    assert roles["artifacts_chat_refresh"] == ["admin"]
    assert roles["artifacts_create_resource"] == ["admin"]
    assert roles["artifacts_chat_get"] == ["admin", "member"]
    draft_rule = next(
        o for o in docs["permissions"] if o["operation_id"] == "artifacts_patch_chat_draft"
    )
    assert "`publish`: admin keys only" in draft_rule["description"]
    get_op = next(o for o in docs["api_operations"] if o["operation_id"] == "artifacts_chat_get")
    assert get_op["success_status"] == "200"
    assert get_op["headers"] == ["X-Api-Key", "Authorization", "X-MCP"]
    meta = docs["page_metadata"]
    assert (meta["title"], meta["openapi"]) == (spec["info"]["title"], spec["openapi"])
    assert (meta["operation_count"], meta["kind_count"]) == (len(expected), len(ResourceKind))


async def test_docs_entity_id_picks_an_entity_a_kind_or_a_chat_entry(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    entry = await new_entry(tenant.admin, "Negotiation coach")
    anna = await new_item(tenant.admin, "persona", "Anna")
    await patch(tenant.admin, chat_entry_id=str(entry), persona_ids=[anna], publish=True)
    for entity_id, name in (("draft", "Draft"), ("persona", "personas")):
        found = await tenant.member.post(f"{API}/docs", json={"entity_id": entity_id})
        assert found.json()["artifact"]["name"] == name
    of_entry = (await tenant.member.post(f"{API}/docs", json={"entity_id": str(entry)})).json()
    artifact = of_entry["artifact"]
    assert (artifact["name"], artifact["type"]) == ("Negotiation coach", "chat entry")
    counts = {f["name"]: f["description"] for f in artifact["fields"]}
    assert counts["personas"] == "1 selected in bundle revision 1"
    assert counts["documents"] == "0 selected in bundle revision 1"
    for unknown in ("nothing", "987654321"):
        missing = await tenant.member.post(f"{API}/docs", json={"entity_id": unknown})
        assert missing.status_code == 404
        assert "chat_entry, attempt" in missing.json()["detail"]


# --- the library ---------------------------------------------------------------------------------


async def test_resources_are_created_by_kind_with_typed_data(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    body = {"kind": "video", "name": "Intro", "data": {"url": "https://cdn.example/v.mp4"}}
    created = await tenant.admin.post(f"{API}/resources", json=body)
    assert created.status_code == 201, created.text
    video = created.json()
    assert UUID.match(video["id"]) and video["kind"] == "video"
    assert video["data"]["url"] == "https://cdn.example/v.mp4"
    assert video["data"]["duration_seconds"] is None
    cases: list[tuple[dict[str, Any], str]] = [
        ({"kind": "video", "name": "x", "data": {}}, "body.video.data.url"),
        ({"kind": "video", "name": "x", "data": {"url": "javascript:x"}}, "body.video.data.url"),
        ({"kind": "poster", "name": "x"}, "body"),
        ({"kind": "name", "name": ""}, "body.name.name"),
    ]  # fmt: skip
    for bad, field in cases:
        response = await tenant.admin.post(f"{API}/resources", json=bad)
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["errors"][0]["field"] == field, response.json()
    member = await tenant.member.post(f"{API}/resources", json=body)
    assert member.status_code == 403
