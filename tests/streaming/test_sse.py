"""The SSE encoder seen by a real SSE client (httpx-sse) through a real uvicorn server on loopback:
frames, resuming by Last-Event-ID, heartbeats, headers, content negotiation, disconnects."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from httpx_sse import ServerSentEvent, aconnect_sse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chatsvc.kit.sse import encode_entry, last_event_id, sse_response, wants_event_stream
from chatsvc.streaming.broker import BrokerEntry, StreamBroker
from chatsvc.streaming.memory_broker import MemoryBroker

WAIT = 5.0
TERMINAL = {"message.completed", "error"}


@dataclass
class Server:
    url: str
    broker: StreamBroker
    closed: defaultdict[str, asyncio.Event]  # set when a stream's source iterator has finished


def _app(broker: StreamBroker, closed: defaultdict[str, asyncio.Event]) -> Starlette:
    async def follow(stream: str, after: str | None) -> AsyncIterator[BrokerEntry]:
        # What a streaming endpoint does: read the broker from `after` until a terminal event.
        try:
            while True:
                entries = await broker.read(stream, after, block_seconds=1)
                for entry in entries:
                    yield entry
                    if entry.event in TERMINAL:
                        return
                if entries:
                    after = entries[-1].id
        finally:
            closed[stream].set()

    async def events(request: Request) -> Response:
        stream = request.path_params["stream"]
        after = last_event_id(request)
        try:
            # Validates `after` before the 200 goes out, so garbage becomes a 400.
            await broker.read(stream, after, block_seconds=0, count=1)
        except ValueError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=400)
        ping = float(request.query_params.get("ping", "15"))
        return sse_response(follow(stream, after), ping_seconds=ping)

    async def negotiate(request: Request) -> Response:
        return JSONResponse({"sse": wants_event_stream(request), "last": last_event_id(request)})

    return Starlette(
        routes=[Route("/streams/{stream}", events), Route("/negotiate", negotiate)],
    )


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[Server]:
    broker = MemoryBroker()
    closed: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    host, port = sock.getsockname()
    # log_config=None: uvicorn's records reach the root logger, where caplog can see them.
    config = uvicorn.Config(
        _app(broker, closed), log_config=None, lifespan="off", timeout_graceful_shutdown=1
    )
    uvicorn_server = uvicorn.Server(config)
    task = asyncio.create_task(uvicorn_server.serve(sockets=[sock]))
    async with asyncio.timeout(WAIT):
        while not uvicorn_server.started:  # noqa: ASYNC110 (uvicorn offers a flag, no event)
            await asyncio.sleep(0.01)
    yield Server(f"http://{host}:{port}", broker, closed)
    uvicorn_server.should_exit = True
    await asyncio.wait_for(task, WAIT)
    sock.close()
    await broker.close()


@pytest.fixture
async def client(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=WAIT, trust_env=False) as found:
        yield found


async def _collect(client: httpx.AsyncClient, url: str, **kwargs: object) -> list[ServerSentEvent]:
    async with aconnect_sse(client, "GET", url, **kwargs) as source:
        assert source.response.status_code == 200
        return [event async for event in source.aiter_sse()]


async def _publish_turn(broker: StreamBroker, stream: str) -> list[str]:
    return [
        await broker.publish(stream, "message.created", {"message_id": 7}),
        await broker.publish(stream, "delta", {"text": "line one\nline two\r\n\nend «ü» \u2028"}),
        await broker.publish(stream, "delta", {"text": "data: not a field\n\nid: 99"}),
        await broker.publish(stream, "message.completed", {"message_id": 7, "usage": None}),
    ]


async def test_entries_arrive_as_id_event_and_json_data(
    server: Server, client: httpx.AsyncClient
) -> None:
    ids = await _publish_turn(server.broker, "turn")
    received = await _collect(client, "/streams/turn")
    assert [e.id for e in received] == ids
    assert [e.event for e in received] == ["message.created", "delta", "delta", "message.completed"]
    assert [e.json() for e in received] == [
        {"message_id": 7},
        {"text": "line one\nline two\r\n\nend «ü» \u2028"},  # multi-line text survives intact
        {"text": "data: not a field\n\nid: 99"},
        {"message_id": 7, "usage": None},
    ]


async def test_data_is_compact_json_on_one_line(server: Server, client: httpx.AsyncClient) -> None:
    await server.broker.publish("raw", "delta", {"text": "a\nb", "list": [1, 2]})
    await server.broker.publish("raw", "message.completed", {})
    async with client.stream("GET", "/streams/raw") as response:
        body = (await response.aread()).decode()
    assert 'event: delta\ndata: {"text":"a\\nb","list":[1,2]}\n\n' in body


async def test_last_event_id_header_resumes_after_it(
    server: Server, client: httpx.AsyncClient
) -> None:
    ids = await _publish_turn(server.broker, "resume-header")
    received = await _collect(client, "/streams/resume-header", headers={"Last-Event-ID": ids[1]})
    assert [e.id for e in received] == ids[2:]


async def test_last_event_id_query_parameter_is_the_fallback(
    server: Server, client: httpx.AsyncClient
) -> None:
    ids = await _publish_turn(server.broker, "resume-query")
    received = await _collect(client, f"/streams/resume-query?last_event_id={ids[2]}")
    assert [e.id for e in received] == ids[3:]
    # The header wins over the query parameter.
    received = await _collect(
        client,
        f"/streams/resume-query?last_event_id={ids[2]}",
        headers={"Last-Event-ID": ids[0]},
    )
    assert [e.id for e in received] == ids[1:]


async def test_garbage_last_event_id_is_a_client_error(
    server: Server, client: httpx.AsyncClient
) -> None:
    response = await client.get("/streams/x", headers={"Last-Event-ID": "not-an-id"})
    assert response.status_code == 400
    assert "invalid event id" in response.json()["detail"]


async def test_heartbeat_comments_and_headers(server: Server, client: httpx.AsyncClient) -> None:
    await server.broker.publish("slow", "message.created", {})
    lines: list[str] = []
    async with client.stream(
        "GET", "/streams/slow?ping=0.05", headers={"Accept": "text/event-stream"}
    ) as response:
        async for line in response.aiter_lines():
            lines.append(line)
            if line == ": ping" and lines.count(line) == 1:
                # The turn ends once a heartbeat came (not after a guessed pause).
                await server.broker.publish("slow", "message.completed", {})
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert ": ping" in lines
    assert "event: message.completed" in lines


async def test_events_stream_live_and_disconnect_stops_the_source(
    server: Server, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    async def publish_soon() -> None:
        await asyncio.sleep(0.2)
        await server.broker.publish("live", "delta", {"text": "hi"})

    publisher = asyncio.create_task(publish_soon())
    async with aconnect_sse(client, "GET", "/streams/live?ping=0.05") as source:
        # The stream has no terminal event: this one arrives while the response is still open.
        async for event in source.aiter_sse():
            assert event.json() == {"text": "hi"}
            break
    await publisher
    # Leaving the block closed the connection; the server stops reading the broker.
    await asyncio.wait_for(server.closed["live"].wait(), WAIT)
    await asyncio.sleep(0.2)  # room for anything the server would log after the disconnect
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("text/event-stream", True),
        ("application/json, text/event-stream;q=0.9", True),
        ("Text/Event-Stream", True),
        ("text/event-stream; q=0", False),
        ("application/json", False),
        ("*/*", False),
        ("", False),
    ],
)
async def test_wants_event_stream(client: httpx.AsyncClient, accept: str, expected: bool) -> None:
    response = await client.get("/negotiate", headers={"Accept": accept})
    assert response.json()["sse"] is expected


async def test_last_event_id_helper(client: httpx.AsyncClient) -> None:
    async def last(**kwargs: object) -> object:
        response = await client.get("/negotiate", **kwargs)  # type: ignore[arg-type]
        return response.json()["last"]

    assert await last() is None
    assert await last(headers={"Last-Event-ID": ""}) is None
    assert await last(headers={"Last-Event-ID": "12-0"}) == "12-0"
    assert await last(params={"last_event_id": "5"}) == "5"
    assert await last(headers={"Last-Event-ID": "7"}, params={"last_event_id": "5"}) == "7"


def test_one_frame_per_entry_and_no_line_breaks_in_fields() -> None:
    frame = encode_entry(BrokerEntry(id="3", event="delta", data={"text": "é\n"}))
    assert frame == 'id: 3\nevent: delta\ndata: {"text":"é\\n"}\n\n'.encode()
    with pytest.raises(ValueError, match="line break"):
        encode_entry(BrokerEntry(id="3\nevent: forged", event="delta", data={}))
