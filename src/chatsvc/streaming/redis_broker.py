"""The production stream broker on Redis Streams: one stream key per generation, entry ids are the
Redis entry ids (`<milliseconds>-<sequence>`), cancel flags are keys with a time to live."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from redis.asyncio import Redis

from chatsvc.streaming.broker import BrokerEntry

# Both halves of a Redis stream id are unsigned 64-bit integers; Redis also accepts shorthands
# ("$", "+", "-", "0", "123") but we only ever hand out full ids, so only those come back.
_ID = re.compile(r"(\d{1,20})-(\d{1,20})")
_U64_MAX = 2**64 - 1


def parse_redis_id(value: str) -> str:
    """Return `value` if it is a full Redis stream id, else raise ValueError (a client sent a
    garbage Last-Event-ID: the caller answers 400 rather than letting Redis raise)."""
    match = _ID.fullmatch(value)
    if match is None or int(match[1]) > _U64_MAX or int(match[2]) > _U64_MAX:
        raise ValueError(f"invalid event id {value[:64]!r}: expected '<milliseconds>-<sequence>'")
    return value


def _text(value: bytes | str) -> str:
    # The client may or may not be built with decode_responses=True.
    return value.decode() if isinstance(value, bytes) else value


def _field(fields: Mapping[Any, Any], name: str) -> bytes | str:
    value: bytes | str | None = fields.get(name.encode())
    if value is None:
        value = fields[name]
    return value


class RedisBroker:
    """StreamBroker on Redis Streams.

    Keys: `<prefix>stream:<stream>` (the stream), `<prefix>cancel:<generation_id>` (the cancel
    flag); a cancel request is also PUBLISHed on the channel `<prefix>cancel` (message: the
    generation id) for processes that would rather listen than poll.

    `after` ids must be full Redis ids `<ms>-<seq>` as returned by `publish`; anything else raises
    ValueError before Redis is asked. `block_seconds <= 0` reads without blocking.

    Every publish also resets the stream's time to live to `idle_ttl_seconds`, so a stream whose
    generation died before `finish` does not stay in Redis forever; `finish` then shortens it.

    The Redis client belongs to the caller (built in the lifespan): `close` leaves it open. Each
    blocked read holds one pooled connection for up to `block_seconds`, so the client must have no
    `socket_timeout` shorter than the longest block and a pool large enough for the open streams.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "chatsvc:",
        maxlen: int = 100_000,
        idle_ttl_seconds: int = 3600,
    ) -> None:
        if maxlen < 1:
            raise ValueError("maxlen must be at least 1")
        if idle_ttl_seconds < 1:
            raise ValueError("idle_ttl_seconds must be at least 1")
        self.redis = redis
        self._prefix = prefix
        self._maxlen = maxlen
        self.idle_ttl_seconds = idle_ttl_seconds
        self.cancel_channel = f"{prefix}cancel"

    def stream_key(self, stream: str) -> str:
        return f"{self._prefix}stream:{stream}"

    def _cancel_key(self, generation_id: str) -> str:
        return f"{self._prefix}cancel:{generation_id}"

    async def publish(self, stream: str, event: str, data: dict[str, Any]) -> str:
        key = self.stream_key(stream)
        payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        # One round trip for both commands; not a transaction, none is needed.
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xadd(key, {"event": event, "data": payload}, maxlen=self._maxlen, approximate=True)
            pipe.expire(key, self.idle_ttl_seconds)
            entry_id, _ = await pipe.execute()
        return _text(entry_id)

    async def append(self, stream: str, event: str, data: dict[str, Any]) -> str:
        """Ids are Redis's own (time-based): the same as `publish`."""
        return await self.publish(stream, event, data)

    async def read(
        self, stream: str, after: str | None, *, block_seconds: float, count: int = 512
    ) -> list[BrokerEntry]:
        start = "0-0" if after is None else parse_redis_id(after)
        if count < 1:
            raise ValueError("count must be at least 1")
        # BLOCK 0 would mean "forever" to Redis; no BLOCK at all is the non-blocking read.
        block = max(1, math.ceil(block_seconds * 1000)) if block_seconds > 0 else None
        response = await self.redis.xread(
            {self.stream_key(stream): start}, count=count, block=block
        )
        return [self.entry(entry_id, fields) for entry_id, fields in self.entries_of(response)]

    @staticmethod
    def entry(entry_id: Any, fields: Mapping[Any, Any]) -> BrokerEntry:
        """One event written by `publish`."""
        return BrokerEntry(
            id=_text(entry_id),
            event=_text(_field(fields, "event")),
            data=json.loads(_field(fields, "data")),
        )

    @staticmethod
    def entries_of(response: Any) -> Sequence[tuple[Any, Mapping[Any, Any]]]:
        """The entries of the single stream an XREAD asked for, under RESP2 ([[key, entries]])
        or RESP3 ({key: [entries]}); nothing (None, [] or {}) on timeout."""
        if not response:
            return []
        entries: Sequence[tuple[Any, Mapping[Any, Any]]]
        if isinstance(response, Mapping):
            (value,) = response.values()
            entries = value[0]
        else:
            entries = response[0][1]
        return entries

    async def finish(self, stream: str, ttl_seconds: int) -> None:
        # EXPIRE with ttl <= 0 deletes the key at once, which is what "keep it for 0 s" means.
        await self.redis.expire(self.stream_key(stream), ttl_seconds)

    async def request_cancel(self, generation_id: str, ttl_seconds: int) -> None:
        if ttl_seconds < 1:
            raise ValueError("ttl_seconds must be at least 1")
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(self._cancel_key(generation_id), "1", ex=ttl_seconds)
            pipe.publish(self.cancel_channel, generation_id)
            await pipe.execute()

    async def cancel_requested(self, generation_id: str) -> bool:
        found: int = await self.redis.exists(self._cancel_key(generation_id))
        return found > 0

    def open(self, stream: str) -> None:
        """Nothing to prepare: every reader reads from Redis."""

    def on_cancel(self, callback: Callable[[str], None]) -> None:
        raise NotImplementedError("RedisBroker does not listen for cancels; use RelayBroker")

    async def start(self) -> None:
        """Nothing to start."""

    async def close(self) -> None:
        """Nothing to release: the Redis client is the caller's."""
