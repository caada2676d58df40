"""Chat and message queries, scoped to a workspace and, for member keys, to the caller."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select, update

from chatsvc.chats.models import Chat, ExecutionStatus, Message
from chatsvc.kit.pagination import Page, PageParams
from chatsvc.kit.repository import RepositoryBase


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
class ChatScope:
    """Which chats a caller sees: a workspace, and only its own chats unless it is an admin."""

    workspace_id: int
    principal_id: int | None  # None: every chat of the workspace


class ChatRepository(RepositoryBase[Chat]):
    model = Chat

    def scoped(self, scope: ChatScope) -> Select[Chat]:
        statement = select(Chat).where(Chat.workspace_id == scope.workspace_id)
        if scope.principal_id is not None:
            statement = statement.where(Chat.principal_id == scope.principal_id)
        return statement

    async def get(self, scope: ChatScope, chat_id: int, *, for_update: bool = False) -> Chat | None:
        statement = self.scoped(scope).where(Chat.id == chat_id)
        if for_update:
            statement = statement.with_for_update()
        return await self.get_one_or_none(statement.execution_options(populate_existing=True))

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
        return GenerationState(
            ExecutionStatus(row.execution_status), row.generation_id, row.lease_expires_at
        )

    async def by_idempotency_key(self, scope: ChatScope, key: str) -> Chat | None:
        return await self.get_one_or_none(self.scoped(scope).where(Chat.idempotency_key == key))

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

    async def claim_generation(
        self,
        chat_id: int,
        generation_id: str,
        now: datetime,
        lease_until: datetime,
        *,
        unchanged_since: int | None = None,
    ) -> bool:
        """AVAILABLE/FAILED (or PROCESSING with an expired lease) → PROCESSING, in one conditional
        UPDATE: of many concurrent claims exactly one wins, whatever process they run in.
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
        rows = await self.session.execute(
            update(Chat)
            .where(
                Chat.execution_status == ExecutionStatus.PROCESSING,
                Chat.lease_expires_at < now,
            )
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

    async def extend_lease(self, chat_id: int, generation_id: str, lease_until: datetime) -> None:
        await self.session.execute(
            update(Chat)
            .where(
                Chat.id == chat_id,
                Chat.generation_id == generation_id,
                Chat.execution_status == ExecutionStatus.PROCESSING,
            )
            .values(lease_expires_at=lease_until)
            .execution_options(synchronize_session=False)
        )


class MessageRepository(RepositoryBase[Message]):
    model = Message

    async def for_chat(self, chat_id: int) -> list[Message]:
        rows = await self.session.scalars(
            select(Message).where(Message.chat_id == chat_id).order_by(Message.msg_num)
        )
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

    async def by_number(self, chat_id: int, msg_num: int) -> Message | None:
        return await self.get_one_or_none(
            select(Message).where(Message.chat_id == chat_id, Message.msg_num == msg_num)
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
            select(Message)
            .where(
                Message.chat_id == chat_id,
                Message.usr_msg_num == usr_msg_num,
                Message.role == "assistant",
            )
            .order_by(Message.msg_num.desc())
            .limit(1)
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
            select(Message)
            .join(Chat, Chat.id == Message.chat_id)
            .where(Message.id == message_id, Chat.workspace_id == scope.workspace_id)
        )
        if scope.principal_id is not None:
            statement = statement.where(Chat.principal_id == scope.principal_id)
        return await self.get_one_or_none(statement)
