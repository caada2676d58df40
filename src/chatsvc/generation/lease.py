"""While a generation runs: the lease that keeps its chat from being taken over is renewed, and a
cancel asked in another process (through the broker) is seen."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from chatsvc.generation.answers import AnswerStore
from chatsvc.kit.db import utcnow
from chatsvc.streaming.broker import StreamBroker

CANCEL_POLL_SECONDS = 0.2

Sleep = Callable[[float], Awaitable[None]]


@dataclass
class LeaseWatch:
    broker: StreamBroker
    store: AnswerStore
    lease_seconds: int
    poll_seconds: float = CANCEL_POLL_SECONDS
    #: injectable, so tests let time pass without waiting
    sleep: Sleep = asyncio.sleep
    clock: Callable[[], datetime] = utcnow

    async def watch(self, chat_id: int, generation_id: str, cancelled: asyncio.Event) -> None:
        """Until `cancelled` is set (by this process, or here when another asked): poll the
        cancel flag and renew the lease every third of its length."""
        renew_every = max(1.0, self.lease_seconds / 3)
        since_renewal = 0.0
        while not cancelled.is_set():
            await self.sleep(self.poll_seconds)
            if await self.broker.cancel_requested(generation_id):
                cancelled.set()
                return
            since_renewal += self.poll_seconds
            if since_renewal >= renew_every:
                since_renewal = 0.0
                until = self.clock() + timedelta(seconds=self.lease_seconds)
                await self.store.extend_lease(chat_id, generation_id, until)
