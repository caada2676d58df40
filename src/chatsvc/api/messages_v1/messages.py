"""messages-v1: list a chat's messages (with sub-thread and ticket filters and embedded objects),
post a message (idempotent by externalId), export a period to a callback. Translation only: the
rules live in chatsvc.chats.external."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Query, Request, Response
from pydantic import BeforeValidator

from chatsvc.api.deps import ApiKeyHeader, AuthorizationValue, IdempotencyKey, authenticate_key
from chatsvc.api.messages_v1.schemas import (
    AssistantRefOut,
    ChatMessageIn,
    ChatRefOut,
    ExportIn,
    ExportOut,
    Join,
    ModerationOut,
    SenderOut,
    V1ChatMessageOut,
)
from chatsvc.auth.models import PrincipalKind
from chatsvc.auth.service import AuthContext
from chatsvc.chats import external
from chatsvc.chats.external import Sender
from chatsvc.chats.models import Chat, Message, Role
from chatsvc.kit.db import iso_utc
from chatsvc.kit.errors import Unauthenticated
from chatsvc.kit.web import (
    PageDep,
    SettingsDep,
    SlashRouter,
    error_responses,
    invalid_is_400,
    set_list_headers,
)
from chatsvc.services import AuthenticatorDep, QueueDep, SessionDep, TurnsDep


async def get_v1_auth(
    request: Request,
    authenticator: AuthenticatorDep,
    header_key: ApiKeyHeader,
    authorization: AuthorizationValue,
) -> AuthContext:
    # The same precedence as every face: X-Api-Key first, then the authorization header.
    raw = header_key
    if not raw and authorization:
        raw = authorization.strip()
        if raw[:7].lower() == "bearer ":
            raw = raw[7:].strip()
    if not raw:
        raise Unauthenticated(
            "Missing API key: send it in the authorization header, as 'authorization: KEY' or "
            "'authorization: Bearer KEY'.",
            code="missing_api_key",
        )
    return await authenticate_key(request, authenticator, raw)


V1AuthDep = Annotated[AuthContext, Depends(get_v1_auth)]
router = SlashRouter(prefix="/api/v1", tags=["messages-v1"])
NOT_FOUND = error_responses({404: "No such chat (or not the caller's)."})


def _split(value: Any) -> Any:
    """Repeated parameters and comma-separated lists alike: `joins=sender&joins=chat` or
    `joins=sender,chat`."""
    if isinstance(value, list):
        return [part.strip() for item in value for part in str(item).split(",") if part.strip()]
    return value


Joins = Annotated[
    list[Join],
    BeforeValidator(_split),
    Query(
        description="Related objects to embed in each message: sender, chat, assistant, "
        "moderation (repeat the parameter or separate the values with commas)."
    ),
]
TicketIds = Annotated[
    list[UUID],
    BeforeValidator(_split),
    Query(
        alias="ticketIds",
        description="Only if the chat carries one of these external ticket references (else an "
        "empty list).",
    ),
]


@dataclass(frozen=True, slots=True)
class Joined:
    """What the messages of one page embed: the chat and assistant are the same for all of
    them, the sender is each message's own."""

    sender: bool = False
    chat: ChatRefOut | None = None
    assistant: AssistantRefOut | None = None
    moderation: bool = False


def _message_out(
    message: Message, chat: Chat, senders: dict[int, Sender], joined: Joined | None = None
) -> V1ChatMessageOut:
    sender = senders.get(message.sender_id) if message.sender_id is not None else None
    fields: dict[str, Any] = {
        "created_at": message.created_at,
        "id": message.uuid,
        "updated_at": message.updated_at,
        "chat_id": chat.uuid,
        "chat_thread_id": message.thread_key,
        "content": message.content,
        "external_id": message.external_id,
        "raw_content": external.raw_content(message),
        "role": message.role,
        "sender_id": sender.uuid if sender is not None else None,
    }
    # Only the joins asked for are set, so only they are sent (response_model_exclude_unset).
    if joined is not None and joined.sender:
        fields["sender"] = _sender_out(sender)
    if joined is not None and joined.chat is not None:
        fields["chat"] = joined.chat
    if joined is not None and joined.assistant is not None:
        fields["assistant"] = joined.assistant
    if joined is not None and joined.moderation:
        fields["moderation"] = ModerationOut(
            is_flagged=message.is_flagged,
            severity=message.severity,
            injection_categories=list(message.injection_categories),
            pii_categories=list(message.pii_categories),
            action_taken=message.action_taken,
        )
    return V1ChatMessageOut.model_validate(fields)


def _sender_out(sender: Sender | None) -> SenderOut | None:
    if sender is None:
        return None
    return SenderOut(
        id=UUID(sender.uuid),
        kind=PrincipalKind(sender.principal.kind),
        username=sender.principal.username,
        full_name=sender.principal.full_name,
    )


