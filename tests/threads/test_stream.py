"""POST /api/chat/stream/ as a client sees it, on a real server on loopback (generations run
detached): new threads in the caller's session with the default assistant, reload and edit with
their kept histories, archive, ownership, resumption, idempotent retries and the 400s of a bad
request. The generator is the offline one or the fake OpenAI server, which records its prompts."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from tests.fixtures.app import Live
from tests.fixtures.chats import live_with_fake, make_assistant, numbered
from tests.fixtures.sse import (
    SSE,
    assert_stream_headers,
    completed,
    follow_like_eventsource,
    names,
    sse,
    text_of,
)
from tests.fixtures.threads import STREAM, messages, sent_to_model, stream, thread_of, turn_of

FAQ_QUESTION = "How do I reset my password?"
FAQ_ANSWER = "Use the reset link on the sign-in page."


async def assistant_chats(client: httpx.AsyncClient, assistant: int) -> list[dict[str, Any]]:
    response = await client.get(f"/assistants/{assistant}/chats/")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


async def thread_settled(client: httpx.AsyncClient, thread: str) -> None:
    """Until the thread's last generation has stored its answer (cognitive view of the chat)."""
    async with asyncio.timeout(20):
        while True:
            shown = await messages(client, thread)
            if shown and shown[-1]["role"] == "assistant":
                return
            await asyncio.sleep(0.05)


# --- a new thread --------------------------------------------------------------------------------


async def test_a_new_thread_streams_in_the_callers_session_with_the_default_assistant(
    live: Live,
) -> None:
    first = await make_assistant(live.admin, description="First")
    await live.admin.post(
        f"/assistants/{first}/common_questions/",
        json={"name": FAQ_QUESTION, "content": FAQ_ANSWER},
    )
    second = await make_assistant(live.admin, description="Second")

    async with sse(live.member, "POST", STREAM, json={"input": FAQ_QUESTION}) as source:
        await assert_stream_headers(source.response, 200)
        found = await source.rest()
        header = source.response.headers["x-thread-uuid"]

    order = names(found)
    assert order[:3] == ["turn", "message.created", "references"]
    assert set(order[3:-1]) == {"delta"} and order[-1] == "message.completed"
    assert len({e.id for e in found}) == len(found)
    assert len({e.generation for e in found}) == 1

    turn = turn_of(found)
    session = (await live.member.get("/api/chat-sessions/current/")).json()
    thread = turn["thread"]
    assert turn["mode"] == "message"
    assert thread["uuid"] == header and thread["chat_session"] == session["uuid"]
    assert thread["name"] == FAQ_QUESTION and thread["user_username"] == "max"
    user = turn["user_message"]
    assert (user["role"], user["content"], user["sequence_index"]) == ("user", FAQ_QUESTION, 1)
    assert user["thread"] == header and user["action_taken"] == "none"
    assert found[1].data == {
        "thread": header,
        "generation_id": found[1].generation,
        "role": "assistant",
    }

    answer = completed(found)
    assert answer["content"] == text_of(found) == FAQ_ANSWER
    assert answer["thread"] == header and answer["sequence_index"] == 2
    assert found[-1].data["thread"]["message_count"] == 2
    assert [m["uuid"] for m in await messages(live.member, header)] == [
        user["uuid"],
        answer["uuid"],
    ]
    # The thread is a chat of the first live assistant, in the cognitive face too.
    (chat,) = await assistant_chats(live.admin, first)
    assert chat["title"] == FAQ_QUESTION
    assert [m["content"] for m in chat["messages"]] == [FAQ_QUESTION, FAQ_ANSWER]
    assert await assistant_chats(live.admin, second) == []

    # Without Accept: text/event-stream, JSON once the answer is stored.
    plain = await live.member.post(STREAM, json={"input": FAQ_QUESTION, "thread_uuid": header})
    assert plain.status_code == 200, plain.text
    assert plain.headers["content-type"].startswith("application/json")
    body = plain.json()
    assert set(body) == {"thread", "user_message", "answer"}
    assert body["thread"]["uuid"] == header and body["thread"]["message_count"] == 4
    assert body["user_message"]["sequence_index"] == 3
    assert body["answer"]["content"] == FAQ_ANSWER and body["answer"]["sequence_index"] == 4


