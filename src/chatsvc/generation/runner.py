"""Detached generations: a generation runs as a task of its own, not inside the request that
started it. It plans in one short read (planning.py), relays the generator's output to the stream
broker (tool_loop.py; O(1) per token, no database write per token), and stores the answer or the
failure in a short unit of work (answers.py), while its lease is kept alive (lease.py). A client
leaving changes nothing; only a cancel stops it.

`Generations` is what the rest of the service uses: start one here, run one to its end (a job),
cancel one wherever it runs, follow or wait for one (follow.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chatsvc.chats.models import Role
from chatsvc.config import Settings
from chatsvc.generation.answers import Answer, AnswerStore, TurnRef
from chatsvc.generation.follow import Follower
from chatsvc.generation.lease import LeaseWatch
from chatsvc.generation.pipeline import VerbatimAnswer
from chatsvc.generation.planning import Planner
from chatsvc.generation.tasks import GenerationTasks
from chatsvc.generation.tool_loop import Running, ToolLoop
from chatsvc.generation.tools import ToolExecutor
from chatsvc.generation.types import Generator
from chatsvc.kit.errors import ChatsvcError, InternalError, Unavailable
from chatsvc.kit.heartbeat import new_owner_id
from chatsvc.streaming import events
from chatsvc.streaming.broker import BrokerEntry, StreamBroker
from chatsvc.tools.runtime import ToolRuntime

logger = logging.getLogger("chatsvc.generation")


@dataclass
class GenerationRunner:
    """The body of one generation, from plan to stored answer, with every failure ending in a
    terminal `error` event and a FAILED chat rather than a stuck one."""

    broker: StreamBroker
    planner: Planner
    loop: ToolLoop
    store: AnswerStore
    lease: LeaseWatch
    stream_ttl_seconds: int

    async def run(
        self, turn: TurnRef, cancelled: asyncio.Event, *, accepted_now: bool = True
    ) -> None:
        """`accepted_now`: the turn was just accepted (its lease is fresh); a job's turn may
        have waited in the queue, so its lease is renewed first."""
        key = events.stream_key(turn.generation_id)
        parts: list[str] = []
        watcher = asyncio.create_task(
            self.lease.watch(
                turn.chat_id, turn.generation_id, cancelled, renew_first=not accepted_now
            )
        )
        try:
            plan, tools = await self.planner.plan(turn.chat_id, turn.user_msg_num)
            await self.broker.publish(
                key,
                events.MESSAGE_CREATED,
                {
                    "chat_id": turn.chat_id,
                    "generation_id": turn.generation_id,
                    "role": Role.ASSISTANT,
                    "usr_msg_num": turn.user_msg_num,
                },
            )
            answer = Answer()
            if isinstance(plan, VerbatimAnswer):
                parts.append(plan.content)
                await self.broker.publish(key, events.DELTA, {"text": plan.content})
            else:
                if plan.references:
                    await self.broker.publish(
                        key, events.REFERENCES, {"references": plan.references}
                    )
                answer = await self.loop.answer(plan, tools, Running(turn, key, cancelled), parts)
            completed = await self.store.complete(turn, plan, "".join(parts), answer)
            await self.broker.publish(key, events.MESSAGE_COMPLETED, completed)
            # After the stream has the answer: the webhooks' lookup does not delay the client.
            await self.store.announce_completed(turn, completed)
        except ChatsvcError as exc:
            await self._fail(turn, exc)
        except asyncio.CancelledError:
            await asyncio.shield(
                self._fail(turn, Unavailable("The server stopped.", code="interrupted"))
            )
            raise
        except Exception:
            logger.exception("generation %s of chat %s failed", turn.generation_id, turn.chat_id)
            await self._fail(turn, InternalError("Internal error while generating."))
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await self.broker.finish(key, self.stream_ttl_seconds)

    async def _fail(self, turn: TurnRef, error: ChatsvcError) -> None:
        try:
            await self.store.fail(turn.chat_id, turn.generation_id, error.message)
        finally:
            await self.broker.publish(
                events.stream_key(turn.generation_id),
                events.ERROR,
                events.error_payload(error, turn.chat_id),
            )


class Generations:
    """Starts, follows and cancels generations. One per process; the broker and the database
    make generations visible and cancellable from every process."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        broker: StreamBroker,
        generators: Mapping[str, Generator],
        settings: Settings,
        tools: ToolRuntime | None = None,
        *,
        reads: async_sessionmaker[AsyncSession] | None = None,
        owner: str | None = None,
    ) -> None:
        """`reads`: sessions for the reads (autocommit); default: `sessionmaker`. `owner`: this
        process's id (kit/heartbeat.py), named by the chats whose generations run here."""
        reads = reads or sessionmaker
        self.owner = owner or new_owner_id()
        self.broker = broker
        self.settings = settings
        self.tasks = GenerationTasks()
        # A cancel asked in any process reaches a generation running here.
        broker.on_cancel(self.tasks.cancel)
        self.follower = Follower(reads, broker)
        store = AnswerStore(sessionmaker, reads)
        self.store = store
        self.runner = GenerationRunner(
            broker,
            Planner(reads, history_limit=settings.history_max_messages),
            ToolLoop(broker, generators, ToolExecutor(tools, reads, settings), store),
            store,
            LeaseWatch(broker, store, settings.generation_lease_seconds, owner=self.owner),
            stream_ttl_seconds=settings.stream_ttl_seconds,
        )

    def start(self, turn: TurnRef, *, accepted_now: bool = True) -> asyncio.Task[None]:
        """Run the generation detached, as a task of this process."""
        self.broker.open(events.stream_key(turn.generation_id))
        return self.tasks.start(
            turn.generation_id,
            lambda cancelled: self.runner.run(turn, cancelled, accepted_now=accepted_now),
        )

    async def run(self, turn: TurnRef) -> None:
        """Run the generation to its end (a background job's body)."""
        await self.start(turn, accepted_now=False)

    async def cancel(self, generation_id: str) -> None:
        """Stop a generation wherever it runs: this process directly, others through the
        broker's cancel flag. Idempotent."""
        self.tasks.cancel(generation_id)
        await self.broker.request_cancel(generation_id, self.settings.stream_ttl_seconds)

    async def shutdown(self, grace_seconds: float = 10.0) -> None:
        await self.tasks.shutdown(grace_seconds)

    def follow(
        self, chat_id: int, generation_id: str, after: str | None = None
    ) -> AsyncIterator[BrokerEntry]:
        return self.follower.follow(chat_id, generation_id, after)

    async def wait(self, chat_id: int, generation_id: str) -> BrokerEntry | None:
        return await self.follower.wait(chat_id, generation_id)

    async def check_position(self, generation_id: str, after: str) -> None:
        await self.follower.check_position(generation_id, after)

    async def has_ended(self, chat_id: int, generation_id: str, after: str) -> bool:
        return await self.follower.has_ended(chat_id, generation_id, after)
