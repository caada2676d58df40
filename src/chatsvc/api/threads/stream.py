"""Threads face: POST /api/chat/stream/, a turn (new thread, new message, reload, edit) answered
as Server-Sent Events through the shared encoder and resumable with Last-Event-ID, or as JSON.

The stream is the generation's, with the shared event vocabulary; this face adds a first `turn`
event (the thread and the stored user message, with its moderation verdict) and speaks its own
ids: `thread` UUIDs instead of chat ids, and messages in this face's shape."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chatsvc.api.deps import AuthDep, idempotency_header
from chatsvc.api.threads.events import THREAD_EVENTS
from chatsvc.api.threads.schemas import ChatRequestIn, StreamTurnOut, message_out, thread_out
from chatsvc.auth.service import AuthContext
from chatsvc.chats.models import Chat
from chatsvc.chats.service import Turn
from chatsvc.chats.turns import ChatRef, TurnHandle, TurnService
from chatsvc.config import Settings
from chatsvc.kit.db import snapshot_reads
from chatsvc.kit.errors import ChatsvcError, FieldError, Invalid
from chatsvc.kit.openapi import event_stream
from chatsvc.kit.sse import (
    EventStreamResponse,
    last_event_id,
    resumes_event_stream,
    sse_response,
    wants_event_stream,
)
from chatsvc.kit.web import (
    ERROR_RESPONSES,
    ErrorBody,
    SettingsDep,
    SlashRouter,
    domain_error_response,
    invalid_is_400,
)
from chatsvc.services import SessionmakerDep, TurnsDep
from chatsvc.streaming import events
from chatsvc.streaming.broker import BrokerEntry
from chatsvc.threads import service as thread_service
from chatsvc.threads.schemas import Mode
from chatsvc.threads.service import TurnRequest

router = SlashRouter(tags=["chat stream"], responses=ERROR_RESPONSES)
IdempotencyKey = Annotated[
    str | None,
    idempotency_header(
        "Retrying with the same key re-attaches to the first turn's stream instead of sending "
        "the message twice (new messages and edits; not reloads)."
    ),
]
#: the ids of the two events of an answer given at once (no generation: the thread's end_message)
AT_ONCE_EVENT_IDS = ("0", "1")
SSE_DOC = event_stream(
    "With `Accept: text/event-stream`: the turn as Server-Sent Events (docs/threads.md). "
    "Otherwise JSON once the answer is stored.",
    THREAD_EVENTS,
)


@router.post(
    "/api/chat/stream/",
    response_model=StreamTurnOut,
    summary="Stream",
    description="Sends `input` to the thread `thread_uuid` (omitted: a new thread in the "
    "caller's session, with `assistant` or the workspace's default assistant), or with `mode` "
    "`reload` answers the thread's last user message again, or with `mode` `edit` replaces the "
    "user message `edit_message_uuid` and everything after it. Superseded messages are kept "
    "(GET /api/chat-messages/?include_history=true). Every user message passes moderation. "
    "A stream is resumed by sending the request again with `Last-Event-ID`.",
    responses={
        200: SSE_DOC,
        204: {
            "description": "Resumed with `Last-Event-ID` after the stream's last event: no "
            "stream (a client stops reconnecting)."
        },
        404: {"model": ErrorBody, "description": "No such thread (or another user's)."},
        409: {"model": ErrorBody, "description": "An answer is already running in the thread."},
        502: {"model": ErrorBody, "description": "The generator failed (JSON answers only)."},
        503: {"model": ErrorBody, "description": "Moderation could not check the message."},
        504: {"model": ErrorBody, "description": "The generator timed out (JSON answers only)."},
    },
    dependencies=[Depends(resumes_event_stream)],
)
@invalid_is_400
async def chat_stream(
    request: Request,
    body: ChatRequestIn,
    auth: AuthDep,
    turns: TurnsDep,
    sessionmaker: SessionmakerDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    stream = wants_event_stream(request)
    resume = last_event_id(request) if stream else None
    if resume is not None:
        thread_uuid = str(body.thread_uuid) if body.thread_uuid is not None else None
        if resume in AT_ONCE_EVENT_IDS:
            # The events of an answer given at once are sent together, the answer is stored:
            # nothing is left to send.
            return Response(status_code=204)
        handle = await turns.resume(auth, resume, thread_uuid=thread_uuid)
        if handle.ended:
            # The client had the last event of a stream that is over: 204 ends a client's
            # reconnecting (an EventSource's, and a fetch client that follows the same rule).
            return Response(status_code=204, headers={"X-Thread-Uuid": handle.chat.uuid})
        return _sse(
            settings,
            handle.chat,
            _translated(sessionmaker, auth, handle.chat, turns.events(handle)),
        )
    handle = await _accept(turns, auth, body, idempotency_key)
    if stream and handle.generation_id is not None:
        return _sse(
            settings,
            handle.chat,
            _translated(sessionmaker, auth, handle.chat, turns.events(handle)),
        )
    try:
        await turns.finish(handle)
    except ChatsvcError as exc:
        # The thread and its user message are stored: the error names them (`chat_id` and
        # X-Chat-Id, X-Thread-Uuid) so the client can send `mode: reload`.
        response = domain_error_response(request, exc)
        response.headers["X-Thread-Uuid"] = handle.chat.uuid
        return response
    assert handle.turn is not None  # a threads turn always accepts a message
    done = await _turn_body(sessionmaker, auth, handle.chat, handle.turn)
    if stream:
        # Answered at once (the thread's end_message): nothing to resume, two events.
        finished = {"message": done["answer"], "thread": done["thread"]}
        entries = [
            BrokerEntry(AT_ONCE_EVENT_IDS[0], events.TURN, handle.intro or {}),
            BrokerEntry(AT_ONCE_EVENT_IDS[1], events.MESSAGE_COMPLETED, finished),
        ]
        return _sse(settings, handle.chat, _replay(entries))
    return JSONResponse(done)


async def _accept(
    turns: TurnService, auth: AuthContext, body: ChatRequestIn, idempotency_key: str | None
) -> TurnHandle:
    """The turn, accepted and started; its `turn` event read in the same transaction."""
    mode = body.mode or "message"

    async def intro(session: AsyncSession, chat: Chat, turn: Turn) -> dict[str, Any]:
        user, _answer = await thread_service.turn_messages(session, turn)
        (thread,) = await thread_service.thread_views(session, [chat])
        return {"mode": mode, "thread": thread_out(thread), "user_message": message_out(user)}

    request = TurnRequest(
        text=body.input,
        thread_uuid=str(body.thread_uuid) if body.thread_uuid else None,
        mode=Mode(body.mode) if body.mode else None,
        edit_message_uuid=str(body.edit_message_uuid) if body.edit_message_uuid else None,
        assistant_id=body.assistant,
    )
    try:
        handle = await turns.thread_turn(
            auth, request, idempotency_key=idempotency_key, intro=intro
        )
    except Invalid as exc:
        # The chat service names the text `message`; on this face it is `input`.
        exc.errors = [
            FieldError("input", e.message) if e.field == "message" else e for e in exc.errors
        ]
        raise
    return handle


def _sse(
    settings: Settings, chat: ChatRef, entries: AsyncIterator[BrokerEntry]
) -> EventStreamResponse:
    return sse_response(
        entries, ping_seconds=settings.sse_ping_seconds, headers={"X-Thread-Uuid": chat.uuid}
    )


async def _replay(entries: list[BrokerEntry]) -> AsyncIterator[BrokerEntry]:
    for entry in entries:
        yield entry


async def _translated(
    sessionmaker: async_sessionmaker[AsyncSession],
    auth: AuthContext,
    chat: ChatRef,
    source: AsyncIterator[BrokerEntry],
) -> AsyncIterator[BrokerEntry]:
    """The generation's events in this face's terms: thread UUIDs, messages in its shape."""
    try:
        async for entry in source:
            yield BrokerEntry(entry.id, entry.event, await _data(sessionmaker, auth, chat, entry))
    finally:
        aclose = getattr(source, "aclose", None)  # stop following the broker at once
        if aclose is not None:
            await aclose()


async def _data(
    sessionmaker: async_sessionmaker[AsyncSession],
    auth: AuthContext,
    chat: ChatRef,
    entry: BrokerEntry,
) -> dict[str, Any]:
    data = entry.data
    if entry.event == events.MESSAGE_CREATED:
        return {
            "thread": chat.uuid,
            "generation_id": data.get("generation_id"),
            "role": data.get("role"),
        }
    if entry.event == events.ERROR:
        return {**{k: v for k, v in data.items() if k != "chat_id"}, "thread": chat.uuid}
    if entry.event in (events.MESSAGE_COMPLETED, events.TOOL_RESULT) and "message" in data:
        async with snapshot_reads(sessionmaker)() as session:
            (message,) = await thread_service.messages_by_id(session, [data["message"]["id"]])
            translated = {**data, "message": message_out(message)}
            if entry.event == events.MESSAGE_COMPLETED:
                thread = await thread_service.get_thread(session, auth, chat.uuid, fresh=True)
                translated = {"message": translated["message"], "thread": thread_out(thread)}
        return translated
    return data


async def _turn_body(
    sessionmaker: async_sessionmaker[AsyncSession], auth: AuthContext, chat: ChatRef, turn: Turn
) -> dict[str, Any]:
    async with snapshot_reads(sessionmaker)() as session:
        user, answer = await thread_service.turn_messages(session, turn)
        thread = await thread_service.get_thread(session, auth, chat.uuid, fresh=True)
    return {
        "thread": thread_out(thread),
        "user_message": message_out(user),
        "answer": message_out(answer) if answer is not None else None,
    }
