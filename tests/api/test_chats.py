"""Chats on the cognitive face: limits, titles, knowledge-driven answers, gap-free numbering
under concurrency, one generation per chat, idempotent turns, feedback and visibility."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from chatsvc.auth import service as auth_service
from chatsvc.auth.models import Role
from chatsvc.kit.db import unit_of_work
from chatsvc.migrate import upgrade
from tests.fixtures.app import Live, live_tenant, make_settings

FAQ = {"name": "What is chatsvc?", "content": "chatsvc is a backend for chat assistants."}


async def make_assistant(live: Live, **fields: Any) -> int:
    body = {"description": "Help desk", **fields}
    response = await live.admin.post("/assistants/", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def make_chat(live: Live, assistant_id: int, client: httpx.AsyncClient | None = None) -> int:
    response = await (client or live.admin).post(f"/assistants/{assistant_id}/", json={})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def numbers(chat: dict[str, Any]) -> list[int]:
    return [m["msg_num"] for m in chat["messages"]]


async def test_new_chat_copies_limits_greets_and_answers(live: Live) -> None:
    assistant = await make_assistant(
        live, initial_message="Hi! Ask me anything.", max_responses=7, max_msg_length=300
    )
    await live.admin.post(f"/assistants/{assistant}/common_questions/", json=FAQ)
    response = await live.admin.post(
        f"/assistants/{assistant}/",
        json={"message": "what is chatsvc exactly?", "metadata": {"channel": "web"}},
    )
    assert response.status_code == 201, response.text
    chat = response.json()
    assert response.headers["Location"] == f"/chats/{chat['id']}/"
    assert (chat["max_responses"], chat["max_msg_length"]) == (7, 300)
    assert chat["assistant"] == assistant
    assert chat["title"] == "what is chatsvc exactly?"
    assert chat["execution_status"] == "AVAILABLE"
    assert chat["metadata"] == {"channel": "web"}
    greeting, question, answer = chat["messages"]
    assert (greeting["role"], greeting["content"]) == ("assistant", "Hi! Ask me anything.")
    assert (question["role"], question["content"]) == ("user", "what is chatsvc exactly?")
    assert answer["role"] == "assistant"
    assert answer["content"] == FAQ["content"]
    assert answer["usr_msg_num"] == question["msg_num"]
    (reference,) = answer["references"]
    assert (reference["reference_num"], reference["showed_num"]) == (1, 1)
    assert reference["source"].startswith("faq:")
    assert reference["source"].endswith("What is chatsvc?")
    assert numbers(chat) == [1, 2, 3]


async def test_chat_without_message_only_greets(live: Live) -> None:
    assistant = await make_assistant(live)
    chat = (await live.admin.post(f"/assistants/{assistant}/", json={})).json()
    assert chat["messages"] == []
    assert chat["title"] == ""
    again = await live.admin.get(f"/chats/{chat['id']}/")
    assert again.json()["messages"] == []  # nothing to answer: no generation


async def test_explicit_title_is_kept(live: Live) -> None:
    assistant = await make_assistant(live)
    response = await live.admin.post(
        f"/assistants/{assistant}/", json={"title": "Billing", "message": "hello there"}
    )
    assert response.json()["title"] == "Billing"


async def test_too_long_message_is_400_and_stores_nothing(live: Live) -> None:
    assistant = await make_assistant(live, max_msg_length=10)
    chat = await make_chat(live, assistant)
    response = await live.admin.post(f"/chats/{chat}/", json={"message": "x" * 11})
    assert response.status_code == 400
    assert "10" in response.json()["detail"]
    assert response.json()["errors"][0]["field"] == "body.message"
    assert (await live.admin.get(f"/chats/{chat}/")).json()["messages"] == []
    first = await live.admin.post(f"/assistants/{assistant}/", json={"message": "y" * 11})
    assert first.status_code == 400
    listing = await live.admin.get(f"/assistants/{assistant}/chats/")
    assert [c["id"] for c in listing.json()] == [chat]


async def test_max_responses_then_end_message_once_then_400(live: Live) -> None:
    assistant = await make_assistant(live, max_responses=1, end_message="That is all for today.")
    chat = await make_chat(live, assistant)
    first = await live.admin.post(f"/chats/{chat}/", json={"message": "one"})
    assert first.status_code == 200
    ended = await live.admin.post(f"/chats/{chat}/", json={"message": "two"})
    assert ended.status_code == 200
    assert ended.json()["messages"][-1]["content"] == "That is all for today."
    refused = await live.admin.post(f"/chats/{chat}/", json={"message": "three"})
    assert refused.status_code == 400
    assert refused.json()["code"] == "chat_ended"
    final = (await live.admin.get(f"/chats/{chat}/")).json()
    assert [m["content"] for m in final["messages"] if m["role"] == "user"] == ["one", "two"]
    assert numbers(final) == [1, 2, 3, 4]


async def test_fixed_response_answers_verbatim(live: Live) -> None:
    assistant = await make_assistant(live)
    await live.admin.post(
        f"/assistants/{assistant}/fixed_questions/",
        json={
            "topic": "opening hours",
            "name": "When are you open?",
            "content": "9 to 5, Mon-Fri.",
        },
    )
    chat = await make_chat(live, assistant)
    response = await live.admin.post(f"/chats/{chat}/", json={"message": "when are you OPEN"})
    answer = response.json()["messages"][-1]
    assert answer["content"] == "9 to 5, Mon-Fri."
    assert answer["fixed"] == "When are you open?"
    full = (await live.admin.get(f"/chats/{chat}/full/")).json()
    assert full["messages"][-1]["prompt"] is None  # no generator call


async def test_not_info_message_when_no_knowledge_matches(live: Live) -> None:
    assistant = await make_assistant(live, not_info_message="Sorry, I only know about chatsvc.")
    await live.admin.post(f"/assistants/{assistant}/common_questions/", json=FAQ)
    chat = await make_chat(live, assistant)
    response = await live.admin.post(f"/chats/{chat}/", json={"message": "weather in Paris?"})
    assert response.json()["messages"][-1]["content"] == "Sorry, I only know about chatsvc."


async def test_prompt_sent_is_kept_with_add_to_user_message(live: Live) -> None:
    assistant = await make_assistant(
        live,
        system_prompt="Be brief.",
        add_to_user_message="Answer in English.",
        strategy_to_optimize_tokens="last_n:2",
    )
    await live.admin.post(
        f"/assistants/{assistant}/lessons/",
        json={"name": "tone", "content": "Stay friendly.", "context_of_application": ""},
    )
    chat = await make_chat(live, assistant)
    for text in ("first question", "second question", "third question"):
        await live.admin.post(f"/chats/{chat}/", json={"message": text})
    full = (await live.admin.get(f"/chats/{chat}/full/")).json()
    user_messages = [m["content"] for m in full["messages"] if m["role"] == "user"]
    assert user_messages == ["first question", "second question", "third question"]
    prompt = full["messages"][-1]["prompt"]
    assert prompt["generator"] == "offline"
    sent = prompt["messages"]
    assert sent[0]["role"] == "system"
    assert "Be brief." in sent[0]["content"] and "Stay friendly." in sent[0]["content"]
    assert sent[-1] == {"role": "user", "content": "third question\n\nAnswer in English."}
    assert len(sent) == 1 + 2 + 1  # system, the last 2 history messages, the question


async def test_fifty_concurrent_add_user_message_number_gap_free(live: Live) -> None:
    assistant = await make_assistant(live, initial_message="hi")
    chat = await make_chat(live, assistant)
    responses = await asyncio.gather(
        *(
            live.admin.post(f"/chats/{chat}/add_user_message/", json={"message": f"m{i}"})
            for i in range(50)
        )
    )
    assert all(r.status_code == 201 for r in responses), [r.text for r in responses]
    assert sorted(r.json()["msg_num"] for r in responses) == list(range(2, 52))
    stored = (await live.admin.get(f"/chats/{chat}/full/")).json()
    assert numbers(stored) == list(range(1, 52))  # full/ reads, never answers


async def test_fifty_concurrent_turns_one_generation_at_a_time(live: Live) -> None:
    assistant = await make_assistant(live)
    chat = await make_chat(live, assistant)
    responses = await asyncio.gather(
        *(live.admin.post(f"/chats/{chat}/", json={"message": f"q{i}"}) for i in range(50))
    )
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 409}, [r.text for r in responses if r.status_code >= 500]
    accepted = statuses.count(200)
    assert accepted >= 1
    for refused in (r for r in responses if r.status_code == 409):
        assert refused.json()["code"] == "generation_running"
    final = (await live.admin.get(f"/chats/{chat}/")).json()
    assert numbers(final) == list(range(1, 2 * accepted + 1))
    users = [m for m in final["messages"] if m["role"] == "user"]
    answers = [m for m in final["messages"] if m["role"] == "assistant"]
    assert len(users) == len(answers) == accepted
    assert sorted(a["usr_msg_num"] for a in answers) == sorted(u["msg_num"] for u in users)
    assert final["execution_status"] == "AVAILABLE"


async def test_get_answers_a_stored_user_message_once_for_many_clients(live: Live) -> None:
    assistant = await make_assistant(live)
    await live.admin.post(f"/assistants/{assistant}/common_questions/", json=FAQ)
    chat = await make_chat(live, assistant)
    stored = await live.admin.post(
        f"/chats/{chat}/add_user_message/", json={"message": "what is chatsvc"}
    )
    assert stored.status_code == 201
    results = await asyncio.gather(*(live.admin.get(f"/chats/{chat}/") for _ in range(10)))
    assert all(r.status_code == 200 for r in results)
    for result in results:
        messages = result.json()["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant"]
        assert messages[-1]["content"] == FAQ["content"]


async def test_idempotent_turn_and_chat_creation(live: Live) -> None:
    assistant = await make_assistant(live)
    headers = {"Idempotency-Key": "turn-1"}
    chat = await make_chat(live, assistant)
    first = await live.admin.post(f"/chats/{chat}/", json={"message": "hi"}, headers=headers)
    retry = await live.admin.post(f"/chats/{chat}/", json={"message": "hi"}, headers=headers)
    assert first.status_code == retry.status_code == 200
    assert first.json()["messages"] == retry.json()["messages"]
    assert [m["role"] for m in retry.json()["messages"]] == ["user", "assistant"]

    created = [
        await live.admin.post(
            f"/assistants/{assistant}/", json={"message": "x"}, headers={"Idempotency-Key": "c1"}
        )
        for _ in range(2)
    ]
    assert created[0].json()["id"] == created[1].json()["id"]
    listing = (await live.admin.get(f"/assistants/{assistant}/chats/")).json()
    assert len(listing) == 2


async def member_client(live: Live, username: str) -> httpx.AsyncClient:
    """A client of another member key of the live workspace (its own principal)."""
    async with unit_of_work(live.services.sessionmaker) as db:
        _m, key = await auth_service.create_api_key(
            db, live.workspace_id, Role.MEMBER, username=username, full_name=username.title()
        )
    return live.client(key, timeout=httpx.Timeout(30.0))


async def create_keyed(
    client: httpx.AsyncClient, assistant: int, key: str, path: str = ""
) -> httpx.Response:
    return await client.post(
        f"/assistants/{assistant}/{path}", json={"message": "x"}, headers={"Idempotency-Key": key}
    )


async def concurrent_creates_make_one_chat(live: Live) -> None:
    """16 concurrent creates with one key by one caller, on each create route: one chat, and
    every request answers with it (the losers of the race on the key replay the winner's)."""
    for path in ("", "chats_stream/", "chats/async/"):
        assistant = await make_assistant(live)
        responses = await asyncio.gather(
            *(create_keyed(live.member, assistant, f"race-{path}", path) for _ in range(16))
        )
        assert all(r.status_code == 201 for r in responses), [r.text for r in responses]
        assert len({r.json()["id"] for r in responses}) == 1
        listing = (await live.member.get(f"/assistants/{assistant}/chats/")).json()
        assert [chat["id"] for chat in listing] == [responses[0].json()["id"]]
        users = [m for m in listing[0]["messages"] if m["role"] == "user"]
        assert len(users) == 1


async def test_concurrent_creates_with_one_key_make_one_chat(live: Live) -> None:
    await concurrent_creates_make_one_chat(live)


async def test_concurrent_creates_with_one_key_make_one_chat_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'chatsvc.db'}"
    await asyncio.to_thread(upgrade, url)
    async with live_tenant(make_settings(url, redis_url=None)) as live:
        await concurrent_creates_make_one_chat(live)


