"""Both stream brokers against one contract: the in-process one and Redis Streams on the real Redis
(as the app builds its client, and with RESP3 + decoded responses)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from chatsvc.streaming.broker import BrokerEntry, StreamBroker
from chatsvc.streaming.factory import build_broker
from chatsvc.streaming.memory_broker import MemoryBroker
from chatsvc.streaming.redis_broker import RedisBroker
from chatsvc.streaming.relay import RelayBroker

REDIS_URL = os.environ.get("CHATSVC_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
WAIT = 5.0  # generous upper bound for anything that should happen "at once"


async def _redis_client(**options: Any) -> Redis:
    client: Redis = Redis.from_url(REDIS_URL, **options)
    try:
        await client.ping()
    except OSError as exc:  # redis.ConnectionError is an OSError too
        await client.aclose()
        pytest.fail(f"Redis is not reachable at {REDIS_URL} (CHATSVC_TEST_REDIS_URL): {exc}")
    return client


async def _drop_prefix(client: Redis, prefix: str) -> None:
    keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)


@pytest.fixture(params=["memory", "redis", "redis-resp3", "relay", "relay-resp3"])
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[StreamBroker]:
    if request.param == "memory":
        memory = MemoryBroker()
        yield memory
        await memory.close()
        return
    options: dict[str, Any] = (
        {"protocol": 3, "decode_responses": True} if request.param.endswith("resp3") else {}
    )
    client = await _redis_client(**options)
    prefix = f"chatsvc-test:{uuid.uuid4().hex}:"
    found: StreamBroker = (
        RelayBroker(RedisBroker(client, prefix=prefix))
        if request.param.startswith("relay")
        else RedisBroker(client, prefix=prefix)
    )
    try:
        yield found
    finally:
        await found.close()
        await _drop_prefix(client, prefix)
        await client.aclose()


def _events(entries: list[BrokerEntry]) -> list[str]:
    return [entry.event for entry in entries]


def _key(entry_id: str) -> tuple[int, ...]:
    """Ids as comparable numbers: "<n>" for memory, "<ms>-<seq>" for Redis."""
    return tuple(int(part) for part in entry_id.split("-"))


async def test_ids_increase_and_entries_round_trip(broker: StreamBroker) -> None:
    data = {"text": "héllo\nworld", "n": 1, "nested": {"list": [1, None, True]}}
    ids = [await broker.publish("s", "delta", data) for _ in range(5)]
    assert [_key(i) for i in ids] == sorted({_key(i) for i in ids})
    entries = await broker.read("s", None, block_seconds=0)
    assert [e.id for e in entries] == ids
    assert entries[0] == BrokerEntry(id=ids[0], event="delta", data=data)


async def test_read_after_returns_only_later_entries(broker: StreamBroker) -> None:
    ids = [await broker.publish("s", f"e{i}", {"i": i}) for i in range(6)]
    later = await broker.read("s", ids[2], block_seconds=0)
    assert [e.id for e in later] == ids[3:]
    assert _events(later) == ["e3", "e4", "e5"]
    assert await broker.read("s", ids[-1], block_seconds=0) == []


async def test_streams_are_separate(broker: StreamBroker) -> None:
    await broker.publish("a", "only-a", {})
    await broker.publish("b", "only-b", {})
    assert _events(await broker.read("a", None, block_seconds=0)) == ["only-a"]
    assert _events(await broker.read("b", None, block_seconds=0)) == ["only-b"]


async def test_unknown_stream_reads_empty_after_timeout(broker: StreamBroker) -> None:
    assert await broker.read("never-written", None, block_seconds=0) == []
    assert await broker.read("never-written", None, block_seconds=0.2) == []


async def test_blocking_read_wakes_on_publish(broker: StreamBroker) -> None:
    # Both a stream that does not exist yet and one read up to its end must wake.
    first = await broker.publish("existing", "first", {})
    for stream, after in (("fresh", None), ("existing", first)):
        reader = asyncio.create_task(broker.read(stream, after, block_seconds=WAIT))
        await asyncio.sleep(0.1)  # let the reader block first
        assert not reader.done()
        published = await broker.publish(stream, "woke", {"x": 1})
        entries = await asyncio.wait_for(reader, WAIT)
        assert [(e.id, e.event) for e in entries] == [(published, "woke")]


async def test_two_readers_both_get_everything(broker: StreamBroker) -> None:
    async def follow() -> list[str]:
        seen: list[str] = []
        after: str | None = None
        while "done" not in seen:
            entries = await broker.read("s", after, block_seconds=WAIT, count=3)
            assert entries, "reader timed out"
            seen.extend(_events(entries))
            after = entries[-1].id
        return seen

    readers = [asyncio.create_task(follow()) for _ in range(2)]
    expected = [f"e{i}" for i in range(10)] + ["done"]
    for event in expected:
        await broker.publish("s", event, {})
        await asyncio.sleep(0)
    results = await asyncio.wait_for(asyncio.gather(*readers), WAIT)
    assert results == [expected, expected]


async def test_finish_keeps_stream_until_ttl(broker: StreamBroker) -> None:
    await broker.publish("done", "message.completed", {"ok": True})
    await broker.publish("other", "delta", {})
    await broker.finish("done", 1)
    assert _events(await broker.read("done", None, block_seconds=0)) == ["message.completed"]
    await asyncio.sleep(1.5)
    assert await broker.read("done", None, block_seconds=0) == []
    assert _events(await broker.read("other", None, block_seconds=0)) == ["delta"]


async def test_cancel_flag_round_trip_and_expiry(broker: StreamBroker) -> None:
    assert not await broker.cancel_requested("gen-1")
    await broker.request_cancel("gen-1", 1)
    await broker.request_cancel("gen-1", 1)  # idempotent
    assert await broker.cancel_requested("gen-1")
    assert not await broker.cancel_requested("gen-2")
    await asyncio.sleep(1.5)
    assert not await broker.cancel_requested("gen-1")


GARBAGE_IDS = [
    "",
    "abc",
    "1-",
    "-1",
    "1-2-3",
    "$",
    ">",
    "+",
    "-",
    "1.5",
    " 1",
    "1\n2",
    "0x10",
    "é",
    "9" * 40,
    "9" * 40 + "-0",
    "1" * 10_000,
]


@pytest.mark.parametrize("garbage", GARBAGE_IDS)
async def test_garbage_after_id_raises_value_error(broker: StreamBroker, garbage: str) -> None:
    await broker.publish("s", "delta", {})
    with pytest.raises(ValueError, match="invalid event id"):
        await broker.read("s", garbage, block_seconds=0)


async def test_other_brokers_id_format_is_rejected(broker: StreamBroker) -> None:
    foreign = "1-0" if isinstance(broker, MemoryBroker) else "1"
    with pytest.raises(ValueError, match="invalid event id"):
        await broker.read("s", foreign, block_seconds=0)


async def test_many_entries_read_back_in_order_in_chunks(broker: StreamBroker) -> None:
    total = 10_000
    for i in range(total):
        await broker.publish("big", "delta", {"i": i})
    seen: list[int] = []
    after: str | None = None
    while entries := await broker.read("big", after, block_seconds=0, count=512):
        assert len(entries) <= 512
        seen.extend(e.data["i"] for e in entries)
        after = entries[-1].id
    assert seen == list(range(total))


async def test_memory_broker_keeps_the_last_maxlen_entries() -> None:
    broker = MemoryBroker(maxlen=3)
    ids = [await broker.publish("s", "delta", {"i": i}) for i in range(10)]
    assert ids == [str(n) for n in range(1, 11)]
    assert [e.data["i"] for e in await broker.read("s", None, block_seconds=0)] == [7, 8, 9]
    # A reader left behind the trimmed part resumes at the oldest entry kept.
    assert [e.id for e in await broker.read("s", "2", block_seconds=0)] == ["8", "9", "10"]
    assert [e.id for e in await broker.read("s", "8", block_seconds=0)] == ["9", "10"]
    await broker.close()


async def test_memory_broker_drops_streams_nobody_finishes() -> None:
    broker = MemoryBroker(idle_ttl_seconds=2)
    await broker.publish("abandoned", "delta", {})
    await asyncio.sleep(1.2)
    await broker.publish("abandoned", "delta", {})  # a publish keeps it alive
    await asyncio.sleep(1.2)
    assert len(await broker.read("abandoned", None, block_seconds=0)) == 2
    await asyncio.sleep(1.5)
    assert await broker.read("abandoned", None, block_seconds=0) == []
    await broker.close()


async def test_memory_broker_close_releases_blocked_readers() -> None:
    broker = MemoryBroker()
    reader = asyncio.create_task(broker.read("s", None, block_seconds=60))
    await asyncio.sleep(0.05)
    await broker.close()
    assert await asyncio.wait_for(reader, WAIT) == []


async def test_redis_broker_trims_approximately_and_uses_its_prefix() -> None:
    client = await _redis_client()
    prefix = f"chatsvc-test:{uuid.uuid4().hex}:"
    try:
        broker = RedisBroker(client, prefix=prefix, maxlen=10)
        ids = [await broker.publish("s", "delta", {"i": i}) for i in range(1000)]
        await broker.request_cancel("g", 60)
        entries = await broker.read("s", None, block_seconds=0, count=2000)
        assert 10 <= len(entries) < 1000
        assert entries[-1].id == ids[-1]
        keys = sorted([key async for key in client.scan_iter(match=f"{prefix}*")])
        assert keys == [f"{prefix}cancel:g".encode(), f"{prefix}stream:s".encode()]
        # An unfinished stream still expires (idle time to live), a finished one sooner.
        assert 0 < await client.ttl(f"{prefix}stream:s") <= 3600
        await broker.finish("s", 30)
        assert 0 < await client.ttl(f"{prefix}stream:s") <= 30
    finally:
        await _drop_prefix(client, prefix)
        await client.aclose()


async def test_redis_broker_publishes_cancel_requests() -> None:
    client = await _redis_client()
    prefix = f"chatsvc-test:{uuid.uuid4().hex}:"
    broker = RedisBroker(client, prefix=prefix)
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe(broker.cancel_channel)
        await broker.request_cancel("gen-9", 60)
        message = None
        async with asyncio.timeout(WAIT):
            while message is None or message["type"] != "message":
                message = await pubsub.get_message(timeout=WAIT)
        assert message["data"] == b"gen-9"
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]  # (untyped in redis-py 5)
        await _drop_prefix(client, prefix)
        await client.aclose()


async def test_factory_picks_the_relay_when_a_client_is_given() -> None:
    client = Redis.from_url(REDIS_URL)  # not connected until used
    assert isinstance(build_broker(client), RelayBroker)
    assert isinstance(build_broker(None), MemoryBroker)
    await client.aclose()


# --- the relay: memory for this process, Redis for the others ------------------------------------


@pytest.fixture
async def replicas() -> AsyncIterator[tuple[RelayBroker, RelayBroker, Redis, str]]:
    """Two relay brokers on one Redis, as two API replicas have them."""
    client = await _redis_client()
    prefix = f"chatsvc-test:{uuid.uuid4().hex}:"
    here, there = (
        RelayBroker(RedisBroker(client, prefix=prefix)),
        RelayBroker(RedisBroker(client, prefix=prefix)),
    )
    try:
        yield here, there, client, prefix
    finally:
        await here.close()
        await there.close()
        await _drop_prefix(client, prefix)
        await client.aclose()


async def test_readers_of_this_process_get_events_before_redis_does(
    replicas: tuple[RelayBroker, RelayBroker, Redis, str],
) -> None:
    here, _there, client, prefix = replicas
    here.open("s")
    reader = asyncio.create_task(here.read("s", None, block_seconds=WAIT))
    await asyncio.sleep(0.05)
    published = await here.publish("s", "delta", {"text": "hi"})
    entries = await asyncio.wait_for(reader, WAIT)
    assert [(e.id, e.event, e.data) for e in entries] == [(published, "delta", {"text": "hi"})]
    # Nothing went to Redis yet: it is written in batches.
    assert await client.xlen(f"{prefix}stream:s") == 0


async def test_another_replica_reads_the_same_events_with_the_same_ids_in_batches(
    replicas: tuple[RelayBroker, RelayBroker, Redis, str],
) -> None:
    here, there, client, prefix = replicas
    ids = [await here.publish("s", "delta", {"i": i}) for i in range(50)]
    await here.finish("s", 60)
    assert ids == [f"0-{n}" for n in range(1, 51)]
    # One Redis entry holds a batch of events.
    assert await client.xlen(f"{prefix}stream:s") == 1
    elsewhere = await there.read("s", None, block_seconds=0, count=1000)
    assert [(e.id, e.data["i"]) for e in elsewhere] == [(ids[i], i) for i in range(50)]
    # A client that had the first 20 events resumes on the other replica after them.
    resumed = await there.read("s", ids[19], block_seconds=0, count=1000)
    assert [e.id for e in resumed] == ids[20:]
    assert await there.read("s", ids[19], block_seconds=0, count=5) == elsewhere[20:25]


async def test_a_blocked_reader_elsewhere_wakes_when_the_batch_is_written(
    replicas: tuple[RelayBroker, RelayBroker, Redis, str],
) -> None:
    here, there, _client, _prefix = replicas
    here.open("s")
    first = await here.publish("s", "message.created", {})
    await here.flush()
    reader = asyncio.create_task(there.read("s", first, block_seconds=WAIT))
    await asyncio.sleep(0.05)
    second = await here.publish("s", "delta", {"text": "a"})
    entries = await asyncio.wait_for(reader, WAIT)
    assert [e.id for e in entries] == [second]


async def test_an_event_appended_elsewhere_after_the_end_is_read_too(
    replicas: tuple[RelayBroker, RelayBroker, Redis, str],
) -> None:
    here, _there, client, prefix = replicas
    ids = [await here.publish("s", "delta", {"i": i}) for i in range(3)]
    await here.finish("s", 60)
    # The sweeper ends a stream with a plain Redis publish: an ordinary Redis id, after ours.
    late = await RedisBroker(client, prefix=prefix).publish("s", "error", {"code": "x"})
    entries = await here.read("s", ids[-1], block_seconds=0)
    assert [(e.id, e.event) for e in entries] == [(late, "error")]
    # A reader from the start gets ours, then (reading on) the late one.
    everything: list[BrokerEntry] = []
    after: str | None = None
    while entries := await here.read("s", after, block_seconds=0):
        everything.extend(entries)
        after = entries[-1].id
    assert [e.id for e in everything] == [*ids, late]


async def test_the_end_a_replica_appends_to_a_dead_producers_stream_reaches_resumed_readers(
    replicas: tuple[RelayBroker, RelayBroker, Redis, str],
) -> None:
    """The producer died mid-stream (never finished): the replica that recovers its generation
    appends the terminal event, and a client resuming anywhere after the last event it had gets
    it (a `publish` of that replica would number it 0-1 and Redis would refuse it)."""
    here, there, client, prefix = replicas
    here.open("s")
    ids = [await here.publish("s", "delta", {"i": i}) for i in range(5)]
    await here.flush()  # what a client on another replica could have had before the death
    end = await there.append("s", "error", {"code": "interrupted"})
    await there.finish("s", 60)
    third = RelayBroker(RedisBroker(client, prefix=prefix))
    try:
        for reader in (there, third):
            entries = await reader.read("s", ids[2], block_seconds=0)
            assert [(e.id, e.event) for e in entries] == [
                (ids[3], "delta"),
                (ids[4], "delta"),
                (end, "error"),
            ]
    finally:
        await third.close()


async def test_a_cancel_asked_on_one_replica_reaches_the_others_listener(
    replicas: tuple[RelayBroker, RelayBroker, Redis, str],
) -> None:
    here, there, _client, _prefix = replicas
    heard: asyncio.Queue[str] = asyncio.Queue()
    here.on_cancel(heard.put_nowait)
    await here.start()
    await asyncio.sleep(0.2)  # the listener subscribes
    await there.request_cancel("gen-7", 60)
    assert await asyncio.wait_for(heard.get(), WAIT) == "gen-7"
    assert await here.cancel_requested("gen-7")


async def test_the_memory_broker_calls_cancel_listeners_at_once() -> None:
    broker = MemoryBroker()
    heard: list[str] = []
    broker.on_cancel(heard.append)
    await broker.request_cancel("gen-1", 60)
    assert heard == ["gen-1"]
    await broker.close()
