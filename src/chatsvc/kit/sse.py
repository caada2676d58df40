"""The one Server-Sent Events encoder of the service: broker entries become `id:`/`event:`/`data:`
frames, written by a lean streaming response with heartbeats and disconnect handling, plus reading
Last-Event-ID and the Accept header."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Annotated

from fastapi import Header, Query
from starlette.requests import HTTPConnection
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from chatsvc.kit.web import status_of_kind
from chatsvc.streaming.broker import BrokerEntry

EVENT_STREAM = "text/event-stream"
LAST_EVENT_ID_QUERY = "last_event_id"
_SEP = "\n"  # the spec allows CRLF, LF or CR; LF is the shortest and what every parser expects
_HEADERS = {
    # no-cache is what README.md ("Streams (SSE)") promises.
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx: pass each frame on at once
}


def encode_entry(entry: BrokerEntry) -> bytes:
    """One SSE frame. Compact JSON never contains a raw line break (json.dumps escapes them
    inside strings), so `data` is always a single line; ids and event names are ours and carry
    no line breaks either, which the check below keeps true."""
    if "\n" in entry.event or "\r" in entry.event or "\n" in entry.id or "\r" in entry.id:
        raise ValueError(f"line break in SSE id or event name: {entry.id!r} {entry.event!r}")
    data = entry.encoded
    if data is None:
        data = json.dumps(entry.data, separators=(",", ":"), ensure_ascii=False)
    return f"id: {entry.id}{_SEP}event: {entry.event}{_SEP}data: {data}{_SEP}{_SEP}".encode()


_PING = b": ping" + _SEP.encode() + _SEP.encode()


class EventStreamResponse(StreamingResponse):
    """The SSE response: frames written as they come, a `: ping` comment every `ping_seconds`,
    and the stream stopped when the client leaves. Per event it costs one `send` (no task, no
    timeout scope, no thread per frame: what a general-purpose SSE response does per event
    showed as a fifth of a streamed token's CPU)."""

    def __init__(
        self,
        frames: AsyncIterator[bytes],
        *,
        ping_seconds: float,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(frames, status_code=status_code, headers=headers, media_type=EVENT_STREAM)
        self.frames = frames
        self.ping_seconds = ping_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        lock = asyncio.Lock()  # the pump and the pings take turns
        pump = asyncio.create_task(self._pump(send, lock))
        left = asyncio.create_task(_client_left(receive))
        pinger = asyncio.create_task(self._ping(send, lock)) if self.ping_seconds > 0 else None
        try:
            await asyncio.wait((pump, left), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pump, left, pinger):
                if task is not None and not task.done():
                    task.cancel()
            for task in (pump, left, pinger):
                if task is not None:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        if pump.done() and not pump.cancelled() and pump.exception() is not None:
            raise pump.exception()  # type: ignore[misc]

    async def _pump(self, send: Send, lock: asyncio.Lock) -> None:
        try:
            async for frame in self.frames:
                async with lock:
                    await send({"type": "http.response.body", "body": frame, "more_body": True})
            async with lock:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            # The client left, or the stream ended: the source (typically a loop over a broker
            # read) is closed now, not whenever the garbage collector gets to it.
            aclose = getattr(self.frames, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _ping(self, send: Send, lock: asyncio.Lock) -> None:
        while True:
            await asyncio.sleep(self.ping_seconds)
            async with lock:
                await send({"type": "http.response.body", "body": _PING, "more_body": True})


async def _client_left(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _shown(entry: BrokerEntry) -> BrokerEntry:
    """An `error` entry names its error by kind (domain terms); the wire shows its HTTP status,
    as an error response to the same request would have."""
    kind = entry.data.get("kind")
    if kind is None:
        return entry
    data = {key: value for key, value in entry.data.items() if key != "kind"}
    data["status"] = status_of_kind(str(kind))
    return BrokerEntry(entry.id, entry.event, data)


async def _frames(events: AsyncIterator[BrokerEntry]) -> AsyncIterator[bytes]:
    try:
        async for entry in events:
            yield encode_entry(_shown(entry) if entry.event == "error" else entry)
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()


def sse_response(
    events: AsyncIterator[BrokerEntry],
    *,
    ping_seconds: float,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> EventStreamResponse:
    """Stream `events` as SSE: one frame per entry, a `: ping` comment every `ping_seconds`
    (0 disables heartbeats), `Cache-Control: no-cache` and `X-Accel-Buffering: no`.

    The response ends when `events` ends. When the client disconnects, iteration stops at once
    (the pending `__anext__` is cancelled and the iterator closed); nothing is logged. Errors that
    must reach the client belong in `events` as an `error` entry: once streaming has started, an
    exception can only cut the connection."""
    return EventStreamResponse(
        _frames(events),
        ping_seconds=ping_seconds,
        status_code=status_code,
        headers={**_HEADERS, **(headers or {})},
    )


def last_event_id(request: HTTPConnection) -> str | None:
    """Where the client wants to resume: the `Last-Event-ID` header (sent by EventSource on
    reconnect), else the `last_event_id` query parameter (for clients that cannot set headers,
    e.g. a page opening a new EventSource after a reload). None when absent or empty; the value
    is not validated here: the broker's read raises ValueError for a malformed id."""
    value = request.headers.get("last-event-id") or request.query_params.get(LAST_EVENT_ID_QUERY)
    if value is None:
        return None
    value = value.strip()
    return value or None


def wants_event_stream(request: HTTPConnection) -> bool:
    """Whether the Accept header lists text/event-stream (not refused with q=0); otherwise the
    endpoint answers plain JSON."""
    for media_range in request.headers.get("accept", "").split(","):
        media_type, *params = (part.strip().lower() for part in media_range.split(";"))
        if media_type == EVENT_STREAM and not any(_refused(param) for param in params):
            return True
    return False


def _refused(param: str) -> bool:
    name, _, value = param.partition("=")
    if name.strip() != "q":
        return False
    try:
        return float(value) == 0
    except ValueError:
        return False


# --- what a streaming operation declares (its OpenAPI parameters) --------------------------------

AcceptHeader = Annotated[
    str | None,
    Header(
        alias="Accept",
        description="`text/event-stream` for Server-Sent Events; otherwise the answer is JSON.",
    ),
]


async def accepts_event_stream(accept: AcceptHeader = None) -> None:
    """Declares the Accept header of an operation that streams when asked (`wants_event_stream`
    reads it), so generated clients can send it."""


async def resumes_event_stream(
    accept: AcceptHeader = None,
    last_event_id_header: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            description="Resume the stream after this event (its `id:`), as a browser's "
            "EventSource sends on reconnect.",
        ),
    ] = None,
    last_event_id_query: Annotated[
        str | None,
        Query(
            alias=LAST_EVENT_ID_QUERY,
            description="The same as the Last-Event-ID header (which wins), for clients that "
            "cannot set headers.",
        ),
    ] = None,
) -> None:
    """Declares what a resumable stream reads (`last_event_id` and `wants_event_stream`): Accept,
    Last-Event-ID and ?last_event_id=, so generated clients can send them."""
