"""API tests (PostgreSQL) of an assistant's knowledge: common questions, fixed responses (served
under /fixed_questions/) and lessons, as seed 003 (docs/seeds/) documents them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from chatsvc.config import Settings
from tests.fixtures.app import Tenant

MISSING_ID = 987_654_321


@dataclass(frozen=True)
class Kind:
    """What differs between the three kinds of knowledge on the wire."""

    segment: str  # path segment under /assistants/{assistant}/
    extra: dict[str, str] = field(default_factory=dict)  # the kind's own fields, with a value
    put_status: int = 200
    item_slash: bool = True  # whether the seed writes the item path with a trailing slash
    count_field: str = ""  # the assistant's read-only count of this kind
    param: str = "question"  # the seed's name of the item's path parameter

    def base(self, assistant_id: int, *, slash: bool = True) -> str:
        return f"/assistants/{assistant_id}/{self.segment}" + ("/" if slash else "")

    def item(self, assistant_id: int, item_id: int, *, seed_form: bool = True) -> str:
        slash = self.item_slash if seed_form else not self.item_slash
        return f"{self.base(assistant_id)}{item_id}" + ("/" if slash else "")

    @property
    def seed_item(self) -> str:
        """The item path template exactly as the seed writes it."""
        path = f"/assistants/{{assistant}}/{self.segment}/{{{self.param}}}"
        return path + ("/" if self.item_slash else "")

    def defaults(self) -> dict[str, str]:
        return dict.fromkeys(self.extra, "")

    def keys(self) -> set[str]:
        return {"id", "name", "content", "additional_metadata", *self.extra}


COMMON = Kind("common_questions", count_field="retrieval_faq")
FIXED = Kind(
    "fixed_questions", {"topic": "billing"}, put_status=201, count_field="retrieval_fixed_faq"
)
LESSONS = Kind(
    "lessons",
    {"context_of_application": "When the user asks about refunds"},
    item_slash=False,
    count_field="retrieval_lessons",
    param="lesson",
)
ALL_KINDS = (COMMON, FIXED, LESSONS)
KINDS = pytest.mark.parametrize("kind", ALL_KINDS, ids=[k.segment for k in ALL_KINDS])


# --- helpers -------------------------------------------------------------------------------------


async def new_assistant(client: httpx.AsyncClient, description: str = "Help desk") -> int:
    response = await client.post("/assistants/", json={"description": description})
    assert response.status_code == 201, response.text
    assistant_id = response.json()["id"]
    assert isinstance(assistant_id, int)
    return assistant_id


def full_body(kind: Kind, n: int = 1) -> dict[str, Any]:
    return {
        "name": f"Question {n}",
        "content": f"Answer {n}",
        "additional_metadata": {"tags": [f"tag-{n}", "faq"], "sources": []},
        **kind.extra,
    }


async def create(
    client: httpx.AsyncClient, kind: Kind, assistant_id: int, n: int = 1
) -> dict[str, Any]:
    response = await client.post(kind.base(assistant_id), json=full_body(kind, n))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def list_all(client: httpx.AsyncClient, kind: Kind, assistant_id: int) -> list[Any]:
    response = await client.get(kind.base(assistant_id), params={"page_size": 100})
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()
    return items


def links(response: httpx.Response) -> dict[str, httpx.URL]:
    """The RFC 8288 Link header as {rel: URL}."""
    found: dict[str, httpx.URL] = {}
    header = response.headers.get("Link")
    if not header:
        return found
    for part in header.split(","):
        target, _, params = part.strip().partition(";")
        assert target.startswith("<") and target.endswith(">"), header
        rel = params.strip().removeprefix("rel=").strip('"')
        found[rel] = httpx.URL(target[1:-1])
    return found


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["errors"], list)
    assert body["request_id"] == response.headers["X-Request-Id"]
    return body


@pytest.fixture
async def assistant_id(tenant: Tenant) -> int:
    return await new_assistant(tenant.admin)


# --- create and read -----------------------------------------------------------------------------


@KINDS
async def test_create_echoes_every_field(tenant: Tenant, assistant_id: int, kind: Kind) -> None:
    sent = {
        "name": "How do I reset my password?",
        "content": "Use the 'Forgot password' link — it mails a reset code.",
        "additional_metadata": {"tags": ["account", "password"], "lang": ["en"], "none": []},
        **kind.extra,
    }
    response = await tenant.admin.post(kind.base(assistant_id), json=sent)

    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == kind.keys()
    assert isinstance(created["id"], int) and created["id"] >= 1
    assert {key: created[key] for key in sent} == sent
    assert await list_all(tenant.admin, kind, assistant_id) == [created]


@KINDS
async def test_create_defaults_optional_fields(
    tenant: Tenant, assistant_id: int, kind: Kind
) -> None:
    response = await tenant.admin.post(kind.base(assistant_id), json={"name": "n", "content": "c"})

    assert response.status_code == 201, response.text
    created = response.json()
    assert created == {
        "id": created["id"],
        "name": "n",
        "content": "c",
        "additional_metadata": {},
        **kind.defaults(),
    }


@KINDS
async def test_list_is_a_plain_array_in_id_order(
    tenant: Tenant, assistant_id: int, kind: Kind
) -> None:
    created = [await create(tenant.admin, kind, assistant_id, n) for n in (1, 2, 3)]

    response = await tenant.admin.get(kind.base(assistant_id))

    assert response.status_code == 200, response.text
    assert response.json() == created
    assert [item["id"] for item in created] == sorted(item["id"] for item in created)
    assert response.headers["X-Total-Count"] == "3"
    assert "Link" not in response.headers


@KINDS
async def test_list_of_an_assistant_without_items_is_empty(
    tenant: Tenant, assistant_id: int, kind: Kind
) -> None:
    other = await new_assistant(tenant.admin, "Other")
    await create(tenant.admin, kind, other)

    response = await tenant.admin.get(kind.base(assistant_id))

    assert response.status_code == 200, response.text
    assert response.json() == []
    assert response.headers["X-Total-Count"] == "0"


@KINDS
async def test_list_pages_with_total_and_links(
    tenant: Tenant, assistant_id: int, kind: Kind
) -> None:
    ids = [(await create(tenant.admin, kind, assistant_id, n))["id"] for n in range(1, 6)]
    base = kind.base(assistant_id)

    middle = await tenant.admin.get(base, params={"page": 2, "page_size": 2})
    assert middle.status_code == 200, middle.text
    assert [item["id"] for item in middle.json()] == ids[2:4]
    assert middle.headers["X-Total-Count"] == "5"
    rels = links(middle)
    assert set(rels) == {"next", "prev"}
    for rel, page in (("next", "3"), ("prev", "1")):
        url = rels[rel]
        assert url.is_absolute_url
        assert (url.scheme, url.host, url.path) == ("http", "testserver", base)
        assert url.params["page"] == page
        assert url.params["page_size"] == "2"

    last = await tenant.admin.get(rels["next"])
    assert last.status_code == 200, last.text
    assert [item["id"] for item in last.json()] == ids[4:]
    assert last.headers["X-Total-Count"] == "5"
    assert set(links(last)) == {"prev"}
    assert links(last)["prev"].params["page"] == "2"

    first = await tenant.admin.get(links(middle)["prev"])
    assert [item["id"] for item in first.json()] == ids[:2]
    assert set(links(first)) == {"next"}

    beyond = await tenant.admin.get(base, params={"page": 9, "page_size": 2})
    assert beyond.status_code == 200, beyond.text
    assert beyond.json() == []
    assert beyond.headers["X-Total-Count"] == "5"
    assert "next" not in links(beyond)


@KINDS
async def test_page_size_defaults_and_is_capped_by_settings(
    tenant: Tenant, assistant_id: int, kind: Kind, settings: Settings
) -> None:
    total = settings.page_size_max + 1
    for n in range(total):
        await create(tenant.admin, kind, assistant_id, n)
    base = kind.base(assistant_id)

    default = await tenant.admin.get(base)
    assert len(default.json()) == settings.page_size_default
    assert default.headers["X-Total-Count"] == str(total)

    capped = await tenant.admin.get(base, params={"page_size": settings.page_size_max * 10})
    assert capped.status_code == 200, capped.text
    assert len(capped.json()) == settings.page_size_max
    assert capped.headers["X-Total-Count"] == str(total)
    assert links(capped)["next"].params["page"] == "2"

    rest = await tenant.admin.get(links(capped)["next"])
    assert len(rest.json()) == 1


@KINDS
@pytest.mark.parametrize("query", [{"page": "0"}, {"page_size": "0"}, {"page": "x"}])
async def test_list_rejects_bad_paging(
    tenant: Tenant, assistant_id: int, kind: Kind, query: dict[str, str]
) -> None:
    response = await tenant.admin.get(kind.base(assistant_id), params=query)

    body = assert_error(response, 422, "invalid")
    assert [e["field"] for e in body["errors"]] == [f"query.{next(iter(query))}"]


# --- update and delete ---------------------------------------------------------------------------


@KINDS
async def test_put_replaces_the_whole_item(tenant: Tenant, assistant_id: int, kind: Kind) -> None:
    created = await create(tenant.admin, kind, assistant_id)
    replacement = {"name": "Renamed", "content": "New answer"}

    response = await tenant.admin.put(kind.item(assistant_id, created["id"]), json=replacement)

    assert response.status_code == kind.put_status, response.text
    expected = {"id": created["id"], **replacement, "additional_metadata": {}, **kind.defaults()}
    assert response.json() == expected
    assert await list_all(tenant.admin, kind, assistant_id) == [expected]


@KINDS
async def test_put_sets_every_field(tenant: Tenant, assistant_id: int, kind: Kind) -> None:
    created = await tenant.admin.post(kind.base(assistant_id), json={"name": "a", "content": "b"})
    item_id = created.json()["id"]
    replacement = {**full_body(kind, 7), **{key: f"new {key}" for key in kind.extra}}

    response = await tenant.admin.put(kind.item(assistant_id, item_id), json=replacement)

    assert response.status_code == kind.put_status, response.text
    assert response.json() == {"id": item_id, **replacement}
    assert await list_all(tenant.admin, kind, assistant_id) == [{"id": item_id, **replacement}]


@KINDS
async def test_put_accepts_the_item_as_read(tenant: Tenant, assistant_id: int, kind: Kind) -> None:
    created = await create(tenant.admin, kind, assistant_id)
    edited = {**created, "content": "Edited"}

    response = await tenant.admin.put(kind.item(assistant_id, created["id"]), json=edited)

    assert response.status_code == kind.put_status, response.text
    assert response.json() == edited


@KINDS
async def test_delete_removes_the_item(tenant: Tenant, assistant_id: int, kind: Kind) -> None:
    first = await create(tenant.admin, kind, assistant_id, 1)
    second = await create(tenant.admin, kind, assistant_id, 2)
    path = kind.item(assistant_id, first["id"])

    response = await tenant.admin.delete(path)

    assert response.status_code == 200, response.text
    assert response.json() == {"id": first["id"], "deleted": True}
    listed = await tenant.admin.get(kind.base(assistant_id))
    assert listed.json() == [second]
    assert listed.headers["X-Total-Count"] == "1"
    assert_error(await tenant.admin.delete(path), 404, "not_found")
    assert_error(await tenant.admin.put(path, json=full_body(kind)), 404, "not_found")


# --- paths with and without the trailing slash ---------------------------------------------------


@KINDS
@pytest.mark.parametrize("slash", [True, False], ids=["slash", "no-slash"])
async def test_collection_path_serves_both_slash_forms(
    tenant: Tenant, assistant_id: int, kind: Kind, slash: bool
) -> None:
    path = kind.base(assistant_id, slash=slash)

    created = await tenant.admin.post(path, json=full_body(kind))
    listed = await tenant.admin.get(path)

    assert created.status_code == 201, created.text
    assert created.json() == {"id": created.json()["id"], **full_body(kind)}
    assert listed.status_code == 200, listed.text
    assert listed.json() == [created.json()]
    assert listed.headers["X-Total-Count"] == "1"


@KINDS
@pytest.mark.parametrize("seed_form", [True, False], ids=["seed-form", "other-form"])
async def test_item_path_serves_both_slash_forms(
    tenant: Tenant, assistant_id: int, kind: Kind, seed_form: bool
) -> None:
    created = await create(tenant.admin, kind, assistant_id)
    path = kind.item(assistant_id, created["id"], seed_form=seed_form)
    assert path.endswith("/") is (kind.item_slash is seed_form)
    replacement = full_body(kind, 2)

    updated = await tenant.admin.put(path, json=replacement)
    assert updated.status_code != 307
    assert updated.status_code == kind.put_status, updated.text
    assert updated.json() == {"id": created["id"], **replacement}

    deleted = await tenant.admin.delete(path)
    assert deleted.status_code != 307
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"id": created["id"], "deleted": True}
    assert await list_all(tenant.admin, kind, assistant_id) == []


@KINDS
async def test_invalid_body_on_the_other_slash_form_is_400(
    tenant: Tenant, assistant_id: int, kind: Kind
) -> None:
    created = await create(tenant.admin, kind, assistant_id)
    path = kind.item(assistant_id, created["id"], seed_form=False)

    response = await tenant.admin.put(path, json={"content": "no name"})

    body = assert_error(response, 400, "invalid")
    assert [e["field"] for e in body["errors"]] == ["body.name"]


SEED_PATHS = {
    "/assistants/{assistant}/common_questions/": ["get", "post"],
    "/assistants/{assistant}/common_questions/{question}/": ["delete", "put"],
    "/assistants/{assistant}/fixed_questions/": ["get", "post"],
    "/assistants/{assistant}/fixed_questions/{question}/": ["delete", "put"],
    "/assistants/{assistant}/lessons/": ["get", "post"],
    "/assistants/{assistant}/lessons/{lesson}": ["delete", "put"],
}


async def test_openapi_documents_the_seed_paths_as_written(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/openapi.json")

    assert response.status_code == 200, response.text
    paths = response.json()["paths"]
    documented = {
        path: sorted(operations)
        for path, operations in paths.items()
        if path.startswith("/assistants/{assistant}/")
        and any(kind.segment in path for kind in ALL_KINDS)
    }
    assert documented == SEED_PATHS
    for kind in ALL_KINDS:
        assert str(kind.put_status) in paths[kind.seed_item]["put"]["responses"]


# --- invalid input -------------------------------------------------------------------------------

INVALID_BODIES = pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"content": "an answer"}, "body.name", id="missing-name"),
        pytest.param({"name": "", "content": "an answer"}, "body.name", id="empty-name"),
        pytest.param({"name": "q"}, "body.content", id="missing-content"),
        pytest.param({"name": "q", "content": ""}, "body.content", id="empty-content"),
        pytest.param({"name": "q", "content": 5}, "body.content", id="content-not-text"),
        pytest.param(
            {"name": "q", "content": "a", "additional_metadata": {"tags": "faq"}},
            "body.additional_metadata.tags",
            id="metadata-value-not-a-list",
        ),
        pytest.param(
            {"name": "q", "content": "a", "additional_metadata": {"tags": ["faq", 3]}},
            "body.additional_metadata.tags[1]",
            id="metadata-list-item-not-a-string",
        ),
        pytest.param(
            {"name": "q", "content": "a", "additional_metadata": ["faq"]},
            "body.additional_metadata",
            id="metadata-not-a-map",
        ),
    ],
)


@KINDS
@INVALID_BODIES
async def test_create_rejects_invalid_body_with_400(
    tenant: Tenant, assistant_id: int, kind: Kind, body: dict[str, Any], field: str
) -> None:
    response = await tenant.admin.post(kind.base(assistant_id), json=body)

    error = assert_error(response, 400, "invalid")
    assert field in [e["field"] for e in error["errors"]]
    assert await list_all(tenant.admin, kind, assistant_id) == []


@KINDS
@INVALID_BODIES
async def test_update_rejects_invalid_body_with_400(
    tenant: Tenant, assistant_id: int, kind: Kind, body: dict[str, Any], field: str
) -> None:
    created = await create(tenant.admin, kind, assistant_id)

    response = await tenant.admin.put(kind.item(assistant_id, created["id"]), json=body)

    error = assert_error(response, 400, "invalid")
    assert field in [e["field"] for e in error["errors"]]
    assert await list_all(tenant.admin, kind, assistant_id) == [created]


@KINDS
@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_nul_character_in_content_is_400_not_500(
    tenant: Tenant, assistant_id: int, kind: Kind, method: str
) -> None:
    created = await create(tenant.admin, kind, assistant_id)
    path = kind.base(assistant_id) if method == "POST" else kind.item(assistant_id, created["id"])

    response = await tenant.admin.request(
        method, path, json={"name": "q", "content": "before\u0000after"}
    )

    error = assert_error(response, 400, "invalid")
    assert [e["field"] for e in error["errors"]] == ["body.content"]
    assert "NUL" in error["errors"][0]["message"]
    assert await list_all(tenant.admin, kind, assistant_id) == [created]


@KINDS
async def test_nul_character_in_metadata_is_400(
    tenant: Tenant, assistant_id: int, kind: Kind
) -> None:
    body = {"name": "q", "content": "a", "additional_metadata": {"tags": ["x\u0000"]}}

    response = await tenant.admin.post(kind.base(assistant_id), json=body)

    error = assert_error(response, 400, "invalid")
    assert [e["field"] for e in error["errors"]] == ["body.additional_metadata"]
    assert "tags[0]" in error["errors"][0]["message"]
    assert await list_all(tenant.admin, kind, assistant_id) == []


@KINDS
async def test_content_at_the_limit_is_accepted(
    tenant: Tenant, assistant_id: int, kind: Kind, settings: Settings
) -> None:
    content = "x" * settings.knowledge_max_chars

    response = await tenant.admin.post(
        kind.base(assistant_id), json={"name": "q", "content": content}
    )

    assert response.status_code == 201, response.text
    assert response.json()["content"] == content


@KINDS
@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_content_over_the_limit_is_400_too_long(
    tenant: Tenant, assistant_id: int, kind: Kind, settings: Settings, method: str
) -> None:
    created = await create(tenant.admin, kind, assistant_id)
    path = kind.base(assistant_id) if method == "POST" else kind.item(assistant_id, created["id"])
    content = "x" * (settings.knowledge_max_chars + 1)

    response = await tenant.admin.request(method, path, json={"name": "q", "content": content})

    error = assert_error(response, 400, "too_long")
    assert len(error["errors"]) == 1
    assert error["errors"][0]["field"].removeprefix("body.") == "content"
    assert str(settings.knowledge_max_chars) in error["errors"][0]["message"]
    assert await list_all(tenant.admin, kind, assistant_id) == [created]


@KINDS
async def test_too_long_names_the_field_like_validation_errors(
    tenant: Tenant, assistant_id: int, kind: Kind, settings: Settings
) -> None:
    """One endpoint, one field, one path: an empty content is reported at body.content, so a
    too-long content must be too (clients map `field` to their form inputs)."""
    path = kind.base(assistant_id)
    too_long = "x" * (settings.knowledge_max_chars + 1)

    empty = await tenant.admin.post(path, json={"name": "q", "content": ""})
    long = await tenant.admin.post(path, json={"name": "q", "content": too_long})

    assert [e["field"] for e in assert_error(empty, 400, "invalid")["errors"]] == ["body.content"]
    assert [e["field"] for e in assert_error(long, 400, "too_long")["errors"]] == ["body.content"]


# --- not found -----------------------------------------------------------------------------------


async def assert_all_404(
    client: httpx.AsyncClient, kind: Kind, assistant_id: int, item_id: int
) -> None:
    base = kind.base(assistant_id)
    item = kind.item(assistant_id, item_id)
    for response in (
        await client.get(base),
        await client.post(base, json=full_body(kind)),
        await client.put(item, json=full_body(kind, 2)),
        await client.delete(item),
    ):
        assert_error(response, 404, "not_found")


@KINDS
async def test_missing_assistant_is_404(tenant: Tenant, kind: Kind) -> None:
    await assert_all_404(tenant.admin, kind, MISSING_ID, 1)


@KINDS
async def test_missing_item_is_404(tenant: Tenant, assistant_id: int, kind: Kind) -> None:
    item = kind.item(assistant_id, MISSING_ID)

    assert_error(await tenant.admin.put(item, json=full_body(kind)), 404, "not_found")
    assert_error(await tenant.admin.delete(item), 404, "not_found")


@KINDS
async def test_item_of_another_assistant_is_404(
    tenant: Tenant, assistant_id: int, kind: Kind
) -> None:
    created = await create(tenant.admin, kind, assistant_id)
    other = await new_assistant(tenant.admin, "Other")
    item = kind.item(other, created["id"])

    assert_error(await tenant.admin.put(item, json=full_body(kind, 2)), 404, "not_found")
    assert_error(await tenant.admin.delete(item), 404, "not_found")
    assert await list_all(tenant.admin, kind, assistant_id) == [created]
    assert await list_all(tenant.admin, kind, other) == []


@KINDS
async def test_assistant_of_another_workspace_is_404(
    tenant: Tenant, other_tenant: Tenant, assistant_id: int, kind: Kind
) -> None:
    created = await create(tenant.admin, kind, assistant_id)

    await assert_all_404(other_tenant.admin, kind, assistant_id, created["id"])
    assert_error(await other_tenant.member.get(kind.base(assistant_id)), 404, "not_found")
    assert await list_all(tenant.admin, kind, assistant_id) == [created]


@KINDS
async def test_knowledge_of_a_deleted_assistant_is_404(
    tenant: Tenant, assistant_id: int, kind: Kind
) -> None:
    created = await create(tenant.admin, kind, assistant_id)

    deleted = await tenant.admin.delete(f"/assistants/{assistant_id}/")

    assert deleted.status_code == 204, deleted.text
    await assert_all_404(tenant.admin, kind, assistant_id, created["id"])


# --- authentication and roles --------------------------------------------------------------------


@KINDS
async def test_member_may_list_but_not_write(tenant: Tenant, assistant_id: int, kind: Kind) -> None:
    created = await create(tenant.admin, kind, assistant_id)
    item = kind.item(assistant_id, created["id"])

    listed = await tenant.member.get(kind.base(assistant_id))
    assert listed.status_code == 200, listed.text
    assert listed.json() == [created]

    assert_error(
        await tenant.member.post(kind.base(assistant_id), json=full_body(kind, 2)), 403, "forbidden"
    )
    assert_error(await tenant.member.put(item, json=full_body(kind, 2)), 403, "forbidden")
    assert_error(await tenant.member.delete(item), 403, "forbidden")
    assert await list_all(tenant.admin, kind, assistant_id) == [created]


@KINDS
async def test_no_api_key_is_401(
    tenant: Tenant, app_client: httpx.AsyncClient, assistant_id: int, kind: Kind
) -> None:
    created = await create(tenant.admin, kind, assistant_id)
    base = kind.base(assistant_id)
    item = kind.item(assistant_id, created["id"])

    for response in (
        await app_client.get(base),
        await app_client.post(base, json=full_body(kind, 2)),
        await app_client.put(item, json=full_body(kind, 2)),
        await app_client.delete(item),
    ):
        assert_error(response, 401, "missing_api_key")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert await list_all(tenant.admin, kind, assistant_id) == [created]


@KINDS
async def test_unknown_api_key_is_401(
    tenant: Tenant, app_client: httpx.AsyncClient, assistant_id: int, kind: Kind
) -> None:
    response = await app_client.get(
        kind.base(assistant_id), headers={"X-Api-Key": "csk_not-a-real-key-at-all"}
    )

    assert_error(response, 401, "invalid_api_key")


# --- the assistant's counts ----------------------------------------------------------------------


async def counts(client: httpx.AsyncClient, assistant_id: int) -> dict[str, int]:
    response = await client.get(f"/assistants/{assistant_id}/")
    assert response.status_code == 200, response.text
    body = response.json()
    return {kind.count_field: body[kind.count_field] for kind in ALL_KINDS}


@KINDS
async def test_assistant_counts_follow_creates_and_deletes(
    tenant: Tenant, assistant_id: int, kind: Kind
) -> None:
    zero = {k.count_field: 0 for k in ALL_KINDS}
    assert await counts(tenant.admin, assistant_id) == zero

    first = await create(tenant.admin, kind, assistant_id, 1)
    await create(tenant.admin, kind, assistant_id, 2)
    assert await counts(tenant.admin, assistant_id) == {**zero, kind.count_field: 2}

    other = await new_assistant(tenant.admin, "Other")
    await create(tenant.admin, kind, other)
    assert await counts(tenant.admin, assistant_id) == {**zero, kind.count_field: 2}

    deleted = await tenant.admin.delete(kind.item(assistant_id, first["id"]))
    assert deleted.status_code == 200, deleted.text
    assert await counts(tenant.admin, assistant_id) == {**zero, kind.count_field: 1}
    assert await counts(tenant.admin, other) == {**zero, kind.count_field: 1}


async def test_counts_are_read_only(tenant: Tenant, assistant_id: int) -> None:
    await create(tenant.admin, COMMON, assistant_id)

    response = await tenant.admin.patch(
        f"/assistants/{assistant_id}/",
        json={"retrieval_faq": 50, "retrieval_fixed_faq": 50, "retrieval_lessons": 50},
    )

    assert response.status_code == 200, response.text
    assert await counts(tenant.admin, assistant_id) == {
        "retrieval_faq": 1,
        "retrieval_fixed_faq": 0,
        "retrieval_lessons": 0,
    }


async def test_kinds_are_kept_apart(tenant: Tenant, assistant_id: int) -> None:
    created = {kind.segment: await create(tenant.admin, kind, assistant_id) for kind in ALL_KINDS}

    for kind in ALL_KINDS:
        assert await list_all(tenant.admin, kind, assistant_id) == [created[kind.segment]]
    assert await counts(tenant.admin, assistant_id) == {k.count_field: 1 for k in ALL_KINDS}


async def test_malformed_path_ids_are_422_on_every_method(tenant: Tenant) -> None:
    created = await tenant.admin.post("/assistants/", json={"description": "x"})
    base = f"/assistants/{created.json()['id']}/lessons/abc"
    for response in (
        await tenant.admin.put(base, json={"name": "n", "content": "c"}),
        await tenant.admin.delete(base),
    ):
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "path.lesson"
