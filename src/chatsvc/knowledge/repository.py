"""Knowledge queries: an assistant's items of one kind (a page, one item, all of them for a turn)
and the fingerprint that says when its FAQ changed."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.kit.pagination import Page, PageParams
from chatsvc.kit.repository import RepositoryBase
from chatsvc.knowledge.models import KnowledgeItem

K = TypeVar("K", bound=KnowledgeItem)


class KnowledgeRepository(RepositoryBase[K], Generic[K]):
    """The items of one kind (`model`: CommonQuestion, FixedResponse or Lesson)."""

    def __init__(self, session: AsyncSession, model: type[K]) -> None:
        super().__init__(session)
        self.model = model

    def _of(self, assistant_id: int) -> Select[K]:
        return select(self.model).where(self.model.assistant_id == assistant_id)

    async def page(self, assistant_id: int, params: PageParams) -> Page[K]:
        return await self.paginate(self._of(assistant_id).order_by(self.model.id), params)

    async def get(self, assistant_id: int, item_id: int) -> K | None:
        return await self.get_one_or_none(self._of(assistant_id).where(self.model.id == item_id))

    async def all_of(self, assistant_id: int) -> list[K]:
        """Every item of the assistant, oldest first (what a turn matches against)."""
        rows = await self.session.scalars(self._of(assistant_id).order_by(self.model.id))
        return list(rows.all())

    async def fingerprint(self, assistant_id: int) -> tuple[Any, ...]:
        """Count, last id and last update of the assistant's items: any change changes it."""
        statement = self._of(assistant_id).with_only_columns(
            func.count(self.model.id), func.max(self.model.id), func.max(self.model.updated_at)
        )
        return tuple((await self.session.execute(statement)).one())
