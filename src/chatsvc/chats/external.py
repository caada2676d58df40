"""The chat domain as integrated systems see it (the messages-v1 face): chats, messages and senders
named by UUID, external ids that make a post idempotent, sub-threads of a chat, external ticket
references kept on chats, and the export of a period delivered to a callback. Rules only; each
function runs in the caller's transaction.

A principal's UUID is its `user` id of the threads face (`ChatSession.user_uuid`: principals have
integer ids only), so a person has one id on every face; it is made on first need."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.assistants.repository import AssistantRepository
from chatsvc.auth.models import Principal
from chatsvc.auth.service import AuthContext
from chatsvc.chats import service as chat_service
from chatsvc.chats.models import Chat, Message, Role
from chatsvc.chats.repository import (
    ChatRepository,
    MessageRepository,
    SenderRepository,
    TicketRepository,
)
from chatsvc.chats.schemas import AssistantMessageIn
from chatsvc.chats.service import Turn, UserMessage
from chatsvc.config import Settings
from chatsvc.exports.requests import ExportRequestIn, request_export
from chatsvc.jobs.models import Job
from chatsvc.jobs.queue import JobQueue
from chatsvc.kit.db import iso_utc, utcnow
from chatsvc.kit.errors import Conflict, FieldError, Forbidden, Invalid, NotFound
from chatsvc.kit.outbound import OutboundBlocked, OutboundPolicy, check_url, describe_url
from chatsvc.kit.pagination import Page, PageParams
from chatsvc.threads.repository import SessionRepository

#: the longest message this face accepts (the chat's own max_msg_length may be lower)
MAX_CONTENT = 4000
#: roles a message may be posted with: `user` is the person talking to the assistant, `assistant`
#: the assistant's side (an answer made elsewhere, a human agent taking over)
POSTABLE_ROLES = (Role.USER, Role.ASSISTANT)
#: username prefix of the principals registered on first use of an unknown senderId
EXTERNAL_PREFIX = "external:"


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to post, with every id already a canonical UUID string."""

    chat_id: str
    thread_id: str | None
    content: str
    external_id: str | None
    sender_id: str
    role: Role
    ticket_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Sender:
    """A principal and its public UUID."""

    principal: Principal
    uuid: str


@dataclass(frozen=True, slots=True)
class Posted:
    message: Message
    chat: Chat
    sender: Sender | None
    #: False when the externalId named a message the chat already had: nothing was stored
    created: bool
    #: the turn to answer (a new user message of the main thread)
    turn: Turn | None = None
    #: the job that answers the message, when one started
    answer_job_id: int | None = None


@dataclass(frozen=True, slots=True)
class MessagePage:
    chat: Chat
    page: Page[Message]


@dataclass(frozen=True, slots=True)
class PeriodExport:
    job: Job
    created: bool
    start: datetime | None
    end: datetime
    callback: str


# --- reading ------------------------------------------------------------------------------------


async def chat_by_uuid(session: AsyncSession, auth: AuthContext, chat_id: str) -> Chat:
    """The chat with this UUID, if the caller sees it (members: only their own chats)."""
    chat = await ChatRepository(session).by_uuid(chat_service.scope_of(auth), chat_id)
    if chat is None:
        raise NotFound(f"Chat {chat_id} not found.", code="chat_not_found")
    return chat


async def list_messages(
    session: AsyncSession,
    auth: AuthContext,
    chat_id: str,
    *,
    thread_id: str | None,
    ticket_ids: Sequence[str],
    params: PageParams,
) -> MessagePage:
    """The visible messages of a chat in order (msg_num), optionally of one sub-thread only.
    With ticket ids the chat must carry at least one of them, else the page is empty."""
    chat = await chat_by_uuid(session, auth, chat_id)
    if ticket_ids and not await TicketRepository(session).carries_any(chat.id, ticket_ids):
        return MessagePage(chat, Page(items=[], total=0, params=params))
    page = await MessageRepository(session).visible_page(chat.id, thread_id, params)
    return MessagePage(chat, page)


