"""RepositoryBase: the queries every table needs (get by id in a workspace, paginate, add).
Repositories add and flush; they never commit."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.kit.db import Base
from chatsvc.kit.pagination import Page, PageParams

M = TypeVar("M", bound=Base)


class RepositoryBase(Generic[M]):
    model: type[M]

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def core(self, statement: Any, params: dict[str, Any]) -> Any:
        """Run a statement on the session's connection without the ORM's per-statement work
        (for the turn's own statements, which return plain rows)."""
        connection = await self.session.connection()
        return await connection.execute(statement, params)

    async def get_one_or_none(self, statement: Select[M], *, fresh: bool = False) -> M | None:
        """The one row `statement` selects, if any; `fresh`: its columns read again even when
        the session already holds it (after a write another session made)."""
        if fresh:
            statement = statement.execution_options(populate_existing=True)
        result = await self.session.execute(statement)
        return result.unique().scalar_one_or_none()

    async def paginate(self, statement: Select[M], params: PageParams) -> Page[M]:
        """One page of `statement` (a select of one mapped class with an `id`, ordered) and the
        total. The offset walks ids only; full rows (with their computed columns and relations)
        are loaded for the page alone, so a deep page costs an index scan, not N row builds."""
        count_statement = select(func.count()).select_from(
            statement.order_by(None).with_only_columns(literal_column("1")).subquery()
        )
        total = (await self.session.execute(count_statement)).scalar_one()
        if total == 0 or params.offset >= total:
            return Page(items=[], total=total, params=params)
        entity = statement.column_descriptions[0]["entity"]
        ids = (
            await self.session.scalars(
                statement.with_only_columns(entity.id).offset(params.offset).limit(params.page_size)
            )
        ).all()
        rows = await self.session.execute(statement.where(entity.id.in_(ids)))
        return Page(items=list(rows.unique().scalars().all()), total=total, params=params)

    async def add(self, obj: M) -> M:
        self.session.add(obj)
        await self.session.flush()
        return obj

    async def delete(self, obj: M) -> None:
        await self.session.delete(obj)
        await self.session.flush()

    async def update(self, obj: M, values: dict[str, Any]) -> M:
        for key, value in values.items():
            setattr(obj, key, value)
        await self.session.flush()
        return obj
