"""Queries of the threads face's views: sessions (get-or-create without a race), thread lists with
their filters and ordering, message lists, and what a page of them joins in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.assistants.models import Assistant
from chatsvc.auth.models import Principal
from chatsvc.chats.models import Chat, ChatSettings, Message, new_uuid
from chatsvc.chats.repository import ChatRepository, ChatScope, ChatSettingsRepository
from chatsvc.kit.db import Base, utcnow
from chatsvc.kit.filtering import Orderable, OrderKey, day_bounds, order_by
from chatsvc.kit.pagination import Page, PageParams
from chatsvc.kit.repository import RepositoryBase
from chatsvc.moderation import Severity
from chatsvc.threads.models import ChatSession
from chatsvc.threads.schemas import MessageFilters, ThreadFilters


def _like(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _visible_count() -> Any:
    return (
        select(func.count(Message.id))
        .where(Message.chat_id == Chat.id, Message.visible.is_(True))
        .correlate(Chat)
        .scalar_subquery()
    )


async def _insert_or_skip(
    session: AsyncSession, model: type[Base], values: dict[str, Any], unique: list[str]
) -> None:
    """INSERT unless a row with the same `unique` columns exists (or is being inserted by a
    transaction still running, which this one then waits for): get-or-create without a race."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.execute(
        insert(model).values(**values).on_conflict_do_nothing(index_elements=unique)
    )


class SettingsRepository(ChatSettingsRepository):
    async def ensure(self, workspace_id: int) -> ChatSettings:
        now = utcnow()
        values = {"workspace_id": workspace_id, "created_at": now, "updated_at": now}
        await _insert_or_skip(self.session, ChatSettings, values, ["workspace_id"])
        found = await self.get_one_or_none(
            select(ChatSettings)
            .where(ChatSettings.workspace_id == workspace_id)
            .execution_options(populate_existing=True)
        )
        assert found is not None
        return found

    async def first_live_assistant(self, workspace_id: int) -> int | None:
        found = await self.session.scalar(
            select(Assistant.id)
            .where(Assistant.workspace_id == workspace_id, Assistant.deleted_at.is_(None))
            .order_by(Assistant.id)
            .limit(1)
        )
        return None if found is None else int(found)