async def senders_of(session: AsyncSession, workspace_id: int, ids: set[int]) -> dict[int, Sender]:
    """The principals (of one workspace) with these ids and their UUIDs; a principal that has
    none yet gets one now (race-free: concurrent first uses agree on one)."""
    if not ids:
        return {}
    senders = SenderRepository(session)
    principals = await senders.in_workspace(workspace_id, ids)
    uuids = await senders.uuids(workspace_id, ids)
    found: dict[int, Sender] = {}
    for principal in principals:
        if principal.id not in uuids:
            ensured = await SessionRepository(session).ensure(workspace_id, principal.id)
            uuids[principal.id] = ensured.user_uuid
        found[principal.id] = Sender(principal, uuids[principal.id])
    return found


async def ticket_ids_of(session: AsyncSession, chat_id: int) -> list[str]:
    return await TicketRepository(session).ids_of(chat_id)


@dataclass(frozen=True, slots=True)
class AssistantSummary:
    id: int
    description: str
    deleted: bool


async def assistant_of(session: AsyncSession, chat: Chat) -> AssistantSummary:
    """The chat's assistant, deleted or not (its chats stay readable)."""
    assistant_id, description, deleted = await AssistantRepository(session).summary(
        chat.assistant_id
    )
    return AssistantSummary(assistant_id, description, deleted)


def raw_content(message: Message) -> str | None:
    """The text of an answer exactly as the assistant's pipeline produced it (model, fixed
    response, not_info or end message); None for messages that were posted, not produced."""
    if message.role == Role.ASSISTANT and message.usr_msg_num is not None:
        return message.content
    return None


# --- posting ------------------------------------------------------------------------------------


async def post_message(
    session: AsyncSession,
    auth: AuthContext,
    new: NewMessage,
    *,
    settings: Settings,
) -> Posted:
    """Store a message in a chat, once per externalId, in the caller's transaction.

    A `user` message of the main thread (no sub-thread) is a turn: the chat rules apply
    (max_msg_length, an ended chat, one generation at a time: 409 while an answer runs) and the
    turn service has it answered by a background job. Every other message is stored without
    answering. A repeated externalId returns the chat's existing message, whatever the rest of
    the body says."""
    if new.role not in POSTABLE_ROLES:
        allowed = ", ".join(POSTABLE_ROLES)
        raise Invalid(
            f"role must be one of {allowed}.", errors=[FieldError("role", f"one of {allowed}")]
        )
    chat = await chat_by_uuid(session, auth, new.chat_id)
    if new.external_id is not None:
        existing = await MessageRepository(session).by_external_id(chat.id, new.external_id)
        if existing is not None:
            return await _replay(session, chat, existing)
    sender = await _sender(session, auth, new.sender_id)
    if new.role == Role.USER and len(new.content) > chat.max_msg_length:
        raise Invalid(
            f"The message is {len(new.content)} characters long; this chat accepts at most "
            f"{chat.max_msg_length} (max_msg_length).",
            code="message_too_long",
            errors=[FieldError("content", f"longer than max_msg_length ({chat.max_msg_length})")],
        )
    try:
        # One savepoint: a post that loses a race on its externalId leaves nothing behind.
        async with session.begin_nested():
            message, turn = await _store(session, auth, chat, sender, new, settings)
    except (IntegrityError, Conflict):
        # The same externalId was posted concurrently: the first post wins, this one returns it
        # (a 409 of a running answer, or the unique index, is how the loser finds out).
        if new.external_id is not None:
            await session.refresh(chat)  # the rolled-back savepoint expired it
            existing = await MessageRepository(session).by_external_id(chat.id, new.external_id)
            if existing is not None:
                return await _replay(session, chat, existing)
        raise
    return Posted(message, chat, sender, created=True, turn=turn)


async def _store(
    session: AsyncSession,
    auth: AuthContext,
    chat: Chat,
    sender: Sender,
    new: NewMessage,
    settings: Settings,
) -> tuple[Message, Turn | None]:
    turn: Turn | None = None
    if new.role == Role.USER and new.thread_id is None:
        turn = await chat_service.submit_user_message(
            session,
            auth,
            UserMessage(chat.id, new.content),
            lease_seconds=settings.generation_lease_seconds,
        )
        message = await MessageRepository(session).by_number(chat.id, turn.user_msg_num)
        assert message is not None  # the turn stored it in this transaction
    else:
        message = await chat_service.add_message(
            session, auth, chat.id, AssistantMessageIn(message=new.content), role=new.role
        )
    # The chat service stores the message as the caller's; this face names its sender, its id
    # in the integrated system and its sub-thread.
    message.sender_id = sender.principal.id
    message.external_id = new.external_id
    message.thread_key = new.thread_id
    await session.flush()
    await attach_tickets(session, chat.id, new.ticket_ids)
    return message, turn


