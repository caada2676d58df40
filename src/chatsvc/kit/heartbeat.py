"""Which processes are alive: each process has an owner id, and (with Redis) keeps a key with a
short time to live that it renews every few seconds. A process whose key expired is dead (killed,
out of memory, its host gone), whatever it left behind in the database; one that is alive but
stalled longer than the time to live is taken for dead too (its work is then stopped, as a cancel
stops it).

Keys (the prefix is the stream broker's): `<prefix>owner:<id>` (the heartbeat, SET with EX) and
`<prefix>owners` (a sorted set: every id that beat lately, scored by its last beat's wall-clock
time), so a live process can list who might have died without scanning keys. An id stays in the
set for `remember_seconds` after its last beat: long enough for every process sharing the Redis
database to see it dead; after that the lease of what it owned has run out anyway.

No database here: what a dead owner leaves behind is each domain's recovery (jobs/runner.py)."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from redis.asyncio import Redis


def new_owner_id() -> str:
    """An id no other process (here or on another host, now or after a restart) has: host, pid
    and a random part (≤ 64 characters: chats.owner_id)."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:16]}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass
class Heartbeat:
    redis: Redis
    owner: str
    #: the key's time to live: a process that has not beaten for this long is dead
    ttl_seconds: float
    #: how long a dead id stays listed (see the module's docstring)
    remember_seconds: float
    prefix: str = "chatsvc:"
    clock: Callable[[], float] = time.time
    #: owners already reported dead, by the time of the last beat they were seen with
    _reported: dict[str, float] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.owner_key(self.owner)

    def owner_key(self, owner: str) -> str:
        return f"{self.prefix}owner:{owner}"

    @property
    def registry(self) -> str:
        return f"{self.prefix}owners"

    async def beat(self) -> dict[str, float]:
        """Renew this process's key; the other owners that beat lately, with their last beat's
        time (one round trip)."""
        now = self.clock()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.key, "1", px=max(1, int(self.ttl_seconds * 1000)))
            pipe.zadd(self.registry, {self.owner: now})
            pipe.zremrangebyscore(self.registry, "-inf", now - self.remember_seconds)
            pipe.zrange(self.registry, 0, -1, withscores=True)
            *_, listed = await pipe.execute()
        beats = {_text(member): float(score) for member, score in listed}
        beats.pop(self.owner, None)
        return beats

    async def dead(self, listed: dict[str, float]) -> dict[str, float]:
        """Which of `listed` (owner → last beat) have no key any more and were not reported
        yet (one round trip when anything is listed). An owner that beats again after it was
        reported is reported again when it dies again."""
        if not listed:
            return {}
        owners = sorted(listed)
        async with self.redis.pipeline(transaction=False) as pipe:
            for owner in owners:
                pipe.exists(self.owner_key(owner))
            alive = await pipe.execute()
        for owner in list(self._reported):
            if owner not in listed:
                del self._reported[owner]  # forgotten by the registry: forget it here too
        return {
            owner: listed[owner]
            for owner, found in zip(owners, alive, strict=True)
            if not found and self._reported.get(owner) != listed[owner]
        }

    def reported(self, dead: dict[str, float]) -> None:
        """`dead` were recovered: the next `dead` leaves them out."""
        self._reported.update(dead)

    async def stop(self) -> None:
        """This process stops (its work is done or handed back): its key goes at once, so what
        it may have left is recovered without waiting for the time to live."""
        await self.redis.delete(self.key)
