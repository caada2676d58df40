"""MCP client: the `mcp` SDK over streamable HTTP (SSE for older servers), every connection
through the guarded outbound transport, deadlines on connect, list and call, and a cache of
each server's remote tool list.

CONTRACT (filled in by the MCP work; the tool runtime and the MCP endpoints use only this):

- `McpEndpoint`: where and how to connect; `headers` are already resolved (secrets filled in).
- `await client.list_tools(server_id, endpoint, refresh=False)` → the remote tools, cached per
  server for `mcp_tools_cache_seconds` (the cache key includes the endpoint, so an edited server
  is re-read). Raises UpstreamError (502) / UpstreamTimeout (504) / OutboundBlocked (400).
- `await client.call_tool(endpoint, name, arguments)` → `RemoteResult` (is_error, text content,
  capped); raises as list_tools does.
- `await client.close()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chatsvc.config import Settings
from chatsvc.kit.outbound import OutboundPolicy


@dataclass(frozen=True, slots=True)
class McpEndpoint:
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    protocol_version: str = ""
    client_name: str = ""
    client_version: str = ""


@dataclass(frozen=True, slots=True)
class RemoteTool:
    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RemoteResult:
    is_error: bool
    text: str


class McpClient:
    def __init__(
        self,
        policy: OutboundPolicy,
        *,
        connect_timeout_seconds: float = 5.0,
        call_timeout_seconds: float = 20.0,
        cache_seconds: float = 300.0,
    ) -> None:
        self.policy = policy
        self.connect_timeout_seconds = connect_timeout_seconds
        self.call_timeout_seconds = call_timeout_seconds
        self.cache_seconds = cache_seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> McpClient:
        return cls(
            OutboundPolicy.from_settings(settings),
            connect_timeout_seconds=settings.mcp_connect_timeout_seconds,
            call_timeout_seconds=settings.mcp_call_timeout_seconds,
            cache_seconds=settings.mcp_tools_cache_seconds,
        )

    async def list_tools(
        self, server_id: int, endpoint: McpEndpoint, *, refresh: bool = False
    ) -> list[RemoteTool]:
        raise NotImplementedError

    async def call_tool(
        self, endpoint: McpEndpoint, name: str, arguments: dict[str, Any]
    ) -> RemoteResult:
        raise NotImplementedError

    async def close(self) -> None:
        return None
