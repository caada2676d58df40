"""The units a generation is made of, each on its own (no HTTP server), on PostgreSQL + Redis and
on the embedded default: the task registry, the lease watch (renewal and cancels from other
processes, on an injected clock), the follower, the answer store, the planner, the tool loop's
rounds and budget, and the runner's failures."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from chatsvc.assistants.models import Assistant
from chatsvc.chats import service as chat_service
from chatsvc.chats.models import ExecutionStatus, MessageStatus, Role
from chatsvc.chats.repository import ChatRepository
from chatsvc.chats.schemas import OptionalUserMessageIn
from chatsvc.chats.service import Turn
from chatsvc.generation.answers import Answer, AnswerStore, TurnRef
from chatsvc.generation.follow import Follower
from chatsvc.generation.lease import LeaseWatch
from chatsvc.generation.pipeline import ModelCall, VerbatimAnswer
from chatsvc.generation.planning import Planner
from chatsvc.generation.tasks import GenerationTasks
from chatsvc.generation.tool_loop import Running
from chatsvc.kit.db import unit_of_work
from chatsvc.kit.errors import ChatsvcError, Invalid, UpstreamError
from chatsvc.knowledge.models import FixedResponse
from chatsvc.streaming import events
from chatsvc.streaming.broker import BrokerEntry
from chatsvc.tools.models import Tool
from tests.fixtures.turns import WAIT, World

ADDER = "function main(args) { return {sum: args.a + args.b}; }"
SLEEPER = "function main(args) { while (true) {} }"


async def stored_turn(world: World, text: str = "hello", **assistant: object) -> Turn:
    """A chat with a user message claimed for its answer, and nothing running it yet."""
    assistant_id = await world.assistant(**assistant)
    async with unit_of_work(world.services.sessionmaker) as session:
        _chat, turn = await chat_service.create_chat(
            session,
            world.admin,
            assistant_id,
            OptionalUserMessageIn(message=text),
            idempotency_key=None,
            lease_seconds=60,
        )
    assert turn is not None and turn.generation_id is not None
    return turn


def ref(turn: Turn) -> TurnRef:
    assert turn.generation_id is not None
    return TurnRef(turn.chat_id, turn.generation_id, turn.user_msg_num)


async def read_all(world: World, generation_id: str) -> list[BrokerEntry]:
    return await world.services.broker.read(events.stream_key(generation_id), None, block_seconds=0)


# --- the task registry ---------------------------------------------------------------------------


async def test_the_registry_signals_a_cancel_and_forgets_finished_tasks() -> None:
    tasks = GenerationTasks()
    seen: list[str] = []

    async def body(cancelled: asyncio.Event) -> None:
        await cancelled.wait()
        seen.append("stopped")

    task = tasks.start("g-1", body)
    tasks.cancel("g-2")  # not running here: nothing happens
    await asyncio.sleep(0)
    assert tasks.running("g-1") and not task.done()
    tasks.cancel("g-1")
    await task
    assert seen == ["stopped"] and not tasks.running("g-1")


async def test_a_shutdown_stops_what_outlives_its_grace() -> None:
    tasks = GenerationTasks()
    outcomes: list[str] = []

    async def polite(cancelled: asyncio.Event) -> None:
        await cancelled.wait()
        outcomes.append("polite: stopped by the cancel signal")

    async def stubborn(cancelled: asyncio.Event) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            outcomes.append("stubborn: cut off")
            raise

    tasks.start("a", polite)
    tasks.start("b", stubborn)
    await tasks.shutdown(grace_seconds=0.01)
    assert sorted(outcomes) == ["polite: stopped by the cancel signal", "stubborn: cut off"]


# --- the lease watch -----------------------------------------------------------------------------


class FakeClock:
    """Time that passes only when the watch sleeps, and stops at `stop_after` seconds (a sleep
    then waits until the task is cancelled)."""

    def __init__(self, stop_after: float = 3600.0) -> None:
        self.start = self.now = datetime(2026, 1, 1, tzinfo=UTC)
        self.stop_after = stop_after
        self.stopped = asyncio.Event()

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if self.now - self.start >= timedelta(seconds=self.stop_after):
            self.stopped.set()
            await asyncio.Event().wait()
        self.now += timedelta(seconds=seconds)
        await asyncio.sleep(0)


async def test_the_lease_is_renewed_every_third_of_its_length(world: World) -> None:
    turn = await stored_turn(world)
    clock = FakeClock(stop_after=10)
    store = AnswerStore(world.services.sessionmaker)
    watch = LeaseWatch(world.services.broker, store, 30, sleep=clock.sleep, clock=clock)
    task = asyncio.create_task(
        watch.watch(turn.chat_id, ref(turn).generation_id, asyncio.Event(), renew_first=True)
    )
    await asyncio.wait_for(clock.stopped.wait(), WAIT)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Renewed once, after 10 of its 30 seconds: until 10 + 30 seconds after the start.
    lease = (await world.chat(turn.chat_id)).lease_expires_at
    assert lease == clock.start + timedelta(seconds=40)


async def test_a_cancel_asked_elsewhere_reaches_the_generation(world: World) -> None:
    turn = await stored_turn(world)
    clock = FakeClock()
    watch = LeaseWatch(
        world.services.broker,
        AnswerStore(world.services.sessionmaker),
        60,
        sleep=clock.sleep,
        clock=clock,
    )
    cancelled = asyncio.Event()
    generation_id = ref(turn).generation_id
    task = asyncio.create_task(watch.watch(turn.chat_id, generation_id, cancelled))
    await world.services.broker.request_cancel(generation_id, 60)
    await asyncio.wait_for(task, WAIT)
    assert cancelled.is_set()


# --- the follower --------------------------------------------------------------------------------


async def test_the_follower_ends_when_the_generation_is_gone_and_nothing_is_left(
    world: World,
) -> None:
    turn = await stored_turn(world)
    generation_id = ref(turn).generation_id
    key = events.stream_key(generation_id)
    await world.services.broker.publish(key, events.MESSAGE_CREATED, {"n": 1})
    follower = Follower(world.services.sessionmaker, world.services.broker, idle_read_seconds=0.05)
    assert await follower.is_running(turn.chat_id, generation_id)
    async with unit_of_work(world.services.sessionmaker) as session:
        await ChatRepository(session).release_generation(
            turn.chat_id, generation_id, ExecutionStatus.FAILED, error="gone"
        )
    async with asyncio.timeout(WAIT):
        found = [e async for e in follower.follow(turn.chat_id, generation_id)]
    assert [e.data for e in found] == [{"n": 1}]
    # The position a client resumes from is checked before anything is streamed.
    with pytest.raises(Invalid):
        await follower.check_position(generation_id, "not-a-position")


# --- the answer store ----------------------------------------------------------------------------


async def test_storing_the_answer_releases_the_chat_with_the_wire_shapes(world: World) -> None:
    turn = await stored_turn(world)
    store = AnswerStore(world.services.sessionmaker)
    plan = VerbatimAnswer(content="We open at nine.", fixed="hours")
    completed = await store.complete(ref(turn), plan, "We open at nine.", Answer())
    message, chat = completed["message"], completed["chat"]
    assert (message["role"], message["content"], message["fixed"]) == (
        "assistant",
        "We open at nine.",
        "hours",
    )
    assert message["usr_msg_num"] == turn.user_msg_num and message["status"] == "complete"
    assert message["created_at"].endswith("Z")
    assert chat == {
        "id": turn.chat_id,
        "title": "hello",
        "assistant": chat["assistant"],
        "execution_status": "AVAILABLE",
        "error": None,
    }
    stored = await world.chat(turn.chat_id)
    assert stored.responses_count == 1


async def test_a_failure_is_stored_only_while_the_generation_holds_the_chat(world: World) -> None:
    turn = await stored_turn(world)
    store = AnswerStore(world.services.sessionmaker)
    await store.fail(turn.chat_id, str(uuid.uuid4()), "not mine")
    assert (await world.chat(turn.chat_id)).execution_status == ExecutionStatus.PROCESSING
    await store.fail(turn.chat_id, ref(turn).generation_id, "upstream down")
    chat = await world.chat(turn.chat_id)
    assert (chat.execution_status, chat.error) == (ExecutionStatus.FAILED, "upstream down")


# --- the planner ---------------------------------------------------------------------------------


async def test_the_planner_answers_a_fixed_response_verbatim(world: World) -> None:
    turn = await stored_turn(world, "when are you OPEN")
    async with unit_of_work(world.services.sessionmaker) as session:
        chat = await ChatRepository(session).by_id(turn.chat_id)
        assert chat is not None
        session.add(
            FixedResponse(
                assistant_id=chat.assistant_id,
                topic="opening hours",
                name="When are you open?",
                content="9 to 5, Mon-Fri.",
            )
        )
    plan, tools = await Planner(world.services.sessionmaker).plan(turn.chat_id, turn.user_msg_num)
    assert plan == VerbatimAnswer(content="9 to 5, Mon-Fri.", fixed="When are you open?")
    assert tools.tools == []  # a verbatim answer loads no tools


async def test_the_planner_loads_live_tools_in_the_assistants_order(world: World) -> None:
    first = await world.script_tool("adder", ADDER, (("a", "number"), ("b", "number")))
    second = await world.script_tool("other", ADDER)
    gone = await world.script_tool("gone", ADDER)
    turn = await stored_turn(world, "add things", tools=[second, gone, first])
    async with unit_of_work(world.services.sessionmaker) as session:
        tool = await session.get(Tool, gone)
        assert tool is not None
        tool.deleted_at = datetime.now(UTC)  # deleted after the assistant was configured
    planner = Planner(world.services.sessionmaker)
    plan, tools = await planner.plan(turn.chat_id, turn.user_msg_num)
    assert isinstance(plan, ModelCall)
    assert [t.tool_id for t in tools.tools] == [second, first]
    assert plan.request.messages[-1].content == "add things"

    with pytest.raises(ChatsvcError) as missing:
        await planner.plan(turn.chat_id, turn.user_msg_num + 5)
    assert missing.value.code == "missing_message"


# --- the tool loop -------------------------------------------------------------------------------


async def test_a_tool_round_is_stored_streamed_and_answered(world: World) -> None:
    adder = await world.script_tool("adder", ADDER, (("a", "number"), ("b", "number")))
    turn = await stored_turn(world, 'use adder {"a": 2, "b": 40}', tools=[adder])
    generations = world.services.generations
    await generations.run(ref(turn))
    found = await read_all(world, ref(turn).generation_id)
    order = [e.event for e in found]
    assert order[0] == events.MESSAGE_CREATED and order[-1] == events.MESSAGE_COMPLETED
    assert order.index(events.TOOL_CALL) < order.index(events.TOOL_RESULT)
    result = next(e.data for e in found if e.event == events.TOOL_RESULT)
    assert not result["is_error"] and '"sum": 42' in result["content"]
    assert result["message"]["role"] == "tool" and result["message"]["function_name"]
    messages = await world.messages(turn.chat_id)
    assert [m.role for m in messages] == [Role.USER, Role.TOOL, Role.ASSISTANT]
    assert '"sum": 42' in messages[-1].content


async def test_calls_past_the_budget_are_not_run(world: World) -> None:
    adder = await world.script_tool("adder", ADDER, (("a", "number"), ("b", "number")))
    other = await world.script_tool("other", ADDER, (("a", "number"), ("b", "number")))
    # The offline model calls both named tools in one round; the budget allows one.
    turn = await stored_turn(
        world, "use adder and other", tools=[adder, other], max_consecutive_tool_calls=1
    )
    await world.services.generations.run(ref(turn))
    messages = await world.messages(turn.chat_id)
    assert [m.role for m in messages] == [Role.USER, Role.TOOL, Role.TOOL, Role.ASSISTANT]
    ran, refused = messages[1], messages[2]
    assert ran.status == MessageStatus.COMPLETE
    assert refused.status == MessageStatus.FAILED
    assert refused.content == (
        "Error: not run: this assistant allows at most 1 tool calls per answer."
    )


async def test_a_cancel_while_a_tool_runs_keeps_the_turn_cancelled(world: World) -> None:
    hang = await world.script_tool("hang", SLEEPER)
    turn = await stored_turn(world, "use hang", tools=[hang])
    generations = world.services.generations
    task = generations.start(ref(turn))
    key = events.stream_key(ref(turn).generation_id)

    async def calling() -> bool:
        found = await world.services.broker.read(key, None, block_seconds=0)
        return any(e.event == events.TOOL_CALL for e in found)

    await world.until(calling, "the tool is called")
    await generations.cancel(ref(turn).generation_id)
    await asyncio.wait_for(task, WAIT)
    found = await read_all(world, ref(turn).generation_id)
    assert found[-1].event == events.MESSAGE_COMPLETED
    assert found[-1].data["message"]["status"] == MessageStatus.CANCELLED


async def test_the_loop_stops_relaying_when_cancelled(world: World) -> None:
    turn = await stored_turn(world, "say a lot", generation_config="slow")
    loop = world.services.generations.runner.loop
    plan, tools = await world.services.generations.runner.planner.plan(
        turn.chat_id, turn.user_msg_num
    )
    assert isinstance(plan, ModelCall)
    cancelled = asyncio.Event()
    parts: list[str] = []
    run = Running(ref(turn), events.stream_key(ref(turn).generation_id), cancelled)
    answering = asyncio.create_task(loop.answer(plan, tools, run, parts))
    await world.until(lambda: len(parts) >= 2, "the first words arrive")
    cancelled.set()
    answer = await asyncio.wait_for(answering, WAIT)
    assert answer.status == MessageStatus.CANCELLED
    said = len(parts)
    await asyncio.sleep(0.2)  # a stopped relay adds nothing more
    assert len(parts) == said


# --- the runner ----------------------------------------------------------------------------------


async def test_an_unknown_generator_fails_the_turn_with_an_error_event(world: World) -> None:
    turn = await stored_turn(world)
    async with unit_of_work(world.services.sessionmaker) as session:
        chat = await ChatRepository(session).by_id(turn.chat_id)
        assert chat is not None
        assistant = await session.get(Assistant, chat.assistant_id)
        assert assistant is not None
        assistant.generation_config = "nowhere"
    await world.services.generations.run(ref(turn))
    found = await read_all(world, ref(turn).generation_id)
    assert found[-1].event == events.ERROR
    assert found[-1].data["kind"] == UpstreamError.kind
    assert "nowhere" in found[-1].data["detail"]
    chat_after = await world.chat(turn.chat_id)
    assert chat_after.execution_status == ExecutionStatus.FAILED
    # The user message stays; no answer was stored.
    assert [m.role for m in await world.messages(turn.chat_id)] == [Role.USER]
