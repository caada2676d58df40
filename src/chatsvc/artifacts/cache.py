"""A small tag-invalidated cache for hydrated reads: in process, or in Redis when the service has
one (so every replica sees an invalidation).

Invalidation is generational: every tag has a version number, and an entry is stored under its
key plus the versions of its tags when the read began. Invalidating a tag bumps its version, so
every entry carrying it becomes unreachable at once (and expires by its time to live); nothing
has to find and delete entries. A read that began before an invalidation stores its result under
the old versions, where no later read looks.

A write bumps its tags twice: inside its transaction (so the writer's next read misses) and again
after the commit (so a read that ran concurrently and cached the data from before the commit is
dropped too). Register the bump after any savepoint of the transaction: SQLAlchemy reports the
release of a savepoint as a commit."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

logger = logging.getLogger("chatsvc.artifacts.cache")

DEFAULT_TTL_SECONDS = 30.0
DEFAULT_MAX_ENTRIES = 2048
#: tag versions outlive every entry by far; they are only kept so old entries stay unreachable
TAG_TTL_SECONDS = 24 * 3600


class _Store(Protocol):
    async def versions(self, tags: Sequence[str]) -> list[int]: ...

    async def get(self, key: str) -> str | None: ...

    async def put(self, key: str, value: str, ttl: float) -> None: ...

    async def bump(self, tags: Sequence[str]) -> None: ...

    def bump_now(self, tags: Sequence[str]) -> bool:
        """Bump synchronously when the store can (in process); False when it cannot."""
        ...


class MemoryStore:
    """Entries in an LRU dictionary with expiry times; tag versions in a plain dictionary."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._versions: dict[str, int] = {}

    async def versions(self, tags: Sequence[str]) -> list[int]:
        return [self._versions.get(tag, 0) for tag in tags]

    async def get(self, key: str) -> str | None:
        found = self._entries.get(key)
        if found is None:
            return None
        expires, value = found
        if expires < time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    async def put(self, key: str, value: str, ttl: float) -> None:
        self._entries[key] = (time.monotonic() + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def bump(self, tags: Sequence[str]) -> None:
        self.bump_now(tags)

    def bump_now(self, tags: Sequence[str]) -> bool:
        for tag in tags:
            self._versions[tag] = self._versions.get(tag, 0) + 1
        return True


class RedisStore:
    """Entries as strings with a TTL, tag versions as counters, under one key prefix."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    def _tag(self, tag: str) -> str:
        return f"{self.prefix}tag:{tag}"

    async def versions(self, tags: Sequence[str]) -> list[int]:
        if not tags:
            return []
        raw = await self.redis.mget([self._tag(tag) for tag in tags])
        return [int(value) if value is not None else 0 for value in raw]

    async def get(self, key: str) -> str | None:
        raw = await self.redis.get(f"{self.prefix}entry:{key}")
        return raw.decode() if isinstance(raw, bytes) else raw

    async def put(self, key: str, value: str, ttl: float) -> None:
        await self.redis.set(f"{self.prefix}entry:{key}", value, px=max(1, int(ttl * 1000)))

    async def bump(self, tags: Sequence[str]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for tag in tags:
                pipe.incr(self._tag(tag))
                pipe.expire(self._tag(tag), TAG_TTL_SECONDS)
            await pipe.execute()

    def bump_now(self, tags: Sequence[str]) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class Ticket:
    """Where a read that missed stores its result: its key with the tag versions it began with."""

    key: str


class TagCache:
    """Get-or-compute with tags. Cache trouble (Redis down) never fails a read: it is a miss."""

    def __init__(self, backend: _Store, ttl_seconds: float = DEFAULT_TTL_SECONDS) -> None:
        self.backend = backend
        self.ttl_seconds = ttl_seconds

    @classmethod
    def build(cls, redis: Redis | None, namespace: str) -> TagCache:
        """In Redis when the service has one, else in process. `namespace` (e.g. the database
        URL) is hashed into the key prefix, so services on different databases sharing a Redis
        never read each other's entries."""
        if redis is None:
            return cls(MemoryStore())
        digest = hashlib.sha256(namespace.encode()).hexdigest()[:16]
        return cls(RedisStore(redis, f"chatsvc:artifacts:{digest}:"))

    async def lookup(self, key: str, tags: Sequence[str]) -> tuple[Any | None, Ticket | None]:
        try:
            versions = await self.backend.versions(tags)
            full = key + "#" + ",".join(f"{t}@{v}" for t, v in zip(tags, versions, strict=True))
            raw = await self.backend.get(full)
        except Exception:
            logger.warning("cache lookup failed; reading without the cache", exc_info=True)
            return None, None
        return (json.loads(raw) if raw is not None else None), Ticket(full)

    async def store(self, ticket: Ticket | None, value: Any) -> None:
        if ticket is None:
            return
        try:
            raw = json.dumps(value, separators=(",", ":"))
            await self.backend.put(ticket.key, raw, self.ttl_seconds)
        except Exception:
            logger.warning("cache store failed", exc_info=True)

    async def invalidate(self, tags: Iterable[str]) -> list[str]:
        """Bump the tags now; returns them."""
        names = sorted(set(tags))
        try:
            await self.backend.bump(names)
        except Exception:
            logger.warning("cache invalidation of %s failed", names, exc_info=True)
        return names

    async def invalidate_with(self, session: AsyncSession, tags: Iterable[str]) -> list[str]:
        """Bump the tags now and once more when the session's transaction commits."""
        names = await self.invalidate(tags)
        sync_session = session.sync_session
        pending: list[tuple[TagCache, list[str]]] | None = sync_session.info.get(_PENDING)
        if pending is None:
            pending = sync_session.info[_PENDING] = []
            event.listen(sync_session, "after_commit", _after_commit)
            event.listen(sync_session, "after_rollback", _after_rollback)
        pending.append((self, names))
        return names


_PENDING = "chatsvc.artifacts.cache.pending"
_bumping: set[asyncio.Task[None]] = set()


def _after_commit(sync_session: Session) -> None:
    pending: list[tuple[TagCache, list[str]]] = sync_session.info[_PENDING]
    batch = list(pending)
    pending.clear()
    later: list[tuple[TagCache, list[str]]] = []
    for cache, tags in batch:
        if not cache.backend.bump_now(tags):
            later.append((cache, tags))
    if later:
        # after_commit is synchronous; the bump of a remote store runs as a task of this loop.
        task = asyncio.get_running_loop().create_task(_bump_all(later))
        _bumping.add(task)
        task.add_done_callback(_bumping.discard)


def _after_rollback(sync_session: Session) -> None:
    sync_session.info[_PENDING].clear()


async def _bump_all(batch: list[tuple[TagCache, list[str]]]) -> None:
    for cache, tags in batch:
        await cache.invalidate(tags)


async def flush_invalidations() -> None:
    """Wait for invalidations sent after commits (tests, shutdown)."""
    while _bumping:
        await asyncio.gather(*_bumping, return_exceptions=True)


# --- the tags ------------------------------------------------------------------------------------

ANALYTICS_TAG = "analytics"


def workspace_tag(workspace_id: int) -> str:
    return f"workspace:{workspace_id}"


def library_tag(workspace_id: int) -> str:
    return f"library:{workspace_id}"


def entry_tag(workspace_id: int, entry_id: int) -> str:
    return f"entry:{workspace_id}:{entry_id}"


def draft_tag(draft_id: str) -> str:
    return f"draft:{draft_id}"