async def test_an_idempotency_key_belongs_to_the_caller_who_used_it(live: Live) -> None:
    assistant = await make_assistant(live)
    other = await member_client(live, "mia")
    async with other:
        first = await create_keyed(live.member, assistant, "shared-1")
        assert first.status_code == 201, first.text
        mine = first.json()["id"]
        # Another member, and an admin, get a 409 naming no chat, never the member's chat.
        for client in (other, live.admin):
            for path in ("", "chats_stream/", "chats/async/"):
                refused = await create_keyed(client, assistant, "shared-1", path)
                assert refused.status_code == 409, refused.text
                assert refused.json()["code"] == "idempotency_key_in_use"
                assert set(refused.json()) == {"detail", "code", "errors", "request_id"}
                assert str(mine) not in refused.json()["detail"]
        # The owner's retry still gets its chat; only its chat exists.
        again = await create_keyed(live.member, assistant, "shared-1")
        assert (again.status_code, again.json()["id"]) == (201, mine)
        listing = (await live.admin.get(f"/assistants/{assistant}/chats/")).json()
        assert [chat["id"] for chat in listing] == [mine]
        # The admin's own key is its own too.
        own = await create_keyed(live.admin, assistant, "admin-1")
        assert own.status_code == 201 and own.json()["id"] != mine
        racing = await asyncio.gather(
            create_keyed(other, assistant, "both-1"), create_keyed(live.member, assistant, "both-1")
        )
        assert sorted(r.status_code for r in racing) == [201, 409], [r.text for r in racing]


