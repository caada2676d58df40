"""GET and POST /api/v1/chat-messages as an integration sees them: the `authorization` header,
every field of a posted message, externalId idempotency, roles and which posts start an answer,
senders (members, admins, external identities registered on first use), sub-threads, ticket
filters, joins, pagination, and bad input answered 400/422 with the field named."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import text

from tests.fixtures.app import Tenant
from tests.fixtures.messages_v1 import URL, V1, user_uuid, v1_client

FIELDS = {
    "id",
    "createdAt",
    "updatedAt",
    "chatId",
    "chatThreadId",
    "content",
    "externalId",
    "rawContent",
    "role",
    "senderId",
}


def new_id() -> str:
    return str(uuid.uuid4())


def fields_of(response: httpx.Response) -> dict[str, str]:
    """The error body's field → message map (the shared ErrorBody)."""
    body = response.json()
    assert set(body) == {"detail", "code", "errors", "request_id"}, body
    return {e["field"]: e["message"] for e in body["errors"]}


async def listed(v1: V1, chat_id: str, **params: Any) -> list[dict[str, Any]]:
    response = await v1.admin.get(URL, params={"chatId": chat_id, **params})
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()
    return body


async def jobs(v1: V1, kind: str = "chat_generation") -> int:
    return await v1.count(
        "SELECT count(*) FROM jobs WHERE workspace_id = :w AND kind = :k",
        w=v1.tenant.workspace_id,
        k=kind,
    )


# --- authorization ------------------------------------------------------------------------------


async def test_the_key_goes_in_the_authorization_header_with_or_without_bearer(
    v1: V1, app_client: httpx.AsyncClient
) -> None:
    chat = await v1.chat()
    key = v1.tenant.admin_key
    for header in (key, f"Bearer {key}", f"bearer {key}", f"  {key}  "):
        async with v1_client(app_client, header) as client:
            response = await client.get(URL, params={"chatId": chat})
        assert response.status_code == 200, (header, response.text)
    other = await app_client.get(URL, params={"chatId": chat}, headers={"X-Api-Key": key})
    assert other.status_code == 200, other.text
    # X-Api-Key wins over the authorization header, as on every face.
    both = await app_client.get(
        URL, params={"chatId": chat}, headers={"X-Api-Key": key, "authorization": "Bearer junk"}
    )
    assert both.status_code == 200, both.text

    missing = await app_client.get(URL, params={"chatId": chat})
    assert missing.status_code == 401
    assert missing.json()["code"] == "missing_api_key"
    assert "authorization" in missing.json()["detail"]
    for wrong in ("csk_not-a-key-at-all", "Bearer csk_nope", "Basic dXNlcjpwYXNz"):
        async with v1_client(app_client, wrong) as client:
            response = await client.post(URL, json={})
        assert response.status_code == 401, (wrong, response.text)
        assert response.json()["code"] == "invalid_api_key"
        assert wrong.split()[-1] not in response.text  # a key is never echoed


# --- POST: every field --------------------------------------------------------------------------


async def test_a_posted_message_has_every_field_and_is_listed_the_same(v1: V1) -> None:
    chat = await v1.chat()
    before = datetime.now().astimezone()
    response = await v1.post(chat, content="Your order ships today.", externalId="zendesk-1001")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == FIELDS
    assert uuid.UUID(body["id"]).version == 4
    assert body["chatId"] == chat
    assert body["chatThreadId"] is None
    assert body["content"] == "Your order ships today."
    assert body["externalId"] == "zendesk-1001"
    assert body["rawContent"] is None  # posted, not generated
    assert body["role"] == "assistant"
    assert body["senderId"] == v1.admin_uuid
    created = datetime.fromisoformat(body["createdAt"])
    assert created.tzinfo is not None and created >= before.replace(microsecond=0)
    assert datetime.fromisoformat(body["updatedAt"]) >= created
    assert await listed(v1, chat) == [body]
    assert await jobs(v1) == 0  # an assistant message is never answered


async def test_a_user_message_of_the_main_thread_starts_an_answer(v1: V1) -> None:
    chat = await v1.chat()
    response = await v1.post(chat, role="user", content="Where is my order?")
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "user" and response.json()["rawContent"] is None
    assert await jobs(v1) == 1
    status = await v1.scalar("SELECT execution_status FROM chats WHERE uuid = :u", u=chat)
    assert status == "PROCESSING"
    title = await v1.scalar("SELECT title FROM chats WHERE uuid = :u", u=chat)
    assert title == "Where is my order?"

    # While the answer runs, another user message is refused and nothing is stored ...
    busy = await v1.post(chat, role="user", content="Hello?")
    assert busy.status_code == 409, busy.text
    assert busy.json()["code"] == "generation_running"
    # ... but an assistant message, or a user message of a sub-thread, is stored (no answer).
    assert (await v1.post(chat, content="An agent writes")).status_code == 200
    side = await v1.post(chat, role="user", content="A note", chatThreadId=new_id())
    assert side.status_code == 200, side.text
    assert [m["content"] for m in await listed(v1, chat)] == [
        "Where is my order?",
        "An agent writes",
        "A note",
    ]
    assert await jobs(v1) == 1


