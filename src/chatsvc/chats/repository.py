"""Chat and message queries, scoped to a workspace and, for member keys, to the caller; a chat's
ticket references, a workspace's chat settings, and the senders of messages (principals and their
public UUIDs)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    bindparam,
    case,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import QueryableAttribute, aliased

from chatsvc.assistants.models import Assistant, AssistantTool
from chatsvc.auth.models import Principal, PrincipalKind
from chatsvc.chats.models import (
    Chat,
    ChatSettings,
    ChatTicket,
    ExecutionStatus,
    Message,
    Role,
)
from chatsvc.kit.db import Base, utcnow
from chatsvc.kit.pagination import Page, PageParams
from chatsvc.kit.repository import RepositoryBase
from chatsvc.knowledge.models import CommonQuestion, FixedResponse, Lesson
from chatsvc.moderation.policy import Action
from chatsvc.threads.models import ChatSession
from chatsvc.tools.models import MetadataFilter, Tool

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class GenerationState:
    """Who holds a chat: its execution status, generation and lease."""

    execution_status: ExecutionStatus
    generation_id: str | None
    lease_expires_at: datetime | None

    def runs(self, generation_id: str, now: datetime) -> bool:
        """Whether `generation_id` still holds the chat with a live lease."""
        return (
            self.execution_status == ExecutionStatus.PROCESSING
            and self.generation_id == generation_id
            and (self.lease_expires_at is None or self.lease_expires_at > now)
        )


@dataclass(frozen=True, slots=True)
class TurnTarget:
    """What accepting a turn in a chat needs to know, read in one statement."""

    chat_id: int
    uuid: str
    workspace_id: int
    max_msg_length: int
    #: the chat's assistant exists and is not deleted
    assistant_live: bool
    #: the workspace's stored moderation policy (None: the default)
    moderation_policy: dict[str, Any] | None
    #: (msg_num, generation id) of the user message an Idempotency-Key already made
    replay: tuple[int, str | None] | None


@dataclass(frozen=True, slots=True)
class WindowMessage:
    """A message as planning reads it: the columns a prompt needs, without an ORM object's
    identity map and change tracking."""

    msg_num: int
    role: str
    content: str
    usr_msg_num: int | None = None
    redacted_content: str | None = None
    action_taken: str = Action.NONE
    moderation: dict[str, Any] | None = None


_WINDOW_COLUMNS = tuple(field.name for field in fields(WindowMessage))


@dataclass(frozen=True, slots=True)
class TurnWindow:
    """What planning a turn reads of its chat, in one round trip: the user message, the history
    before it (newest `limit` messages the prompt may use, oldest first), the chat's workspace
    and assistant, and a stamp of the assistant's configuration (it changes whenever the
    assistant, its knowledge, its tools or the workspace's retrieval filters change)."""

    workspace_id: int
    assistant_id: int
    stamp: tuple[Any, ...]
    user: WindowMessage
    history: list[WindowMessage]


@dataclass(frozen=True, slots=True)
class ChatScope:
    """Which chats a caller sees: a workspace, and only its own chats unless it is an admin."""

    workspace_id: int
    principal_id: int | None  # None: every chat of the workspace

    def limit(
        self,
        statement: Select[T],
        workspace_id: QueryableAttribute[int],
        principal_id: QueryableAttribute[int] | QueryableAttribute[int | None],
    ) -> Select[T]:
        """`statement` kept to what the caller sees, by the workspace and owner columns of the
        rows it reads (a chat's, a session's)."""
        statement = statement.where(workspace_id == self.workspace_id)
        if self.principal_id is not None:
            statement = statement.where(principal_id == self.principal_id)
        return statement