async def test_an_idempotency_key_replayed_with_another_assistant_is_refused(live: Live) -> None:
    first_assistant, second_assistant = await make_assistant(live), await make_assistant(live)
    first = await create_keyed(live.member, first_assistant, "moved-1")
    assert first.status_code == 201, first.text
    for path in ("", "chats_stream/", "chats/async/"):
        moved = await create_keyed(live.member, second_assistant, "moved-1", path)
        assert moved.status_code == 409, moved.text
        assert moved.json()["code"] == "idempotency_key_mismatch"
    listing = (await live.member.get(f"/assistants/{second_assistant}/chats/")).json()
    assert listing == []


async def test_feedback_and_message_likes(live: Live) -> None:
    assistant = await make_assistant(live, matrix_mode_available=False)
    chat = await make_chat(live, assistant)
    await live.admin.post(f"/chats/{chat}/", json={"message": "hello"})
    updated = await live.admin.put(f"/chats/{chat}/", json={"like": True, "comment": "great"})
    assert updated.status_code == 200
    assert (updated.json()["like"], updated.json()["comment"]) == (True, "great")
    partial = await live.admin.put(f"/chats_stream/{chat}/", json={"like": False})
    assert (partial.json()["like"], partial.json()["comment"]) == (False, "great")
    matrix = await live.admin.put(f"/chats/{chat}/", json={"matrix_mode": True})
    assert matrix.status_code == 400
    bad = await live.admin.put(f"/chats/{chat}/", json={"like": "very"})
    assert bad.status_code == 400
    for path in (f"/chats/{chat}/", f"/chats_stream/{chat}/", f"/chats/{chat}/async/"):
        refused = await live.admin.put(path, json={"matrix_mode": None})
        assert refused.status_code == 400, path
        assert "matrix_mode may not be null" in refused.text
    cleared = await live.admin.put(f"/chats/{chat}/", json={"like": None, "comment": None})
    assert (cleared.json()["like"], cleared.json()["comment"]) == (None, None)
    assert cleared.json()["matrix_mode"] is False

    answer = (await live.admin.get(f"/chats/{chat}/")).json()["messages"][-1]
    liked = await live.admin.put(f"/messages/{answer['id']}/", json={"like": True})
    assert liked.status_code == 200 and liked.json()["like"] is True
    fetched = await live.admin.get(f"/messages/{answer['id']}/")
    assert fetched.json()["like"] is True
    assert (await live.admin.get("/messages/999999999/")).status_code == 404