async def test_snake_case_input_is_accepted_too(v1: V1) -> None:
    chat = await v1.chat()
    body = {"chat_id": chat, "content": "hi", "sender_id": v1.admin_uuid, "role": "assistant"}
    response = await v1.admin.post(URL, json=body)
    assert response.status_code == 200, response.text
    assert response.json()["chatId"] == chat and "chat_id" not in response.json()


# --- externalId ---------------------------------------------------------------------------------


async def test_repeating_an_external_id_returns_the_existing_message(v1: V1) -> None:
    chat, other_chat = await v1.chat(), await v1.chat()
    first = await v1.post(chat, content="first", externalId="ext-42")
    again = await v1.post(chat, content="second try", externalId="ext-42", role="user")
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()  # the first one, as it was stored
    elsewhere = await v1.post(other_chat, content="same id, other chat", externalId="ext-42")
    assert elsewhere.status_code == 200
    assert elsewhere.json()["id"] != first.json()["id"]
    assert [m["content"] for m in await listed(v1, chat)] == ["first"]
    assert await jobs(v1) == 0  # the repeat, although a user message, started nothing

    # Without externalId every post is a new message.
    for _ in range(2):
        assert (await v1.post(chat, content="anonymous")).status_code == 200
    assert len(await listed(v1, chat)) == 3


async def test_a_repeated_user_turn_is_not_answered_twice(v1: V1) -> None:
    chat = await v1.chat()
    first = await v1.post(chat, role="user", content="refund please", externalId="t-1")
    # While its answer runs, the retry gets the message back instead of a 409.
    retry = await v1.post(chat, role="user", content="refund please", externalId="t-1")
    assert first.status_code == retry.status_code == 200, retry.text
    assert retry.json()["id"] == first.json()["id"]
    assert await jobs(v1) == 1
    assert len(await listed(v1, chat)) == 1


async def test_external_id_length_bounds(v1: V1) -> None:
    chat = await v1.chat()
    for ok in ("abc", "x" * 250):
        assert (await v1.post(chat, externalId=ok)).status_code == 200, ok
    for bad in ("ab", "x" * 251, ""):
        response = await v1.post(chat, externalId=bad)
        assert response.status_code == 400, (bad, response.text)
        assert "body.externalId" in fields_of(response)
    assert len(await listed(v1, chat)) == 2


# --- content and role ---------------------------------------------------------------------------


async def test_content_is_1_to_4000_characters_and_within_the_chats_limit(v1: V1) -> None:
    chat = await v1.chat()
    assert (await v1.post(chat, content="y" * 4000)).status_code == 200
    for bad in ("", "y" * 4001):
        response = await v1.post(chat, content=bad)
        assert response.status_code == 400, response.text
        assert "body.content" in fields_of(response)
    short = await v1.chat(await v1.assistant(max_msg_length=10))
    response = await v1.post(short, role="user", content="more than ten characters")
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "message_too_long"
    assert "body.content" in fields_of(response)
    assert await listed(v1, short) == [] and await jobs(v1) == 0


async def test_roles_user_and_assistant_are_accepted_others_refused(v1: V1) -> None:
    chat = await v1.chat()
    for role in ("system", "tool", "agent", "USER", None):
        response = await v1.post(chat, role=role)
        assert response.status_code == 400, (role, response.text)
        assert "body.role" in fields_of(response)
    assert await listed(v1, chat) == []


async def test_an_ended_chat_refuses_user_messages(v1: V1) -> None:
    chat = await v1.chat(await v1.assistant(max_responses=1))
    await v1.connection.execute(
        text("UPDATE chats SET ended = true, responses_count = 1 WHERE uuid = :u"), {"u": chat}
    )
    response = await v1.post(chat, role="user", content="anyone?")
    assert response.status_code == 400 and response.json()["code"] == "chat_ended"


# --- malformed ids, missing fields --------------------------------------------------------------