async def test_the_default_assistant_is_a_workspace_setting(live: Live) -> None:
    empty = await live.member.post(STREAM, json={"input": "anyone?"})
    assert empty.status_code == 400, empty.text
    assert empty.json()["code"] == "no_assistant"

    first = await make_assistant(live.admin, description="First")
    second = await make_assistant(live.admin, description="Second")
    settings = await live.member.get("/api/chat-settings/")
    assert settings.status_code == 200
    assert settings.json()["default_assistant"] is None
    assert settings.json()["moderation_policy"]["injection_block_at"] == "high"

    refused = await live.member.patch("/api/chat-settings/", json={"default_assistant": second})
    assert refused.status_code == 403
    changed = await live.admin.patch("/api/chat-settings", json={"default_assistant": second})
    assert changed.status_code == 200, changed.text
    assert changed.json()["default_assistant"] == second
    unknown = await live.admin.patch("/api/chat-settings/", json={"default_assistant": 999_999})
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["field"] == "body.default_assistant"

    await live.member.post(STREAM, json={"input": "to the default"})
    await live.member.post(STREAM, json={"input": "to the first", "assistant": first})
    assert [c["title"] for c in await assistant_chats(live.admin, second)] == ["to the default"]
    assert [c["title"] for c in await assistant_chats(live.admin, first)] == ["to the first"]
    missing = await live.member.post(STREAM, json={"input": "x", "assistant": 999_999})
    assert missing.status_code == 404

    # A deleted default falls back to the first live assistant.
    assert (await live.admin.delete(f"/assistants/{second}/")).status_code == 204
    await live.member.post(STREAM, json={"input": "after the delete"})
    titles = [c["title"] for c in await assistant_chats(live.admin, first)]
    assert titles == ["to the first", "after the delete"]
    reset = await live.admin.patch("/api/chat-settings/", json={"default_assistant": None})
    assert reset.json()["default_assistant"] is None


# --- reload and edit -----------------------------------------------------------------------------


async def test_reload_replaces_the_last_answer_and_keeps_the_old_one(live_pg_url: str) -> None:
    async with live_with_fake(live_pg_url, tokens=numbered(4)) as (live, fake):
        await make_assistant(live.admin, generation_config="gpt")
        _response, found = await stream(live.member, {"input": "tell me"})
        thread = turn_of(found)["thread"]["uuid"]
        user, old = turn_of(found)["user_message"], completed(found)

        fake.configure(tokens=numbered(6))
        _response, again = await stream(
            live.member, {"input": "", "thread_uuid": thread, "mode": "reload"}
        )
        assert turn_of(again)["mode"] == "reload"
        assert turn_of(again)["user_message"]["uuid"] == user["uuid"]
        new = completed(again)
        assert new["content"] == "".join(numbered(6)) == text_of(again)
        assert new["replaces"] == old["uuid"] and new["sequence_index"] == 3
        assert again[-1].data["thread"]["message_count"] == 2

        shown = await messages(live.member, thread)
        assert [m["uuid"] for m in shown] == [user["uuid"], new["uuid"]]
        history = await messages(live.member, thread, history=True)
        assert [m["uuid"] for m in history] == [user["uuid"], old["uuid"], new["uuid"]]
        assert [m["replaces"] for m in history] == [None, None, old["uuid"]]
        # The model was asked the same question again, without the answer it replaces.
        assert sent_to_model(fake.requests[-1].body) == sent_to_model(fake.requests[0].body)

        # A reload of a reload replaces the latest answer.
        _response, third = await stream(
            live.member, {"input": "x", "thread_uuid": thread, "mode": "reload"}
        )
        assert completed(third)["replaces"] == new["uuid"]
        assert len(await messages(live.member, thread, history=True)) == 4
        assert (await thread_of(live.member, thread))["message_count"] == 2