async def test_add_messages_store_without_answering(live: Live) -> None:
    assistant = await make_assistant(live)
    chat = await make_chat(live, assistant)
    said = await live.admin.post(f"/chats/{chat}/add_assistant_message/", json={"message": "Hi"})
    assert said.status_code == 201 and said.json()["role"] == "assistant"
    call = await live.admin.post(
        f"/chats/{chat}/add_tool_call_message/",
        json={"function_name": "lookup", "parameters": {"q": "x"}, "tool_call_id": "call_1"},
    )
    assert call.status_code == 201
    assert (call.json()["function_name"], call.json()["tool_call_id"]) == ("lookup", "call_1")
    assert call.json()["parameters"] == {"q": "x"}
    full = (await live.admin.get(f"/chats/{chat}/full/")).json()
    assert numbers(full) == [1, 2]
    assert full["references"] == []


async def test_members_see_only_their_chats_and_workspaces_are_apart(live: Live) -> None:
    assistant = await make_assistant(live)
    admins = await make_chat(live, assistant)
    mine = await make_chat(live, assistant, client=live.member)
    assert (await live.member.get(f"/chats/{admins}/")).status_code == 404
    assert (await live.member.post(f"/chats/{admins}/", json={"message": "x"})).status_code == 404
    assert (await live.member.get(f"/chats/{mine}/")).status_code == 200
    member_list = (await live.member.get(f"/assistants/{assistant}/chats/")).json()
    assert [c["id"] for c in member_list] == [mine]
    admin_list = await live.admin.get(f"/assistants/{assistant}/chats/")
    assert sorted(c["id"] for c in admin_list.json()) == sorted([admins, mine])
    assert admin_list.headers["X-Total-Count"] == "2"
    assert (await live.admin.get("/assistants/999999999/chats/")).status_code == 404


