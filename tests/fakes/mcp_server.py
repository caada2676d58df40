"""A real MCP server on loopback, built with the `mcp` SDK's server side (MCPServer), for tests
and benchmarks. One port serves both transports: streamable HTTP at `/mcp` and the older
HTTP+SSE transport at `/sse` (events) + `/messages/` (posts). It records every HTTP request
(with the JSON-RPC methods in its body) and misbehaves on demand: a required header, a status,
a redirect, or a hang.

In a test::

    async with running_mcp_server(required_headers={"authorization": "Bearer s3cret"}) as fake:
        fake.url          # http://127.0.0.1:PORT/mcp  (fake.sse_url: .../sse)
        fake.configure(hang_on={"tools/list"})
        fake.rpc_count("tools/list")

Tools: add(a, b), echo(text), slow(seconds), fail(), big(chars); `fake.add_tool(fn)` adds more.

Standalone (for benchmarks)::

    python -m tests.fakes.mcp_server --port 9200
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Self

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.fakes._threaded import RunsInThread, ThreadedServer


@dataclass
class Behaviour:
    """What the server does with the next requests."""

    #: every request must carry these headers (lower-case names, exact values), else 401
    required_headers: dict[str, str] = field(default_factory=dict)
    #: answer every request with this HTTP status
    fail_status: int | None = None
    #: answer every request with a 307 to this URL
    redirect_to: str | None = None
    #: JSON-RPC methods whose requests get no answer until the client leaves ("*": every
    #: request, the SSE stream included)
    hang_on: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    #: lower-case header names
    headers: dict[str, str]
    #: the JSON-RPC methods in the body (a POST), in order
    rpc_methods: tuple[str, ...]


class FakeMcp(RunsInThread):
    """The server, its behaviour (replaceable at any time) and what it recorded."""

    def __init__(
        self,
        behaviour: Behaviour | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
    ) -> None:
        self.behaviour = behaviour or Behaviour()
        self.requests: list[RecordedRequest] = []
        self.tool_calls: list[tuple[str, dict[str, Any]]] = []
        self._host = host
        self._port = port
        self._log_level = log_level
        self._stopping = False
        self._server: ThreadedServer | None = None
        self.mcp = self._build()
        security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
        streamable = self.mcp.streamable_http_app(transport_security=security)
        sse = self.mcp.sse_app(transport_security=security)

        @asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            async with streamable.router.lifespan_context(streamable):
                yield

        self.app = _Misbehave(
            self, Starlette(routes=[*streamable.routes, *sse.routes], lifespan=lifespan)
        )

    def _build(self) -> MCPServer:
        mcp = MCPServer("fake-mcp", version="1.0")

        @mcp.tool()
        def add(a: int, b: int) -> int:
            """Add two integers."""
            self.tool_calls.append(("add", {"a": a, "b": b}))
            return a + b

        @mcp.tool()
        def echo(text: str) -> str:
            """Return the text unchanged."""
            self.tool_calls.append(("echo", {"text": text}))
            return text

        @mcp.tool()
        async def slow(seconds: float) -> str:
            """Answer after the given number of seconds."""
            self.tool_calls.append(("slow", {"seconds": seconds}))
            await self._pause(seconds)
            return f"slept {seconds:g} s"

        @mcp.tool()
        def fail() -> str:
            """Always fails."""
            self.tool_calls.append(("fail", {}))
            raise ValueError("the fake tool failed on purpose")

        @mcp.tool()
        def big(chars: int) -> str:
            """Return a text of the given length."""
            self.tool_calls.append(("big", {"chars": chars}))
            return "x" * chars

        return mcp

    # -- what tests use ----------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def url(self) -> str:
        """The streamable-HTTP endpoint."""
        return f"{self.base_url}/mcp"

    @property
    def sse_url(self) -> str:
        """The HTTP+SSE endpoint (an 'older server')."""
        return f"{self.base_url}/sse"

    def url_for(self, host: str, path: str = "/mcp") -> str:
        return f"http://{host}:{self._port}{path}"

    def configure(self, **changes: Any) -> None:
        if "hang_on" in changes:
            changes["hang_on"] = frozenset(changes["hang_on"])
        self.behaviour = dataclasses.replace(self.behaviour, **changes)

    def reset(self, **behaviour: Any) -> None:
        """Default behaviour (plus `behaviour`), nothing recorded."""
        self.behaviour = Behaviour()
        self.configure(**behaviour)
        self.requests = []
        self.tool_calls = []

    def rpc_count(self, method: str) -> int:
        """How many JSON-RPC requests of `method` arrived (tools/list, tools/call, ...)."""
        return sum(r.rpc_methods.count(method) for r in self.requests)

    def add_tool(
        self, fn: Callable[..., Any], name: str | None = None, description: str | None = None
    ) -> None:
        self.mcp.add_tool(fn, name=name, description=description)

    def remove_tool(self, name: str) -> None:
        self.mcp.remove_tool(name)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("the fake MCP server is already running")
        server = ThreadedServer(
            self.app, host=self._host, port=self._port, name="fake MCP server", log_level="warning"
        )
        # The streamable-HTTP session manager runs in the app's lifespan, which
        # ThreadedServer turns off for the other fakes (uvicorn reads this when it starts).
        server.server.config.lifespan = "on"
        self._port = server.port
        self._server, self._stopping = server, False
        server.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping = True  # ends hangs and slow tools, so shutdown does not wait on them
        # Not ThreadedServer.stop(): its force_exit skips the lifespan's shutdown, and the
        # session manager's task would be cancelled noisily with the thread's event loop.
        self._server.server.should_exit = True
        self._server.thread.join(timeout=10)
        self._server = None

    async def _pause(self, seconds: float) -> None:
        # In small steps so that stopping the server ends every wait.
        deadline = time.monotonic() + seconds
        while not self._stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.05))


def running_mcp_server(**behaviour: Any) -> FakeMcp:
    """A fake to start with `async with` (or `with`)."""
    fake = FakeMcp()
    fake.configure(**behaviour)
    return fake


class _Misbehave:
    """Pure ASGI: records each request and applies the behaviour before the MCP app sees it."""

    def __init__(self, fake: FakeMcp, app: ASGIApp) -> None:
        self.fake = fake
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body, receive = await _buffered(receive)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        methods = _rpc_methods(body)
        self.fake.requests.append(RecordedRequest(scope["method"], scope["path"], headers, methods))
        b = self.fake.behaviour
        if any(headers.get(name) != value for name, value in b.required_headers.items()):
            await _answer(send, 401, b'{"error": "missing or wrong credentials"}')
        elif b.fail_status is not None:
            await _answer(send, b.fail_status, b'{"error": "the fake failed on purpose"}')
        elif b.redirect_to is not None:
            await _answer(send, 307, b"", [(b"location", b.redirect_to.encode())])
        elif "*" in b.hang_on or set(methods) & b.hang_on:
            await self._hang(receive)
        else:
            await self.app(scope, receive, send)

    async def _hang(self, receive: Receive) -> None:
        """Send nothing until the client leaves or the server stops."""
        while not self.fake._stopping:
            try:
                message = await asyncio.wait_for(receive(), 0.05)
            except TimeoutError:
                continue
            if message["type"] == "http.disconnect":
                return


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            pending: list[Message] = [message]
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            pending = []
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        if pending:
            return pending.pop()
        return await receive()

    return body, replay


def _rpc_methods(body: bytes) -> tuple[str, ...]:
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        return ()
    items = payload if isinstance(payload, list) else [payload]
    return tuple(
        str(item["method"]) for item in items if isinstance(item, dict) and "method" in item
    )


async def _answer(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake MCP server (streamable HTTP and SSE).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9200)
    args = parser.parse_args()
    fake = FakeMcp(host=args.host, port=args.port).start()
    print(f"streamable HTTP: {fake.url}\nSSE: {fake.sse_url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