async def test_edit_supersedes_the_message_and_everything_after_it(live_pg_url: str) -> None:
    async with live_with_fake(live_pg_url) as (live, fake):  # the fake echoes the last message
        await make_assistant(live.admin, generation_config="gpt")
        _response, one = await stream(live.member, {"input": "first question"})
        thread = turn_of(one)["thread"]["uuid"]
        _response, two = await stream(
            live.member, {"input": "second question", "thread_uuid": thread}
        )
        u1, a1 = turn_of(one)["user_message"], completed(one)
        u2, a2 = turn_of(two)["user_message"], completed(two)

        edit = {
            "input": "edited question",
            "thread_uuid": thread,
            "mode": "edit",
            "edit_message_uuid": u1["uuid"],
        }
        _response, edited = await stream(live.member, edit)
        u3 = turn_of(edited)["user_message"]
        a3 = completed(edited)
        assert turn_of(edited)["mode"] == "edit"
        assert (u3["content"], u3["replaces"], u3["sequence_index"]) == (
            "edited question",
            u1["uuid"],
            5,
        )
        assert a3["content"] == "You said: edited question"
        # The branch starts at the edit: the model saw none of what it superseded.
        assert sent_to_model(fake.requests[-1].body) == [("user", "edited question")]

        assert [m["uuid"] for m in await messages(live.member, thread)] == [u3["uuid"], a3["uuid"]]
        history = await messages(live.member, thread, history=True)
        assert [m["uuid"] for m in history] == [
            u1["uuid"],
            a1["uuid"],
            u2["uuid"],
            a2["uuid"],
            u3["uuid"],
            a3["uuid"],
        ]
        assert (await thread_of(live.member, thread))["message_count"] == 2

        _response, later = await stream(live.member, {"input": "and then?", "thread_uuid": thread})
        assert sent_to_model(fake.requests[-1].body) == [
            ("user", "edited question"),
            ("assistant", "You said: edited question"),
            ("user", "and then?"),
        ]
        assert completed(later)["replaces"] is None

        for target, problem in (
            (u2["uuid"], "already superseded"),
            (a3["uuid"], "only user messages"),
            (str(uuid.uuid4()), "not a message of this thread"),
        ):
            response = await live.member.post(STREAM, json={**edit, "edit_message_uuid": target})
            assert response.status_code == 400, response.text
            assert response.json()["code"] == "not_editable"
            assert problem in response.json()["detail"]
            assert response.json()["errors"][0]["field"] == "body.edit_message_uuid"
        assert len(await messages(live.member, thread, history=True)) == 8  # nothing stored


async def test_a_thread_without_a_user_message_has_nothing_to_reload(live: Live) -> None:
    assistant = await make_assistant(live.admin, initial_message="Hello!")
    made = await live.member.post(f"/assistants/{assistant}/", json={})  # the cognitive face
    assert made.status_code == 201
    (thread,) = (await live.member.get("/api/chat-threads/")).json()
    assert thread["message_count"] == 1 and thread["name"] == ""
    response = await live.member.post(
        STREAM, json={"input": "", "thread_uuid": thread["uuid"], "mode": "reload"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "nothing_to_reload"


# --- bad requests, ownership, archive -------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"input": "", "mode": "reload"}, "body.thread_uuid"),
        (
            {"input": "x", "mode": "edit", "thread_uuid": str(uuid.uuid4())},
            "body.edit_message_uuid",
        ),
        ({"input": "x", "edit_message_uuid": str(uuid.uuid4())}, "body.edit_message_uuid"),
        ({"input": "x", "assistant": 1, "thread_uuid": str(uuid.uuid4())}, "body.assistant"),
        ({"input": "   "}, "body.input"),
        ({"input": "x", "mode": "rewrite"}, "body.mode"),
        ({"input": "x", "thread_uuid": "not-a-uuid"}, "body.thread_uuid"),
        ({"thread_uuid": str(uuid.uuid4())}, "body.input"),
        ({"input": "x", "assistant": 0}, "body.assistant"),
        ({"input": "x\u0000y"}, "body.input"),
    ],
)
async def test_a_bad_stream_request_is_400_naming_the_field(
    live: Live, body: dict[str, Any], field: str
) -> None:
    await make_assistant(live.admin)
    response = await live.member.post(STREAM, json=body, headers=SSE)
    assert response.status_code == 400, response.text
    assert field in [e["field"] for e in response.json()["errors"]], response.json()
    assert (await live.member.get("/api/chat-threads/")).json() == []


