"""While a generation runs, the lease that keeps its chat from being taken over is renewed. A
cancel asked in another process normally arrives through the broker's shared listener; it is also
looked for here when the generation starts (asked before it ran) and at every renewal (in case
the listener missed it while reconnecting)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from chatsvc.generation.answers import AnswerStore
from chatsvc.kit.db import utcnow
from chatsvc.streaming.broker import StreamBroker

Sleep = Callable[[float], Awaitable[None]]


@dataclass
class LeaseWatch:
    broker: StreamBroker
    store: AnswerStore
    lease_seconds: int
    #: this process (kit/heartbeat.py): a renewal names it the generation's owner, so a
    #: background turn's worker owns the generation from its first renewal
    owner: str | None = None
    #: injectable, so tests let time pass without waiting
    sleep: Sleep = asyncio.sleep
    clock: Callable[[], datetime] = utcnow

    async def watch(
        self,
        chat_id: int,
        generation_id: str,
        cancelled: asyncio.Event,
        *,
        renew_first: bool = False,
    ) -> None:
        """Until `cancelled` is set: renew the lease every third of its length; `renew_first`
        at once too (a background turn may start well after it was accepted)."""
        every = max(1.0, self.lease_seconds / 3)
        # A turn just accepted here cannot have been cancelled yet (its generation is known to
        # this process's listener from the start); a queued one may have been.
        renew = renew_first
        while not cancelled.is_set():
            if renew:
                until = self.clock() + timedelta(seconds=self.lease_seconds)
                await self.store.extend_lease(chat_id, generation_id, until, self.owner)
                if await self.broker.cancel_requested(generation_id):
                    cancelled.set()
                    return
            renew = True
            await self.sleep(every)
