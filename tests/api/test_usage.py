"""Token usage as a client sees it: every answer's prompt and completion tokens on its message
(`usage`), summed over its tool-call rounds; the upstream's figures when it sends them, an
estimate marked `estimated` otherwise; and the workspace's usage endpoint (admin keys only)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from chatsvc.generation.usage import tokens_of
from chatsvc.migrate import upgrade
from tests.fakes.openai_server import words
from tests.fixtures.app import Live, live_tenant, make_settings
from tests.fixtures.chats import live_with_fake, make_assistant, new_chat, of_role, settled
from tests.generation.test_tool_loop import ADDER, add_tool


def prompt_words(body: dict[str, Any]) -> int:
    """The fake upstream's prompt_tokens for a request it received (the words of its contents)."""
    return sum(len(str(m.get("content", "")).split()) for m in body["messages"])


async def turn(client: httpx.AsyncClient, chat: int, message: str) -> dict[str, Any]:
    """Send a message, wait for the answer; the answer as `GET /chats/{id}/full/` shows it."""
    response = await client.post(f"/chats/{chat}/", json={"message": message})
    assert response.status_code in (200, 201), response.text
    body = await settled(client, chat)
    assert body["execution_status"] == "AVAILABLE", body
    answer: dict[str, Any] = of_role(body, "assistant")[-1]
    return answer


def report_on(chat: int) -> dict[str, Any]:
    return {
        "category": "INCORRECT",
        "reason": "WRONG_INFO",
        "severity": "HIGH",
        "topic": "sums",
        "comments": "Check the arithmetic.",
        "status": "OPEN",
        "chat": chat,
    }


async def usage(client: httpx.AsyncClient, **params: str) -> httpx.Response:
    return await client.get("/usage/", params=params)


async def test_the_upstreams_figures_summed_over_tool_rounds_are_stored_and_counted(
    live_pg_url: str,
) -> None:
    calls = [{"name": "adder", "arguments": {"a": 1, "b": 2}}]
    async with live_with_fake(live_pg_url, tool_calls=calls) as (live, fake):
        tool = await add_tool(live, "adder", ADDER, (("a", "number"), ("b", "number")))
        assistant = await make_assistant(live.admin, generation_config="gpt", tools=[tool])
        chat = await new_chat(live.admin, assistant)

        answer = await turn(live.admin, chat, "add one and two")

        first, second = (r.body for r in fake.requests)
        assert first["stream_options"] == {"include_usage": True}
        # Round 1 asked for one tool call (1 token), round 2 answered in words.
        prompt = prompt_words(first) + prompt_words(second)
        completion = 1 + len(words(answer["content"]))
        assert answer["usage"] == {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "estimated": False,
        }
        assert all(m["usage"] is None for m in of_role(await settled(live.admin, chat), "user"))

        # An upstream that ignores stream=true: the whole completion's `usage` counts.
        fake.configure(tool_calls=None, ignore_stream=True, tokens=words("Three it is."))
        again = await turn(live.admin, chat, "thanks")
        third = fake.requests[-1].body
        assert again["usage"] == {
            "prompt_tokens": prompt_words(third),
            "completion_tokens": 3,
            "total_tokens": prompt_words(third) + 3,
            "estimated": False,
        }

        today = datetime.now(UTC).date().isoformat()
        prompts = prompt + prompt_words(third)
        completions = completion + 3
        totals = {
            "prompt_tokens": prompts,
            "completion_tokens": completions,
            "total_tokens": prompts + completions,
            "answers": 2,
            "estimated_answers": 0,
        }
        by_day = await usage(live.admin)
        assert by_day.status_code == 200, by_day.text
        assert by_day.json() == {
            "group_by": "day",
            "start_date": None,
            "end_date": None,
            "totals": totals,
            "count": 1,
            "next": None,
            "previous": None,
            "results": [{**totals, "day": today, "assistant": None, "api_key": None}],
        }
        by_assistant = (await usage(live.admin, group_by="assistant")).json()
        assert by_assistant["results"] == [
            {**totals, "day": None, "assistant": assistant, "api_key": None}
        ]
        by_key = (await usage(live.admin, group_by="api_key")).json()
        (group,) = by_key["results"]
        assert group["api_key"] is not None and group["total_tokens"] == prompts + completions

        # The period is whole UTC days: yesterday alone has nothing.
        yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
        empty = (await usage(live.admin, start_date=yesterday, end_date=yesterday)).json()
        assert empty["count"] == 0 and empty["results"] == []
        assert empty["totals"]["answers"] == 0 and empty["totals"]["total_tokens"] == 0
        within = (await usage(live.admin, start_date=today, end_date=today)).json()
        assert within["totals"] == totals

        # Report metrics: the usage of the reported chats, each chat once.
        metrics = await live.admin.get("/reports/metrics/")
        assert metrics.json()["token_usage"]["answers"] == 0
        for _ in range(2):
            created = await live.admin.post("/reports/", json=report_on(chat))
            assert created.status_code == 200, created.text
        metrics = await live.admin.get("/reports/metrics/")
        assert metrics.json()["token_usage"] == totals
        other = await live.admin.get("/reports/metrics/", params={"topic": "other"})
        assert other.json()["token_usage"]["total_tokens"] == 0