async def test_a_message_over_the_limit_is_400_on_input(live: Live) -> None:
    await make_assistant(live.admin, max_msg_length=10)
    response = await live.member.post(STREAM, json={"input": "x" * 11})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "message_too_long"
    assert response.json()["errors"][0]["field"] == "body.input"


async def test_members_stream_only_into_their_own_threads(live: Live) -> None:
    await make_assistant(live.admin)
    _response, found = await stream(live.admin, {"input": "the admin's"})
    admins = turn_of(found)["thread"]["uuid"]
    for body in (
        {"input": "mine now?", "thread_uuid": admins},
        {"input": "", "thread_uuid": admins, "mode": "reload"},
    ):
        response = await live.member.post(STREAM, json=body)
        assert response.status_code == 404, response.text
    unknown = await live.member.post(STREAM, json={"input": "x", "thread_uuid": str(uuid.uuid4())})
    assert unknown.status_code == 404
    assert len(await messages(live.admin, admins)) == 2
    # Resuming another user's stream is refused too: its event ids name its generation.
    resumed = await live.member.post(
        STREAM, json={"input": "x"}, headers={**SSE, "Last-Event-ID": found[1].id}
    )
    assert resumed.status_code == 404, resumed.text
    assert resumed.json()["code"] == "stream_not_found"


async def test_an_archived_thread_takes_no_turn_until_unarchived(live: Live) -> None:
    await make_assistant(live.admin)
    _response, found = await stream(live.member, {"input": "hello"})
    thread = turn_of(found)["thread"]["uuid"]
    assert (await live.member.post(f"/api/chat-threads/{thread}/archive/")).status_code == 204

    for body in (
        {"input": "still there?", "thread_uuid": thread},
        {"input": "", "thread_uuid": thread, "mode": "reload"},
    ):
        response = await live.member.post(STREAM, json=body)
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "thread_archived"
        assert "unarchive" in response.json()["detail"]
    assert len(await messages(live.member, thread, history=True)) == 2  # nothing stored

    assert (await live.member.post(f"/api/chat-threads/{thread}/unarchive/")).status_code == 204
    _response, after = await stream(live.member, {"input": "back", "thread_uuid": thread})
    assert completed(after)["sequence_index"] == 4


# --- running turns: 409, resume, idempotent retries -----------------------------------------------


async def test_resume_409_and_idempotent_retries(live_pg_url: str) -> None:
    tokens = numbered(20)
    async with live_with_fake(live_pg_url, tokens=tokens, gap=0.03) as (live, fake):
        await make_assistant(live.admin, generation_config="gpt")
        body = {"input": "count for me"}
        key = {"Idempotency-Key": f"turn-{uuid.uuid4()}"}
        async with sse(live.member, "POST", STREAM, json=body, headers=key) as source:
            await assert_stream_headers(source.response, 200)
            head = await source.until_text("".join(tokens[:3]))
            thread = source.response.headers["x-thread-uuid"]
            busy = await live.member.post(STREAM, json={"input": "me too", "thread_uuid": thread})
            assert busy.status_code == 409, busy.text
            assert busy.json()["code"] == "generation_running"
            # A retry with the same key re-attaches to the same turn: nothing is sent twice.
            async with sse(live.member, "POST", STREAM, json=body, headers=key) as retry:
                await assert_stream_headers(retry.response, 200)
                replay = await retry.rest()
        await thread_settled(live.member, thread)
        assert {e.generation for e in replay} == {head[0].generation}
        assert replay[: len(head)] == head
        assert text_of(replay) == "".join(tokens)
        assert [t["uuid"] for t in (await live.member.get("/api/chat-threads/")).json()] == [thread]
        assert len(await messages(live.member, thread)) == 2
        assert len(fake.requests) == 1

        # The client that left resumes with the same request and Last-Event-ID: the rest only.
        resumed_from = head[-1].id
        async with sse(
            live.member, "POST", STREAM, json=body, headers={"Last-Event-ID": resumed_from}
        ) as source:
            await assert_stream_headers(source.response, 200)
            rest = await source.rest()
        assert text_of(head) + text_of(rest) == "".join(tokens)
        assert rest == replay[len(head) :]
        assert completed(rest)["thread"] == thread
        # After a newer turn in the thread, the older stream still resumes (while it is kept).
        fake.configure(gap=0)
        await stream(live.member, {"input": "next", "thread_uuid": thread})
        async with sse(
            live.member, "POST", STREAM, json=body, headers={"Last-Event-ID": resumed_from}
        ) as source:
            later = await source.rest()
        # The same events; a completed event shows the thread as it is now (4 messages).
        assert [(e.id, e.event) for e in later] == [(e.id, e.event) for e in rest]
        assert completed(later) == completed(rest)
        assert later[-1].data["thread"]["message_count"] == 4
        with_thread = await live.member.post(
            STREAM,
            json={**body, "thread_uuid": str(uuid.uuid4())},
            headers={**SSE, "Last-Event-ID": resumed_from},
        )
        assert with_thread.status_code == 404
        for bad in ("garbage", f"{uuid.uuid4()}", f"{head[0].generation}:nope"):
            response = await live.member.post(
                STREAM, json=body, headers={**SSE, "Last-Event-ID": bad}
            )
            assert response.status_code == 400, (bad, response.text)
            assert response.json()["code"] == "bad_last_event_id"
        assert len(fake.requests) == 2


