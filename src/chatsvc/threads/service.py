"""Threads rules on the shared chat domain: one session per user (made on first use), thread lists
and details, archive, message lists with or without the superseded history, the turn a streamed
request makes (new thread, new message, reload, edit), and the workspace's chat settings (the
default assistant, the moderation policy). Members see only their own; admins the workspace."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.assistants.repository import AssistantRepository
from chatsvc.auth.service import AuthContext
from chatsvc.chats import service as chat_service
from chatsvc.chats.models import Chat, Message
from chatsvc.chats.repository import MessageRepository
from chatsvc.chats.schemas import OptionalUserMessageIn
from chatsvc.chats.service import Turn, UserMessage, scope_of
from chatsvc.kit.db import utcnow
from chatsvc.kit.errors import FieldError, Invalid, or_not_found
from chatsvc.kit.filtering import OrderKey
from chatsvc.kit.pagination import Page, PageParams
from chatsvc.moderation import ModerationPolicy
from chatsvc.threads.models import ChatSession
from chatsvc.threads.repository import (
    SessionRepository,
    SettingsRepository,
    ThreadMessageRepository,
    ThreadRepository,
)
from chatsvc.threads.schemas import (
    MessageFilters,
    MessageView,
    Mode,
    SessionView,
    ThreadFilters,
    ThreadView,
)

# --- sessions ------------------------------------------------------------------------------------


async def current_session(session: AsyncSession, auth: AuthContext) -> SessionView:
    """The caller's session, made on first use (concurrent first calls get the same one)."""
    found = await SessionRepository(session).ensure(auth.workspace_id, auth.principal_id)
    return (await _session_views(session, [found]))[0]


async def list_sessions(
    session: AsyncSession, auth: AuthContext, params: PageParams
) -> Page[SessionView]:
    page = await SessionRepository(session).find(scope_of(auth), params)
    return Page(await _session_views(session, page.items), page.total, page.params)


async def get_session(session: AsyncSession, auth: AuthContext, session_uuid: str) -> SessionView:
    found = await SessionRepository(session).by_uuid(scope_of(auth), session_uuid)
    found = or_not_found(found, f"Chat session {session_uuid} not found.")
    return (await _session_views(session, [found]))[0]


async def _session_views(
    session: AsyncSession, sessions: Sequence[ChatSession]
) -> list[SessionView]:
    users = await SessionRepository(session).users([s.principal_id for s in sessions])
    return [SessionView(s, *users.get(s.principal_id, ("", ""))) for s in sessions]


# --- threads -------------------------------------------------------------------------------------


async def thread_chat(
    session: AsyncSession, auth: AuthContext, thread_uuid: str, *, fresh: bool = False
) -> Chat:
    chat = await ThreadRepository(session).by_uuid(scope_of(auth), thread_uuid, fresh=fresh)
    return or_not_found(chat, f"Thread {thread_uuid} not found.")


async def get_thread(
    session: AsyncSession, auth: AuthContext, thread_uuid: str, *, fresh: bool = False
) -> ThreadView:
    chat = await thread_chat(session, auth, thread_uuid, fresh=fresh)
    return (await thread_views(session, [chat]))[0]


async def list_threads(
    session: AsyncSession,
    auth: AuthContext,
    filters: ThreadFilters,
    ordering: Sequence[OrderKey],
    params: PageParams,
) -> Page[ThreadView]:
    page = await ThreadRepository(session).find(scope_of(auth), filters, ordering, params)
    return Page(await thread_views(session, page.items), page.total, page.params)


async def thread_views(session: AsyncSession, chats: Sequence[Chat]) -> list[ThreadView]:
    details = await ThreadRepository(session).details([chat.id for chat in chats])
    return [ThreadView(chat, *details[chat.id]) for chat in chats]


async def set_archived(
    session: AsyncSession, auth: AuthContext, thread_uuid: str, archived: bool
) -> None:
    """Archive (hide from lists, refuse new turns) or restore a thread; idempotent."""
    chat = await thread_chat(session, auth, thread_uuid)
    if chat.is_archived != archived:
        chat.is_archived = archived
        await session.flush()


# --- messages ------------------------------------------------------------------------------------


async def list_messages(
    session: AsyncSession, auth: AuthContext, filters: MessageFilters, params: PageParams
) -> Page[MessageView]:
    page = await ThreadMessageRepository(session).find(scope_of(auth), filters, params)
    return Page(await message_views(session, page.items), page.total, page.params)


async def message_views(session: AsyncSession, messages: Sequence[Message]) -> list[MessageView]:
    chats, replaced = await ThreadMessageRepository(session).links(messages)
    return [
        MessageView(m, chats[m.chat_id], replaced.get(m.replaces_id) if m.replaces_id else None)
        for m in messages
    ]


async def messages_by_id(session: AsyncSession, message_ids: Sequence[int]) -> list[MessageView]:
    return await message_views(session, await ThreadMessageRepository(session).by_ids(message_ids))


# --- turns ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TurnRequest:
    """A streamed request: `text` for the thread named (or a new one), or a reload or an edit."""

    text: str
    thread_uuid: str | None = None
    mode: Mode | None = None
    edit_message_uuid: str | None = None
    assistant_id: int | None = None

    def check(self) -> None:
        errors: list[FieldError] = []
        if self.mode is not None and self.thread_uuid is None:
            errors.append(FieldError("thread_uuid", f"required with mode {self.mode}"))
        if self.mode is Mode.EDIT and self.edit_message_uuid is None:
            errors.append(FieldError("edit_message_uuid", "required with mode edit"))
        if self.mode is not Mode.EDIT and self.edit_message_uuid is not None:
            errors.append(FieldError("edit_message_uuid", "only used with mode edit"))
        if self.assistant_id is not None and self.thread_uuid is not None:
            errors.append(FieldError("assistant", "only for a new thread: a thread keeps its own"))
        if self.mode is not Mode.RELOAD and not self.text.strip():
            errors.append(FieldError("input", "must not be empty"))
        if errors:
            summary = "; ".join(f"{e.field}: {e.message}" for e in errors)
            raise Invalid(f"Invalid stream request: {summary}.", errors=errors)


