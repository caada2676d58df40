"""Token usage per workspace: the answers' stored figures (Message.prompt_tokens,
completion_tokens, usage_estimated) summed in SQL by day, assistant or API key.

An answer counts on the UTC day it was stored, for its chat's assistant and for the principal of
the API key that made the chat (every key of one principal counts together: chats record the
principal, not the key)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.chats.models import Chat, Message, Role
from chatsvc.kit.filtering import check_day_range, day_bounds, parse_day
from chatsvc.kit.pagination import Page, PageParams


class GroupBy(StrEnum):
    """What the usage is summed by."""

    DAY = "day"
    ASSISTANT = "assistant"
    API_KEY = "api_key"


@dataclass(frozen=True, slots=True)
class UsageQuery:
    """Whole UTC days, both ends included; None means unbounded."""

    group_by: GroupBy = GroupBy.DAY
    start_date: date | None = None
    end_date: date | None = None

    def __post_init__(self) -> None:
        check_day_range(self.start_date, self.end_date)

    @classmethod
    def from_query(
        cls, group_by: GroupBy, start_date: str | None, end_date: str | None
    ) -> UsageQuery:
        return cls(group_by, parse_day("start_date", start_date), parse_day("end_date", end_date))


@dataclass(frozen=True, slots=True)
class UsageTotals:
    prompt_tokens: int
    completion_tokens: int
    answers: int
    estimated_answers: int

    def as_dict(self) -> dict[str, int]:
        """The wire shape: the figures and their total."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "answers": self.answers,
            "estimated_answers": self.estimated_answers,
        }


@dataclass(frozen=True, slots=True)
class UsageRow(UsageTotals):
    #: the group: a YYYY-MM-DD day, an assistant id or a principal id (None: its key is gone)
    key: str | int | None


class UsageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _key(self, group_by: GroupBy) -> Any:
        if group_by is GroupBy.ASSISTANT:
            return Chat.assistant_id
        if group_by is GroupBy.API_KEY:
            return Chat.principal_id
        if self.session.get_bind().dialect.name == "postgresql":
            return func.date(func.timezone("UTC", Message.created_at))
        return func.date(Message.created_at)  # SQLite stores naive UTC

    def _where(self, workspace_id: int, query: UsageQuery) -> list[ColumnElement[bool]]:
        conditions = [
            Chat.workspace_id == workspace_id,
            Message.role == Role.ASSISTANT,
            Message.prompt_tokens.is_not(None),
        ]
        if query.start_date is not None:
            conditions.append(Message.created_at >= day_bounds(query.start_date)[0])
        if query.end_date is not None:
            conditions.append(Message.created_at < day_bounds(query.end_date)[1])
        return conditions

    async def of_chats(self, chat_ids: Any) -> UsageTotals:
        """The usage of the answers in the chats `chat_ids` (a select of chat ids) selects; one
        aggregate query."""
        statement = select(*_sums()).where(
            Message.chat_id.in_(chat_ids),
            Message.role == Role.ASSISTANT,
            Message.prompt_tokens.is_not(None),
        )
        return UsageTotals(*(int(value) for value in (await self.session.execute(statement)).one()))

    async def summary(
        self, workspace_id: int, query: UsageQuery, params: PageParams
    ) -> tuple[UsageTotals, Page[UsageRow]]:
        """The totals, and one page of the groups (ordered by key); three aggregate queries,
        whatever the number of answers."""
        where = self._where(workspace_id, query)
        base = select(*_sums()).select_from(Message).join(Chat, Chat.id == Message.chat_id)
        total_row = (await self.session.execute(base.where(*where))).one()
        totals = UsageTotals(*(int(value) for value in total_row))
        key = self._key(query.group_by).label("key")
        grouped = base.add_columns(key).where(*where).group_by(key)
        groups = (
            await self.session.execute(select(func.count()).select_from(grouped.subquery()))
        ).scalar_one()
        rows: list[UsageRow] = []
        if groups and params.offset < groups:
            found = await self.session.execute(
                grouped.order_by(key.asc().nulls_last())
                .offset(params.offset)
                .limit(params.page_size)
            )
            for prompt, completion, answers, estimated, value in found:
                if query.group_by is GroupBy.DAY and value is not None:
                    value = str(value)[:10]
                rows.append(
                    UsageRow(int(prompt), int(completion), int(answers), int(estimated), value)
                )
        return totals, Page(items=rows, total=groups, params=params)


def _sums() -> list[Any]:
    """prompt tokens, completion tokens, answers, estimated answers."""
    return [
        func.coalesce(func.sum(Message.prompt_tokens), 0),
        func.coalesce(func.sum(Message.completion_tokens), 0),
        func.count(),
        func.coalesce(func.sum(case((Message.usage_estimated.is_(True), 1), else_=0)), 0),
    ]
