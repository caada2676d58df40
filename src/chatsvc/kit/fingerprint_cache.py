"""FingerprintCache: values built from database rows (search indexes), kept in process while a
fingerprint of those rows (count, last id, last update) is unchanged, so a call does not re-read
and rebuild them all. Bounded LRU."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Final, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
R = TypeVar("R")

#: rows built on the event loop; more are built in a thread
_IN_LOOP: Final = 200


class FingerprintCache(Generic[K, V]):
    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[K, tuple[object, V]] = OrderedDict()

    async def get(
        self,
        key: K,
        fingerprint: object,
        load: Callable[[], Awaitable[Sequence[R]]],
        build: Callable[[Sequence[R]], V],
    ) -> V:
        """The value kept under `key` when it was built at this `fingerprint`; else `build` of
        the rows `load` reads, kept in place of the older one."""
        cached = self._entries.get(key)
        if cached is not None and cached[0] == fingerprint:
            self._entries.move_to_end(key)
            return cached[1]
        rows = await load()
        # Tokenising thousands of items takes a while: keep it off the event loop.
        value = await asyncio.to_thread(build, rows) if len(rows) > _IN_LOOP else build(rows)
        self._entries[key] = (fingerprint, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return value
