"""Tool queries, always scoped to one workspace and one kind and hiding deleted tools; metadata
filter definitions; and the workspace knowledge the built-in retrieval backend searches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.assistants.models import Assistant, AssistantTool
from chatsvc.kit.pagination import Page, PageParams
from chatsvc.kit.repository import RepositoryBase
from chatsvc.knowledge.models import CommonQuestion, KnowledgeItem, Lesson
from chatsvc.tools.models import MetadataFilter, Tool, ToolKind


class ToolRepository(RepositoryBase[Tool]):
    model = Tool

    def _live(self, workspace_id: int, kind: ToolKind) -> Select[Tool]:
        return select(Tool).where(
            Tool.workspace_id == workspace_id,
            Tool.kind == kind.value,
            Tool.deleted_at.is_(None),
        )

    async def get(
        self, workspace_id: int, kind: ToolKind, tool_id: int, *, for_update: bool = False
    ) -> Tool | None:
        """With `for_update`, the row stays locked until the transaction ends (PostgreSQL), so
        concurrent writes of one tool (its parameter rows above all) take turns."""
        statement = self._live(workspace_id, kind).where(Tool.id == tool_id)
        if for_update:
            statement = statement.with_for_update()
        return await self.get_one_or_none(statement)

    async def live_by_ids(self, workspace_id: int, tool_ids: list[int]) -> list[Tool]:
        """The live tools among `tool_ids`, in that order (deleted and unknown ids left out)."""
        if not tool_ids:
            return []
        rows = await self.session.scalars(
            select(Tool).where(
                Tool.workspace_id == workspace_id,
                Tool.id.in_(tool_ids),
                Tool.deleted_at.is_(None),
            )
        )
        by_id = {row.id: row for row in rows.all()}
        return [by_id[tool_id] for tool_id in tool_ids if tool_id in by_id]

    async def list(self, workspace_id: int, kind: ToolKind, params: PageParams) -> Page[Tool]:
        return await self.paginate(self._live(workspace_id, kind).order_by(Tool.id), params)

    async def unlink_from_assistants(self, tool_id: int) -> None:
        """Take the tool out of every assistant's tools and pretools lists (the others keep
        their order: positions are only compared, never counted)."""
        await self.session.execute(
            delete(AssistantTool)
            .where(AssistantTool.tool_id == tool_id)
            .execution_options(synchronize_session=False)
        )


class MetadataFilterRepository(RepositoryBase[MetadataFilter]):
    model = MetadataFilter

    async def get(
        self, workspace_id: int, metadata_config_id: int, name: str
    ) -> MetadataFilter | None:
        return await self.get_one_or_none(
            select(MetadataFilter).where(
                MetadataFilter.workspace_id == workspace_id,
                MetadataFilter.metadata_config_id == metadata_config_id,
                MetadataFilter.name == name,
            )
        )

    async def list_for(self, workspace_id: int, metadata_config_id: int) -> list[MetadataFilter]:
        rows = await self.session.scalars(
            select(MetadataFilter)
            .where(
                MetadataFilter.workspace_id == workspace_id,
                MetadataFilter.metadata_config_id == metadata_config_id,
            )
            .order_by(MetadataFilter.name)
        )
        return list(rows.all())


# -- the workspace's knowledge (the built-in retrieval backend) -------------------------------

#: what the built-in backend searches, with the label its references carry
SEARCHED: Sequence[tuple[str, type[KnowledgeItem]]] = (("faq", CommonQuestion), ("lesson", Lesson))


def _of_live_assistants(model: type[KnowledgeItem], workspace_id: int) -> Any:
    return (
        select(model)
        .join(Assistant, Assistant.id == model.assistant_id)
        .where(Assistant.workspace_id == workspace_id, Assistant.deleted_at.is_(None))
    )


async def knowledge_fingerprint(session: AsyncSession, workspace_id: int) -> tuple[Any, ...]:
    """What changes whenever the searched knowledge does: per kind, the count, last id and last
    update of the items of the workspace's live assistants (deleting an assistant drops its
    items from the count)."""
    parts: list[Any] = []
    for _label, model in SEARCHED:
        statement = _of_live_assistants(model, workspace_id).with_only_columns(
            func.count(model.id), func.max(model.id), func.max(model.updated_at)
        )
        parts.extend((await session.execute(statement)).one())
    return tuple(parts)


async def knowledge_items(
    session: AsyncSession, workspace_id: int
) -> list[tuple[str, KnowledgeItem]]:
    """Every FAQ item and lesson of the workspace's live assistants, as (kind, item)."""
    found: list[tuple[str, KnowledgeItem]] = []
    for label, model in SEARCHED:
        rows = await session.scalars(_of_live_assistants(model, workspace_id).order_by(model.id))
        found.extend((label, row) for row in rows.all())
    return found