class SessionRepository(RepositoryBase[ChatSession]):
    model = ChatSession

    def scoped(self, scope: ChatScope) -> Select[ChatSession]:
        return scope.limit(select(ChatSession), ChatSession.workspace_id, ChatSession.principal_id)

    async def ensure(self, workspace_id: int, principal_id: int) -> ChatSession:
        """The principal's session, made on first use. Concurrent first uses agree: the insert
        does nothing when the (workspace, principal) row exists or is being made, and the read
        after it sees the one row."""
        now = utcnow()
        values = {
            "uuid": new_uuid(),
            "user_uuid": new_uuid(),
            "workspace_id": workspace_id,
            "principal_id": principal_id,
            "created_at": now,
            "updated_at": now,
        }
        await _insert_or_skip(self.session, ChatSession, values, ["workspace_id", "principal_id"])
        found = await self.get_one_or_none(
            select(ChatSession)
            .where(
                ChatSession.workspace_id == workspace_id,
                ChatSession.principal_id == principal_id,
            )
            .execution_options(populate_existing=True)
        )
        assert found is not None
        return found

    async def by_uuid(self, scope: ChatScope, session_uuid: str) -> ChatSession | None:
        return await self.get_one_or_none(
            self.scoped(scope).where(ChatSession.uuid == session_uuid)
        )

    async def find(self, scope: ChatScope, params: PageParams) -> Page[ChatSession]:
        return await self.paginate(self.scoped(scope).order_by(ChatSession.id), params)

    async def users(self, principal_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
        """(username, full_name) of each principal."""
        if not principal_ids:
            return {}
        rows = await self.session.execute(
            select(Principal.id, Principal.username, Principal.full_name).where(
                Principal.id.in_(set(principal_ids))
            )
        )
        return {row.id: (row.username, row.full_name) for row in rows}


class ThreadRepository(ChatRepository):
    """Chats seen as threads: the chat queries (by uuid among them), listed with filters."""

    async def by_generation(self, scope: ChatScope, generation_id: str) -> Chat | None:
        """The chat a generation ran (or runs) in, if the scope sees it. A chat names its latest
        generation, which is what a resume almost always asks for; an older one is found
        through the messages it stored."""
        latest = await self.get_one_or_none(
            self.scoped(scope).where(Chat.generation_id == generation_id).limit(1)
        )
        if latest is not None:
            return latest
        answered = select(Message.chat_id).where(Message.generation_id == generation_id)
        return await self.get_one_or_none(
            self.scoped(scope).where(Chat.id.in_(answered.limit(1).scalar_subquery())).limit(1)
        )

    async def find(
        self,
        scope: ChatScope,
        filters: ThreadFilters,
        ordering: Sequence[OrderKey],
        params: PageParams,
    ) -> Page[Chat]:
        statement = self.scoped(scope).where(*self._where(scope, filters))
        columns: dict[str, Orderable] = {
            "created": Chat.created_at,
            "modified": Chat.updated_at,
            "name": Chat.title,
            "message_count": _visible_count(),
            "max_severity": Chat.max_severity,
            "is_flagged": Chat.is_flagged,
        }
        return await self.paginate(order_by(statement, ordering, columns, Chat.id), params)

    def _where(self, scope: ChatScope, filters: ThreadFilters) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = [Chat.is_archived.is_(bool(filters.is_archived))]
        for column, day in (
            (Chat.created_at, filters.created),
            (Chat.updated_at, filters.modified),
        ):
            if day is not None:
                start, end = day_bounds(day)
                conditions += [column >= start, column < end]
        if filters.is_flagged is not None:
            conditions.append(Chat.is_flagged.is_(filters.is_flagged))
        if filters.max_severity is not None:
            conditions.append(Chat.max_severity == Severity(filters.max_severity).rank)
        if filters.query is not None:
            pattern = _like(filters.query)
            in_messages = exists().where(
                Message.chat_id == Chat.id,
                Message.visible.is_(True),
                Message.content.ilike(pattern, escape="\\"),
            )
            conditions.append(or_(Chat.title.ilike(pattern, escape="\\"), in_messages))
        if filters.user is not None:
            owner = (
                select(ChatSession.principal_id)
                .where(
                    ChatSession.workspace_id == scope.workspace_id,
                    ChatSession.user_uuid == filters.user,
                )
                .scalar_subquery()
            )
            conditions.append(Chat.principal_id == owner)
        return conditions

    async def details(
        self, chat_ids: Sequence[int]
    ) -> dict[int, tuple[int, str | None, str | None, str | None]]:
        """Per chat: (visible message count, session uuid, username, full name)."""
        if not chat_ids:
            return {}
        rows = await self.session.execute(
            select(
                Chat.id,
                _visible_count().label("message_count"),
                ChatSession.uuid,
                Principal.username,
                Principal.full_name,
            )
            .select_from(Chat)
            .outerjoin(Principal, Principal.id == Chat.principal_id)
            .outerjoin(
                ChatSession,
                and_(
                    ChatSession.workspace_id == Chat.workspace_id,
                    ChatSession.principal_id == Chat.principal_id,
                ),
            )
            .where(Chat.id.in_(set(chat_ids)))
        )
        return {
            row.id: (int(row.message_count), row.uuid, row.username, row.full_name) for row in rows
        }


class ThreadMessageRepository(RepositoryBase[Message]):
    model = Message

    async def find(
        self, scope: ChatScope, filters: MessageFilters, params: PageParams
    ) -> Page[Message]:
        statement = scope.limit(
            select(Message).join(Chat, Chat.id == Message.chat_id),
            Chat.workspace_id,
            Chat.principal_id,
        )
        if filters.thread is not None:
            statement = statement.where(Chat.uuid == filters.thread)
        else:
            statement = statement.where(Chat.is_archived.is_(False))
        if not filters.include_history:
            statement = statement.where(Message.visible.is_(True))
        if filters.is_flagged is not None:
            statement = statement.where(Message.is_flagged.is_(filters.is_flagged))
        return await self.paginate(statement.order_by(Message.chat_id, Message.msg_num), params)

    async def by_number(self, chat_id: int, msg_num: int) -> Message | None:
        return await self.get_one_or_none(
            select(Message).where(Message.chat_id == chat_id, Message.msg_num == msg_num)
        )

    async def by_ids(self, message_ids: Sequence[int]) -> list[Message]:
        rows = await self.session.scalars(
            select(Message)
            .where(Message.id.in_(set(message_ids)))
            .execution_options(populate_existing=True)
        )
        return list(rows.all())

    async def links(self, messages: Sequence[Message]) -> tuple[dict[int, str], dict[int, str]]:
        """The uuids a page of messages refers to: of their chats, and of the messages they
        replace."""
        chat_ids = {m.chat_id for m in messages}
        replaced_ids = {m.replaces_id for m in messages if m.replaces_id is not None}
        chats: dict[int, str] = {}
        replaced: dict[int, str] = {}
        if chat_ids:
            rows = await self.session.execute(
                select(Chat.id, Chat.uuid).where(Chat.id.in_(chat_ids))
            )
            chats = {row.id: row.uuid for row in rows}
        if replaced_ids:
            rows = await self.session.execute(
                select(Message.id, Message.uuid).where(Message.id.in_(replaced_ids))
            )
            replaced = {row.id: row.uuid for row in rows}
        return chats, replaced
