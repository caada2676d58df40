"""Recovery of a dead process's generations by heartbeat (kit/heartbeat.py, chats/jobs.py), on the
real PostgreSQL + Redis and on the embedded default: generations name the process that runs them;
a process whose heartbeat stopped has its generations failed at once, their waiters told; one
taken for dead while alive stops them; an embedded start fails what an earlier run left running.
(tests/jobs/test_recovery_e2e.py kills real server processes.)"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from chatsvc.chats.jobs import ORPHAN_ERROR, fail_orphaned_generations
from chatsvc.chats.models import ExecutionStatus
from chatsvc.chats.repository import ChatRepository
from chatsvc.chats.schemas import OptionalUserMessageIn
from chatsvc.chats.turns import ChatRef, Delivery, TurnHandle
from chatsvc.jobs.runner import Orphans, beat_once, load_handlers
from chatsvc.kit.db import unit_of_work, utcnow
from chatsvc.kit.errors import Unavailable
from chatsvc.kit.heartbeat import Heartbeat
from chatsvc.services import Services
from chatsvc.streaming import events
from tests.fixtures.turns import WAIT, World

PRODUCTION = pytest.mark.parametrize("world", ["postgresql"], indirect=True)
EMBEDDED = pytest.mark.parametrize("world", ["embedded"], indirect=True)


async def _chat(world: World) -> int:
    assistant = await world.assistant()
    handle = await world.services.turns.open_chat(
        world.admin, assistant, OptionalUserMessageIn(), idempotency_key=None
    )
    return handle.chat.id


async def _running(world: World, chat_id: int, owner: str | None) -> str:
    """The chat claimed for a generation with a lease far from running out, run by `owner`."""
    generation_id = str(uuid.uuid4())
    now = utcnow()
    async with unit_of_work(world.services.sessionmaker) as session:
        assert await ChatRepository(session).claim_generation(
            chat_id, generation_id, now, now + timedelta(hours=1), owner=owner
        )
    return generation_id


async def _release(world: World, chat_id: int, generation_id: str) -> None:
    async with unit_of_work(world.services.sessionmaker) as session:
        await ChatRepository(session).release_generation(
            chat_id, generation_id, ExecutionStatus.AVAILABLE
        )


def _heartbeat_of(world: World, owner: str) -> Heartbeat:
    """Another process's heartbeat, on the world's Redis."""
    assert world.services.redis is not None
    return Heartbeat(world.services.redis, owner, ttl_seconds=60, remember_seconds=300)


async def test_a_turn_names_the_process_that_runs_its_generation(world: World) -> None:
    assistant = await world.assistant(generation_config="slow")
    live = await world.services.turns.open_chat(
        world.admin, assistant, OptionalUserMessageIn(message="hello"), idempotency_key=None
    )
    owner = world.services.generations.owner
    assert (await world.chat(live.chat.id)).owner_id == owner
    await world.services.turns.finish(live)

    queued = await world.services.turns.open_chat(
        world.admin,
        assistant,
        OptionalUserMessageIn(message="later"),
        idempotency_key=None,
        delivery=Delivery.BACKGROUND,
    )

    async def answered() -> bool:
        chat = await world.chat(queued.chat.id)
        return chat.execution_status == ExecutionStatus.AVAILABLE

    await world.until(answered, "the background job answers")
    # The job's process took the generation over when it started it.
    assert (await world.chat(queued.chat.id)).owner_id == owner


@PRODUCTION
async def test_a_dead_processes_generation_fails_at_once_and_its_waiters_are_told(
    world: World,
) -> None:
    dead, alive = f"dead-{uuid.uuid4().hex}", f"alive-{uuid.uuid4().hex}"
    orphan_chat, kept_chat = await _chat(world), await _chat(world)
    orphan = await _running(world, orphan_chat, dead)
    kept = await _running(world, kept_chat, alive)
    gone, living = _heartbeat_of(world, dead), _heartbeat_of(world, alive)
    await gone.beat()
    await living.beat()
    await gone.stop()  # killed: its heartbeat is gone, its lease has an hour left
    waiter = asyncio.create_task(
        world.services.turns.finish(TurnHandle(ChatRef(orphan_chat, ""), None, orphan))
    )
    try:
        assert world.services.heartbeat is not None
        await beat_once(world.services.jobs, world.services.heartbeat)
        with pytest.raises(Unavailable) as told:
            async with asyncio.timeout(WAIT):
                await waiter
        assert told.value.message == ORPHAN_ERROR and told.value.code == "interrupted"
        chat = await world.chat(orphan_chat)
        assert chat.execution_status == ExecutionStatus.FAILED and chat.error == ORPHAN_ERROR
        # A process taken for dead while it lives is asked to stop the generation.
        assert await world.services.broker.cancel_requested(orphan)
        # The live process's generation runs on.
        assert (await world.chat(kept_chat)).execution_status == ExecutionStatus.PROCESSING
    finally:
        await living.stop()
        await _release(world, kept_chat, kept)


@PRODUCTION
async def test_a_process_taken_for_dead_while_alive_stops_its_generation(world: World) -> None:
    assistant = await world.assistant(generation_config="slow")
    handle = await world.services.turns.open_chat(
        world.admin,
        assistant,
        OptionalUserMessageIn(message=" ".join(["long"] * 200)),
        idempotency_key=None,
    )
    assert handle.generation_id is not None
    generation_id = handle.generation_id
    assert world.services.generations.tasks.running(generation_id)
    me = Orphans(frozenset({world.services.generations.owner}))
    assert await fail_orphaned_generations(world.services.jobs, me) == 1
    found = [entry async for entry in world.services.turns.events(handle)]
    assert found[-1].event == events.ERROR and found[-1].data["detail"] == ORPHAN_ERROR

    def stopped() -> bool:
        return not world.services.generations.tasks.running(generation_id)

    await world.until(stopped, "the generation stops as a cancel stops it")


@EMBEDDED
async def test_an_embedded_start_fails_what_an_earlier_run_left_running(world: World) -> None:
    left_chat, queued_chat = await _chat(world), await _chat(world)
    await _running(world, left_chat, "an-earlier-run")
    # A background turn no process has started yet: the job machinery still owes it its answer.
    queued = await _running(world, queued_chat, None)
    load_handlers()
    restarted = Services.build(world.services.settings)
    await restarted.start()
    try:
        chat = await world.chat(left_chat)
        assert chat.execution_status == ExecutionStatus.FAILED and chat.error == ORPHAN_ERROR
        assert (await world.chat(queued_chat)).execution_status == ExecutionStatus.PROCESSING
    finally:
        await restarted.close()
        await _release(world, queued_chat, queued)
