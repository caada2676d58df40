"""Who is calling, fast: API keys looked up by their hash and kept per process for a short time,
so a request costs no database round trip for its key.

Revocation reaches every replica at once: a change to any key (revoke, rotate) bumps a version
number in Redis after it is committed, and a kept key is trusted only while the version it was
read under is still current (one Redis GET per request, no database query). Without Redis (the
embedded mode: one process) `keys_changed` forgets every kept key. A kept key also stops at its
own `expires_at`, checked in process. A key's use is written to `last_used_at` at most once a
minute per key and process."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from datetime import timedelta

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chatsvc.auth.repository import ApiKeyRepository
from chatsvc.auth.service import AuthContext, authenticate_hash, hash_key
from chatsvc.kit.db import unit_of_work, utcnow

MAX_KEY_LENGTH = 256
#: the Redis counter every change to a key increments
VERSION_KEY = "chatsvc:auth:keys-version"
#: how often a key's last_used_at is written, at most (per key and process)
TOUCH_EVERY = timedelta(minutes=1)

logger = logging.getLogger("chatsvc.auth")


@dataclass(eq=False)
class Authenticator:
    reads: async_sessionmaker[AsyncSession]
    ttl_seconds: float
    _: KW_ONLY
    #: where last_used_at is written (None: not recorded)
    writes: async_sessionmaker[AsyncSession] | None = None
    #: shares the keys' version between replicas (None: one process)
    redis: Redis | None = None
    size: int = 10_000
    clock: Callable[[], float] = time.monotonic
    #: key hash → (caller, until when it is trusted, the keys' version it was read under);
    #: the raw key is never kept
    _known: OrderedDict[str, tuple[AuthContext, float, bytes | None]] = field(
        init=False, repr=False, default_factory=OrderedDict
    )
    #: key id → when this process last wrote its last_used_at
    _touched: dict[int, float] = field(init=False, repr=False, default_factory=dict)

    def on(self, reads: async_sessionmaker[AsyncSession]) -> Authenticator:
        """One that reads and writes through `reads` and keeps no key (a test's rolled-back
        database); it shares this one's record of last_used_at writes."""
        other = Authenticator(reads, 0, writes=reads, redis=self.redis, clock=self.clock)
        other._touched = self._touched
        return other

    async def _version(self) -> bytes | None:
        if self.redis is None or self.ttl_seconds <= 0:
            return None
        try:
            version: bytes | None = await self.redis.get(VERSION_KEY)
        except (RedisError, OSError):
            logger.warning("keys version unreadable; reading the key from the database")
            self._known.clear()
            return b"unknown"
        return version or b"0"

    async def authenticate(self, raw_key: str) -> AuthContext | None:
        """The caller behind an API key, or None when the key is unknown, revoked or expired."""
        if not raw_key or len(raw_key) > MAX_KEY_LENGTH:
            return None
        digest = hash_key(raw_key)
        version = await self._version()
        now = self.clock()
        known = self._known.get(digest)
        if known is not None and known[1] > now and known[2] == version:
            await self._touch(known[0].api_key_id, now)
            return known[0]
        async with self.reads() as session:
            caller = await authenticate_hash(session, digest)
        if caller is None:
            self._known.pop(digest, None)
            return None
        if self.ttl_seconds > 0 and version != b"unknown":
            self._keep(digest, caller, now, version)
        await self._touch(caller.api_key_id, now)
        return caller

    def _keep(self, digest: str, caller: AuthContext, now: float, version: bytes | None) -> None:
        ttl = self.ttl_seconds
        if caller.expires_at is not None:
            ttl = min(ttl, (caller.expires_at - utcnow()).total_seconds())
        self._known[digest] = (caller, now + ttl, version)
        self._known.move_to_end(digest)
        while len(self._known) > self.size:
            self._known.popitem(last=False)

    async def _touch(self, key_id: int, now: float) -> None:
        if self.writes is None:
            return
        last = self._touched.get(key_id)
        if last is not None and now - last < TOUCH_EVERY.total_seconds():
            return
        if len(self._touched) >= self.size:
            self._touched.clear()
        self._touched[key_id] = now
        try:
            async with unit_of_work(self.writes) as session:
                await ApiKeyRepository(session).touch(key_id, utcnow(), TOUCH_EVERY)
        except SQLAlchemyError:
            logger.warning("could not record the use of API key %s", key_id, exc_info=True)

    def forget(self, key_hash: str) -> None:
        """Stop accepting a key at once in this process (it was revoked here)."""
        self._known.pop(key_hash, None)

    async def keys_changed(self) -> None:
        """A key was revoked or rotated (and committed): no replica trusts a kept key any more."""
        self._known.clear()
        if self.redis is not None:
            try:
                await self.redis.incr(VERSION_KEY)
            except (RedisError, OSError):
                logger.error(
                    "could not tell the other replicas that a key changed: they trust their "
                    "kept keys for up to %s s more",
                    self.ttl_seconds,
                )
