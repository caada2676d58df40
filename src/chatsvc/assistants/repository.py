"""Assistant queries, always scoped to one workspace and hiding deleted assistants."""

from __future__ import annotations

import functools

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import joinedload

from chatsvc.assistants.models import Assistant
from chatsvc.kit.pagination import Page, PageParams
from chatsvc.kit.repository import RepositoryBase
from chatsvc.tools.models import Tool


class AssistantRepository(RepositoryBase[Assistant]):
    model = Assistant

    def _live(self, workspace_id: int) -> Select[Assistant]:
        return select(Assistant).where(
            Assistant.workspace_id == workspace_id, Assistant.deleted_at.is_(None)
        )

    async def get(
        self, workspace_id: int, assistant_id: int, *, fresh: bool = False
    ) -> Assistant | None:
        result = await self.session.execute(
            _get_statement(),
            {"p_workspace_id": workspace_id, "p_assistant_id": assistant_id},
            execution_options={"populate_existing": fresh},
        )
        return result.unique().scalar_one_or_none()

    async def exists(self, workspace_id: int, assistant_id: int) -> bool:
        found = await self.session.scalar(
            select(Assistant.id).where(
                Assistant.id == assistant_id,
                Assistant.workspace_id == workspace_id,
                Assistant.deleted_at.is_(None),
            )
        )
        return found is not None

    async def exists_any(self, workspace_id: int, assistant_id: int) -> bool:
        """Deleted ones included: their chats stay readable."""
        found = await self.session.scalar(
            select(Assistant.id).where(
                Assistant.id == assistant_id, Assistant.workspace_id == workspace_id
            )
        )
        return found is not None

    async def summary(self, assistant_id: int) -> tuple[int, str, bool]:
        """(id, description, deleted) of an assistant, deleted or not, in no workspace scope: for
        the assistant of a chat the caller was checked to see."""
        row = (
            await self.session.execute(
                select(Assistant.id, Assistant.description, Assistant.deleted_at).where(
                    Assistant.id == assistant_id
                )
            )
        ).one()
        return row.id, row.description, row.deleted_at is not None

    async def list(self, workspace_id: int, params: PageParams) -> Page[Assistant]:
        return await self.paginate(self._live(workspace_id).order_by(Assistant.id), params)

    async def existing_tool_ids(self, workspace_id: int, tool_ids: set[int]) -> set[int]:
        if not tool_ids:
            return set()
        rows = await self.session.scalars(
            select(Tool.id).where(
                Tool.workspace_id == workspace_id, Tool.id.in_(tool_ids), Tool.deleted_at.is_(None)
            )
        )
        return set(rows.all())


@functools.cache
def _get_statement() -> Select[Assistant]:
    """AssistantRepository.get's statement, built once (parameters workspace_id, assistant_id):
    the assistant with its tool links in the same statement (a join), not a second query."""
    return (
        select(Assistant)
        .where(
            Assistant.workspace_id == bindparam("p_workspace_id"),
            Assistant.id == bindparam("p_assistant_id"),
            Assistant.deleted_at.is_(None),
        )
        .options(joinedload(Assistant.tool_links))
    )
