"""Chooses the stream broker for the process: with a Redis client, the relay (memory for this
process's readers, Redis Streams for every replica), otherwise the in-process broker of the
embedded default."""

from __future__ import annotations

from redis.asyncio import Redis

from chatsvc.streaming.broker import StreamBroker
from chatsvc.streaming.memory_broker import MemoryBroker
from chatsvc.streaming.redis_broker import RedisBroker
from chatsvc.streaming.relay import RelayBroker


def build_broker(
    redis: Redis | None,
    *,
    prefix: str = "chatsvc:",
    maxlen: int = 100_000,
    idle_ttl_seconds: int = 3600,
) -> StreamBroker:
    """The broker for this process; the Redis client stays owned by the caller. `prefix` only
    applies to Redis; `maxlen` caps the entries kept per stream; a stream nobody finishes is
    dropped `idle_ttl_seconds` after its last event."""
    if redis is not None:
        remote = RedisBroker(redis, prefix=prefix, maxlen=maxlen, idle_ttl_seconds=idle_ttl_seconds)
        return RelayBroker(remote)
    return MemoryBroker(maxlen=maxlen, idle_ttl_seconds=idle_ttl_seconds)