async def test_a_client_resuming_with_sse_rules_stops_after_the_end(live_pg_url: str) -> None:
    async with live_with_fake(live_pg_url, tokens=numbered(5)) as (live, _fake):
        await make_assistant(live.admin, generation_config="gpt", max_responses=1)
        # A fetch client that follows the SSE rules: the same request again with Last-Event-ID
        # after the server ended the response, until 204.
        found, statuses = await follow_like_eventsource(
            live.member, "POST", STREAM, json={"input": "count"}
        )
        assert statuses == [200, 204]
        assert names(found)[0] == "turn" and names(found)[-1] == "message.completed"
        thread = turn_of(found)["thread"]["uuid"]
        body = {"input": "count", "thread_uuid": thread}
        # Every id resumes, the first one (the `turn` event) too; after the last, 204.
        for index, event in enumerate(found[:-1]):
            async with sse(
                live.member, "POST", STREAM, json=body, headers={"Last-Event-ID": event.id}
            ) as source:
                await assert_stream_headers(source.response, 200)
                assert names(await source.rest()) == names(found[index + 1 :])
        ended = await live.member.post(
            STREAM, json=body, headers={**SSE, "Last-Event-ID": found[-1].id}
        )
        assert ended.status_code == 204, ended.text
        assert ended.headers["x-thread-uuid"] == thread and ended.content == b""

        # The next message gets the end message at once (max_responses): two events, and a
        # reconnect with either id ends too.
        at_once, statuses = await follow_like_eventsource(live.member, "POST", STREAM, json=body)
        assert statuses == [200, 204] and names(at_once) == ["turn", "message.completed"]
        first = await live.member.post(
            STREAM, json=body, headers={**SSE, "Last-Event-ID": at_once[0].id}
        )
        assert first.status_code == 204, first.text
        assert len(await messages(live.member, thread)) == 4


async def test_a_failed_blocking_turn_names_its_thread(live_pg_url: str) -> None:
    async with live_with_fake(live_pg_url, fail_status=503) as (live, fake):
        await make_assistant(live.admin, generation_config="gpt")
        failed = await live.member.post(STREAM, json={"input": "hello"})
        assert failed.status_code == 502, failed.text
        thread = failed.headers["x-thread-uuid"]
        assert failed.headers["x-chat-id"] == str(failed.json()["chat_id"])
        assert [m["content"] for m in await messages(live.member, thread)] == ["hello"]
        # The client reloads the named thread once the upstream works.
        fake.reset(tokens=numbered(2))
        reload = await live.member.post(
            STREAM, json={"input": "", "thread_uuid": thread, "mode": "reload"}
        )
        assert reload.status_code == 200, reload.text
        assert reload.json()["answer"]["content"] == "".join(numbered(2))


async def test_the_current_session_is_made_once_under_concurrent_first_calls(live: Live) -> None:
    responses = await asyncio.gather(
        *[live.member.get("/api/chat-sessions/current/") for _ in range(12)]
    )
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["uuid"] for r in responses}) == 1
    assert len((await live.admin.get("/api/chat-sessions/")).json()) == 1
