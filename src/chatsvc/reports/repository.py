"""Report queries, always scoped to what the caller sees (a ChatScope: the workspace and, for a
member, the chats it owns): filtered pages and per-dimension counts grouped in the database."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    func,
    literal,
    select,
    type_coerce,
    union_all,
)

from chatsvc.chats.models import Chat
from chatsvc.chats.repository import ChatScope
from chatsvc.kit.pagination import Page, PageParams
from chatsvc.kit.repository import RepositoryBase
from chatsvc.reports.models import Report
from chatsvc.reports.schemas import ReportFilters

#: the counted columns, keyed as schemas.DIMENSIONS
_COLUMNS = {
    "status": Report.status,
    "category": Report.category,
    "reason": Report.reason,
    "severity": Report.severity,
}


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, UTC)


class ReportRepository(RepositoryBase[Report]):
    model = Report

    def _where(self, scope: ChatScope, filters: ReportFilters) -> list[ColumnElement[bool]]:
        workspace_id = scope.workspace_id
        conditions = [Report.workspace_id == workspace_id]
        if scope.principal_id is not None:
            # A member sees the reports on the chats it can open: an EXISTS on the chat's primary
            # key per report, so a page still costs a page.
            readable = scope.limit(
                select(Chat.id).where(Chat.id == Report.chat_id),
                Chat.workspace_id,
                Chat.principal_id,
            )
            conditions.append(readable.exists())
        if filters.topic is not None:
            conditions.append(Report.topic == filters.topic)
        if filters.assistant_id is not None:
            chats = select(Chat.id).where(
                Chat.workspace_id == workspace_id, Chat.assistant_id == filters.assistant_id
            )
            conditions.append(Report.chat_id.in_(chats))
        if filters.start_date is not None:
            conditions.append(Report.created_at >= _midnight(filters.start_date))
        if filters.end_date is not None and filters.end_date < date.max:
            # The end day is included: everything before the next midnight.
            conditions.append(Report.created_at < _midnight(filters.end_date + timedelta(days=1)))
        return conditions

    def _filtered(self, scope: ChatScope, filters: ReportFilters) -> Select[Report]:
        return select(Report).where(*self._where(scope, filters))

    async def get(self, scope: ChatScope, report_id: int) -> Report | None:
        return await self.get_one_or_none(
            self._filtered(scope, ReportFilters()).where(Report.id == report_id)
        )

    async def list(
        self, scope: ChatScope, filters: ReportFilters, params: PageParams
    ) -> Page[Report]:
        return await self.paginate(self._filtered(scope, filters).order_by(Report.id), params)

    def chat_ids(self, scope: ChatScope, filters: ReportFilters) -> Select[int]:
        """The chats the matching reports are about (a subquery)."""
        return select(Report.chat_id).where(*self._where(scope, filters))

    async def counts(self, scope: ChatScope, filters: ReportFilters) -> dict[str, dict[str, int]]:
        """{dimension: {value: count}} for the values present, in one round trip: a GROUP BY per
        dimension, joined with UNION ALL, so at most a few dozen rows come back."""
        conditions = self._where(scope, filters)
        grouped = [
            select(
                literal(name, String).label("dimension"),
                # As text: the UNION's column takes the first select's type, which would read
                # the other dimensions' values as statuses.
                type_coerce(column, String).label("value"),
                func.count().label("n"),
            )
            .where(*conditions)
            .group_by(column)
            for name, column in _COLUMNS.items()
        ]
        found: dict[str, dict[str, int]] = {name: {} for name in _COLUMNS}
        for dimension, value, n in await self.session.execute(union_all(*grouped)):
            found[dimension][value] = n
        return found