async def test_malformed_uuids_in_the_body_are_400_with_the_field(v1: V1) -> None:
    chat = await v1.chat()
    cases: dict[str, Any] = {
        "chatId": "not-a-uuid",
        "senderId": "12345",
        "chatThreadId": "thread-1",
    }
    for field, value in cases.items():
        response = await v1.post(chat, **{field: value})
        assert response.status_code == 400, (field, response.text)
        assert f"body.{field}" in fields_of(response), response.text
    bad_ticket = await v1.post(chat, ticketIds=[new_id(), "nope"])
    assert "body.ticketIds[1]" in fields_of(bad_ticket)
    missing = await v1.admin.post(URL, json={"content": "hi"})
    assert missing.status_code == 400
    assert {"body.chatId", "body.senderId", "body.role"} <= set(fields_of(missing))
    assert await listed(v1, chat) == []


async def test_malformed_uuids_in_the_query_are_422_with_the_parameter(v1: V1) -> None:
    chat = await v1.chat()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"chatId": "abc"}, "query.chatId"),
        ({"chatId": chat, "chatThreadId": "t1"}, "query.chatThreadId"),
        ({"chatId": chat, "ticketIds": [new_id(), "zz"]}, "query.ticketIds[1]"),
        ({"chatId": chat, "joins": "sender,friends"}, "query.joins[1]"),
        ({}, "query.chatId"),
    ]
    for params, field in cases:
        response = await v1.admin.get(URL, params=params)
        assert response.status_code == 422, (params, response.text)
        assert field in fields_of(response), response.text


# --- who sees what, who may post as whom --------------------------------------------------------


async def test_chats_of_others_are_404(
    v1: V1, other_tenant: Tenant, app_client: httpx.AsyncClient
) -> None:
    chat = await v1.chat()
    unknown = await v1.admin.get(URL, params={"chatId": new_id()})
    assert unknown.status_code == 404 and unknown.json()["code"] == "chat_not_found"
    async with v1_client(app_client, other_tenant.admin_key) as stranger:
        assert (await stranger.get(URL, params={"chatId": chat})).status_code == 404
        posted = await stranger.post(
            URL, json={"chatId": chat, "content": "x", "senderId": new_id(), "role": "user"}
        )
        assert posted.status_code == 404
    # A member sees its own chats only.
    assert (await v1.member.get(URL, params={"chatId": chat})).status_code == 404
    own = await v1.chat(member=True)
    assert (await v1.member.get(URL, params={"chatId": own})).status_code == 200
    assert (await v1.admin.get(URL, params={"chatId": own})).status_code == 200


async def test_a_member_posts_as_itself_only(v1: V1) -> None:
    chat = await v1.chat(member=True)
    mine = await v1.post(chat, client=v1.member, senderId=v1.member_uuid, content="from me")
    assert mine.status_code == 200, mine.text
    assert mine.json()["senderId"] == v1.member_uuid
    for someone in (v1.admin_uuid, new_id()):
        response = await v1.post(chat, client=v1.member, senderId=someone)
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "sender_not_allowed"
        assert v1.member_uuid in response.json()["detail"]  # it says which senderId to use
    assert len(await listed(v1, chat)) == 1


async def test_an_admin_posts_for_any_principal_and_registers_unknown_ones(
    v1: V1, other_tenant: Tenant
) -> None:
    chat = await v1.chat()
    as_member = await v1.post(chat, senderId=v1.member_uuid, role="assistant")
    assert as_member.json()["senderId"] == v1.member_uuid
    customer = new_id()
    for _ in range(2):
        response = await v1.post(chat, senderId=customer, role="user", chatThreadId=new_id())
        assert response.status_code == 200, response.text
        assert response.json()["senderId"] == customer
    registered = await v1.count(
        "SELECT count(*) FROM principals p JOIN chat_sessions s ON s.principal_id = p.id "
        "WHERE s.user_uuid = :u AND p.kind = 'external' AND p.workspace_id = :w",
        u=customer,
        w=v1.tenant.workspace_id,
    )
    assert registered == 1
    listing = await listed(v1, chat, joins="sender")
    joined = next(m["sender"] for m in listing if m["senderId"] == customer)
    assert joined == {
        "id": customer,
        "kind": "external",
        "username": f"external:{customer}",
        "fullName": "",
    }
    # A principal of another workspace cannot be named here.
    foreign = await user_uuid(other_tenant.admin)
    refused = await v1.post(chat, senderId=foreign)
    assert refused.status_code == 400 and refused.json()["code"] == "unknown_sender"
    assert "body.senderId" in fields_of(refused)


# --- sub-threads, tickets, joins, pages ---------------------------------------------------------


async def test_sub_threads_filter_the_list_in_order(v1: V1) -> None:
    chat = await v1.chat()
    red, blue = new_id(), new_id()
    for content, thread in (("r1", red), ("main", None), ("b1", blue), ("r2", red)):
        response = await v1.post(chat, content=content, chatThreadId=thread)
        assert response.status_code == 200, response.text
        assert response.json()["chatThreadId"] == thread
    everything = await listed(v1, chat)
    assert [m["content"] for m in everything] == ["r1", "main", "b1", "r2"]
    only_red = await listed(v1, chat, chatThreadId=red)
    assert [(m["content"], m["chatThreadId"]) for m in only_red] == [("r1", red), ("r2", red)]
    assert await listed(v1, chat, chatThreadId=new_id()) == []


