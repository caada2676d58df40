"""The tool-calling loop as a client sees it, on a real server on loopback: tools offered to the
offline generator and to a real OpenAI-compatible server (native tool calls), every call and
result stored as a message and streamed as events, the call budget, failing and slow tools,
pretools, what the show_* flags hide, and a cancel while a tool runs."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from chatsvc.generation.offline import OfflineGenerator
from chatsvc.generation.types import GenerationRequest, PromptMessage, ToolCall, ToolSpec
from chatsvc.kit.db import unit_of_work
from chatsvc.tools.models import Tool, ToolParameter
from tests.fixtures.app import Live, live_tenant, make_settings
from tests.fixtures.chats import (
    live_with_fake,
    make_assistant,
    new_chat,
    of_role,
    processing,
    settings_with,
    settled,
)
from tests.fixtures.sse import WAIT, Event, names, sse, text_of

ADDER = "function main(args) { return {sum: args.a + args.b}; }"


async def add_tool(
    live: Live,
    name: str,
    code: str,
    parameters: tuple[tuple[str, str], ...] = (),
    **flags: Any,
) -> int:
    """A script tool stored directly (the tool endpoints have tests of their own)."""
    async with unit_of_work(live.services.sessionmaker) as db:
        tool = Tool(
            workspace_id=live.workspace_id,
            kind="script",
            name=name,
            description=f"The {name} tool",
            config={"code": code},
            parameters=[
                ToolParameter(position=i, name=p, type=t, description=p)
                for i, (p, t) in enumerate(parameters)
            ],
            **flags,
        )
        db.add(tool)
        await db.flush()
        return tool.id


async def stream_turn(live: Live, chat: int, message: str) -> list[Event]:
    async with sse(live.admin, "POST", f"/chats_stream/{chat}/", json={"message": message}) as s:
        assert s.response.status_code == 201
        return await s.rest()


def of_event(found: list[Event], name: str) -> list[dict[str, Any]]:
    return [e.data for e in found if e.event == name]


# --- the offline generator's deterministic tool calls -----------------------------------------


def spec(name: str, title: str, **properties: str) -> ToolSpec:
    schema = {
        "type": "object",
        "properties": {p: {"type": t} for p, t in properties.items()},
        "required": list(properties),
    }
    return ToolSpec(name, title, "", schema)


def request(text: str, tools: list[ToolSpec], **fields: Any) -> GenerationRequest:
    messages = [PromptMessage("user", text), *fields.pop("after", [])]
    return GenerationRequest(messages, 0.0, text, tools=tools, **fields)


def test_the_offline_generator_calls_a_tool_the_message_names_with_the_json_after_it() -> None:
    adder = spec("adder_7", "Adder", a="number", b="number")
    other = spec("weather_8", "Weather", city="string")
    calls = OfflineGenerator.calls_for(
        request('please use ADDER {"a": 2, "b": 40}', [adder, other])
    )
    assert [(c.name, c.arguments) for c in calls] == [("adder_7", {"a": 2, "b": 40})]


def test_without_json_the_offline_generator_fills_required_arguments_from_the_message() -> None:
    tool = spec("t_1", "lookup", query="string", count="integer", exact="boolean")
    (call,) = OfflineGenerator.calls_for(request("lookup the 3 largest cities", [tool]))
    assert call.arguments == {"query": "lookup the 3 largest cities", "count": 3, "exact": True}


def test_the_offline_generator_calls_each_tool_once_then_reports_the_results() -> None:
    tool = spec("t_1", "lookup", query="string")
    call = ToolCall("call_1", "t_1", {"query": "x"})
    done = request(
        "lookup x",
        [tool],
        after=[
            PromptMessage("assistant", "", tool_calls=(call,)),
            PromptMessage("tool", "42 rows", tool_call_id="call_1"),
        ],
    )
    assert OfflineGenerator.calls_for(done) == ()
    assert OfflineGenerator.answer_for(done) == "The tools returned:\nt_1: 42 rows"


def test_required_tool_choice_calls_every_tool_and_none_calls_nothing() -> None:
    tools = [spec("a_1", "alpha"), spec("b_2", "beta")]
    assert len(OfflineGenerator.calls_for(request("hi", tools, tool_choice="required"))) == 2
    assert OfflineGenerator.calls_for(request("alpha", tools, tool_choice="none")) == ()
    assert OfflineGenerator.calls_for(request("hi", tools)) == ()


# --- the loop, end to end ---------------------------------------------------------------------


async def test_a_script_tool_named_in_a_message_is_called_stored_and_streamed(
    live_pg_url: str,
) -> None:
    async with live_tenant(make_settings(live_pg_url)) as live:
        tool = await add_tool(live, "adder", ADDER, (("a", "number"), ("b", "number")))
        assistant = await make_assistant(live.admin, generation_config="offline", tools=[tool])
        chat = await new_chat(live.admin, assistant)

        found = await stream_turn(live, chat, 'use adder {"a": 2, "b": 3}')

        order = names(found)
        assert order[0] == "message.created" and order[-1] == "message.completed"
        assert order.index("tool.call") < order.index("tool.result") < order.index("delta")
        (call,) = of_event(found, "tool.call")
        assert call["tool_id"] == tool and call["tool_name"] == "adder"
        assert call["arguments"] == {"a": 2, "b": 3}
        (result,) = of_event(found, "tool.result")
        assert result["tool_call_id"] == call["tool_call_id"]
        assert result["is_error"] is False and json.loads(result["content"]) == {"sum": 5}
        assert text_of(found) == "The tools returned:\n" + f'{call["function_name"]}: {{"sum": 5}}'

        body = await settled(live.admin, chat)
        assert body["execution_status"] == "AVAILABLE"
        assert [m["role"] for m in body["messages"]] == ["user", "tool", "assistant"]
        stored = of_role(body, "tool")[0]
        assert stored["tool_call_id"] == call["tool_call_id"]
        assert stored["function_name"] == call["function_name"]
        assert stored["parameters"] == {"a": 2, "b": 3}
        assert json.loads(stored["content"]) == {"sum": 5}
        assert stored["metadata"]["tool_id"] == tool and stored["metadata"]["is_error"] is False
        streamed = result["message"]
        assert {k: v for k, v in stored.items() if k != "prompt"} == streamed
        assert of_role(body, "assistant")[0]["content"] == text_of(found)


async def test_the_openai_generator_makes_native_tool_calls_and_gets_the_results_back(
    live_pg_url: str,
) -> None:
    calls = [{"name": "adder", "arguments": {"a": 1, "b": 2}}]
    async with live_with_fake(live_pg_url, tool_calls=calls) as (live, fake):
        tool = await add_tool(live, "adder", ADDER, (("a", "number"), ("b", "number")))
        assistant = await make_assistant(live.admin, generation_config="gpt", tools=[tool])
        chat = await new_chat(live.admin, assistant)

        found = await stream_turn(live, chat, "add one and two")

        assert text_of(found) == 'Tools said: {"sum": 3}'
        first, second = (r.body for r in fake.requests)
        (offered,) = first["tools"]
        assert offered["type"] == "function" and offered["function"]["name"].startswith("adder_")
        assert offered["function"]["parameters"] == {
            "type": "object",
            "properties": {
                "a": {"type": "number", "description": "a"},
                "b": {"type": "number", "description": "b"},
            },
            "required": ["a", "b"],
        }
        asked, answered = second["messages"][-2:]
        assert asked["role"] == "assistant"
        assert json.loads(asked["tool_calls"][0]["function"]["arguments"]) == {"a": 1, "b": 2}
        assert answered == {
            "role": "tool",
            "content": '{"sum": 3}',
            "tool_call_id": asked["tool_calls"][0]["id"],
        }


async def test_the_loop_stops_at_max_consecutive_tool_calls_and_still_answers(
    live_pg_url: str,
) -> None:
    calls = [{"name": "adder", "arguments": {"a": 1, "b": 1}}]
    async with live_with_fake(live_pg_url, tool_calls=calls, tool_call_rounds=100) as (live, fake):
        tool = await add_tool(live, "adder", ADDER, (("a", "number"), ("b", "number")))
        assistant = await make_assistant(
            live.admin, generation_config="gpt", tools=[tool], max_consecutive_tool_calls=2
        )
        chat = await new_chat(live.admin, assistant)

        found = await stream_turn(live, chat, "keep adding")

        assert len(of_event(found, "tool.result")) == 2
        assert [r.body["tool_choice"] for r in fake.requests] == ["auto", "auto", "none"]
        assert found[-1].event == "message.completed"
        assert text_of(found) == 'Tools said: {"sum": 2}'
        last = fake.requests[-1].body["messages"]
        assert [m["content"] for m in last if m["role"] == "tool"] == ['{"sum": 2}'] * 2
        body = await settled(live.admin, chat)
        assert body["execution_status"] == "AVAILABLE"
        assert len(of_role(body, "tool")) == 2


async def test_failing_and_malformed_calls_give_the_model_an_error_and_the_chat_goes_on(
    live_pg_url: str,
) -> None:
    calls = [
        {"name": "boom", "arguments": {}},
        {"name": "adder", "arguments": "{not json"},
        {"name": "adder", "arguments": {"a": "one"}},
        {"name": "ghost", "arguments": {}},
    ]
    async with live_with_fake(live_pg_url, tool_calls=calls) as (live, fake):
        boom = await add_tool(live, "boom", "throw new Error('kaput')")
        adder = await add_tool(live, "adder", ADDER, (("a", "number"), ("b", "number")))
        assistant = await make_assistant(live.admin, generation_config="gpt", tools=[boom, adder])
        chat = await new_chat(live.admin, assistant)

        found = await stream_turn(live, chat, "go")

        results = of_event(found, "tool.result")
        assert [r["is_error"] for r in results] == [True, True, True, True]
        boom_error, not_json, wrong_type, ghost = (r["content"] for r in results)
        assert "kaput" in boom_error
        assert "not a JSON object" in not_json
        assert "missing required argument(s): b" in wrong_type
        assert "no tool named 'ghost'" in ghost
        assert found[-1].event == "message.completed"
        assert text_of(found).startswith("Tools said: Error:")
        body = await settled(live.admin, chat)
        assert body["execution_status"] == "AVAILABLE"
        assert [m["status"] for m in of_role(body, "tool")] == ["failed"] * 4
        assert len(fake.requests) == 2


async def test_a_slow_tool_is_cut_at_its_deadline_and_the_model_is_told(live_pg_url: str) -> None:
    settings = make_settings(live_pg_url, tool_timeout_seconds=0.5, script_timeout_seconds=10)
    async with live_tenant(settings) as live:
        tool = await add_tool(live, "spin", "while (true) {}")
        assistant = await make_assistant(live.admin, generation_config="offline", tools=[tool])
        chat = await new_chat(live.admin, assistant)

        found = await stream_turn(live, chat, "spin please")

        (result,) = of_event(found, "tool.result")
        assert result["is_error"] is True
        assert result["content"] == "Error: the tool 'spin' did not answer within 0.5 seconds."
        assert found[-1].event == "message.completed"
        assert (await settled(live.admin, chat))["execution_status"] == "AVAILABLE"


async def test_pretools_run_before_the_answer_even_when_the_message_does_not_name_them(
    live_pg_url: str,
) -> None:
    async with live_tenant(make_settings(live_pg_url)) as live:
        profile = await add_tool(live, "profile", "'plan: gold'")
        assistant = await make_assistant(
            live.admin, generation_config="offline", pretools=[profile]
        )
        chat = await new_chat(live.admin, assistant)

        found = await stream_turn(live, chat, "what can I do?")

        (result,) = of_event(found, "tool.result")
        assert result["content"] == "plan: gold"
        assert "plan: gold" in text_of(found)
        body = await settled(live.admin, chat)
        assert [m["role"] for m in body["messages"]] == ["user", "tool", "assistant"]


@pytest.mark.parametrize(
    ("flags", "tool_visible", "answer_visible"),
    [
        ({"show_tool_message": False}, False, True),
        ({"show_assistant_message": False}, True, False),
    ],
)
async def test_show_flags_set_what_the_user_sees(
    live_pg_url: str, flags: dict[str, bool], tool_visible: bool, answer_visible: bool
) -> None:
    async with live_tenant(make_settings(live_pg_url)) as live:
        tool = await add_tool(live, "echo", "args.text", (("text", "string"),), **flags)
        assistant = await make_assistant(live.admin, generation_config="offline", tools=[tool])
        chat = await new_chat(live.admin, assistant)

        await stream_turn(live, chat, "echo hello")

        body = await settled(live.admin, chat)
        assert of_role(body, "tool")[0]["visible"] is tool_visible
        assert of_role(body, "assistant")[0]["visible"] is answer_visible


async def test_a_cancel_while_a_tool_runs_stops_the_turn_and_frees_the_chat(
    live_pg_url: str,
) -> None:
    settings = settings_with(live_pg_url, {}, tool_timeout_seconds=30, script_timeout_seconds=30)
    async with live_tenant(settings) as live:
        tool = await add_tool(live, "spin", "while (true) {}")
        assistant = await make_assistant(live.admin, generation_config="offline", tools=[tool])
        chat = await new_chat(live.admin, assistant)

        async with sse(
            live.admin, "POST", f"/chats_stream/{chat}/", json={"message": "spin"}
        ) as source:
            seen = [await source.next()]
            while seen[-1].event != "tool.call":
                seen.append(await source.next())
            await processing(live.admin, chat)
            cancel = await live.admin.post(f"/chats/{chat}/cancel/")
            assert cancel.status_code == 200, cancel.text
            async with asyncio.timeout(WAIT):
                rest = await source.rest()

        assert rest[-1].event == "message.completed"
        assert rest[-1].data["message"]["status"] == "cancelled"
        body = await settled(live.admin, chat)
        assert body["execution_status"] == "AVAILABLE"
