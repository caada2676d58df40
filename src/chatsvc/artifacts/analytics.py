"""Chat analytics: per-assistant and per-chat statistics, read from relations that a refresh
recomputes. On PostgreSQL they are materialized views (defined in the migration) refreshed
CONCURRENTLY, so readers are never blocked; on SQLite they are tables that a refresh empties and
fills again in one transaction, from the queries below, which compute what the views compute."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    delete,
    distinct,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.artifacts.models import (
    ANALYTICS_VIEWS,
    AnalyticsRefresh,
    assistant_stats,
    chat_stats,
)
from chatsvc.artifacts.schemas import AttemptStats, EntryStats, Statistics
from chatsvc.assistants.models import Assistant
from chatsvc.chats.models import Chat, Message
from chatsvc.kit.db import utcnow

_VISIBLE_MESSAGES = and_(Message.chat_id == Chat.id, Message.visible.is_(True))


def _by_role(role: str) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((Message.role == role, 1), else_=0)), 0)


def chat_stats_query() -> Select[*tuple[Any, ...]]:
    """Per chat: its visible messages, by role, and the first and last of them."""
    return (
        select(
            Chat.id,
            Chat.workspace_id,
            Chat.assistant_id,
            Chat.principal_id,
            func.count(Message.id),
            _by_role("user"),
            _by_role("assistant"),
            func.min(Message.created_at),
            func.max(Message.created_at),
        )
        .select_from(Chat)
        .outerjoin(Message, _VISIBLE_MESSAGES)
        .group_by(Chat.id, Chat.workspace_id, Chat.assistant_id, Chat.principal_id)
    )


def assistant_stats_query() -> Select[*tuple[Any, ...]]:
    """Per assistant (deleted ones too): chats, visible messages by role, liked and disliked
    chats, the last message."""
    return (
        select(
            Assistant.id,
            Assistant.workspace_id,
            func.count(distinct(Chat.id)),
            func.count(Message.id),
            _by_role("user"),
            _by_role("assistant"),
            func.count(distinct(case((Chat.like.is_(True), Chat.id)))),
            func.count(distinct(case((Chat.like.is_(False), Chat.id)))),
            func.max(Message.created_at),
        )
        .select_from(Assistant)
        .outerjoin(Chat, Chat.assistant_id == Assistant.id)
        .outerjoin(Message, _VISIBLE_MESSAGES)
        .group_by(Assistant.id, Assistant.workspace_id)
    )


async def refresh(session: AsyncSession) -> list[str]:
    """Recompute every analytics relation (of all workspaces: a materialized view has no
    per-workspace refresh) in the session's transaction; the names refreshed."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        for name in ANALYTICS_VIEWS:
            # CONCURRENTLY: readers keep reading the old rows until the commit; it needs the
            # unique index the migration created on each view.
            await session.execute(text(f"REFRESH MATERIALIZED VIEW CONCURRENTLY {name}"))
    else:
        for table, query in (
            (assistant_stats, assistant_stats_query()),
            (chat_stats, chat_stats_query()),
        ):
            await session.execute(delete(table))
            await session.execute(
                insert(table).from_select([column.name for column in table.columns], query)
            )
    now = utcnow()
    upsert = pg_insert if dialect == "postgresql" else sqlite_insert
    for name in ANALYTICS_VIEWS:
        statement = upsert(AnalyticsRefresh).values(name=name, refreshed_at=now)
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[AnalyticsRefresh.name], set_={"refreshed_at": now}
            )
        )
    return list(ANALYTICS_VIEWS)


async def refreshed_at(session: AsyncSession) -> datetime | None:
    """When the analytics were last refreshed (None: not since the migration built them)."""
    return await session.scalar(select(func.min(AnalyticsRefresh.refreshed_at)))


async def statistics(
    session: AsyncSession, workspace_id: int, entry_id: int, chat_id: int | None
) -> Statistics:
    """The entry's and (given) the attempt's statistics as of the last refresh; zeros for what
    did not exist then."""
    entry_row = (
        await session.execute(
            select(assistant_stats).where(
                assistant_stats.c.assistant_id == entry_id,
                assistant_stats.c.workspace_id == workspace_id,
            )
        )
    ).one_or_none()
    entry = EntryStats()
    if entry_row is not None:
        entry = EntryStats.model_validate(dict(entry_row._mapping))
    attempt: AttemptStats | None = None
    if chat_id is not None:
        chat_row = (
            await session.execute(
                select(chat_stats).where(
                    chat_stats.c.chat_id == chat_id, chat_stats.c.workspace_id == workspace_id
                )
            )
        ).one_or_none()
        attempt = (
            AttemptStats.model_validate(dict(chat_row._mapping))
            if chat_row is not None
            else AttemptStats()
        )
    return Statistics(entry=entry, attempt=attempt, refreshed_at=await refreshed_at(session))
