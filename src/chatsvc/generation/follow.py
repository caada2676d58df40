"""Reading a generation's events from the broker, in whatever process it runs: live until its
terminal event, from a resume position, or only its end (a blocking request)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chatsvc.chats.repository import ChatRepository
from chatsvc.kit.db import utcnow
from chatsvc.kit.errors import Invalid
from chatsvc.streaming import events
from chatsvc.streaming.broker import BrokerEntry, StreamBroker

#: how long one broker read waits before the follower checks the generation still runs
IDLE_READ_SECONDS = 2.0
#: how long a reader waits for an event the generation may be publishing as it ends
SETTLE_SECONDS = 0.25


@dataclass
class Follower:
    sessionmaker: async_sessionmaker[AsyncSession]
    broker: StreamBroker
    idle_read_seconds: float = IDLE_READ_SECONDS
    clock: Callable[[], datetime] = utcnow

    async def follow(
        self, chat_id: int, generation_id: str, after: str | None = None
    ) -> AsyncIterator[BrokerEntry]:
        """The generation's events after `after`, live, until its terminal event. Ends early
        when the generation is no longer running and nothing is left to read (its events
        expired, or the client had them all)."""
        key = events.stream_key(generation_id)
        while True:
            entries = await self.broker.read(key, after, block_seconds=self.idle_read_seconds)
            if not entries:
                if await self.is_running(chat_id, generation_id):
                    continue
                entries = await self.broker.read(key, after, block_seconds=0.05)
                if not entries:
                    return
            for entry in entries:
                yield entry
                after = entry.id
                if entry.event in events.TERMINAL:
                    return

    async def wait(self, chat_id: int, generation_id: str) -> BrokerEntry | None:
        """Block until the generation ends; its terminal event (None if it vanished)."""
        terminal = None
        async for entry in self.follow(chat_id, generation_id):
            if entry.event in events.TERMINAL:
                terminal = entry
        return terminal

    async def has_ended(self, chat_id: int, generation_id: str, after: str) -> bool:
        """Whether a client that had the events up to `after` has had them all: nothing follows
        `after` in the broker and the generation no longer runs (it ended, or died, or its
        events expired). What `follow` would then send is nothing; a resume answers 204."""
        key = events.stream_key(generation_id)
        if await self.broker.read(key, after, block_seconds=0, count=1):
            return False
        if await self.is_running(chat_id, generation_id):
            return False
        # The answer is stored before its terminal event is published: a short wait lets an
        # event published just now arrive, as `follow` does before it gives up.
        return not await self.broker.read(key, after, block_seconds=SETTLE_SECONDS, count=1)

    async def check_position(self, generation_id: str, after: str) -> None:
        """Refuse a resume position the broker cannot read (before any byte is streamed)."""
        try:
            await self.broker.read(
                events.stream_key(generation_id), after, block_seconds=0, count=1
            )
        except ValueError as exc:
            raise Invalid(str(exc), code="bad_last_event_id") from None

    async def is_running(self, chat_id: int, generation_id: str) -> bool:
        async with self.sessionmaker() as session:
            state = await ChatRepository(session).generation_state(chat_id)
        return state is not None and state.runs(generation_id, self.clock())
