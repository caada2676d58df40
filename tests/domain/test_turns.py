"""The turn service without an HTTP server, on PostgreSQL + Redis and on the embedded default:
accept → start → follow or wait → outcome, idempotent replays, one generation per chat, resume,
cancel, upstream failure, background delivery, and a chat whose generation died (lease expiry)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from chatsvc.chats import service as chat_service
from chatsvc.chats.jobs import STUCK_CHAT_ERROR, fail_stuck_generations
from chatsvc.chats.models import ExecutionStatus, MessageStatus, Role
from chatsvc.chats.repository import ChatRepository
from chatsvc.chats.schemas import AssistantMessageIn, OptionalUserMessageIn
from chatsvc.chats.service import Earlier
from chatsvc.chats.turns import Delivery, TurnHandle
from chatsvc.config import GeneratorApp, Settings
from chatsvc.jobs.models import Job, JobState
from chatsvc.kit.db import unit_of_work, utcnow
from chatsvc.kit.errors import Conflict, Invalid, NotFound, Unavailable, UpstreamError
from chatsvc.streaming import events
from chatsvc.streaming.broker import BrokerEntry
from tests.fakes.openai_server import FakeOpenAI, words
from tests.fixtures.app import make_settings
from tests.fixtures.turns import WAIT, World, turn_apps, world_of


async def collected(world: World, handle: TurnHandle) -> list[BrokerEntry]:
    async with asyncio.timeout(WAIT):
        return [entry async for entry in world.services.turns.events(handle)]


def text_of(found: list[BrokerEntry]) -> str:
    return "".join(e.data["text"] for e in found if e.event == events.DELTA)


async def opened(world: World, message: str | None = "hello", **assistant: object) -> TurnHandle:
    assistant_id = await world.assistant(**assistant)
    return await world.services.turns.open_chat(
        world.admin,
        assistant_id,
        OptionalUserMessageIn(message=message),
        idempotency_key=None,
    )


async def test_a_turn_streams_its_events_then_stores_the_answer(world: World) -> None:
    handle = await opened(world, "What are your hours?", initial_message="Hi!")
    assert handle.turn is not None and handle.generation_id is not None
    found = await collected(world, handle)
    assert found[0].event == events.MESSAGE_CREATED
    assert found[-1].event == events.MESSAGE_COMPLETED
    # Every event carries the id a client resumes from.
    assert all(e.id.startswith(f"{handle.generation_id}:") for e in found)
    completed = found[-1].data
    assert completed["message"]["content"] == text_of(found)
    assert completed["chat"]["execution_status"] == "AVAILABLE"

    chat, messages = await world.services.turns.outcome(world.admin, handle)
    assert [(m.role, m.msg_num) for m in messages] == [
        (Role.ASSISTANT, 1),
        (Role.USER, 2),
        (Role.ASSISTANT, 3),
    ]
    assert messages[-1].content == text_of(found)
    assert messages[-1].usr_msg_num == 2
    assert chat.execution_status == ExecutionStatus.AVAILABLE and chat.responses_count == 1


async def test_each_upstream_token_is_one_delta_event_with_many_streams_at_once(
    world: World, upstream: FakeOpenAI
) -> None:
    tokens = words(" ".join(f"t{i}" for i in range(40)))
    upstream.reset(tokens=tokens, ttft=0.0, gap=0.0)
    handles = await asyncio.gather(
        *(opened(world, f"stream {i}", generation_config="up") for i in range(20))
    )
    streams = await asyncio.gather(*(collected(world, handle) for handle in handles))
    for found in streams:
        deltas = [e.data["text"] for e in found if e.event == events.DELTA]
        assert deltas == tokens  # never merged, whatever the load
        assert found[-1].event == events.MESSAGE_COMPLETED


async def test_a_chat_without_a_message_has_nothing_to_follow(world: World) -> None:
    handle = await opened(world, None, initial_message="Hi!")
    assert handle.turn is None and handle.generation_id is None
    assert await collected(world, handle) == []
    _chat, messages = await world.services.turns.outcome(world.admin, handle)
    assert [m.content for m in messages] == ["Hi!"]


async def test_a_second_message_while_one_is_answered_is_a_conflict(world: World) -> None:
    handle = await opened(world, "first", generation_config="slow")
    turns = world.services.turns
    with pytest.raises(Conflict) as refused:
        await turns.send(world.admin, handle.chat.id, "second", {}, idempotency_key=None)
    assert refused.value.code == "generation_running"
    await turns.finish(handle)
    after = await turns.send(world.admin, handle.chat.id, "second", {}, idempotency_key=None)
    await turns.finish(after)
    _chat, messages = await turns.chat_with_messages(world.admin, handle.chat.id)
    assert [m.content for m in messages if m.role == Role.USER] == ["first", "second"]


async def test_a_retried_key_re_attaches_to_the_first_turn(world: World) -> None:
    first = await opened(world)
    turns = world.services.turns
    await turns.finish(first)
    one = await turns.send(world.admin, first.chat.id, "again?", {}, idempotency_key="k-1")
    two = await turns.send(world.admin, first.chat.id, "again?", {}, idempotency_key="k-1")
    assert two.turn is not None and two.turn.replayed
    assert two.generation_id == one.generation_id
    # A replay follows the first turn's events while the broker keeps them.
    replayed = await collected(world, two)
    assert replayed[-1].event == events.MESSAGE_COMPLETED
    _chat, messages = await turns.chat_with_messages(world.admin, first.chat.id)
    assert [m.content for m in messages if m.role == Role.USER] == ["hello", "again?"]


async def test_a_resume_continues_after_the_event_a_client_had(world: World) -> None:
    handle = await opened(world, "tell me something", generation_config="slow")
    turns = world.services.turns
    found = await collected(world, handle)
    middle = found[len(found) // 2]
    resumed = await turns.resume(world.admin, middle.id, chat_id=handle.chat.id)
    rest = await collected(world, resumed)
    assert [e.id for e in rest] == [e.id for e in found[len(found) // 2 + 1 :]]


async def test_a_resume_is_refused_for_a_bad_id_or_another_chat(world: World) -> None:
    handle = await opened(world)
    turns = world.services.turns
    first = (await collected(world, handle))[0].id
    with pytest.raises(Invalid) as malformed:
        await turns.resume(world.admin, "nonsense", chat_id=handle.chat.id)
    assert malformed.value.code == "bad_last_event_id"
    other = await opened(world)
    with pytest.raises(NotFound):
        await turns.resume(world.admin, first, chat_id=other.chat.id)
    # A member does not see the admin's chat, so not its stream either.
    with pytest.raises(NotFound):
        await turns.resume(world.member, first, chat_id=handle.chat.id)


async def test_a_cancel_stops_the_answer_and_keeps_what_was_said(world: World) -> None:
    handle = await opened(world, "talk for a while", generation_config="slow")
    turns = world.services.turns
    source = turns.events(handle)
    seen = [await anext(source) for _ in range(3)]  # message.created and the first words
    outcome = await turns.cancel(world.admin, handle.chat.id)
    assert outcome.cancelled and outcome.generation_id == handle.generation_id
    async with asyncio.timeout(WAIT):
        rest = [entry async for entry in source]
    assert rest[-1].event == events.MESSAGE_COMPLETED
    message = rest[-1].data["message"]
    assert message["status"] == MessageStatus.CANCELLED
    assert message["content"] == text_of(seen + rest) and message["content"]
    chat = await world.chat(handle.chat.id)
    assert chat.execution_status == ExecutionStatus.AVAILABLE
    # Nothing runs any more: a second cancel is a no-op.
    again = await turns.cancel(world.admin, handle.chat.id)
    assert not again.cancelled and again.generation_id is None


async def test_an_upstream_failure_fails_the_chat_and_is_raised_to_a_waiter(world: World) -> None:
    handle = await opened(world, "anyone there?", generation_config="down")
    turns = world.services.turns
    found = await collected(world, handle)
    assert found[-1].event == events.ERROR
    assert found[-1].data["kind"] == UpstreamError.kind
    assert found[-1].data["chat_id"] == handle.chat.id
    with pytest.raises(UpstreamError):
        await turns.finish(handle)
    chat = await world.chat(handle.chat.id)
    assert chat.execution_status == ExecutionStatus.FAILED and chat.error
    # A FAILED chat keeps its error for pollers; an explicit retry answers again.
    idle = await turns.answer_pending(world.admin, handle.chat.id)
    assert idle.generation_id is None
    retry = await turns.answer_pending(world.admin, handle.chat.id, retry_failed=True)
    assert retry.turn is not None and retry.generation_id not in (None, handle.generation_id)
    with pytest.raises(UpstreamError):
        await turns.finish(retry)


async def test_a_stored_user_message_is_answered_once_however_many_ask(world: World) -> None:
    handle = await opened(world, None)
    turns = world.services.turns
    async with unit_of_work(world.services.sessionmaker) as session:
        await chat_service.add_message(
            session, world.admin, handle.chat.id, AssistantMessageIn(message="hi?"), role=Role.USER
        )
    asked = await asyncio.gather(
        *(turns.answer_pending(world.admin, handle.chat.id) for _ in range(5))
    )
    started = [h for h in asked if h.turn is not None]
    assert len(started) == 1
    # The others follow the same generation (or found it done already).
    assert {h.generation_id for h in asked} <= {started[0].generation_id, None}
    await turns.finish(started[0])
    messages = await world.messages(handle.chat.id)
    assert [m.role for m in messages] == [Role.USER, Role.ASSISTANT]


async def test_a_background_turn_is_answered_by_a_job(world: World) -> None:
    assistant = await world.assistant(realtime_available=True)
    turns = world.services.turns
    handle = await turns.open_chat(
        world.admin,
        assistant,
        OptionalUserMessageIn(message="in the background"),
        idempotency_key=None,
        delivery=Delivery.BACKGROUND,
    )
    # The caller does not follow: the job does the work.
    assert handle.turn is not None and handle.generation_id is None
    async with world.services.sessionmaker() as session:
        job = await session.scalar(select(Job).where(Job.workspace_id == world.workspace_id))
    assert job is not None and job.payload["generation_id"] == handle.turn.generation_id

    async def answered() -> bool:
        return (await world.chat(handle.chat.id)).execution_status == ExecutionStatus.AVAILABLE

    await world.until(answered, "the job answers the chat")
    messages = await world.messages(handle.chat.id)
    assert [m.role for m in messages] == [Role.USER, Role.ASSISTANT]

    async def job_states() -> list[JobState]:
        async with world.services.sessionmaker() as session:
            found = await session.scalars(select(Job).where(Job.workspace_id == world.workspace_id))
            return [job.state for job in found]

    # The job is marked succeeded after the answer it stored (which the chat shows first).
    async def finished() -> bool:
        return (await job_states()) != [JobState.RUNNING]

    await world.until(finished, "the job ends")
    assert await job_states() == [JobState.SUCCEEDED]


async def test_a_dead_generation_is_failed_by_the_sweeper_and_its_waiters_told(
    world: World,
) -> None:
    handle = await opened(world, None)
    generation_id = str(uuid.uuid4())
    past = utcnow() - timedelta(seconds=10)
    async with unit_of_work(world.services.sessionmaker) as session:
        claimed = await ChatRepository(session).claim_generation(
            handle.chat.id, generation_id, past - timedelta(seconds=60), past
        )
    assert claimed
    dead = TurnHandle(handle.chat, None, generation_id)
    waiter = asyncio.create_task(world.services.turns.finish(dead))
    recovered = await fail_stuck_generations(world.services.jobs)
    assert recovered >= 1
    with pytest.raises(Unavailable) as told:
        async with asyncio.timeout(WAIT):
            await waiter
    assert told.value.message == STUCK_CHAT_ERROR
    chat = await world.chat(handle.chat.id)
    assert chat.execution_status == ExecutionStatus.FAILED and chat.error == STUCK_CHAT_ERROR


def counted_settings(url: str, apps: dict[str, GeneratorApp]) -> Settings:
    """Settings for a test that counts round trips: the process's heartbeat ticks once, at start,
    so its periodic work (failing the chats of processes that stopped, such as the worlds of
    earlier tests) cannot land in a count."""
    return make_settings(
        url, generator_apps=apps, heartbeat_seconds=60.0, heartbeat_ttl_seconds=600.0
    )


async def ended(world: World, handle: TurnHandle) -> None:
    """The turn's answer, and the generation's task with it: what it does after the answer's
    last event (announcing it to event webhooks) must not land in the next turn's count."""
    await world.services.turns.finish(handle)
    tasks = world.services.turns.generations.tasks
    generation_id = handle.generation_id
    assert generation_id is not None
    await world.until(lambda: not tasks.running(generation_id), "the generation's task ends")


