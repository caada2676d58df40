"""The production stream broker: streams produced in this process are served to this process's
readers from memory (in-process fan-out, no round trip per token), and written to Redis Streams in
batches (every few milliseconds, one XADD per stream per batch) for readers on other replicas and
for resumes; streams produced elsewhere are read from Redis. Cancels reach this process through
one shared Redis pub/sub listener, not a poll per generation.

Ids: the events of a stream produced here are numbered `0-1`, `0-2`, ... (valid Redis stream ids,
so one id means the same event wherever it is read); a batch is one Redis entry whose id is its
last event's, holding the events as JSON. An event another process appends (`append`: the
recovery ending a dead generation's stream) has an ordinary Redis id, which sorts after every
`0-n`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from chatsvc.streaming.broker import BrokerEntry
from chatsvc.streaming.redis_broker import RedisBroker, parse_redis_id

logger = logging.getLogger("chatsvc.streaming")
#: how long a batch gathers before it goes to Redis (`finish` writes at once): readers in this
#: process never wait for it; readers elsewhere get the events this much later, in order
FLUSH_SECONDS = 0.05
#: how long a finished stream stays in memory for late readers here (Redis keeps it longer)
LOCAL_KEEP_SECONDS = 60.0
#: the field of a batch entry
EVENTS = "events"


def _order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = parse_redis_id(entry_id).partition("-")
    return int(ms), int(seq)


@dataclass(slots=True, eq=False)
class _Local:
    """A stream produced in this process: every event so far (entries[n - 1] is `0-n`)."""

    entries: list[BrokerEntry] = field(default_factory=list)
    #: set (and replaced) on every publish: readers wait on the one current when they looked
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    #: entries[flushed:] are not in Redis yet
    flushed: int = 0
    finished: bool = False
    ttl_seconds: int | None = None


class RelayBroker:
    """StreamBroker: in memory for this process, Redis Streams for every process."""

    def __init__(
        self,
        remote: RedisBroker,
        *,
        flush_seconds: float = FLUSH_SECONDS,
        local_keep_seconds: float = LOCAL_KEEP_SECONDS,
    ) -> None:
        """`remote`: the Redis streams every process shares (its prefix and bounds apply)."""
        self.remote = remote
        self._redis: Redis = remote.redis
        self._idle_ttl = remote.idle_ttl_seconds
        self._flush_seconds = flush_seconds
        self._local_keep = local_keep_seconds
        self._local: dict[str, _Local] = {}
        self._dirty: dict[str, _Local] = {}
        self._flush_handle: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()
        self._cancel_callbacks: list[Callable[[str], None]] = []
        self._listener: asyncio.Task[None] | None = None
        self._closed = False

    # --- streams ---------------------------------------------------------------------------------

    def open(self, stream: str) -> None:
        """This process produces `stream`: its readers here read it from memory from now on."""
        if stream not in self._local:
            self._local[stream] = _Local()

    async def publish(self, stream: str, event: str, data: dict[str, Any]) -> str:
        local = self._local.get(stream)
        if local is None:
            local = self._local[stream] = _Local()
        entry_id = f"0-{len(local.entries) + 1}"
        # Encoded once here, for every reader's SSE frame and for the batch written to Redis.
        encoded = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        local.entries.append(BrokerEntry(entry_id, event, data, encoded))
        wake, local.wake = local.wake, asyncio.Event()
        wake.set()
        self._dirty[stream] = local
        self._schedule_flush()
        return entry_id

    async def append(self, stream: str, event: str, data: dict[str, Any]) -> str:
        """A stream produced here takes the event as `publish` does; one produced elsewhere (or
        by a process that died) gets it from Redis with an ordinary Redis id, after every `0-n`
        of its producer (an id of ours, `0-1`, would be refused as not after the stream's top)."""
        if stream in self._local:
            return await self.publish(stream, event, data)
        return await self.remote.publish(stream, event, data)

    async def read(
        self, stream: str, after: str | None, *, block_seconds: float, count: int = 512
    ) -> list[BrokerEntry]:
        if count < 1:
            raise ValueError("count must be at least 1")
        local = self._local.get(stream)
        if local is None:
            return await self._read_remote(stream, after, block_seconds, count)
        start = 0 if after is None else self._position(local, after)
        if start >= len(local.entries) and not local.finished and block_seconds > 0:
            wake = local.wake
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(block_seconds):
                    await wake.wait()
        found = local.entries[start : start + count]
        if found or not local.finished:
            return found
        # Finished here: what others appended since (the sweeper's error) is only in Redis.
        return await self._read_remote(stream, after, 0, count)

    async def finish(self, stream: str, ttl_seconds: int) -> None:
        local = self._local.get(stream)
        if local is None:
            await self.remote.finish(stream, ttl_seconds)
            return
        local.finished = True
        local.ttl_seconds = ttl_seconds
        wake, local.wake = local.wake, asyncio.Event()
        wake.set()
        self._dirty[stream] = local
        await self.flush()
        keep = min(self._local_keep, max(ttl_seconds, 0))
        asyncio.get_running_loop().call_later(keep, self._forget, stream, local)

    def _forget(self, stream: str, local: _Local) -> None:
        if self._local.get(stream) is local and local.flushed == len(local.entries):
            del self._local[stream]

    @staticmethod
    def _position(local: _Local, after: str) -> int:
        """Index of the first entry after `after` (ValueError for a malformed id)."""
        ms, seq = _order(after)
        if ms == 0:
            return min(seq, len(local.entries))
        return len(local.entries)  # an id of an event appended elsewhere: after all of ours

    async def _read_remote(
        self, stream: str, after: str | None, block_seconds: float, count: int
    ) -> list[BrokerEntry]:
        start = "0-0" if after is None else parse_redis_id(after)
        block = max(1, math.ceil(block_seconds * 1000)) if block_seconds > 0 else None
        response = await self._redis.xread(
            {self.remote.stream_key(stream): start}, count=count, block=block
        )
        threshold = _order(start)
        found: list[BrokerEntry] = []
        for entry_id, fields in self.remote.entries_of(response):
            found.extend(
                entry for entry in _unbatched(entry_id, fields) if _order(entry.id) > threshold
            )
        return found[:count] if len(found) > count else found

    # --- writing to Redis ------------------------------------------------------------------------

    def _schedule_flush(self) -> None:
        if self._flush_handle is None and not self._closed:
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(self._flush_seconds, self._start_flush)

    def _start_flush(self) -> None:
        self._flush_handle = None
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self.flush(), name="stream-flush")
        else:
            self._schedule_flush()  # one flush at a time; the next one takes what gathered

    async def flush(self) -> None:
        """Write what gathered to Redis: one XADD per stream (its new events as one batch entry)
        and its time to live, in one round trip. One flush at a time, so batches never overlap."""
        async with self._flush_lock:
            await self._flush()

    async def _flush(self) -> None:
        dirty, self._dirty = self._dirty, {}
        if not dirty:
            return
        batches: list[tuple[_Local, int]] = []
        async with self._redis.pipeline(transaction=False) as pipe:
            for stream, local in dirty.items():
                end = len(local.entries)
                key = self.remote.stream_key(stream)
                if end > local.flushed:
                    payload = (
                        "["
                        + ",".join(_batched(e) for e in local.entries[local.flushed : end])
                        + "]"
                    )
                    pipe.xadd(key, {EVENTS: payload}, id=f"0-{end}")
                    batches.append((local, end))
                # A time to live when the stream first reaches Redis (so a stream whose process
                # dies goes away) and when it ends; not on every batch.
                if local.finished:
                    pipe.expire(key, local.ttl_seconds if local.ttl_seconds is not None else 0)
                elif local.flushed == 0:
                    pipe.expire(key, self._idle_ttl)
            try:
                results = await pipe.execute(raise_on_error=False)
            except Exception:
                logger.warning("writing %d streams to Redis failed", len(dirty), exc_info=True)
                for stream, local in dirty.items():
                    self._dirty.setdefault(stream, local)
                self._schedule_flush()
                return
        failures = [r for r in results if isinstance(r, Exception)]
        for local, end in batches:
            local.flushed = max(local.flushed, end)
        if failures:
            # A stream whose top id is past ours (another process appended to it) refuses the
            # batch; its readers here still have every event.
            logger.warning("Redis refused %d stream writes: %s", len(failures), failures[0])

    # --- cancels ---------------------------------------------------------------------------------

    def on_cancel(self, callback: Callable[[str], None]) -> None:
        """Call `callback(generation_id)` when a cancel is asked, in any process."""
        self._cancel_callbacks.append(callback)

    async def start(self) -> None:
        """Listen for cancels (one pub/sub connection for the process)."""
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="cancel-listener")

    async def _listen(self) -> None:
        delay = 0.5
        while not self._closed:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.remote.cancel_channel)
                    delay = 0.5
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._cancelled(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("cancel listener lost Redis; retrying in %.1fs", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _cancelled(self, raw: bytes | str) -> None:
        generation_id = raw.decode() if isinstance(raw, bytes) else raw
        for callback in self._cancel_callbacks:
            callback(generation_id)

    async def request_cancel(self, generation_id: str, ttl_seconds: int) -> None:
        await self.remote.request_cancel(generation_id, ttl_seconds)

    async def cancel_requested(self, generation_id: str) -> bool:
        return await self.remote.cancel_requested(generation_id)

    async def close(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        with contextlib.suppress(Exception):
            await self.flush()
        self._closed = True
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        for local in self._local.values():
            local.finished = True
            local.wake.set()


def _batched(entry: BrokerEntry) -> str:
    """One event of a batch entry, as the JSON array [id, event, data]."""
    data = entry.encoded or json.dumps(entry.data, separators=(",", ":"), ensure_ascii=False)
    return f"[{json.dumps(entry.id)},{json.dumps(entry.event)},{data}]"


def _unbatched(entry_id: Any, fields: Mapping[Any, Any]) -> list[BrokerEntry]:
    """The events of one Redis entry: a batch written by a RelayBroker, or one event."""
    raw = fields.get(EVENTS.encode(), fields.get(EVENTS))
    if raw is None:
        return [RedisBroker.entry(entry_id, fields)]
    return [BrokerEntry(str(i), str(e), d) for i, e, d in json.loads(raw)]