async def _replay(session: AsyncSession, chat: Chat, message: Message) -> Posted:
    ids = {message.sender_id} if message.sender_id is not None else set()
    senders = await senders_of(session, chat.workspace_id, ids)
    sender = senders.get(message.sender_id) if message.sender_id is not None else None
    return Posted(message, chat, sender, created=False)


async def attach_tickets(session: AsyncSession, chat_id: int, ticket_ids: Sequence[str]) -> None:
    """Keep these ticket references on the chat (added, never removed; a repeat is a no-op, even
    when two requests add the same ticket at once)."""
    await TicketRepository(session).attach(chat_id, ticket_ids)


async def _sender(session: AsyncSession, auth: AuthContext, sender_id: str) -> Sender:
    """The principal a message is posted as. A member key posts as itself only. An admin key
    may name any principal of the workspace, and an unknown UUID registers an external
    identity with that UUID, so an integration can post for its own users without a sync."""
    senders = SenderRepository(session)
    found = await senders.by_uuid(sender_id)
    if found is not None and found[1] == auth.workspace_id:
        principal: Principal = found[0]
        if auth.is_admin or principal.id == auth.principal_id:
            return Sender(principal, sender_id)
    if not auth.is_admin:
        own = await senders.uuid_of(auth.workspace_id, auth.principal_id)
        hint = own or "your `user` id (GET /api/chat-sessions/current/)"
        raise Forbidden(
            f"A member key posts as its own principal only: senderId must be {hint}.",
            code="sender_not_allowed",
        )
    if found is not None:  # of another workspace: its UUID cannot be reused here
        raise Invalid(
            f"senderId {sender_id} is not a principal of this workspace.",
            code="unknown_sender",
            errors=[FieldError("senderId", "not a principal of this workspace")],
        )
    return await _register_external(session, auth.workspace_id, sender_id)


async def _register_external(session: AsyncSession, workspace_id: int, sender_id: str) -> Sender:
    senders = SenderRepository(session)
    try:
        async with session.begin_nested():
            principal = await senders.add_external(
                workspace_id, sender_id, f"{EXTERNAL_PREFIX}{sender_id}"
            )
            return Sender(principal, sender_id)
    except IntegrityError:
        # Registered by a concurrent post in the meantime.
        principal_found = await senders.in_workspace_by_uuid(workspace_id, sender_id)
        if principal_found is None:
            raise
        return Sender(principal_found, sender_id)


# --- the period export -------------------------------------------------------------------------


def _aware(name: str, value: datetime | None) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise Invalid(
            f"{name} must carry a time zone (e.g. 2026-11-25T00:00:00Z), got {value.isoformat()}.",
            code="naive_datetime",
            errors=[FieldError(name, "a time zone is required")],
        )


async def request_period_export(
    session: AsyncSession,
    queue: JobQueue,
    settings: Settings,
    auth: AuthContext,
    *,
    start: datetime | None,
    end: datetime | None,
    language: str,
    callback_url: str,
    idempotency_key: str | None,
) -> PeriodExport:
    """An export of the workspace's messages created in [start, end) (end: now), as CSV with its
    header row in `language`, POSTed signed to `callback_url` by the export job. Admin keys only
    (the file holds every chat of the workspace). The callback URL is checked against the
    outbound policy (by default: HTTPS to a public address) before anything is stored."""
    auth.require_admin("export the workspace's messages")
    _aware("rangeStart", start)
    _aware("rangeEnd", end)
    end = end if end is not None else utcnow()
    if start is not None and start >= end:
        raise Invalid(
            f"rangeStart ({iso_utc(start)}) must be before rangeEnd ({iso_utc(end)}).",
            code="invalid_date_range",
            errors=[FieldError("rangeEnd", "must be after rangeStart")],
        )
    try:
        check_url(callback_url, OutboundPolicy.from_settings(settings))
    except OutboundBlocked as exc:
        raise Invalid(
            exc.message,
            code="callback_refused",
            errors=[FieldError("callbackUrl", "must be an HTTPS URL of a public server")],
        ) from exc
    data = ExportRequestIn(start=start, end=end, language=language, callback_url=callback_url)
    job, created = await request_export(session, queue, settings, auth, data, idempotency_key)
    return PeriodExport(job, created, start, end, describe_url(callback_url))