class RoundTrips:
    """Counts what a process asks its database: statements, and the BEGIN, COMMIT and ROLLBACK
    of transactions (an autocommit connection sends none)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.count = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._one)
        for name in ("begin", "commit", "rollback"):
            event.listen(engine.sync_engine, name, self._transaction)

    def _one(self, *_args: object, **_kwargs: object) -> None:
        self.count += 1

    def _transaction(self, connection: Connection) -> None:
        if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            self.count += 1


async def test_a_turn_costs_at_most_five_round_trips_to_postgresql(
    live_pg_url: str, closed_port: int, upstream: FakeOpenAI
) -> None:
    settings = counted_settings(live_pg_url, turn_apps(closed_port, upstream.base_url))
    async with world_of(settings) as world:
        turns, keys = world.services.turns, world.services.authenticator
        first = await opened(world, "warm the caches", initial_message="Hi!")
        await ended(world, first)
        assert await keys.authenticate(world.admin_key) is not None
        trips = RoundTrips(world.services.engine)
        # What the API process does for POST /chats_stream/{id}/ (key known, assistant unchanged):
        # look the key up, accept the message, and the generation plans and stores its answer.
        caller = await keys.authenticate(world.admin_key)
        assert caller is not None
        handle = await turns.send(caller, first.chat.id, "and now?", {}, idempotency_key=None)
        await ended(world, handle)
        assert trips.count <= 5, trips.count
        _chat, messages = await turns.chat_with_messages(caller, first.chat.id)
        assert [m.role for m in messages][-2:] == [Role.USER, Role.ASSISTANT]


async def _opened_with(world: World, assistant_id: int, turns_before: int) -> tuple[int, int]:
    """A chat opened with `turns_before` earlier exchanges and answered: (its id, the round
    trips it cost)."""
    history = [
        Earlier(role, f"{role} {number}")
        for number in range(turns_before)
        for role in (Role.USER, Role.ASSISTANT)
    ]
    trips = RoundTrips(world.services.engine)
    handle = await world.services.turns.open_chat(
        world.admin,
        assistant_id,
        OptionalUserMessageIn(message="and now?"),
        idempotency_key=None,
        history=history,
    )
    await ended(world, handle)
    return handle.chat.id, trips.count


async def test_a_chat_opened_with_a_history_stores_it_in_a_fixed_number_of_statements(
    live_pg_url: str, closed_port: int, upstream: FakeOpenAI
) -> None:
    settings = counted_settings(live_pg_url, turn_apps(closed_port, upstream.base_url))
    async with world_of(settings) as world:
        assistant_id = await world.assistant(initial_message="Hi!", max_responses=100)
        await _opened_with(world, assistant_id, 1)  # warm the caches

        short, few = await _opened_with(world, assistant_id, 1)
        long, many = await _opened_with(world, assistant_id, 40)

        assert many == few, (few, many)
        _chat, messages = await world.services.turns.chat_with_messages(world.admin, long)
        assert [(m.msg_num, m.role, m.content) for m in messages[:3]] == [
            (1, Role.USER, "user 0"),
            (2, Role.ASSISTANT, "assistant 0"),
            (3, Role.USER, "user 1"),
        ]
        assert (messages[80].role, messages[80].content) == (Role.USER, "and now?")
        assert [m.role for m in messages[80:]] == [Role.USER, Role.ASSISTANT]
        chat = await world.chat(long)
        assert chat.responses_count == 41 and chat.title == "user 0"
        assert short != long
