"""Turns of the cognitive face as a client sees them, on a real server on loopback: SSE streams and
their resumption, detached generations that survive a disconnect, one generation however many
clients ask, idempotent retries, cancel, and upstream failures (against a real OpenAI-compatible
server on loopback). Both stream brokers (Redis and in-process) are exercised."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from tests.fakes.openai_server import running_openai_server
from tests.fixtures.app import live_tenant, make_settings
from tests.fixtures.chats import (
    app_for,
    closed_port,
    live_with_fake,
    make_assistant,
    new_chat,
    numbered,
    of_role,
    processing,
    settings_with,
    settled,
    snapshot,
)
from tests.fixtures.sse import (
    SSE,
    WAIT,
    assert_stream_headers,
    completed,
    follow_like_eventsource,
    names,
    sse,
    text_of,
)

FAQ_QUESTION = "How do I reset my password?"
FAQ_ANSWER = "Use the reset link on the sign-in page, then choose a new password."


# --- 1. streaming a turn --------------------------------------------------------------------------


async def test_a_streamed_turn_sends_every_event_with_an_id_and_stores_the_same_answer(
    live_pg_url: str,
) -> None:
    async with live_tenant(make_settings(live_pg_url)) as live:
        assistant = await make_assistant(live.admin, generation_config="offline")
        response = await live.admin.post(
            f"/assistants/{assistant}/common_questions/",
            json={"name": FAQ_QUESTION, "content": FAQ_ANSWER},
        )
        assert response.status_code == 201, response.text
        chat = await new_chat(live.admin, assistant)

        async with sse(
            live.admin, "POST", f"/chats_stream/{chat}/", json={"message": FAQ_QUESTION}
        ) as source:
            await assert_stream_headers(source.response, 201)
            found = await source.rest()

        order = names(found)
        assert order[0] == "message.created"
        assert order[1] == "references"
        assert set(order[2:-1]) == {"delta"} and len(order) > 3
        assert order[-1] == "message.completed"
        assert len({e.id for e in found}) == len(found)
        assert len({e.generation for e in found}) == 1
        uuid.UUID(found[0].generation)
        assert found[0].data["chat_id"] == chat
        references = found[1].data["references"]
        assert references and FAQ_QUESTION in references[0]["source"]

        message = completed(found)
        assert text_of(found) == message["content"] == FAQ_ANSWER
        assert message["status"] == "complete"
        assert message["references"] == references
        assert found[-1].data["chat"]["execution_status"] == "AVAILABLE"

        stored = await live.admin.get(f"/chats/{chat}/")
        assert stored.status_code == 200
        body = stored.json()
        assert body["execution_status"] == "AVAILABLE"
        assert body["messages"][-1]["role"] == "assistant"
        assert body["messages"][-1]["content"] == message["content"]
        assert body["messages"][-1]["id"] == message["id"]
        assert body["messages"][-2]["content"] == FAQ_QUESTION

        # Without Accept: text/event-stream the same endpoint answers JSON with the answer.
        plain = await live.admin.post(f"/chats_stream/{chat}/", json={"message": FAQ_QUESTION})
        assert plain.status_code == 201, plain.text
        assert plain.headers["content-type"].startswith("application/json")
        answer = plain.json()["messages"][-1]
        assert answer["role"] == "assistant" and answer["content"] == FAQ_ANSWER
        assert plain.json()["messages"][-2]["content"] == FAQ_QUESTION

        # GET with SSE and nothing to generate: one `chat` event with the chat.
        async with sse(live.admin, "GET", f"/chats_stream/{chat}/") as source:
            await assert_stream_headers(source.response, 200)
            idle = await source.rest()
        assert names(idle) == ["chat"]
        assert idle[0].data["messages"][-1]["content"] == FAQ_ANSWER

        # An EventSource reconnects with that event's id: still nothing runs, so 204 ends it.
        assert idle[0].id == "0"
        seen = {**SSE, "Last-Event-ID": idle[0].id}
        again = await live.admin.get(f"/chats_stream/{chat}/", headers=seen)
        assert again.status_code == 204, again.text
        assert again.headers["x-chat-id"] == str(chat) and again.content == b""
        # A message stored since (not answered): the reconnect streams its answer.
        added = {"message": FAQ_QUESTION}
        stored_only = await live.admin.post(f"/chats/{chat}/add_user_message/", json=added)
        assert stored_only.status_code == 201, stored_only.text
        async with sse(
            live.admin, "GET", f"/chats_stream/{chat}/", headers={"Last-Event-ID": "0"}
        ) as source:
            await assert_stream_headers(source.response, 200)
            resumed = await source.rest()
        assert completed(resumed)["content"] == FAQ_ANSWER


async def test_a_new_chat_with_a_message_streams_its_answer(live_pg_url: str) -> None:
    async with live_with_fake(live_pg_url, tokens=numbered(8)) as (live, fake):
        assistant = await make_assistant(live.admin, generation_config="gpt")
        async with sse(
            live.admin, "POST", f"/assistants/{assistant}/chats_stream/", json={"message": "hi"}
        ) as source:
            await assert_stream_headers(source.response, 201)
            chat = int(source.response.headers["x-chat-id"])
            found = await source.rest()

        assert names(found)[0] == "message.created" and found[0].data["chat_id"] == chat
        assert text_of(found) == completed(found)["content"] == "".join(numbered(8))
        stored = await live.admin.get(f"/chats/{chat}/")
        assert [m["role"] for m in stored.json()["messages"]] == ["user", "assistant"]
        assert stored.json()["messages"][-1]["content"] == "".join(numbered(8))
        assert len(fake.requests) == 1

        # The same endpoint without SSE answers JSON once the answer is there.
        plain = await live.admin.post(
            f"/assistants/{assistant}/chats_stream/", json={"message": "hello"}
        )
        assert plain.status_code == 201, plain.text
        assert plain.json()["messages"][-1]["content"] == "".join(numbered(8))


# --- 2. disconnect, then resume (7. on both brokers) ----------------------------------------------


@pytest.mark.parametrize("broker", ["redis", "memory"])
async def test_a_client_that_leaves_loses_nothing_and_resumes_where_it_left(
    live_pg_url: str, broker: str
) -> None:
    tokens = numbered(30)
    full = "".join(tokens)
    async with live_with_fake(live_pg_url, redis=broker == "redis", tokens=tokens, gap=0.03) as (
        live,
        fake,
    ):
        assistant = await make_assistant(live.admin, generation_config="gpt")
        chat = await new_chat(live.admin, assistant)

        async with sse(
            live.admin, "POST", f"/chats_stream/{chat}/", json={"message": "count"}
        ) as source:
            await assert_stream_headers(source.response, 201)
            first = await source.until_text("".join(tokens[:4]))
        # The connection is closed: the generation goes on and stores the whole answer.
        body = await settled(live.admin, chat)
        assert body["execution_status"] == "AVAILABLE"
        answer = body["messages"][-1]
        assert answer["role"] == "assistant" and answer["status"] == "complete"
        assert answer["content"] == full
        assert fake.streams_completed == 1 and fake.disconnects == 0

        last = first[-1].id
        async with sse(
            live.admin, "GET", f"/chats_stream/{chat}/", headers={"Last-Event-ID": last}
        ) as source:
            await assert_stream_headers(source.response, 200)
            rest = await source.rest()
        assert rest[-1].event == "message.completed"
        assert not {e.id for e in first} & {e.id for e in rest}
        assert {e.generation for e in first + rest} == {first[0].generation}
        assert text_of(first) + text_of(rest) == full == completed(rest)["content"]
        assert names(rest)[:-1] == ["delta"] * (len(rest) - 1)

        # The query parameter resumes too (for clients that cannot set headers).
        middle = (len(rest) - 1) // 2  # a delta: rest ends with at least one delta and the end
        async with sse(
            live.admin, "GET", f"/chats_stream/{chat}/", params={"last_event_id": rest[middle].id}
        ) as source:
            await assert_stream_headers(source.response, 200)
            tail = await source.rest()
        assert tail == rest[middle + 1 :]

        # Resuming while the generation still runs continues live. The upstream hangs after 10
        # tokens, so the generation certainly runs when the client comes back, and its end (a
        # cancel, here) can only reach the client through the resumed stream.
        again = numbered(20)
        fake.configure(tokens=again, gap=0.02, hang_after=10)
        async with sse(
            live.admin, "POST", f"/chats_stream/{chat}/", json={"message": "again"}
        ) as source:
            head = await source.until_text("".join(again[:3]))
        sent = "".join(again[:10])
        async with sse(
            live.admin, "GET", f"/chats_stream/{chat}/", headers={"Last-Event-ID": head[-1].id}
        ) as source:
            await assert_stream_headers(source.response, 200)
            resumed = await source.until_text(sent[len(text_of(head)) :])
            assert (await snapshot(live.admin, chat))["execution_status"] == "PROCESSING"
            cancel = await live.admin.post(f"/chats/{chat}/cancel/")
            assert cancel.json()["cancelled"] is True
            end = await source.rest()
        assert {e.generation for e in head + resumed + end} == {head[0].generation}
        assert text_of(head) + text_of(resumed + end) == sent
        assert completed(end)["content"] == sent and completed(end)["status"] == "cancelled"
        assert (await settled(live.admin, chat))["messages"][-1]["content"] == sent


@pytest.mark.parametrize("broker", ["redis", "memory"])
async def test_an_eventsource_stops_after_the_end_and_every_event_id_resumes(
    live_pg_url: str, broker: str
) -> None:
    async with live_with_fake(live_pg_url, redis=broker == "redis", tokens=numbered(6)) as (
        live,
        fake,
    ):
        assistant = await make_assistant(live.admin, generation_config="gpt")
        chat = await new_chat(live.admin, assistant)
        stored = await live.admin.post(f"/chats/{chat}/add_user_message/", json={"message": "go"})
        assert stored.status_code == 201, stored.text

        # A browser EventSource on the chat: the answer streams, the server ends the response,
        # the EventSource reconnects with the last id it saw and gets 204, which ends it.
        found, statuses = await follow_like_eventsource(live.admin, "GET", f"/chats_stream/{chat}/")
        assert statuses == [200, 204]
        assert names(found)[0] == "message.created" and names(found)[-1] == "message.completed"
        assert text_of(found) == "".join(numbered(6))

        # Every id resumes, the first one too: exactly the events after it; after the last, 204.
        for index, event in enumerate(found):
            again = await live.admin.get(
                f"/chats_stream/{chat}/", headers={**SSE, "Last-Event-ID": event.id}
            )
            if index == len(found) - 1:
                assert again.status_code == 204, again.text
                assert again.headers["x-chat-id"] == str(chat) and again.content == b""
                continue
            async with sse(
                live.admin, "GET", f"/chats_stream/{chat}/", headers={"Last-Event-ID": event.id}
            ) as source:
                await assert_stream_headers(source.response, 200)
                assert await source.rest() == found[index + 1 :]

        # A new chat's stream, followed by the same rules: its request sent again with the last
        # id resumes that stream (no second chat), and 204 after its end.
        url = f"/assistants/{assistant}/chats_stream/"
        created, statuses = await follow_like_eventsource(live.admin, "POST", url, json={})
        assert statuses == [201, 204] and names(created) == ["chat"]
        fake.configure(tokens=numbered(4))
        before = len((await live.admin.get(f"/assistants/{assistant}/chats/")).json())
        opened, statuses = await follow_like_eventsource(
            live.admin, "POST", url, json={"message": "go"}
        )
        assert statuses == [201, 204], statuses
        assert names(opened)[-1] == "message.completed"
        async with sse(
            live.admin, "POST", url, json={"message": "go"}, headers={"Last-Event-ID": opened[1].id}
        ) as source:
            await assert_stream_headers(source.response, 200)
            assert await source.rest() == opened[2:]
        assert len((await live.admin.get(f"/assistants/{assistant}/chats/")).json()) == before + 1

        # A stream that ended in an error ends an EventSource the same way.
        fake.configure(fail_status=500)
        failed, statuses = await follow_like_eventsource(
            live.admin, "POST", f"/chats_stream/{chat}/", json={"message": "fail"}
        )
        assert statuses == [201, 204]
        assert names(failed)[-1] == "error" and failed[-1].data["chat_id"] == chat
        # Polling the FAILED chat with an EventSource: one `chat` event, then 204.
        idle, statuses = await follow_like_eventsource(live.admin, "GET", f"/chats_stream/{chat}/")
        assert statuses == [200, 204] and names(idle) == ["chat"]
        assert idle[0].data["execution_status"] == "FAILED"


async def test_a_malformed_last_event_id_is_400(live_pg_url: str) -> None:
    async with live_tenant(make_settings(live_pg_url)) as live:
        assistant = await make_assistant(live.admin)
        chat = await new_chat(live.admin, assistant)
        for bad in ("garbage", "123", f"{uuid.uuid4()}", ":1-0"):
            response = await live.admin.get(
                f"/chats_stream/{chat}/", headers={**SSE, "Last-Event-ID": bad}
            )
            assert response.status_code == 400, (bad, response.text)
            assert response.json()["code"] == "bad_last_event_id"
        response = await live.admin.get(
            f"/chats_stream/{chat}/", params={"last_event_id": "nope"}, headers=SSE
        )
        assert response.status_code == 400


async def test_a_last_event_id_with_a_malformed_entry_id_is_400(live_pg_url: str) -> None:
    """The generation part is well formed but the broker's part is not: refused before streaming
    (otherwise the broker's read raises once the 200 is sent, and the client sees a cut stream)."""
    async with live_tenant(make_settings(live_pg_url)) as live:
        assistant = await make_assistant(live.admin)
        chat = await new_chat(live.admin, assistant)
        bad = f"{uuid.uuid4()}:not-an-entry-id"
        response = await live.admin.get(
            f"/chats_stream/{chat}/", headers={**SSE, "Last-Event-ID": bad}
        )
        assert response.status_code == 400, response.text


async def test_resuming_reads_only_generations_of_the_chat_named_in_the_path(
    live_pg_url: str,
) -> None:
    """Last-Event-ID names a generation; it must be one of the chat in the path, or a caller who
    learns a generation id (it is in every event id) replays a chat it may not read: here a member
    reads an admin's chat through a chat of its own. (The resume branch of `_get_and_generate` in
    api/cognitive/chats.py checks only that the caller sees the chat in the path.)"""
    async with live_tenant(make_settings(live_pg_url)) as live:
        assistant = await make_assistant(live.admin)
        secret = await new_chat(live.admin, assistant)
        async with sse(
            live.admin, "POST", f"/chats_stream/{secret}/", json={"message": "private"}
        ) as source:
            found = await source.rest()
        assert completed(found)["content"]
        assert (await live.member.get(f"/chats/{secret}/")).status_code == 404

        own = await new_chat(live.member, assistant)
        async with sse(
            live.member, "GET", f"/chats_stream/{own}/", headers={"Last-Event-ID": found[0].id}
        ) as source:
            status = source.response.status_code
            leaked = await source.drain() if status == 200 else []
        assert status in (400, 404) or not leaked, leaked


# --- 3. concurrent GETs generate once -------------------------------------------------------------


async def test_concurrent_gets_start_exactly_one_generation(live_pg_url: str) -> None:
    tokens = numbered(10)
    async with live_with_fake(live_pg_url, tokens=tokens, gap=0.02) as (live, fake):
        assistant = await make_assistant(live.admin, generation_config="gpt")
        chat = await new_chat(live.admin, assistant)
        added = await live.admin.post(
            f"/chats/{chat}/add_user_message/", json={"message": "answer me once"}
        )
        assert added.status_code == 201, added.text
        assert (await snapshot(live.admin, chat))["execution_status"] == "AVAILABLE"

        async def plain() -> str:
            response = await live.admin.get(f"/chats/{chat}/")
            assert response.status_code == 200, response.text
            last = response.json()["messages"][-1]
            assert last["role"] == "assistant", response.json()
            content: str = last["content"]
            return content

        async def streamed() -> str:
            async with sse(live.admin, "GET", f"/chats_stream/{chat}/") as source:
                assert source.response.status_code == 200
                found = await source.rest()
            if found[-1].event == "chat":  # arrived after the end: the stored chat
                content: str = found[-1].data["messages"][-1]["content"]
                return content
            assert text_of(found) == completed(found)["content"]
            return text_of(found)

        answers = await asyncio.gather(
            *[plain() for _ in range(10)], *[streamed() for _ in range(3)]
        )
        assert set(answers) == {"".join(tokens)}
        body = await settled(live.admin, chat)
        assistant_messages = of_role(body, "assistant")
        assert len(assistant_messages) == 1
        assert assistant_messages[0]["usr_msg_num"] == of_role(body, "user")[0]["msg_num"]
        assert len(fake.requests) == 1


# --- 4. idempotent retries ------------------------------------------------------------------------


async def test_a_retried_post_with_the_same_key_returns_the_first_turn(live_pg_url: str) -> None:
    tokens = numbered(15)
    async with live_with_fake(live_pg_url, tokens=tokens, gap=0.04) as (live, fake):
        assistant = await make_assistant(live.admin, generation_config="gpt")
        chat = await new_chat(live.admin, assistant)
        key = {"Idempotency-Key": f"turn-{uuid.uuid4()}"}

        first = asyncio.create_task(
            live.admin.post(f"/chats/{chat}/", json={"message": "once"}, headers=key)
        )
        await processing(live.admin, chat)
        retry = await live.admin.post(f"/chats/{chat}/", json={"message": "once"}, headers=key)
        original = await first
        late = await live.admin.post(f"/chats/{chat}/", json={"message": "once"}, headers=key)

        for response in (original, retry, late):
            assert response.status_code == 200, response.text
            assert response.json()["messages"][-1]["content"] == "".join(tokens)
        assert original.json()["messages"] == retry.json()["messages"] == late.json()["messages"]
        body = await snapshot(live.admin, chat)
        assert [m["content"] for m in of_role(body, "user")] == ["once"]
        assert len(of_role(body, "assistant")) == 1
        assert len(fake.requests) == 1

        # With SSE the retry re-attaches to the same generation's stream.
        key = {"Idempotency-Key": f"turn-{uuid.uuid4()}"}
        async with sse(
            live.admin, "POST", f"/chats_stream/{chat}/", json={"message": "twice?"}, headers=key
        ) as source:
            await assert_stream_headers(source.response, 201)
            head = await source.until_text("".join(tokens[:2]))
            async with sse(
                live.admin,
                "POST",
                f"/chats_stream/{chat}/",
                json={"message": "twice?"},
                headers=key,
            ) as again:
                await assert_stream_headers(again.response, 201)
                replay = await again.rest()
            rest = await source.rest()
        assert {e.generation for e in head + rest + replay} == {head[0].generation}
        assert replay == head + rest
        assert text_of(replay) == "".join(tokens)
        async with sse(
            live.admin, "POST", f"/chats_stream/{chat}/", json={"message": "twice?"}, headers=key
        ) as source:
            after = await source.rest()
        assert after == replay
        body = await snapshot(live.admin, chat)
        assert [m["content"] for m in of_role(body, "user")] == ["once", "twice?"]
        assert len(of_role(body, "assistant")) == 2
        assert len(fake.requests) == 2


async def test_a_retried_new_chat_with_the_same_key_is_the_same_chat(live_pg_url: str) -> None:
    async with live_tenant(make_settings(live_pg_url)) as live:
        assistant = await make_assistant(live.admin)
        key = {"Idempotency-Key": f"chat-{uuid.uuid4()}"}
        one = await live.admin.post(
            f"/assistants/{assistant}/", json={"message": "hi"}, headers=key
        )
        two = await live.admin.post(
            f"/assistants/{assistant}/", json={"message": "hi"}, headers=key
        )
        assert one.status_code == two.status_code == 201, (one.text, two.text)
        assert one.json()["id"] == two.json()["id"]
        assert one.json()["messages"] == two.json()["messages"]
        assert [m["role"] for m in two.json()["messages"]] == ["user", "assistant"]
        listed = await live.admin.get(f"/assistants/{assistant}/chats/")
        assert listed.status_code == 200
        assert [c["id"] for c in listed.json()] == [one.json()["id"]]


# --- 5. cancel ------------------------------------------------------------------------------------


async def test_cancel_stops_the_generation_keeps_the_partial_answer_and_frees_the_chat(
    live_pg_url: str,
) -> None:
    tokens = numbered(10)
    async with live_with_fake(live_pg_url, tokens=tokens, hang_after=3) as (live, fake):
        assistant = await make_assistant(live.admin, generation_config="gpt")
        chat = await new_chat(live.admin, assistant)
        async with sse(
            live.admin, "POST", f"/chats_stream/{chat}/", json={"message": "stop me"}
        ) as source:
            head = await source.until_text("".join(tokens[:3]))
            cancel = await live.admin.post(f"/chats/{chat}/cancel/")
            assert cancel.status_code == 200, cancel.text
            assert cancel.json() == {
                "chat": chat,
                "generation_id": head[0].generation,
                "cancelled": True,
            }
            rest = await source.rest()

        message = completed(rest)
        assert message["status"] == "cancelled"
        assert message["content"] == text_of(head) == "".join(tokens[:3])
        assert text_of(rest) == ""
        assert await fake.wait_for_disconnects(1, within=WAIT)

        body = await settled(live.admin, chat)
        assert body["execution_status"] == "AVAILABLE"
        assert body["messages"][-1]["status"] == "cancelled"
        again = await live.admin.post(f"/chats/{chat}/cancel/")
        assert again.status_code == 200
        assert again.json() == {"chat": chat, "generation_id": None, "cancelled": False}

        fake.configure(hang_after=None)
        response = await live.admin.post(f"/chats/{chat}/", json={"message": "go on"})
        assert response.status_code == 200, response.text
        assert response.json()["messages"][-1]["content"] == "".join(tokens)
        assert response.json()["messages"][-1]["status"] == "complete"


# --- 6. upstream errors ---------------------------------------------------------------------------


async def test_an_unreachable_generator_is_502_and_leaves_the_chat_usable(live_pg_url: str) -> None:
    down = app_for(f"http://127.0.0.1:{closed_port()}/v1")
    async with running_openai_server(tokens=numbered(3)) as fake:
        settings = settings_with(live_pg_url, {"down": down, "gpt": app_for(fake)})
        async with live_tenant(settings) as live:
            assistant = await make_assistant(live.admin, generation_config="down")
            chat = await new_chat(live.admin, assistant)
            response = await live.admin.post(f"/chats/{chat}/", json={"message": "anyone?"})
            assert response.status_code == 502, response.text
            assert response.json()["detail"] and response.json()["code"]

            body = await snapshot(live.admin, chat)
            assert body["execution_status"] == "FAILED"
            assert body["error"]
            assert [m["content"] for m in of_role(body, "user")] == ["anyone?"]
            assert of_role(body, "assistant") == []

            patched = await live.admin.patch(
                f"/assistants/{assistant}/", json={"generation_config": "gpt"}
            )
            assert patched.status_code == 200, patched.text
            response = await live.admin.post(f"/chats/{chat}/", json={"message": "now?"})
            assert response.status_code == 200, response.text
            assert response.json()["messages"][-1]["content"] == "".join(numbered(3))
            assert response.json()["execution_status"] == "AVAILABLE"
            assert response.json()["error"] is None


async def test_a_failed_blocking_turn_names_its_chat_so_the_client_can_retry(
    live_pg_url: str,
) -> None:
    async with live_with_fake(live_pg_url, fail_status=500) as (live, fake):
        assistant = await make_assistant(live.admin, generation_config="gpt")
        # A new chat with its first message, blocking: the chat was made, so the 502 names it.
        created = await live.admin.post(f"/assistants/{assistant}/", json={"message": "hello"})
        assert created.status_code == 502, created.text
        chat = created.json()["chat_id"]
        assert created.headers["x-chat-id"] == str(chat)
        assert created.json()["code"] and created.json()["detail"]
        # Every blocking turn route names it the same way (JSON from the streaming routes too).
        for response in (
            await live.admin.get(f"/chats/{chat}/", params={"retry": "true"}),
            await live.admin.post(f"/chats/{chat}/", json={"message": "again"}),
            await live.admin.post(f"/chats_stream/{chat}/", json={"message": "and again"}),
            await live.admin.post(f"/assistants/{assistant}/chats_stream/", json={"message": "x"}),
        ):
            assert response.status_code == 502, response.text
            named = response.json()["chat_id"]
            assert response.headers["x-chat-id"] == str(named)
        assert named != chat  # the last one made a chat of its own
        # Errors that name no chat carry no chat_id.
        missing = await live.admin.get("/chats/999999/")
        assert missing.status_code == 404 and "chat_id" not in missing.json()
        assert "x-chat-id" not in missing.headers

        # What the client does with it: once the upstream works, retry the named chat.
        fake.reset(tokens=numbered(3))
        retried = await live.admin.get(f"/chats/{chat}/", params={"retry": "true"})
        assert retried.status_code == 200, retried.text
        assert retried.json()["messages"][-1]["content"] == "".join(numbered(3))
        assert [m["content"] for m in of_role(retried.json(), "user")] == [
            "hello",
            "again",
            "and again",
        ]


@pytest.mark.parametrize(
    ("knobs", "status"),
    [({"ttft": 2.0}, 504), ({"fail_status": 500}, 502), ({"error_after": 2}, 502)],
    ids=["slow-first-token", "http-500", "error-mid-stream"],
)
async def test_upstream_failures_answer_502_or_504_and_mark_the_chat_failed(
    live_pg_url: str, knobs: dict[str, Any], status: int
) -> None:
    async with running_openai_server(tokens=numbered(5), **knobs) as fake:
        apps = {"gpt": app_for(fake, timeout_seconds=0.3)}
        async with live_tenant(settings_with(live_pg_url, apps)) as live:
            assistant = await make_assistant(live.admin, generation_config="gpt")
            chat = await new_chat(live.admin, assistant)
            response = await live.admin.post(f"/chats/{chat}/", json={"message": "blocking"})
            assert response.status_code == status, response.text
            assert response.json()["detail"]
            body = await snapshot(live.admin, chat)
            assert body["execution_status"] == "FAILED" and body["error"]
            assert [m["content"] for m in of_role(body, "user")] == ["blocking"]

            async with sse(
                live.admin, "POST", f"/chats_stream/{chat}/", json={"message": "streamed"}
            ) as source:
                await assert_stream_headers(source.response, 201)
                found = await source.rest()
            assert found[0].event == "message.created"
            assert found[-1].event == "error"
            assert set(found[-1].data) >= {"code", "detail", "status"}
            assert found[-1].data["status"] == status
            body = await snapshot(live.admin, chat)
            assert body["execution_status"] == "FAILED" and body["error"]

            fake.reset(tokens=numbered(5))  # the generator works again
            response = await live.admin.post(f"/chats/{chat}/", json={"message": "better?"})
            assert response.status_code == 200, response.text
            assert response.json()["messages"][-1]["content"] == "".join(numbered(5))
            assert response.json()["execution_status"] == "AVAILABLE"
