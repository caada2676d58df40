"""MCP queries, always scoped to one workspace: servers, and the live (not deleted) MCP tools."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, delete, select, update

from chatsvc.assistants.models import AssistantTool
from chatsvc.kit.db import utcnow
from chatsvc.kit.pagination import Page, PageParams
from chatsvc.kit.repository import RepositoryBase
from chatsvc.tools.models import McpServer, Tool, ToolKind


class McpServerRepository(RepositoryBase[McpServer]):
    model = McpServer

    def _of(self, workspace_id: int) -> Select[McpServer]:
        return select(McpServer).where(McpServer.workspace_id == workspace_id)

    async def get(self, workspace_id: int, server_id: int) -> McpServer | None:
        return await self.get_one_or_none(self._of(workspace_id).where(McpServer.id == server_id))

    async def page(self, workspace_id: int, params: PageParams) -> Page[McpServer]:
        return await self.paginate(self._of(workspace_id).order_by(McpServer.id), params)


class McpToolRepository(RepositoryBase[Tool]):
    model = Tool

    def _live(self, workspace_id: int) -> Select[Tool]:
        return select(Tool).where(
            Tool.workspace_id == workspace_id,
            Tool.kind == ToolKind.MCP,
            Tool.deleted_at.is_(None),
        )

    async def get(self, workspace_id: int, tool_id: int, *, fresh: bool = False) -> Tool | None:
        statement = self._live(workspace_id).where(Tool.id == tool_id)
        return await self.get_one_or_none(statement, fresh=fresh)

    async def page(self, workspace_id: int, params: PageParams) -> Page[Tool]:
        return await self.paginate(self._live(workspace_id).order_by(Tool.id), params)

    async def of_server(self, workspace_id: int, server_id: int) -> list[Tool]:
        statement = self._live(workspace_id).where(Tool.server_id == server_id).order_by(Tool.id)
        return list((await self.session.scalars(statement)).all())

    async def soft_delete(self, tool_ids: Sequence[int]) -> None:
        """Mark the tools deleted and take them out of every assistant's tools and pretools, so
        no list or run offers them again; the rows stay for the chats that used them."""
        if not tool_ids:
            return
        ids = list(tool_ids)
        await self.session.execute(
            update(Tool)
            .where(Tool.id.in_(ids))
            .values(deleted_at=utcnow(), updated_at=utcnow())
            .execution_options(synchronize_session="fetch")
        )
        await self.session.execute(delete(AssistantTool).where(AssistantTool.tool_id.in_(ids)))
        await self.session.flush()
