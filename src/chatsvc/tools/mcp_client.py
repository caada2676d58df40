"""MCP client: the `mcp` SDK over streamable HTTP (SSE for older servers), every connection
through the guarded outbound transport, deadlines on connect, list and call, and a cache of
each server's remote tool list.

CONTRACT (the tool runtime and the MCP endpoints use only this):

- `McpEndpoint`: where and how to connect; `headers` are already resolved (secrets filled in).
- `await client.list_tools(server_id, endpoint, refresh=False)` → the remote tools, cached per
  server for `mcp_tools_cache_seconds` (the cache key includes the endpoint, so an edited server
  is re-read). Raises UpstreamError (502) / UpstreamTimeout (504) / OutboundBlocked (400).
- `await client.call_tool(endpoint, name, arguments)` → `RemoteResult` (is_error, text content,
  capped); raises as list_tools does. A JSON-RPC error the server answers to the call (unknown
  tool, invalid arguments) is a result with is_error, so the model can correct itself.
- `await client.close()`.

How a connection is made (docs/mcp.md): one MCP session per operation, opened through a
guarded httpx2 client, closed at its end. Streamable HTTP is tried first; when the server
answers its POST with a 4xx other than 401/403/407/429 (an HTTP+SSE server answers 404 or 405),
the same URL is tried with the SSE transport, and that choice is remembered per URL (and
protocol_version), as is a modern server's discover result (the next session adopts it, no probe).
`protocol_version` "2024-11-05" (the HTTP+SSE revision) goes to SSE at once; a handshake-era
revision forces the initialize handshake; a modern revision is adopted without a probe.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Final, Literal, TypeVar

import anyio
import httpx2
import mcp_types
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types.version import (
    HANDSHAKE_PROTOCOL_VERSIONS,
    KNOWN_PROTOCOL_VERSIONS,
    MODERN_PROTOCOL_VERSIONS,
)

from chatsvc import __version__
from chatsvc.config import Settings
from chatsvc.kit.errors import ChatsvcError, UpstreamError, UpstreamTimeout
from chatsvc.kit.outbound import (
    OutboundBlocked,
    OutboundPolicy,
    ResponseTooLarge,
    check_url,
    describe_url,
    guarded_httpx2_client,
)

logger = logging.getLogger("chatsvc.mcp")
_URL: Final = re.compile(r"""[A-Za-z][A-Za-z0-9+.-]*://[^\s'"<>]+""")


def _origins_only(text: str) -> str:
    """`text` with every URL cut to scheme://host:port: a workspace's MCP URL may carry a key
    in its path or query (some hosted servers put it there), and SSE session URLs do."""
    return _URL.sub(lambda match: describe_url(match.group(0).rstrip(".,;)")), text)


