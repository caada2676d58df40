"""Pure ASGI middleware (not the Starlette base-class kind: that costs a task group per request
and a hop per streamed chunk): request id, JSON access log and Prometheus metrics in one pass,
and a body cap."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_logger = logging.getLogger("chatsvc.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

REQUESTS = Counter("chatsvc_http_requests_total", "HTTP requests", ["method", "route", "status"])
DURATION = Histogram(
    "chatsvc_http_request_duration_seconds",
    "Time from request to the last byte of the response",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


class _HttpMiddleware:
    """An ASGI middleware that acts on HTTP requests only: other scopes (lifespan, websocket)
    pass through to `app` untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class ObservabilityMiddleware(_HttpMiddleware):
    """Gives each request an id (X-Request-Id, taken from the client when sane), and records one
    access-log line and the metrics when the response ends."""

    def __init__(self, app: ASGIApp, *, access_log: bool = True) -> None:
        super().__init__(app)
        self.access_log = access_log

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = (
                getattr(route, "canonical_path", None)
                or getattr(route, "path", None)
                or "unmatched"
            )
            method = scope["method"]
            REQUESTS.labels(method, template, str(status)).inc()
            DURATION.labels(method, template).observe(elapsed)
            if self.access_log:
                access_logger.info(
                    json.dumps(
                        {
                            "event": "request",
                            "request_id": request_id,
                            "method": method,
                            "path": scope["path"],
                            "route": template,
                            "status": status,
                            "duration_ms": round(elapsed * 1000, 2),
                        }
                    )
                )


class BodySizeLimitMiddleware(_HttpMiddleware):
    """Refuses request headers above a size with 431, and bodies above a size with 413, by
    Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_header_bytes: int = 65_536) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes
        self.max_header_bytes = max_header_bytes

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_headers = scope["headers"]
        if sum(len(name) + len(value) for name, value in raw_headers) > self.max_header_bytes:
            detail = (
                f"Request headers are larger than {self.max_header_bytes} bytes "
                "(CHATSVC_MAX_HEADER_BYTES)."
            )
            await _refuse(scope, send, 431, "headers_too_large", detail)
            return
        headers = dict(raw_headers)
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _too_large(scope, send, self.max_bytes)
            return
        if length is not None or b"transfer-encoding" not in headers:
            # The server reads no more than Content-Length (and no body without either header):
            # nothing to count, and no wrapper around every chunk of the response (a stream's
            # events included). Only a chunked body is counted as it arrives.
            await self.app(scope, receive, send)
            return
        received = 0
        too_large = False
        replaced = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            # The app may turn the aborted read into its own error response: answer 413 instead.
            nonlocal replaced
            if replaced:
                return
            if too_large and message["type"] == "http.response.start":
                replaced = True
                await _too_large(scope, send, self.max_bytes)
                return
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLarge:
            if not replaced:
                await _too_large(scope, send, self.max_bytes)


class _BodyTooLarge(Exception):
    pass


async def _too_large(scope: Scope, send: Send, max_bytes: int) -> None:
    detail = f"Request body is larger than {max_bytes} bytes (CHATSVC_MAX_BODY_BYTES)."
    await _refuse(scope, send, 413, "too_large", detail)


async def _refuse(scope: Scope, send: Send, status: int, code: str, detail: str) -> None:
    """Answer with the service's error body before the app has seen the request."""
    request_id: Any = scope.get("state", {}).get("request_id")
    body = json.dumps(
        {"detail": detail, "code": code, "errors": [], "request_id": request_id}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
