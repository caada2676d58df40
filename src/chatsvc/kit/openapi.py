"""What the OpenAPI document says beyond what FastAPI derives from the routes: Server-Sent Events
streams with their event types and payload schemas, and the last touches made once the document
is built (the payload schemas as components)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

#: The extension that lists a stream's events, on its `text/event-stream` media type:
#: `{"<event name>": {"$ref": "#/components/schemas/<payload>"}}`.
SSE_EVENTS = "x-sse-events"
REF = "#/components/schemas/{model}"

#: Every event payload model a stream documents, by schema name (added as components).
_payloads: dict[str, type[BaseModel]] = {}


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One event type of a stream: its `event:` name, the model of its `data:` (one line of
    JSON) and when it comes."""

    name: str
    payload: type[BaseModel]
    when: str


def event_stream(description: str, stream_events: Sequence[SseEvent]) -> dict[str, Any]:
    """The `responses` entry of an operation that answers Server-Sent Events (with `Accept:
    text/event-stream`): the stream's media type, its events in `x-sse-events` (each a reference
    to its payload's schema, a component) and the same list in words."""
    for event in stream_events:
        known = _payloads.setdefault(event.payload.__name__, event.payload)
        if known is not event.payload:
            raise ValueError(f"two SSE payload models named {event.payload.__name__}")
    lines = "\n".join(
        f"- `{event.name}` ({event.payload.__name__}): {event.when}" for event in stream_events
    )
    return {
        "description": f"{description}\n\nEvents (each frame: `id:`, `event:`, one line of JSON "
        f"`data:`; the `id` resumes the stream as `Last-Event-ID`):\n{lines}",
        "content": {
            "text/event-stream": {
                "schema": {
                    "type": "string",
                    "description": "Server-Sent Events; the event types and their data are "
                    f"listed in `{SSE_EVENTS}`.",
                },
                SSE_EVENTS: {
                    event.name: {"$ref": REF.format(model=event.payload.__name__)}
                    for event in stream_events
                },
            }
        },
    }


def _add_payload_schemas(document: dict[str, Any]) -> None:
    if not _payloads:
        return
    _, top = models_json_schema(
        [(model, "serialization") for model in _payloads.values()], ref_template=REF
    )
    components = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in top.get("$defs", {}).items():
        components.setdefault(name, schema)


def finish_document(app: FastAPI, *steps: Callable[[dict[str, Any]], None]) -> None:
    """Build the document as FastAPI does, then add the SSE payload schemas and run `steps` on
    it, once (the document is kept)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        _add_payload_schemas(document)
        for step in steps:
            step(document)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
