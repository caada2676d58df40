"""Who is calling, fast: API keys looked up by their hash and kept per process for a short time,
so a request costs no database round trip for its key. A key revoked in the database stops
working on every replica within `ttl_seconds` (CHATSVC_AUTH_CACHE_SECONDS); `forget` ends it at
once in this process."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chatsvc.auth.service import AuthContext, authenticate_hash, hash_key

MAX_KEY_LENGTH = 256


@dataclass(eq=False)
class Authenticator:
    reads: async_sessionmaker[AsyncSession]
    ttl_seconds: float
    _: KW_ONLY
    size: int = 10_000
    clock: Callable[[], float] = time.monotonic
    #: key hash → (caller, when it expires); the raw key is never kept
    _known: OrderedDict[str, tuple[AuthContext, float]] = field(
        init=False, repr=False, default_factory=OrderedDict
    )

    def on(self, reads: async_sessionmaker[AsyncSession]) -> Authenticator:
        """One that reads through `reads` and keeps nothing (a test's rolled-back database)."""
        return Authenticator(reads, 0, clock=self.clock)

    async def authenticate(self, raw_key: str) -> AuthContext | None:
        """The caller behind an API key, or None when the key is unknown or revoked."""
        if not raw_key or len(raw_key) > MAX_KEY_LENGTH:
            return None
        digest = hash_key(raw_key)
        now = self.clock()
        known = self._known.get(digest)
        if known is not None and known[1] > now:
            return known[0]
        async with self.reads() as session:
            caller = await authenticate_hash(session, digest)
        if caller is None:
            self._known.pop(digest, None)
        elif self.ttl_seconds > 0:
            self._known[digest] = (caller, now + self.ttl_seconds)
            self._known.move_to_end(digest)
            while len(self._known) > self.size:
                self._known.popitem(last=False)
        return caller

    def forget(self, key_hash: str) -> None:
        """Stop accepting a key at once in this process (it was revoked here)."""
        self._known.pop(key_hash, None)