class ChatRepository(RepositoryBase[Chat]):
    model = Chat

    def scoped(self, scope: ChatScope) -> Select[Chat]:
        return scope.limit(select(Chat), Chat.workspace_id, Chat.principal_id)

    async def get(self, scope: ChatScope, chat_id: int, *, for_update: bool = False) -> Chat | None:
        statement = _get_statement(own=scope.principal_id is not None, for_update=for_update)
        params = {
            "p_chat_id": chat_id,
            "p_workspace_id": scope.workspace_id,
            "p_principal_id": scope.principal_id,
        }
        result = await self.session.execute(statement, params)
        return result.scalar_one_or_none()

    async def by_uuid(
        self, scope: ChatScope, chat_uuid: str, *, fresh: bool = False
    ) -> Chat | None:
        statement = self.scoped(scope).where(Chat.uuid == chat_uuid)
        if fresh:
            statement = statement.execution_options(populate_existing=True)
        return await self.get_one_or_none(statement)

    async def by_id(self, chat_id: int, *, fresh: bool = False) -> Chat | None:
        """A chat by id, in no scope: for work on a chat whose caller was checked already (a
        generation, a job). `fresh` reloads a row this session holds."""
        return await self.session.get(Chat, chat_id, populate_existing=fresh)

    async def generation_state(self, chat_id: int) -> GenerationState | None:
        row = (
            await self.session.execute(
                select(Chat.execution_status, Chat.generation_id, Chat.lease_expires_at).where(
                    Chat.id == chat_id
                )
            )
        ).one_or_none()
        if row is None:
            return None
        return GenerationState(row.execution_status, row.generation_id, row.lease_expires_at)

    async def _write_turn(
        self,
        build: Callable[[frozenset[str]], tuple[Any, tuple[str, ...]]],
        message: dict[str, Any],
        chat_id: int,
        generation_id: str,
        now: datetime,
        **params: Any,
    ) -> Any:
        """Run a turn's write for the chat `generation_id` claims or holds: the statement `build`
        makes (once per set of message attributes) with the chat, the generation, the time,
        `params` and the message's columns bound."""
        statement, defaulted = build(frozenset(message))
        # Parameter names never repeat a column's: in an UPDATE they would become its values.
        bound = {
            "p_chat_id": chat_id,
            "p_generation_id": generation_id,
            "p_now": now,
            **params,
            **_message_params(message, defaulted),
        }
        return await self.core(statement, bound)

    async def turn_target(
        self, scope: ChatScope, chat_id: int, idempotency_key: str | None
    ) -> TurnTarget | None:
        """The chat (if the caller sees it) with its assistant's liveness, the workspace's
        moderation policy and the turn an Idempotency-Key already made: one round trip."""
        statement = _turn_target_statement(
            keyed=bool(idempotency_key), own=scope.principal_id is not None
        )
        params = {
            "p_chat_id": chat_id,
            "p_workspace_id": scope.workspace_id,
            "p_principal_id": scope.principal_id,
            "p_key": idempotency_key,
        }
        row = (await self.core(statement, params)).one_or_none()
        if row is None:
            return None
        replay = None if row.replay_num is None else (row.replay_num, row.replay_generation)
        return TurnTarget(
            row.id,
            row.uuid,
            row.workspace_id,
            row.max_msg_length,
            bool(row.live),
            row.moderation_policy,
            replay,
        )

    async def accept_turn(
        self,
        chat_id: int,
        generation_id: str,
        now: datetime,
        lease_until: datetime,
        title: str,
        message: dict[str, Any],
        *,
        owner: str | None = None,
    ) -> int | None:
        """Claim the chat for `generation_id` and store its user message, in one statement
        (PostgreSQL: an UPDATE ... RETURNING feeding the INSERT): the chat row's lock numbers
        the message gap-free. Only a chat that may take a turn now is claimed (no generation
        running, not ended, not archived, below its limit of answers); None otherwise, and
        nothing was written. `owner`: the process that runs the generation (None: a background
        job will). The message number on success."""
        result = await self._write_turn(
            _accept_statement,
            message,
            chat_id,
            generation_id,
            now,
            p_lease_until=lease_until,
            p_owner=owner,
            p_title=title,
        )
        found: int | None = result.scalar_one_or_none()
        return found

    async def store_answer(
        self,
        chat_id: int,
        generation_id: str,
        usr_msg_num: int,
        now: datetime,
        message: dict[str, Any],
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Release the chat from `generation_id` (AVAILABLE, one more response) and store its
        answer to `usr_msg_num`, in one statement (PostgreSQL): the chat row's lock numbers the
        message, which `replaces` the latest hidden answer to that user message (a reload).
        The stored message's columns and the chat's (id, title, assistant_id, execution_status,
        error); None when the generation no longer holds the chat (nothing was written)."""
        given = {**message, "created_at": now, "updated_at": now}
        result = await self._write_turn(
            _answer_statement, given, chat_id, generation_id, now, p_usr_msg_num=usr_msg_num
        )
        row = result.mappings().one_or_none()
        if row is None:
            return None
        stored = {column.name: row[column.name] for column in Message.__table__.c}
        chat = {
            "id": chat_id,
            "title": row["chat_title"],
            "assistant_id": row["chat_assistant_id"],
            "execution_status": row["chat_execution_status"],
            "error": row["chat_error"],
        }
        return stored, chat

    async def by_idempotency_key(self, workspace_id: int, key: str) -> Chat | None:
        """The chat a key made in the workspace, whoever made it: keys are unique per workspace
        (the chats' unique constraint), so the look-up is too; the caller decides what another
        principal's chat means (chat_service.create_chat)."""
        statement = select(Chat).where(
            Chat.workspace_id == workspace_id, Chat.idempotency_key == key
        )
        return await self.get_one_or_none(statement)

    async def list_for_assistant(
        self, scope: ChatScope, assistant_id: int, params: PageParams
    ) -> Page[Chat]:
        statement = self.scoped(scope).where(Chat.assistant_id == assistant_id).order_by(Chat.id)
        return await self.paginate(statement, params)

    async def next_msg_num(self, chat_id: int) -> int:
        """The chat's next message number. The UPDATE takes the chat row's lock until commit, so
        concurrent turns number one after another and a rolled-back turn leaves no gap."""
        result = await self.session.execute(
            update(Chat)
            .where(Chat.id == chat_id)
            .values(last_msg_num=Chat.last_msg_num + 1)
            .returning(Chat.last_msg_num)
        )
        return int(result.scalar_one())

    async def reserve_msg_nums(self, chat_id: int, count: int) -> int:
        """`count` message numbers at once (as `next_msg_num` takes one); returns the last."""
        result = await self.session.execute(
            update(Chat)
            .where(Chat.id == chat_id)
            .values(last_msg_num=Chat.last_msg_num + count)
            .returning(Chat.last_msg_num)
        )
        return int(result.scalar_one())

    async def claim_generation(
        self,
        chat_id: int,
        generation_id: str,
        now: datetime,
        lease_until: datetime,
        *,
        unchanged_since: int | None = None,
        owner: str | None = None,
    ) -> bool:
        """AVAILABLE/FAILED (or PROCESSING with an expired lease) → PROCESSING, in one conditional
        UPDATE: of many concurrent claims exactly one wins, whatever process they run in.
        `owner`: the process that runs the generation (None: a background job will).
        `unchanged_since`: only if the chat's last message number is still this one (what the
        caller decided on was read before; an answer stored since then refuses the claim)."""
        condition = (Chat.execution_status != ExecutionStatus.PROCESSING) | (
            Chat.lease_expires_at < now
        )
        if unchanged_since is not None:
            condition = condition & (Chat.last_msg_num == unchanged_since)
        result = await self.session.execute(
            update(Chat)
            .where(Chat.id == chat_id, condition)
            .values(
                execution_status=ExecutionStatus.PROCESSING,
                generation_id=generation_id,
                lease_expires_at=lease_until,
                owner_id=owner,
                error=None,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def release_generation(
        self,
        chat_id: int,
        generation_id: str,
        status: ExecutionStatus,
        *,
        error: str | None = None,
        answered: bool = False,
        ended: bool | None = None,
    ) -> bool:
        """Leave PROCESSING, only if this generation still holds the chat."""
        values: dict[str, object] = {
            "execution_status": status,
            "lease_expires_at": None,
            "error": error,
        }
        if answered:
            values["responses_count"] = Chat.responses_count + 1
        if ended is not None:
            values["ended"] = ended
        result = await self.session.execute(
            update(Chat)
            .where(Chat.id == chat_id, Chat.generation_id == generation_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def fail_expired(self, now: datetime, error: str) -> list[tuple[int, str | None]]:
        """PROCESSING chats whose lease expired (their generation's process died) become FAILED
        with `error`; (chat id, generation id) of each. Each row changes once per expiry, so many
        processes may run this at once."""
        return await self._fail_processing(Chat.lease_expires_at < now, now=now, error=error)

    async def fail_orphaned(
        self, owners: Collection[str], *, all_but: str | None, now: datetime, error: str
    ) -> list[tuple[int, str | None]]:
        """PROCESSING chats whose generation's process died become FAILED with `error`: those
        owned by one of `owners`, or (`all_but`) by any process but that one. (chat id,
        generation id) of each; each row changes once, so many processes may run this at once."""
        owned: ColumnElement[bool]
        if all_but is not None:
            owned = Chat.owner_id.is_not(None) & (Chat.owner_id != all_but)
        elif owners:
            owned = Chat.owner_id.in_(sorted(owners))
        else:
            return []
        return await self._fail_processing(owned, now=now, error=error)

    async def _fail_processing(
        self, which: ColumnElement[bool], *, now: datetime, error: str
    ) -> list[tuple[int, str | None]]:
        """The PROCESSING chats `which` selects become FAILED with `error` (their lease
        cleared); (chat id, generation id) of each. The status in the WHERE clause makes each
        row change once, so many processes may run this at once."""
        rows = await self.session.execute(
            update(Chat)
            .where(Chat.execution_status == ExecutionStatus.PROCESSING, which)
            .values(
                execution_status=ExecutionStatus.FAILED,
                error=error,
                lease_expires_at=None,
                updated_at=now,
            )
            .returning(Chat.id, Chat.generation_id)
            .execution_options(synchronize_session=False)
        )
        return [(row.id, row.generation_id) for row in rows]

    async def extend_lease(
        self, chat_id: int, generation_id: str, lease_until: datetime, owner: str | None = None
    ) -> None:
        """Renew the generation's lease; `owner`: the process running it takes it over (a
        background job's worker)."""
        values: dict[str, Any] = {"lease_expires_at": lease_until}
        if owner is not None:
            values["owner_id"] = owner
        await self.session.execute(
            update(Chat)
            .where(
                Chat.id == chat_id,
                Chat.generation_id == generation_id,
                Chat.execution_status == ExecutionStatus.PROCESSING,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )


class MessageRepository(RepositoryBase[Message]):
    model = Message

    async def add_all(self, messages: list[Message]) -> None:
        """Insert the messages in one flush (one multi-row INSERT)."""
        self.session.add_all(messages)
        await self.session.flush()

    async def for_chat(self, chat_id: int) -> list[Message]:
        rows = await self.session.scalars(_for_chat_statement(), {"p_chat_id": chat_id})
        return list(rows.all())

    async def for_chats(self, chat_ids: list[int]) -> dict[int, list[Message]]:
        found: dict[int, list[Message]] = {chat_id: [] for chat_id in chat_ids}
        if chat_ids:
            rows = await self.session.scalars(
                select(Message)
                .where(Message.chat_id.in_(chat_ids))
                .order_by(Message.chat_id, Message.msg_num)
            )
            for message in rows:
                found[message.chat_id].append(message)
        return found

    async def visible_page(
        self, chat_id: int, thread_key: str | None, params: PageParams
    ) -> Page[Message]:
        """A page of the chat's visible messages in order, of one sub-thread when `thread_key`
        is given."""
        statement = select(Message).where(Message.chat_id == chat_id, Message.visible.is_(True))
        if thread_key is not None:
            statement = statement.where(Message.thread_key == thread_key)
        return await self.paginate(statement.order_by(Message.msg_num), params)

    async def by_external_id(self, chat_id: int, external_id: str) -> Message | None:
        """The chat's message with this externalId, read again even when this session holds it
        (a rolled-back savepoint may have left a stale copy)."""
        return await self.get_one_or_none(
            select(Message)
            .where(Message.chat_id == chat_id, Message.external_id == external_id)
            .execution_options(populate_existing=True)
        )

    async def by_number(self, chat_id: int, msg_num: int) -> Message | None:
        return await self.get_one_or_none(
            select(Message).where(Message.chat_id == chat_id, Message.msg_num == msg_num)
        )

    async def turn_window(self, chat_id: int, msg_num: int, limit: int) -> TurnWindow | None:
        """The turn's user message `msg_num` with the newest `limit` messages before it that a
        prompt may use (visible, not tool calls or results) and the configuration stamp; None
        when the chat or the message is gone. Costs the same on a chat of 10,000 messages."""
        statement, width = _turn_window_statement(limit)
        rows = (await self.core(statement, {"p_chat_id": chat_id, "p_msg_num": msg_num})).all()
        if not rows or rows[-1].msg_num != msg_num:
            return None
        first = rows[0]
        messages = [WindowMessage(*row[2 + width :]) for row in rows]
        return TurnWindow(
            workspace_id=first.workspace_id,
            assistant_id=first.assistant_id,
            stamp=tuple(first[2 : 2 + width]),
            user=messages[-1],
            history=messages[:-1],
        )

    async def history_before(self, chat_id: int, msg_num: int) -> list[Message]:
        """What a turn's prompt may draw on: the visible messages before `msg_num` that are not
        tool calls or results, oldest first."""
        rows = await self.session.scalars(
            select(Message)
            .where(
                Message.chat_id == chat_id,
                Message.msg_num < msg_num,
                Message.visible.is_(True),
                Message.tool_call_id.is_(None),
            )
            .order_by(Message.msg_num)
        )
        return list(rows.all())

    async def last(self, chat_id: int) -> Message | None:
        return await self.get_one_or_none(
            select(Message)
            .where(Message.chat_id == chat_id, Message.visible.is_(True))
            .order_by(Message.msg_num.desc())
            .limit(1)
        )

    async def by_idempotency_key(self, chat_id: int, key: str) -> Message | None:
        return await self.get_one_or_none(
            select(Message).where(Message.chat_id == chat_id, Message.idempotency_key == key)
        )

    async def answer_to(self, chat_id: int, usr_msg_num: int) -> Message | None:
        return await self.get_one_or_none(
            _latest_answer(select(Message), Message, chat_id, usr_msg_num)
        )

    async def has_generation(self, chat_id: int, generation_id: str) -> bool:
        found = await self.session.scalar(
            select(Message.id)
            .where(Message.chat_id == chat_id, Message.generation_id == generation_id)
            .limit(1)
        )
        return found is not None

    async def get_scoped(self, scope: ChatScope, message_id: int) -> Message | None:
        statement = (
            select(Message).join(Chat, Chat.id == Message.chat_id).where(Message.id == message_id)
        )
        return await self.get_one_or_none(
            scope.limit(statement, Chat.workspace_id, Chat.principal_id)
        )


class ChatSettingsRepository(RepositoryBase[ChatSettings]):
    model = ChatSettings

    async def of_workspace(self, workspace_id: int) -> ChatSettings | None:
        """The workspace's settings row; None while it has the defaults."""
        return await self.get_one_or_none(
            select(ChatSettings).where(ChatSettings.workspace_id == workspace_id)
        )


class TicketRepository(RepositoryBase[ChatTicket]):
    """External ticket references kept on chats (messages-v1 `ticketIds`)."""

    model = ChatTicket

    async def ids_of(self, chat_id: int) -> list[str]:
        """The chat's ticket ids, in the order they were attached."""
        rows = await self.session.scalars(
            select(ChatTicket.ticket_id)
            .where(ChatTicket.chat_id == chat_id)
            .order_by(ChatTicket.created_at, ChatTicket.ticket_id)
        )
        return list(rows.all())

    async def attach(self, chat_id: int, ticket_ids: Sequence[str]) -> None:
        """Keep these ticket ids on the chat: one INSERT that skips those it has, so a repeat
        (even two requests adding the same ticket at once) is a no-op."""
        if not ticket_ids:
            return
        rows = [
            {"chat_id": chat_id, "ticket_id": ticket_id, "created_at": utcnow()}
            for ticket_id in dict.fromkeys(ticket_ids)
        ]
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        await self.session.execute(insert(ChatTicket).values(rows).on_conflict_do_nothing())

    async def carries_any(self, chat_id: int, ticket_ids: Sequence[str]) -> bool:
        """Whether the chat carries at least one of these tickets."""
        # The primary key (chat_id, ticket_id) answers this from the index alone.
        found = await self.session.scalar(
            select(ChatTicket.chat_id)
            .where(ChatTicket.chat_id == chat_id, ChatTicket.ticket_id.in_(set(ticket_ids)))
            .limit(1)
        )
        return found is not None


class SenderRepository(RepositoryBase[Principal]):
    """Principals as senders of messages, with their public UUID (`ChatSession.user_uuid`, the
    `user` id of the threads face)."""

    model = Principal

    async def in_workspace(self, workspace_id: int, principal_ids: set[int]) -> list[Principal]:
        """The principals of the workspace among these ids."""
        rows = await self.session.scalars(
            select(Principal).where(
                Principal.id.in_(principal_ids), Principal.workspace_id == workspace_id
            )
        )
        return list(rows.all())

    async def uuids(self, workspace_id: int, principal_ids: set[int]) -> dict[int, str]:
        """The UUIDs these principals already have in the workspace (those without one are
        left out)."""
        rows = await self.session.execute(
            select(ChatSession.principal_id, ChatSession.user_uuid).where(
                ChatSession.workspace_id == workspace_id,
                ChatSession.principal_id.in_(principal_ids),
            )
        )
        return {row.principal_id: row.user_uuid for row in rows}

    async def uuid_of(self, workspace_id: int, principal_id: int) -> str | None:
        found: str | None = await self.session.scalar(
            select(ChatSession.user_uuid).where(
                ChatSession.workspace_id == workspace_id,
                ChatSession.principal_id == principal_id,
            )
        )
        return found

    async def by_uuid(self, user_uuid: str) -> tuple[Principal, int] | None:
        """The principal with this UUID in any workspace, and that workspace's id."""
        row = (
            await self.session.execute(
                select(Principal, ChatSession.workspace_id)
                .join(ChatSession, ChatSession.principal_id == Principal.id)
                .where(ChatSession.user_uuid == user_uuid)
            )
        ).one_or_none()
        return None if row is None else (row.Principal, row.workspace_id)

    async def in_workspace_by_uuid(self, workspace_id: int, user_uuid: str) -> Principal | None:
        found: Principal | None = await self.session.scalar(
            select(Principal)
            .join(ChatSession, ChatSession.principal_id == Principal.id)
            .where(ChatSession.user_uuid == user_uuid, ChatSession.workspace_id == workspace_id)
        )
        return found

    async def add_external(self, workspace_id: int, user_uuid: str, username: str) -> Principal:
        """A new external principal with this UUID. The unique username and UUID make a second
        registration of the same UUID fail (IntegrityError at the flush)."""
        principal = await self.add(
            Principal(workspace_id=workspace_id, kind=PrincipalKind.EXTERNAL, username=username)
        )
        self.session.add(
            ChatSession(workspace_id=workspace_id, principal_id=principal.id, user_uuid=user_uuid)
        )
        await self.session.flush()
        return principal


def _message_columns(
    given: frozenset[str], **expressions: Any
) -> tuple[dict[Any, Any], tuple[str, ...]]:
    """Every column of a new message row for an INSERT ... SELECT: `expressions` (SQL), a bound
    parameter `m_<attribute>` for each `given` attribute (`meta` is the column "metadata") and
    for each other column with a default (Python-side defaults are not applied to an INSERT
    inside a CTE; `_message_params` supplies them); and the names of those defaulted columns."""
    values: dict[Any, Any] = {}
    defaulted: list[str] = []
    for name, column in Message.__mapper__.columns.items():
        if name in expressions:
            values[column] = expressions[name]
        elif name in given:
            values[column] = bindparam(f"m_{name}", type_=column.type)
        elif column.primary_key or column.server_default is not None:
            continue  # the database's own default
        elif column.default is not None and column.default.arg is not None:  # type: ignore[attr-defined]
            values[column] = bindparam(f"m_{name}", type_=column.type)
            defaulted.append(name)
    return values, tuple(defaulted)


def _latest_answer(statement: Select[T], message: Any, chat_id: Any, usr_msg_num: Any) -> Select[T]:
    """`statement` kept to the latest answer (shown or replaced) to user message `usr_msg_num` of
    a chat; `message` is Message or an alias of it, the values Python's or bound parameters."""
    return (
        statement.where(
            message.chat_id == chat_id,
            message.usr_msg_num == usr_msg_num,
            message.role == Role.ASSISTANT,
        )
        .order_by(message.msg_num.desc())
        .limit(1)
    )


def _message_params(given: dict[str, Any], defaulted: tuple[str, ...]) -> dict[str, Any]:
    """The parameters of `_message_columns`: the given values and each defaulted column's own."""
    params = {f"m_{name}": value for name, value in given.items()}
    columns = Message.__mapper__.columns
    for name in defaulted:
        default: Any = columns[name].default
        params[f"m_{name}"] = default.arg(None) if default.is_callable else default.arg
    return params


@functools.cache
def _turn_target_statement(*, keyed: bool, own: bool) -> Select[Any]:
    """ChatRepository.turn_target's statement: with an Idempotency-Key (`keyed`) or not, for a
    member (`own`: only the caller's chats) or an admin."""
    replay_num: Any = literal(None)
    replay_generation: Any = literal(None)
    statement = (
        select(
            Chat.id,
            Chat.uuid,
            Chat.workspace_id,
            Chat.max_msg_length,
            (Assistant.id.is_not(None) & Assistant.deleted_at.is_(None)).label("live"),
            ChatSettings.moderation_policy,
        )
        .outerjoin(Assistant, Assistant.id == Chat.assistant_id)
        .outerjoin(ChatSettings, ChatSettings.workspace_id == Chat.workspace_id)
        .where(Chat.id == bindparam("p_chat_id"), Chat.workspace_id == bindparam("p_workspace_id"))
    )
    if keyed:
        earlier = aliased(Message)
        statement = statement.outerjoin(
            earlier,
            (earlier.chat_id == Chat.id) & (earlier.idempotency_key == bindparam("p_key")),
        )
        replay_num, replay_generation = earlier.msg_num, earlier.generation_id
    statement = statement.add_columns(
        replay_num.label("replay_num"), replay_generation.label("replay_generation")
    )
    if own:
        statement = statement.where(Chat.principal_id == bindparam("p_principal_id"))
    return statement


#: the messages table (an insert of the mapped class would be an ORM bulk insert)
_MESSAGES = cast(Table, Message.__table__)


@functools.cache
def _accept_statement(given: frozenset[str]) -> tuple[Any, tuple[str, ...]]:
    """ChatRepository.accept_turn's statement for a message with these attributes."""
    now: Any = bindparam("p_now")
    claimed = (
        update(Chat)
        .where(
            Chat.id == bindparam("p_chat_id"),
            (Chat.execution_status != ExecutionStatus.PROCESSING) | (Chat.lease_expires_at < now),
            Chat.ended.is_(False),
            Chat.is_archived.is_(False),
            Chat.responses_count < Chat.max_responses,
        )
        .values(
            execution_status=ExecutionStatus.PROCESSING,
            generation_id=bindparam("p_generation_id"),
            lease_expires_at=bindparam("p_lease_until"),
            owner_id=bindparam("p_owner"),
            error=None,
            last_msg_num=Chat.last_msg_num + 1,
            title=case((Chat.title == "", bindparam("p_title")), else_=Chat.title),
            updated_at=now,
        )
        .returning(Chat.id, Chat.last_msg_num)
        .cte("claimed")
    )
    values, defaulted = _message_columns(
        given, chat_id=claimed.c.id, msg_num=claimed.c.last_msg_num
    )
    statement = (
        # The table, not the mapped class: an ORM insert would read the parameters as rows.
        insert(_MESSAGES)
        .from_select(list(values), select(*values.values()), include_defaults=False)
        .returning(Message.__table__.c.msg_num)
        .add_cte(claimed)
    )
    return statement, defaulted


@functools.cache
def _answer_statement(given: frozenset[str]) -> tuple[Any, tuple[str, ...]]:
    """ChatRepository.store_answer's statement for an answer with these attributes."""
    chat_id: Any = bindparam("p_chat_id")
    usr_msg_num: Any = bindparam("p_usr_msg_num")
    released = (
        update(Chat)
        .where(Chat.id == chat_id, Chat.generation_id == bindparam("p_generation_id"))
        .values(
            execution_status=ExecutionStatus.AVAILABLE,
            lease_expires_at=None,
            error=None,
            responses_count=Chat.responses_count + 1,
            last_msg_num=Chat.last_msg_num + 1,
            updated_at=bindparam("p_now"),
        )
        .returning(
            Chat.id,
            Chat.last_msg_num,
            Chat.title,
            Chat.assistant_id,
            Chat.execution_status,
            Chat.error,
        )
        .cte("released")
    )
    earlier = aliased(Message)
    replaced = _latest_answer(
        select(case((earlier.visible.is_(True), None), else_=earlier.id)),
        earlier,
        chat_id,
        usr_msg_num,
    ).scalar_subquery()
    values, defaulted = _message_columns(
        given,
        chat_id=released.c.id,
        msg_num=released.c.last_msg_num,
        usr_msg_num=usr_msg_num,
        replaces_id=replaced,
    )
    inserted = (
        # The table, not the mapped class: an ORM insert would read the parameters as rows.
        insert(_MESSAGES)
        .from_select(list(values), select(*values.values()), include_defaults=False)
        .returning(*Message.__table__.c)
        .cte("inserted")
    )
    chat_columns = [
        released.c.title,
        released.c.assistant_id,
        released.c.execution_status,
        released.c.error,
    ]
    statement = select(*inserted.c, *(c.label(f"chat_{c.name}") for c in chat_columns)).select_from(
        inserted.join(released, literal(True))
    )
    return statement, defaulted


def _stamp(model: type[Base], where: ColumnElement[bool], *, count: Any = None) -> list[Any]:
    """How many rows match and the latest id and change among them (correlated subqueries)."""
    table: Any = model
    found = select(
        func.count(count if count is not None else table.id),
        func.max(table.id),
        func.max(table.updated_at),
    ).where(where)
    if count is not None:
        found = found.select_from(AssistantTool).join(Tool, AssistantTool.tool_id == Tool.id)
    return [found.with_only_columns(column).scalar_subquery() for column in found.selected_columns]


# The statements of a turn are built once (with bound parameters) and reused: building them is
# what a turn's queries cost most in this process, not running them.


@functools.cache
def _get_statement(*, own: bool, for_update: bool) -> Select[Chat]:
    """ChatRepository.get's statement, built once (parameters chat_id, workspace_id and, for a
    caller who sees only their own chats, principal_id); the row is read again even when the
    session holds it."""
    statement = select(Chat).where(
        Chat.id == bindparam("p_chat_id"), Chat.workspace_id == bindparam("p_workspace_id")
    )
    if own:
        statement = statement.where(Chat.principal_id == bindparam("p_principal_id"))
    if for_update:
        statement = statement.with_for_update()
    return statement.execution_options(populate_existing=True)


@functools.cache
def _for_chat_statement() -> Select[Message]:
    """MessageRepository.for_chat's statement, built once (parameter chat_id)."""
    statement = select(Message).where(Message.chat_id == bindparam("p_chat_id"))
    return statement.order_by(Message.msg_num)


@functools.cache
def _turn_window_statement(limit: int) -> tuple[Select[Any], int]:
    """The statement of ChatRepository.turn_window (parameters chat_id, msg_num) and how many
    stamp columns follow the workspace and assistant ids."""
    chat_id: Any = bindparam("p_chat_id")
    msg_num: Any = bindparam("p_msg_num")
    stamp_columns = [
        Assistant.updated_at,
        Assistant.deleted_at,
        *_stamp(CommonQuestion, CommonQuestion.assistant_id == Chat.assistant_id),
        *_stamp(FixedResponse, FixedResponse.assistant_id == Chat.assistant_id),
        *_stamp(Lesson, Lesson.assistant_id == Chat.assistant_id),
        *_stamp(
            Tool,
            (AssistantTool.assistant_id == Chat.assistant_id) & (AssistantTool.tool_id == Tool.id),
            count=AssistantTool.tool_id,
        ),
        *_stamp(MetadataFilter, MetadataFilter.workspace_id == Chat.workspace_id),
    ]
    chat = (
        select(
            Chat.workspace_id,
            Chat.assistant_id,
            *(column.label(f"s{i}") for i, column in enumerate(stamp_columns)),
        )
        .join(Assistant, Assistant.id == Chat.assistant_id)
        .where(Chat.id == chat_id)
        .subquery("chat")
    )
    window = (
        select(*(getattr(Message, name) for name in _WINDOW_COLUMNS))
        .where(
            Message.chat_id == chat_id,
            Message.msg_num <= msg_num,
            (Message.msg_num == msg_num)
            | (Message.visible.is_(True) & Message.tool_call_id.is_(None)),
        )
        .order_by(Message.msg_num.desc())
        .limit(limit + 1)
        .subquery("window")
    )
    statement = select(chat, window).join(window, literal(True)).order_by(window.c.msg_num)
    return statement, len(stamp_columns)