async def test_ticket_ids_kept_on_the_chat_filter_its_messages(v1: V1) -> None:
    chat, other = await v1.chat(), await v1.chat()
    ticket, second, unrelated = new_id(), new_id(), new_id()
    assert (await v1.post(chat, content="one", ticketIds=[ticket])).status_code == 200
    assert (await v1.post(chat, content="two", ticketIds=[ticket, second])).status_code == 200
    assert (await v1.post(other, content="elsewhere")).status_code == 200

    assert [m["content"] for m in await listed(v1, chat, ticketIds=ticket)] == ["one", "two"]
    assert await listed(v1, chat, ticketIds=unrelated) == []
    assert len(await listed(v1, chat, ticketIds=[unrelated, second])) == 2
    assert len(await listed(v1, chat, ticketIds=f"{unrelated},{ticket}")) == 2
    assert await listed(v1, other, ticketIds=ticket) == []
    (first,) = (await listed(v1, chat, joins="chat"))[:1]
    assert first["chat"]["ticketIds"] == [ticket, second]


async def test_joins_embed_sender_chat_and_assistant_only_when_asked(v1: V1) -> None:
    assistant = await v1.assistant(description="Billing bot")
    chat = await v1.chat(assistant)
    await v1.post(chat, content="hi", senderId=v1.member_uuid)
    (plain,) = await listed(v1, chat)
    assert set(plain) == FIELDS
    (full,) = await listed(v1, chat, joins=["sender", "chat", "assistant"])
    assert {k: v for k, v in full.items() if k in FIELDS} == plain
    assert full["sender"] == {
        "id": v1.member_uuid,
        "kind": "user",
        "username": "acme-member",
        "fullName": "Max Member",
    }
    assert full["chat"]["id"] == chat and full["chat"]["assistantId"] == assistant
    assert full["chat"]["executionStatus"] == "AVAILABLE" and full["chat"]["ticketIds"] == []
    assert set(full["chat"]) == {
        "id",
        "title",
        "assistantId",
        "executionStatus",
        "ticketIds",
        "createdAt",
        "updatedAt",
    }
    assert full["assistant"] == {"id": assistant, "description": "Billing bot", "deleted": False}
    (some,) = await listed(v1, chat, joins="assistant,sender")
    assert "chat" not in some and some["sender"]["id"] == v1.member_uuid


async def test_pages_carry_the_total_and_links(v1: V1) -> None:
    chat = await v1.chat()
    for n in range(5):
        await v1.post(chat, content=f"m{n}")
    response = await v1.admin.get(URL, params={"chatId": chat, "page": 2, "page_size": 2})
    assert response.status_code == 200
    assert [m["content"] for m in response.json()] == ["m2", "m3"]
    assert response.headers["X-Total-Count"] == "5"
    assert 'rel="next"' in response.headers["Link"] and 'rel="prev"' in response.headers["Link"]


async def test_hidden_messages_are_not_listed(v1: V1) -> None:
    chat = await v1.chat()
    for content in ("kept", "superseded"):
        await v1.post(chat, content=content)
    await v1.connection.execute(
        text("UPDATE messages SET visible = false WHERE content = 'superseded'")
    )
    assert [m["content"] for m in await listed(v1, chat)] == ["kept"]


async def test_the_moderation_verdict_shows_with_joins(v1: V1) -> None:
    chat = await v1.chat()
    posted = await v1.post(chat, role="user", content="call me", chatThreadId=new_id())
    assert (await v1.post(chat, content="Done, thanks")).status_code == 200
    # The verdict the moderation step stores on a user message.
    await v1.connection.execute(
        text(
            "UPDATE messages SET is_flagged = true, severity = 'medium', "
            "pii_categories = '[\"phone\"]', action_taken = 'redacted' WHERE uuid = :u"
        ),
        {"u": posted.json()["id"]},
    )
    (flagged, plain) = await listed(v1, chat, joins="moderation")
    assert flagged["moderation"] == {
        "isFlagged": True,
        "severity": "medium",
        "injectionCategories": [],
        "piiCategories": ["phone"],
        "actionTaken": "redacted",
    }
    assert plain["moderation"] == {
        "isFlagged": False,
        "severity": "none",
        "injectionCategories": [],
        "piiCategories": [],
        "actionTaken": "none",
    }
    assert all("moderation" not in m for m in await listed(v1, chat))
