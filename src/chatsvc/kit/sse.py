"""The one Server-Sent Events encoder of the service (on sse-starlette): broker entries become
`id:`/`event:`/`data:` frames with heartbeats, plus reading Last-Event-ID and the Accept header."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import HTTPConnection

from chatsvc.kit.web import status_of_kind
from chatsvc.streaming.broker import BrokerEntry

EVENT_STREAM = "text/event-stream"
LAST_EVENT_ID_QUERY = "last_event_id"
_SEP = "\n"  # the spec allows CRLF, LF or CR; LF is the shortest and what every parser expects
_HEADERS = {
    # sse-starlette defaults to no-store; no-cache is what README.md ("Streams (SSE)") promises.
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx: pass each frame on at once
}


def encode_entry(entry: BrokerEntry) -> bytes:
    """One SSE frame. Compact JSON never contains a raw line break (json.dumps escapes them
    inside strings), so `data` is always a single line; ids and event names are ours and carry
    no line breaks either, which the check below keeps true."""
    if "\n" in entry.event or "\r" in entry.event or "\n" in entry.id or "\r" in entry.id:
        raise ValueError(f"line break in SSE id or event name: {entry.id!r} {entry.event!r}")
    data = json.dumps(entry.data, separators=(",", ":"), ensure_ascii=False)
    return f"id: {entry.id}{_SEP}event: {entry.event}{_SEP}data: {data}{_SEP}{_SEP}".encode()


def _heartbeat() -> ServerSentEvent:
    # A comment line: parsers ignore it, proxies see traffic and keep the connection open.
    return ServerSentEvent(comment="ping", sep=_SEP)


def _shown(entry: BrokerEntry) -> BrokerEntry:
    """An `error` entry names its error by kind (domain terms); the wire shows its HTTP status,
    as an error response to the same request would have."""
    kind = entry.data.get("kind")
    if entry.event != "error" or kind is None:
        return entry
    data = {key: value for key, value in entry.data.items() if key != "kind"}
    data["status"] = status_of_kind(str(kind))
    return BrokerEntry(entry.id, entry.event, data)


async def _frames(events: AsyncIterator[BrokerEntry]) -> AsyncIterator[bytes]:
    try:
        async for entry in events:
            yield encode_entry(_shown(entry) if entry.event == "error" else entry)
    finally:
        # On client disconnect sse-starlette cancels the task running this generator; the
        # source (typically a loop over broker.read) must be closed too, so its cleanup runs now
        # rather than whenever the garbage collector gets to it.
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()


def sse_response(
    events: AsyncIterator[BrokerEntry],
    *,
    ping_seconds: float,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> EventSourceResponse:
    """Stream `events` as SSE: one frame per entry, a `: ping` comment every `ping_seconds`
    (0 disables heartbeats), `Cache-Control: no-cache` and `X-Accel-Buffering: no`.

    The response ends when `events` ends. When the client disconnects, iteration stops at once
    (the pending `__anext__` is cancelled and the iterator closed); nothing is logged. Errors that
    must reach the client belong in `events` as an `error` entry: once streaming has started, an
    exception can only cut the connection."""
    return EventSourceResponse(
        _frames(events),
        status_code=status_code,
        headers={**_HEADERS, **(headers or {})},
        ping=ping_seconds,
        sep=_SEP,
        ping_message_factory=_heartbeat,
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
