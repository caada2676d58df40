"""The in-process stream broker of the embedded default (no Redis): streams and cancel flags live in
this process's memory, bounded per stream (maxlen) and in time (ttl), and vanish on restart."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chatsvc.streaming.broker import BrokerEntry

_ID = re.compile(r"\d{1,19}")  # ids stay far below 10**19 in a process's life


def parse_memory_id(value: str) -> int:
    """The number of a memory broker id, or ValueError for anything else (a client sent a
    garbage Last-Event-ID: the caller answers 400)."""
    if _ID.fullmatch(value) is None:
        raise ValueError(f"invalid event id {value[:64]!r}: expected a decimal number")
    return int(value)


@dataclass(slots=True, eq=False)
class _Stream:
    # Entry number n (its id is str(n), from 1) sits at entries[n - base]; entries[:head] are
    # trimmed and compacted away in bulk, so a publish costs O(1) amortized and a read indexes
    # straight to its first entry.
    entries: list[BrokerEntry] = field(default_factory=list)
    base: int = 1
    head: int = 0
    # Set (and replaced) on every publish: readers wait on the one current when they looked.
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    expires_at: float = 0.0
    timer: asyncio.TimerHandle | None = None


class MemoryBroker:
    """StreamBroker in process memory.

    Ids are decimal strings "1", "2", ... increasing by one per stream (compare them as numbers,
    not as strings); `after` must be such a number (any decimal, even one not handed out yet),
    anything else raises ValueError. `block_seconds <= 0` reads without blocking.

    Bounds: a stream keeps its last `maxlen` entries (a reader behind that resumes at the oldest
    one kept); a stream is dropped `ttl_seconds` after `finish`, or `idle_ttl_seconds` after its
    last publish (or after a read created it) when nobody finishes it; cancel flags are dropped
    at their ttl. Every expiry is one timer per stream or flag, not a sweep.

    `data` is kept as given, not copied: publishers must not mutate it afterwards.
    """

    def __init__(self, *, maxlen: int = 100_000, idle_ttl_seconds: float = 3600) -> None:
        if maxlen < 1:
            raise ValueError("maxlen must be at least 1")
        if idle_ttl_seconds <= 0:
            raise ValueError("idle_ttl_seconds must be positive")
        self._maxlen = maxlen
        self._idle_ttl = idle_ttl_seconds
        self._streams: dict[str, _Stream] = {}
        self._cancels: dict[str, asyncio.TimerHandle] = {}
        self._cancel_callbacks: list[Callable[[str], None]] = []
        self._closed = False

    def open(self, stream: str) -> None:
        """Nothing to prepare: every stream lives in this process."""

    async def start(self) -> None:
        """Nothing to start."""

    def on_cancel(self, callback: Callable[[str], None]) -> None:
        """Call `callback(generation_id)` when a cancel is asked."""
        self._cancel_callbacks.append(callback)

    # --- streams ---------------------------------------------------------------------------------

    def _stream(self, name: str, loop: asyncio.AbstractEventLoop) -> _Stream:
        found = self._streams.get(name)
        if found is None:
            found = self._streams[name] = _Stream()
            self._expire_at(name, found, loop, loop.time() + self._idle_ttl)
        return found

    def _expire_at(
        self, name: str, stream: _Stream, loop: asyncio.AbstractEventLoop, when: float
    ) -> None:
        stream.expires_at = when
        # A later deadline only moves expires_at (O(1) per publish); the pending timer sees it
        # when it fires and sleeps again. An earlier one needs a new timer.
        if stream.timer is None or when < stream.timer.when():
            if stream.timer is not None:
                stream.timer.cancel()
            stream.timer = loop.call_at(when, self._on_timer, name, stream, loop)

    def _on_timer(self, name: str, stream: _Stream, loop: asyncio.AbstractEventLoop) -> None:
        # Compared with the timer's own deadline, not loop.time(): asyncio may fire a timer up to
        # one clock resolution early.
        if stream.timer is not None and stream.expires_at > stream.timer.when():
            stream.timer = loop.call_at(stream.expires_at, self._on_timer, name, stream, loop)
            return
        stream.timer = None
        if self._streams.get(name) is stream:
            del self._streams[name]
        # Readers blocked on the dropped stream look again (and wait on a fresh one).
        stream.wake.set()

    async def publish(self, stream: str, event: str, data: dict[str, Any]) -> str:
        loop = asyncio.get_running_loop()
        state = self._stream(stream, loop)
        entry_id = str(state.base + len(state.entries))
        state.entries.append(BrokerEntry(id=entry_id, event=event, data=data))
        if len(state.entries) - state.head > self._maxlen:
            state.head += 1
            if state.head >= self._maxlen:  # compact once half the list is trimmed entries
                del state.entries[: state.head]
                state.base += state.head
                state.head = 0
        self._expire_at(stream, state, loop, loop.time() + self._idle_ttl)
        wake, state.wake = state.wake, asyncio.Event()
        wake.set()
        return entry_id

    async def append(self, stream: str, event: str, data: dict[str, Any]) -> str:
        """One process, one memory: the same as `publish`."""
        return await self.publish(stream, event, data)

    async def read(
        self, stream: str, after: str | None, *, block_seconds: float, count: int = 512
    ) -> list[BrokerEntry]:
        last = 0 if after is None else parse_memory_id(after)
        if count < 1:
            raise ValueError("count must be at least 1")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + block_seconds
        while not self._closed:
            state = self._streams.get(stream)
            if state is not None:
                start = max(last + 1 - state.base, state.head)
                if start < len(state.entries):
                    return state.entries[start : start + count]
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            # A reader may arrive before the first publish: the stream state it creates gives
            # it something to wait on and expires like any idle stream.
            wake = (state or self._stream(stream, loop)).wake
            try:
                async with asyncio.timeout(remaining):
                    await wake.wait()
            except TimeoutError:
                return []
        return []

    async def finish(self, stream: str, ttl_seconds: int) -> None:
        state = self._streams.get(stream)
        if state is not None:
            loop = asyncio.get_running_loop()
            self._expire_at(stream, state, loop, loop.time() + max(ttl_seconds, 0))

    # --- cancel flags ----------------------------------------------------------------------------

    async def request_cancel(self, generation_id: str, ttl_seconds: int) -> None:
        if ttl_seconds < 1:
            raise ValueError("ttl_seconds must be at least 1")
        previous = self._cancels.get(generation_id)
        if previous is not None:
            previous.cancel()
        self._cancels[generation_id] = asyncio.get_running_loop().call_later(
            ttl_seconds, self._cancels.pop, generation_id, None
        )
        for callback in self._cancel_callbacks:
            callback(generation_id)

    async def cancel_requested(self, generation_id: str) -> bool:
        return generation_id in self._cancels

    async def close(self) -> None:
        """Drop everything; blocked and later readers return []."""
        self._closed = True
        for handle in self._cancels.values():
            handle.cancel()
        self._cancels.clear()
        streams, self._streams = self._streams, {}
        for state in streams.values():
            if state.timer is not None:
                state.timer.cancel()
            state.wake.set()