async def start_turn(
    session: AsyncSession,
    auth: AuthContext,
    request: TurnRequest,
    *,
    idempotency_key: str | None,
    lease_seconds: int,
    owner: str | None = None,
) -> tuple[Chat, Turn]:
    """Store what the request asks (in the caller's transaction) and claim the thread for the
    answer: a new thread in the caller's session, a new message, a reload of the last answer or
    an edit of a user message. 409 while another answer runs in the thread."""
    request.check()
    if request.thread_uuid is not None:
        chat = await thread_chat(session, auth, request.thread_uuid)
        if request.mode is Mode.RELOAD:
            turn = await chat_service.reload_answer(
                session, auth, chat.id, lease_seconds=lease_seconds, owner=owner
            )
        else:
            edit_uuid = request.edit_message_uuid if request.mode is Mode.EDIT else None
            sent = UserMessage(chat.id, request.text, {}, idempotency_key, edit_uuid)
            turn = await chat_service.submit_user_message(
                session, auth, sent, lease_seconds=lease_seconds, owner=owner
            )
        return chat, turn
    # A new thread, in the caller's session.
    assistant_id = request.assistant_id or await default_assistant_id(session, auth.workspace_id)
    chat_session = await SessionRepository(session).ensure(auth.workspace_id, auth.principal_id)
    chat, first = await chat_service.create_chat(
        session,
        auth,
        assistant_id,
        OptionalUserMessageIn(message=request.text),
        idempotency_key=idempotency_key,
        lease_seconds=lease_seconds,
        owner=owner,
        require_streaming=True,
    )
    assert first is not None  # a chat made with a message has its turn
    if not first.replayed:
        chat_session.updated_at = utcnow()  # a session's modified: its latest new thread
        await session.flush()
    return chat, first


async def turn_messages(
    session: AsyncSession, turn: Turn
) -> tuple[MessageView, MessageView | None]:
    """The user message of a turn and its latest answer (None while none is stored)."""
    user = await ThreadMessageRepository(session).by_number(turn.chat_id, turn.user_msg_num)
    assert user is not None  # a turn's message is stored with it and never deleted
    answer = await MessageRepository(session).answer_to(turn.chat_id, turn.user_msg_num)
    views = await message_views(session, [user] if answer is None else [user, answer])
    return views[0], views[1] if answer is not None else None


async def thread_of_generation(
    session: AsyncSession, auth: AuthContext, generation_id: str
) -> Chat:
    """The thread whose stream a Last-Event-ID names: 404 unless the caller sees it."""
    chat = await ThreadRepository(session).by_generation(scope_of(auth), generation_id)
    message = f"No stream {generation_id} in your threads."
    return or_not_found(chat, message, code="stream_not_found")


# --- chat settings -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SettingsView:
    default_assistant_id: int | None
    moderation_policy: ModerationPolicy


class Unset(Enum):
    """A setting left as it is."""

    UNSET = "unset"


UNSET = Unset.UNSET


async def default_assistant_id(session: AsyncSession, workspace_id: int) -> int:
    """The assistant of a thread started without one: the workspace's default assistant, else
    (none set, or it was deleted) its first live assistant."""
    settings = await chat_service.workspace_settings(session, workspace_id)
    chosen = settings.default_assistant_id if settings is not None else None
    if chosen is not None and await AssistantRepository(session).exists(workspace_id, chosen):
        return chosen
    first = await SettingsRepository(session).first_live_assistant(workspace_id)
    if first is None:
        raise Invalid(
            "This workspace has no assistant to start a thread with: create one "
            "(POST /assistants/) or name one in `assistant`.",
            code="no_assistant",
        )
    return first


async def chat_settings(session: AsyncSession, workspace_id: int) -> SettingsView:
    found = await chat_service.workspace_settings(session, workspace_id)
    return SettingsView(
        found.default_assistant_id if found is not None else None,
        await chat_service.moderation_policy(session, workspace_id),
    )


async def update_chat_settings(
    session: AsyncSession,
    auth: AuthContext,
    *,
    default_assistant_id: int | Unset | None = UNSET,
    moderation_policy: ModerationPolicy | Unset | None = UNSET,
) -> SettingsView:
    """Change the settings given (admins only). The default assistant must be a live assistant
    of the workspace; None restores a default. A policy is stored with the fields it sets only,
    so the others follow the defaults of later versions."""
    auth.require_admin("change the workspace's chat settings")
    if isinstance(default_assistant_id, int) and not await AssistantRepository(session).exists(
        auth.workspace_id, default_assistant_id
    ):
        raise Invalid(
            f"Assistant {default_assistant_id} not found in this workspace.",
            errors=[FieldError("default_assistant", "not an assistant of this workspace")],
        )
    settings = await SettingsRepository(session).ensure(auth.workspace_id)
    if default_assistant_id is not UNSET:
        settings.default_assistant_id = default_assistant_id
    if moderation_policy is not UNSET:
        settings.moderation_policy = (
            moderation_policy.model_dump(mode="json", exclude_unset=True)
            if moderation_policy is not None
            else None
        )
    settings.updated_at = utcnow()
    await session.flush()
    return await chat_settings(session, auth.workspace_id)