async def test_an_upstream_that_sends_no_usage_gets_an_estimate_marked_so(
    live_pg_url: str,
) -> None:
    async with live_with_fake(live_pg_url, send_usage=False, tokens=words("four score")) as (
        live,
        _fake,
    ):
        assistant = await make_assistant(live.admin, generation_config="gpt")
        chat = await new_chat(live.admin, assistant)

        answer = await turn(live.admin, chat, "hello")

        assert answer["usage"]["estimated"] is True
        assert answer["usage"]["completion_tokens"] == tokens_of(len("four score"))
        assert answer["usage"]["prompt_tokens"] >= tokens_of(len("hello"))
        totals = (await usage(live.admin)).json()["totals"]
        assert totals["answers"] == 1 and totals["estimated_answers"] == 1


async def offline_answers_carry_an_estimate(live: Live) -> None:
    assistant = await make_assistant(live.admin, generation_config="offline")
    chat = await new_chat(live.admin, assistant)

    answer = await turn(live.admin, chat, "what is the weather like")

    figures = answer["usage"]
    assert figures["estimated"] is True
    assert figures["completion_tokens"] == tokens_of(len(answer["content"]))
    assert figures["prompt_tokens"] > 0
    assert figures["total_tokens"] == figures["prompt_tokens"] + figures["completion_tokens"]
    today = datetime.now(UTC).date().isoformat()
    for group_by, key, value in (("day", "day", today), ("assistant", "assistant", assistant)):
        listed = (await usage(live.admin, group_by=group_by)).json()
        (group,) = listed["results"]
        assert group[key] == value
        assert group["total_tokens"] == figures["total_tokens"]
        assert group["answers"] == group["estimated_answers"] == 1


async def test_the_offline_generators_answers_carry_an_estimate(live_pg_url: str) -> None:
    async with live_tenant(make_settings(live_pg_url)) as live:
        await offline_answers_carry_an_estimate(live)


async def test_the_offline_generators_answers_carry_an_estimate_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'chatsvc.db'}"
    await asyncio.to_thread(upgrade, url)
    async with live_tenant(make_settings(url, redis_url=None)) as live:
        await offline_answers_carry_an_estimate(live)


async def test_usage_is_for_admins_and_bad_periods_are_400(live_pg_url: str) -> None:
    async with live_tenant(make_settings(live_pg_url)) as live:
        forbidden = await usage(live.member)
        assert forbidden.status_code == 403, forbidden.text

        malformed = await usage(live.admin, start_date="2026-13-01")
        assert malformed.status_code == 400
        assert "start_date" in malformed.text
        backwards = await usage(live.admin, start_date="2026-12-02", end_date="2026-12-01")
        assert backwards.status_code == 400
        assert "after end_date" in backwards.text
        unknown = await usage(live.admin, group_by="model")
        assert unknown.status_code in (400, 422)