class _OriginOnlyLog(logging.Filter):
    """httpx2 (used here only by the MCP SDK) logs each request's full URL at INFO."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 2:
            args = list(record.args)
            args[1] = _origins_only(str(args[1]))
            record.args = tuple(args)
        return True


logging.getLogger("httpx2").addFilter(_OriginOnlyLog())
T = TypeVar("T")
S = TypeVar("S")

#: the revision that defined the HTTP+SSE transport: a server pinned to it is reached over SSE
SSE_PROTOCOL_VERSION: Final = "2024-11-05"
PROTOCOL_VERSIONS: Final = KNOWN_PROTOCOL_VERSIONS
#: statuses of a streamable-HTTP POST that mean "not the right transport", not "go away"
_NOT_A_FALLBACK: Final = frozenset({401, 403, 407, 429})
_MAX_PAGES: Final = 50
_MAX_TOOLS: Final = 1000
_MAX_CACHED: Final = 1024
_MAX_REMEMBERED: Final = 1024
_DETAIL_CHARS: Final = 300

Transport = Literal["streamable_http", "sse"]


@dataclass(frozen=True, slots=True)
class McpEndpoint:
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    protocol_version: str = ""
    client_name: str = ""
    client_version: str = ""

    def where(self) -> tuple[str, str]:
        """What decides how a server is reached: its URL and the protocol revision asked for."""
        return (self.url, self.protocol_version)

    def digest(self) -> str:
        """One value for everything that decides what the server answers (resolved header
        values included, so a rotated secret re-reads the list); kept in memory only."""
        material = [
            self.url,
            sorted(self.headers.items()),
            self.protocol_version,
            self.client_name,
            self.client_version,
        ]
        return hashlib.sha256(json.dumps(material).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class RemoteTool:
    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RemoteResult:
    is_error: bool
    text: str


@dataclass(slots=True)
class _Cached:
    tools: tuple[RemoteTool, ...]
    expires: float


@dataclass(slots=True)
class _Remembered:
    """What worked last time for an endpoint: its transport, and the modern discover result
    (so the next session adopts it instead of probing again)."""

    transport: Transport
    discover: mcp_types.DiscoverResult | None = None


@dataclass(slots=True)
class _HttpSeen:
    """The HTTP answers of one operation that explain a failure better than the SDK's errors
    ("Server returned an error response"): the last error status, or a redirect."""

    status: int | None = None
    reason: str = ""
    location: str | None = None

    async def on_response(self, response: httpx2.Response) -> None:
        if response.status_code >= 300:
            self.status = response.status_code
            self.reason = response.reason_phrase
            location = response.headers.get("location")
            self.location = describe_url(str(response.url.join(location))) if location else None

    def describe(self) -> str | None:
        if self.status is None:
            return None
        if 300 <= self.status < 400:
            where = f" to {self.location}" if self.location else ""
            return f"answered with a redirect (HTTP {self.status}{where}, not followed)"
        return f"answered HTTP {self.status} {self.reason}".rstrip()

    def suggests_sse(self) -> bool:
        return (
            self.status is not None
            and 400 <= self.status < 500
            and (self.status not in _NOT_A_FALLBACK)
        )


@dataclass(eq=False)
class McpClient:
    policy: OutboundPolicy
    _: KW_ONLY
    connect_timeout_seconds: float = 5.0
    call_timeout_seconds: float = 20.0
    cache_seconds: float = 300.0
    max_result_chars: int = 100_000
    clock: Callable[[], float] = time.monotonic
    _cache: OrderedDict[tuple[int, str], _Cached] = field(
        init=False, repr=False, default_factory=OrderedDict
    )
    _locks: dict[tuple[int, str], anyio.Lock] = field(init=False, repr=False, default_factory=dict)
    _remembered: OrderedDict[tuple[str, str], _Remembered] = field(
        init=False, repr=False, default_factory=OrderedDict
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> McpClient:
        return cls(
            OutboundPolicy.from_settings(settings),
            connect_timeout_seconds=settings.mcp_connect_timeout_seconds,
            call_timeout_seconds=settings.mcp_call_timeout_seconds,
            cache_seconds=settings.mcp_tools_cache_seconds,
        )

    # -- the contract ------------------------------------------------------------------------

    async def list_tools(
        self, server_id: int, endpoint: McpEndpoint, *, refresh: bool = False
    ) -> list[RemoteTool]:
        """The server's remote tools, from the cache unless `refresh` or expired. Concurrent
        misses for one server make one call. A server not saved yet (`server_id` 0) is never
        cached."""
        if server_id <= 0:
            return list(await self._operate(endpoint, "listing tools", _list_all))
        key = (server_id, endpoint.digest())
        if not refresh and (hit := self._cached(key)) is not None:
            return list(hit)
        lock = self._locks.setdefault(key, anyio.Lock())
        try:
            async with lock:
                if not refresh and (hit := self._cached(key)) is not None:
                    return list(hit)
                tools = await self._operate(endpoint, "listing tools", _list_all)
                self._store(key, tools)
                return list(tools)
        finally:
            if not lock.locked():
                self._locks.pop(key, None)

    async def call_tool(
        self, endpoint: McpEndpoint, name: str, arguments: dict[str, Any]
    ) -> RemoteResult:
        async def call(client: Client, seen: _HttpSeen) -> RemoteResult:
            try:
                result = await client.call_tool(name, arguments)
            except MCPError as exc:
                self._remembered.pop(endpoint.where(), None)  # probe again next time
                if seen.status is not None:
                    raise  # an HTTP failure the SDK dressed as a JSON-RPC error
                # The server answered the call with a JSON-RPC error: the model's to see.
                return RemoteResult(True, self._cap(f"MCP error {exc.code}: {exc.message}"))
            return RemoteResult(bool(result.is_error), self._cap(result_text(result)))

        return await self._operate(endpoint, f"calling tool {name!r}", call)

    def invalidate(self, server_id: int) -> None:
        """Forget the cached tool lists of a server (edited or deleted)."""
        for key in [k for k in self._cache if k[0] == server_id]:
            del self._cache[key]

    async def close(self) -> None:
        self._cache.clear()
        self._remembered.clear()

    # -- the cache ---------------------------------------------------------------------------

    def _cached(self, key: tuple[int, str]) -> tuple[RemoteTool, ...] | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        if entry.expires <= self.clock():
            del self._cache[key]
            return None
        return entry.tools

    def _store(self, key: tuple[int, str], tools: tuple[RemoteTool, ...]) -> None:
        if self.cache_seconds <= 0:
            return
        self.invalidate(key[0])  # an older endpoint of the same server is stale now
        self._cache[key] = _Cached(tools, self.clock() + self.cache_seconds)
        while len(self._cache) > _MAX_CACHED:
            self._cache.popitem(last=False)

    # -- one session per operation -----------------------------------------------------------

    async def _operate(
        self,
        endpoint: McpEndpoint,
        what: str,
        operation: Callable[[Client, _HttpSeen], Awaitable[T]],
    ) -> T:
        """Open a session (connect deadline), run `operation` (call deadline), close it (a short
        deadline: a result is not lost to a slow goodbye). Failures become UpstreamError,
        UpstreamTimeout or OutboundBlocked with a reason that names no header or secret."""
        origin = describe_url(endpoint.url)
        check_url(endpoint.url, self.policy, allow_credentials=False)
        seen = _HttpSeen()
        phase = "connecting"
        outcome: list[T] = []
        # One cancel scope whose deadline moves with the phase: the SDK's task groups live
        # inside it, so nested scopes could not be closed before them.
        scope = anyio.CancelScope(deadline=self._deadline(self.connect_timeout_seconds))
        try:
            with scope:
                async with AsyncExitStack() as stack:
                    client = await self._open(stack, endpoint, seen)
                    seen.status = None  # a probe's refusal is not this operation's failure
                    phase = what
                    scope.deadline = self._deadline(self.call_timeout_seconds)
                    outcome.append(await operation(client, seen))
                    phase = "closing"
                    scope.deadline = self._deadline(self.connect_timeout_seconds)
        except Exception as exc:
            if outcome:  # the goodbye failed; the answer stands
                detail = _describe(list(_leaves(exc)))
                logger.info("closing the MCP session with %s failed: %s", origin, detail)
                return outcome[0]
            self._remembered.pop(endpoint.where(), None)  # probe again next time
            if not scope.cancel_called:
                raise self._failure(exc, origin, phase, seen) from None
        if outcome:
            return outcome[0]
        self._remembered.pop(endpoint.where(), None)
        limit = self.connect_timeout_seconds if phase == "connecting" else self.call_timeout_seconds
        message = f"MCP server {origin} did not respond within {limit:g} s while {phase}"
        logger.warning("%s", message)
        raise UpstreamTimeout(message)

    def _deadline(self, seconds: float) -> float:
        return anyio.current_time() + seconds

    async def _open(self, stack: AsyncExitStack, endpoint: McpEndpoint, seen: _HttpSeen) -> Client:
        remembered = self._remembered.get(endpoint.where())
        version = endpoint.protocol_version
        first: Transport = "streamable_http"
        if version == SSE_PROTOCOL_VERSION or (remembered and remembered.transport == "sse"):
            first = "sse"
        try:
            client = await stack.enter_async_context(
                self._client(first, endpoint, seen, remembered)
            )
        except Exception:
            self._remembered.pop(endpoint.where(), None)
            fallback = first == "streamable_http" and version not in MODERN_PROTOCOL_VERSIONS
            if not (fallback and seen.suggests_sse()):
                raise
            refused = (seen.status, seen.reason, seen.location)
            logger.info("%s refused streamable HTTP; trying SSE", describe_url(endpoint.url))
            try:
                client = await stack.enter_async_context(self._client("sse", endpoint, seen, None))
            except Exception:
                # Not an SSE server either: the first refusal says more.
                seen.status, seen.reason, seen.location = refused
                raise
            first = "sse"
        self._remember(endpoint.where(), first, client)
        return client

    def _client(
        self,
        transport: Transport,
        endpoint: McpEndpoint,
        seen: _HttpSeen,
        remembered: _Remembered | None,
    ) -> Client:
        info = mcp_types.Implementation(
            name=endpoint.client_name or "chatsvc", version=endpoint.client_version or __version__
        )
        if transport == "sse":
            return Client(
                sse_client(
                    endpoint.url,
                    headers=endpoint.headers,
                    timeout=self.connect_timeout_seconds,
                    sse_read_timeout=self.call_timeout_seconds,
                    httpx_client_factory=self._factory(seen),
                ),
                mode="legacy",
                client_info=info,
                cache=None,
            )
        http = self._factory(seen)(headers=endpoint.headers)
        version = endpoint.protocol_version
        mode = "auto"
        prior: mcp_types.DiscoverResult | None = None
        if version in MODERN_PROTOCOL_VERSIONS:
            mode = version
        elif version in HANDSHAKE_PROTOCOL_VERSIONS:
            mode = "legacy"
        elif remembered is not None and remembered.discover is not None:
            # This server spoke a modern revision last time: adopt it, no probe.
            prior = remembered.discover
            mode = next(
                (v for v in reversed(MODERN_PROTOCOL_VERSIONS) if v in prior.supported_versions),
                "auto",
            )
        return Client(
            _closing(streamable_http_client(endpoint.url, http_client=http), http),
            mode=mode,
            prior_discover=prior,
            client_info=info,
            cache=None,
        )

    def _factory(self, seen: _HttpSeen) -> Callable[..., httpx2.AsyncClient]:
        def make(
            headers: dict[str, str] | None = None,
            timeout: httpx2.Timeout | None = None,
            auth: httpx2.Auth | None = None,
        ) -> httpx2.AsyncClient:
            return guarded_httpx2_client(
                self.policy,
                headers=headers,
                timeout=httpx2.Timeout(
                    self.call_timeout_seconds, connect=self.connect_timeout_seconds
                ),
                # The operation's own deadlines govern; this cap only has to outlast them.
                timeout_seconds=2 * self.connect_timeout_seconds + self.call_timeout_seconds,
                event_hooks={"response": [seen.on_response]},
            )

        return make

    def _remember(self, where: tuple[str, str], transport: Transport, client: Client) -> None:
        discover = client.session.discover_result
        self._remembered[where] = _Remembered(transport, discover)
        self._remembered.move_to_end(where)
        while len(self._remembered) > _MAX_REMEMBERED:
            self._remembered.popitem(last=False)

    # -- results and failures ----------------------------------------------------------------

    def _cap(self, text: str) -> str:
        limit = self.max_result_chars
        if len(text) <= limit:
            return text
        return f"{text[:limit]}\n[truncated: {len(text) - limit} more characters]"

    def _failure(self, exc: BaseException, origin: str, phase: str, seen: _HttpSeen) -> Exception:
        leaves = list(_leaves(exc))
        blocked = [e for e in leaves if isinstance(e, OutboundBlocked)]
        for error in blocked:
            if isinstance(error, ResponseTooLarge):
                return UpstreamError(f"MCP server {origin}: {error.message}", code="mcp_error")
        if blocked:
            return blocked[0]
        chatsvc = [e for e in leaves if isinstance(e, ChatsvcError)]
        if chatsvc:
            return chatsvc[0]
        timeouts = [e for e in leaves if isinstance(e, TimeoutError | httpx2.TimeoutException)]
        if timeouts:
            return UpstreamTimeout(f"MCP server {origin} timed out while {phase}: {timeouts[0]}")
        http = seen.describe()
        if http is not None:
            detail = f"MCP server {origin} {http} while {phase}"
        else:
            detail = f"MCP server {origin} failed while {phase}: {_describe(leaves)}"
        logger.warning("%s", detail)
        return UpstreamError(detail, code="mcp_error")


async def _list_all(client: Client, seen: _HttpSeen) -> tuple[RemoteTool, ...]:
    tools: list[RemoteTool] = []
    cursor: str | None = None
    for _ in range(_MAX_PAGES):
        page = await client.list_tools(cursor=cursor)
        for tool in page.tools:
            schema = tool.input_schema if isinstance(tool.input_schema, dict) else {}
            tools.append(RemoteTool(tool.name, tool.description or "", schema))
        cursor = page.next_cursor
        if cursor is None or len(tools) >= _MAX_TOOLS:
            break
    return tuple(tools[:_MAX_TOOLS])


def result_text(result: mcp_types.CallToolResult) -> str:
    """The text the model sees: text blocks as they are, other blocks named, structured
    content as JSON when there is nothing else."""
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, mcp_types.TextContent):
            parts.append(block.text)
        elif isinstance(block, mcp_types.EmbeddedResource):
            resource = block.resource
            if isinstance(resource, mcp_types.TextResourceContents):
                parts.append(resource.text)
            else:
                parts.append(f"[binary resource {resource.uri}]")
        elif isinstance(block, mcp_types.ResourceLink):
            parts.append(f"[resource {block.uri}]")
        elif isinstance(block, mcp_types.ImageContent | mcp_types.AudioContent):
            parts.append(f"[{block.type} {block.mime_type}]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(parts)


@asynccontextmanager
async def _closing(
    transport: AbstractAsyncContextManager[S], http: httpx2.AsyncClient
) -> AsyncIterator[S]:
    """The streamable-HTTP transport, closing the httpx2 client it was given (it does not)."""
    async with http, transport as streams:
        yield streams


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


def _describe(leaves: list[BaseException]) -> str:
    """The most telling failure among `leaves`, its URLs cut to their origin."""
    chosen: str | None = None
    for leaf in leaves:
        if isinstance(leaf, httpx2.HTTPStatusError):
            response = leaf.response
            chosen = f"HTTP {response.status_code} {response.reason_phrase}"
        elif isinstance(leaf, MCPError):
            chosen = f"{leaf.message} (MCP error {leaf.code})"
        elif isinstance(leaf, httpx2.HTTPError):
            chosen = f"{type(leaf).__name__}: {leaf}"
        if chosen is not None:
            break
    if chosen is None:
        chosen = f"{type(leaves[0]).__name__}: {leaves[0]}" if leaves else "unknown error"
    return _origins_only(chosen)[:_DETAIL_CHARS]