async def _joined(session: SessionDep, chat: Chat, joins: Sequence[Join]) -> Joined:
    """One query per join, whatever the page size (the senders are loaded anyway)."""
    chat_ref = assistant_ref = None
    if Join.CHAT in joins:
        tickets = await external.ticket_ids_of(session, chat.id)
        chat_ref = ChatRefOut(
            id=UUID(chat.uuid),
            title=chat.title,
            assistant_id=chat.assistant_id,
            execution_status=chat.execution_status,
            ticket_ids=[UUID(ticket) for ticket in tickets],
            created_at=chat.created_at,
            updated_at=chat.updated_at,
        )
    if Join.ASSISTANT in joins:
        summary = await external.assistant_of(session, chat)
        assistant_ref = AssistantRefOut(
            id=summary.id, description=summary.description, deleted=summary.deleted
        )
    return Joined(
        sender=Join.SENDER in joins,
        chat=chat_ref,
        assistant=assistant_ref,
        moderation=Join.MODERATION in joins,
    )


@router.get(
    "/chat-messages",
    response_model=list[V1ChatMessageOut],
    response_model_exclude_unset=True,
    name="list_chat_messages_v1",
    summary="Retrieves multiple chat messages",
    description="The visible messages of a chat in order, optionally of one sub-thread. A plain "
    "array paginated by page/page_size; the total is in X-Total-Count, next/prev pages in Link. "
    "`sender`, `chat` and `assistant` appear only when `joins` asks for them.",
    responses={
        200: {"description": "Retrieves all chat messages for the specified chat."},
        **NOT_FOUND,
    },
)
async def list_chat_messages(
    request: Request,
    response: Response,
    session: SessionDep,
    auth: V1AuthDep,
    page: PageDep,
    chat_id: Annotated[UUID, Query(alias="chatId", description="The chat's UUID.")],
    joins: Joins = [],  # noqa: B006 - FastAPI copies defaults
    ticket_ids: TicketIds = [],  # noqa: B006
    chat_thread_id: Annotated[
        UUID | None, Query(alias="chatThreadId", description="Only this sub-thread's messages.")
    ] = None,
) -> list[V1ChatMessageOut]:
    found = await external.list_messages(
        session,
        auth,
        str(chat_id),
        thread_id=str(chat_thread_id) if chat_thread_id else None,
        ticket_ids=[str(t) for t in ticket_ids],
        params=page,
    )
    set_list_headers(request, response, found.page)
    messages = found.page.items
    senders = await external.senders_of(
        session, found.chat.workspace_id, {m.sender_id for m in messages if m.sender_id is not None}
    )
    joined = await _joined(session, found.chat, joins)
    return [_message_out(m, found.chat, senders, joined) for m in messages]


@router.post(
    "/chat-messages",
    response_model=V1ChatMessageOut,
    response_model_exclude_unset=True,
    name="create_chat_message_v1",
    summary="Creates a new chat message",
    description="Stores a message in a chat. A `user` message of the main thread is answered by "
    "the chat's assistant in the background (follow it with GET); other messages are stored "
    "only. Repeating an externalId returns the chat's existing message (200, nothing stored).",
    responses={
        200: {"description": "The chat message was created (or already existed)."},
        **NOT_FOUND,
        **error_responses({409: "An answer is running in this chat."}),
    },
)
@invalid_is_400
async def create_chat_message(
    body: ChatMessageIn,
    auth: V1AuthDep,
    turns: TurnsDep,
) -> V1ChatMessageOut:
    posted = await turns.post_message(
        auth,
        external.NewMessage(
            chat_id=str(body.chat_id),
            thread_id=str(body.chat_thread_id) if body.chat_thread_id else None,
            content=body.content,
            external_id=body.external_id,
            sender_id=str(body.sender_id),
            role=Role(body.role),
            ticket_ids=tuple(str(t) for t in body.ticket_ids),
        ),
    )
    senders = {posted.sender.principal.id: posted.sender} if posted.sender is not None else {}
    return _message_out(posted.message, posted.chat, senders)


@router.post(
    "/chat-messages/export",
    response_model=ExportOut,
    name="export_chat_messages_v1",
    summary="Exports chat messages for a given period",
    description="Admin keys only. Starts a background export of the workspace's messages created "
    "in [rangeStart, rangeEnd) as CSV (one row per message, header row in `language`); when it "
    "is ready, the file is POSTed to callbackUrl, signed per Standard Webhooks. The callback URL "
    "is refused (400) before anything is enqueued unless it is HTTPS to a public server. The "
    "`Link` header (rel=monitor) names the job's status endpoint. A repeated Idempotency-Key "
    "returns the first export.",
    responses={
        200: {"description": "Export started. A POST will be made to callbackUrl when ready."}
    },
)
@invalid_is_400
async def export_chat_messages(
    request: Request,
    response: Response,
    body: ExportIn,
    session: SessionDep,
    auth: V1AuthDep,
    settings: SettingsDep,
    queue: QueueDep,
    idempotency_key: IdempotencyKey = None,
) -> ExportOut:
    started = await external.request_period_export(
        session,
        queue,
        settings,
        auth,
        start=body.range_start,
        end=body.range_end,
        language=body.language.value,
        callback_url=body.callback_url,
        idempotency_key=idempotency_key,
    )
    job_url = f"/jobs/{started.job.id}/"
    response.headers["Link"] = f'<{job_url}>; rel="monitor"'
    since = iso_utc(started.start) if started.start else "the first message"
    return ExportOut(
        message=f"Export {started.job.id} started: the messages from {since} until "
        f"{iso_utc(started.end)} will be POSTed as CSV to {started.callback} when ready "
        f"(status: GET {job_url})."
    )
