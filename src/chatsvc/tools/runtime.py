"""What running tools needs, built once per process (API server or worker): the secret store,
the script worker pool, the MCP client and the guarded outbound HTTP client."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chatsvc.config import Settings
from chatsvc.kit.outbound import OutboundPolicy, guarded_client
from chatsvc.secrets.store import SecretStore, build_secret_store
from chatsvc.tools.mcp_client import McpClient
from chatsvc.tools.sandbox import ScriptPool


@dataclass
class ToolRuntime:
    settings: Settings
    secrets: SecretStore
    scripts: ScriptPool
    mcp: McpClient
    #: the guarded client for HTTP retrieval backends
    outbound: httpx.AsyncClient
    policy: OutboundPolicy

    @classmethod
    def build(
        cls, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> ToolRuntime:
        policy = OutboundPolicy.from_settings(settings)
        return cls(
            settings=settings,
            secrets=build_secret_store(settings, sessionmaker),
            scripts=ScriptPool.from_settings(settings),
            mcp=McpClient(
                policy,
                connect_timeout_seconds=settings.mcp_connect_timeout_seconds,
                call_timeout_seconds=settings.mcp_call_timeout_seconds,
                cache_seconds=settings.mcp_tools_cache_seconds,
            ),
            outbound=guarded_client(policy),
            policy=policy,
        )

    async def close(self) -> None:
        await self.scripts.close()
        await self.mcp.close()
        await self.secrets.close()
        await self.outbound.aclose()