async def test_deleted_assistant_keeps_chats_readable_but_closed(live: Live) -> None:
    assistant = await make_assistant(live)
    chat = await make_chat(live, assistant)
    await live.admin.post(f"/chats/{chat}/", json={"message": "hello"})
    assert (await live.admin.delete(f"/assistants/{assistant}/")).status_code == 204
    readable = await live.admin.get(f"/chats/{chat}/")
    assert readable.status_code == 200 and len(readable.json()["messages"]) == 2
    assert (await live.admin.get(f"/assistants/{assistant}/chats/")).status_code == 200
    closed = await live.admin.post(f"/chats/{chat}/", json={"message": "more"})
    assert closed.status_code == 400
    assert closed.json()["code"] == "assistant_deleted"


async def test_generator_apps_are_listed_without_secrets(live: Live) -> None:
    response = await live.admin.get("/apps-generator/")
    assert response.status_code == 200
    names = {app["name"]: app for app in response.json()}
    assert names["offline"]["kind"] == "offline"
    assert names["offline"]["default"] is True
    assert "base_url" not in names["offline"]


async def test_a_chat_whose_generation_died_is_taken_over_by_the_next_get(live: Live) -> None:
    """A process that died mid-generation leaves PROCESSING behind; once its lease has expired,
    the next GET answers instead of waiting forever (no sweeper needed)."""
    from datetime import timedelta

    from sqlalchemy import update

    from chatsvc.chats.models import Chat
    from chatsvc.kit.db import unit_of_work, utcnow

    assistant = await make_assistant(live)
    chat = await make_chat(live, assistant)
    await live.admin.post(f"/chats/{chat}/add_user_message/", json={"message": "hello?"})
    async with unit_of_work(live.services.sessionmaker) as session:
        await session.execute(
            update(Chat)
            .where(Chat.id == chat)
            .values(
                execution_status="PROCESSING",
                generation_id="00000000-0000-4000-8000-000000000000",
                lease_expires_at=utcnow() - timedelta(seconds=1),
            )
        )
    answered = (await live.admin.get(f"/chats/{chat}/")).json()
    assert answered["execution_status"] == "AVAILABLE"
    assert [m["role"] for m in answered["messages"]] == ["user", "assistant"]


async def test_a_failed_chat_keeps_its_error_until_an_explicit_retry(live_pg_url: str) -> None:
    from chatsvc.config import GeneratorApp

    closed = "http://127.0.0.1:9/v1"  # nothing listens on the discard port
    apps = {
        "offline": GeneratorApp(kind="offline"),
        "down": GeneratorApp(kind="openai", base_url=closed, model="m", timeout_seconds=2),
    }
    async with live_tenant(make_settings(live_pg_url, generator_apps=apps)) as live:
        assistant = await make_assistant(live, generation_config="down")
        chat = await make_chat(live, assistant)
        failed = await live.admin.post(f"/chats/{chat}/", json={"message": "hello"})
        assert failed.status_code == 502
        for path in (f"/chats/{chat}/", f"/chats/{chat}/async/"):
            polled = (await live.admin.get(path)).json()
            assert polled["execution_status"] == "FAILED"
            assert polled["error"]
            assert [m["role"] for m in polled["messages"]] == ["user"]
        await live.admin.patch(f"/assistants/{assistant}/", json={"generation_config": "offline"})
        retried = await live.admin.get(f"/chats/{chat}/", params={"retry": "true"})
        assert retried.status_code == 200
        assert retried.json()["execution_status"] == "AVAILABLE"
        assert [m["role"] for m in retried.json()["messages"]] == ["user", "assistant"]
