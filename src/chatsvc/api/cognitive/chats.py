"""Cognitive face: chats, their messages, streams (SSE) and generator apps. Translation only: the
turn service runs turns (chats/turns.py), the chat service decides everything else."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from chatsvc.api.cognitive.params import AssistantId, ChatId, MessageId
from chatsvc.api.deps import AuthDep, idempotency_header
from chatsvc.api.stream_events import CHAT_EVENTS
from chatsvc.auth.service import AuthContext
from chatsvc.chats import service as chat_service
from chatsvc.chats.models import Role
from chatsvc.chats.schemas import (
    AssistantMessageIn,
    ChatFeedbackIn,
    ChatFullOut,
    ChatOut,
    MessageLikeIn,
    MessageOut,
    OptionalUserMessageIn,
    ToolCallMessageIn,
    UserMessageIn,
)
from chatsvc.chats.turns import Delivery, TurnHandle, TurnService
from chatsvc.config import Settings
from chatsvc.generation.registry import describe_apps
from chatsvc.kit.openapi import event_stream
from chatsvc.kit.sse import (
    last_event_id,
    resumes_event_stream,
    sse_response,
    wants_event_stream,
)
from chatsvc.kit.web import (
    PageDep,
    SettingsDep,
    SlashRouter,
    error_responses,
    invalid_is_400,
    page_items,
)
from chatsvc.services import ReadSessionDep, SessionDep, TurnsDep
from chatsvc.streaming import events
from chatsvc.streaming.broker import BrokerEntry

router = SlashRouter(tags=["chats"])
IdempotencyKey = Annotated[
    str | None,
    idempotency_header(
        "Retrying a POST with the same key returns (or re-attaches to) the first turn instead of "
        "sending the message twice."
    ),
]
RetryFailed = Annotated[
    bool,
    Query(
        description="Answer the last user message again when the previous generation FAILED "
        "(without it, a FAILED chat is returned as it is, with its error).",
    ),
]
NOT_FOUND = error_responses({404: "Not found."})
TURN_ERRORS = {
    **NOT_FOUND,
    **error_responses(
        {
            409: "A generation is already running on this chat.",
            502: "The generator could not be reached or failed.",
            504: "The generator did not answer in time.",
        }
    ),
}
#: creating a chat: an Idempotency-Key of another caller, or replayed against another assistant
KEY_CONFLICT = error_responses(
    {
        409: "The Idempotency-Key is already in use in the workspace by another caller "
        "(`idempotency_key_in_use`), or created a chat with another assistant "
        "(`idempotency_key_mismatch`).",
    }
)
CREATE_ERRORS = {**TURN_ERRORS, **KEY_CONFLICT}
Endpoint = Callable[..., Awaitable[Response]]
SSE_DOC = event_stream(
    'With `Accept: text/event-stream`: the answer as Server-Sent Events (README.md, "Streams '
    '(SSE)"); otherwise the chat as JSON once the answer is stored.',
    CHAT_EVENTS,
)


class GeneratorAppOut(BaseModel):
    """A generator app this server is configured with."""

    name: str
    kind: str
    model: str | None
    description: str
    default: bool


class CancelOut(BaseModel):
    """What a cancel did: the generation asked to stop, if any ran."""

    chat: int
    generation_id: str | None = Field(description="The generation asked to stop, if any ran.")
    cancelled: bool = Field(description="False when nothing was running (nothing to stop).")


# --- a turn route's context and how it renders a turn --------------------------------------------


class Reply(StrEnum):
    """How a family of turn routes answers: JSON once the answer is stored (/chats/); that, or
    with `Accept: text/event-stream` Server-Sent Events (/chats_stream/); or JSON at once while a
    background job answers (/async/)."""

    WAIT = "wait"
    STREAM = "stream"
    BACKGROUND = "background"

    @property
    def delivery(self) -> Delivery:
        return Delivery.BACKGROUND if self is Reply.BACKGROUND else Delivery.LIVE

    def sse(self, request: Request) -> bool:
        return self is Reply.STREAM and wants_event_stream(request)


@dataclass(frozen=True, slots=True)
class TurnContext:
    """What every turn route works with (one dependency): the caller, the turn service and the
    settings."""

    auth: AuthContext
    turns: TurnService
    settings: Settings

    async def respond(
        self, request: Request, handle: TurnHandle, reply: Reply, status_code: int = 200
    ) -> Response:
        """A turn as SSE (its generation's events, or one `chat` event when nothing runs), or as
        the chat in JSON: once its answer is stored, or at once when a background job answers."""
        stream = reply.sse(request)
        entries: AsyncIterator[BrokerEntry]
        if stream and handle.generation_id is not None:
            entries = self.turns.events(handle)
        else:
            if reply is Reply.BACKGROUND:
                chat, messages = await self.turns.chat_with_messages(self.auth, handle.chat.id)
            else:
                chat, messages = await self.turns.outcome(self.auth, handle)
            body = ChatOut.of(chat, messages).model_dump(mode="json")
            if not stream:
                return JSONResponse(body, status_code=status_code)
            entries = _one(BrokerEntry(events.SNAPSHOT_EVENT_ID, events.CHAT, body))
        return sse_response(
            entries,
            ping_seconds=self.settings.sse_ping_seconds,
            status_code=status_code,
            headers={"X-Chat-Id": str(handle.chat.id)},
        )

    async def resume(
        self, request: Request, chat_id: int | None, resume: str, reply: Reply
    ) -> Response:
        """A stream resumed after the event `resume` names: the events after it, or 204 when
        the client had the last one of a stream that is over (204 ends an EventSource's
        reconnecting, where an empty 200 would go on forever). `chat_id` None: the chat the
        generation answered in (a new chat's stream, resumed by sending its request again)."""
        handle = await self.turns.resume(self.auth, resume, chat_id=chat_id)
        if handle.ended:
            return Response(status_code=204, headers={"X-Chat-Id": str(handle.chat.id)})
        return await self.respond(request, handle, reply)


async def turn_context(auth: AuthDep, turns: TurnsDep, settings: SettingsDep) -> TurnContext:
    return TurnContext(auth, turns, settings)


TurnContextDep = Annotated[TurnContext, Depends(turn_context)]


async def _one(entry: BrokerEntry) -> AsyncIterator[BrokerEntry]:
    yield entry


# --- generator apps ------------------------------------------------------------------------------


@router.get(
    "/apps-generator/",
    response_model=list[GeneratorAppOut],
    tags=["generators"],
    summary="Get all available apps",
)
async def list_generator_apps(auth: AuthDep, settings: SettingsDep) -> list[GeneratorAppOut]:
    """The generator apps this server is configured with (CHATSVC_GENERATOR_APPS); an assistant's
    `generation_config` names one of them."""
    return [GeneratorAppOut.model_validate(app) for app in describe_apps(settings)]


# --- chats of an assistant ------------------------------------------------------------------------


@router.get(
    "/assistants/{assistant}/chats/",
    response_model=list[ChatOut],
    summary="Get all chats or all chats from a specific assistant",
    description="A plain array; the total is in X-Total-Count, next/prev pages in Link. Member "
    "keys see their own chats only.",
    responses=NOT_FOUND,
)
async def list_chats(
    request: Request,
    response: Response,
    assistant: AssistantId,
    session: ReadSessionDep,
    auth: AuthDep,
    page: PageDep,
) -> list[ChatOut]:
    """A plain array; the total is in X-Total-Count, next/prev pages in Link. Member keys see their
    own chats only."""
    result = await chat_service.list_chats(session, auth, assistant, page)
    messages = await chat_service.messages_of_many(session, [chat.id for chat in result.items])
    return page_items(request, response, result, lambda chat: ChatOut.of(chat, messages[chat.id]))


def _also_at(path: str, endpoint: Callable[..., Any], name: str, summary: str) -> None:
    """Serve an operation declared above under another path of the seed too, with that path's
    own operation id and summary (same method and response)."""
    route = next(r for r in router.routes if isinstance(r, APIRoute) and r.endpoint is endpoint)
    router.add_api_route(
        path,
        endpoint,
        methods=sorted(route.methods or ()),
        name=name,
        response_model=route.response_model,
        summary=summary,
        responses=NOT_FOUND,
    )


# The seed lists streaming-enabled chats separately; every chat can stream, so it is one list.
_also_at(
    "/assistants/{assistant}/chats_stream/",
    list_chats,
    "list_stream_chats",
    "Get all streaming-enabled chats for an assistant",
)


def _creator(reply: Reply) -> Endpoint:
    """POST a new chat, its first message answered as `reply` says."""

    @invalid_is_400
    async def create(
        request: Request,
        assistant: AssistantId,
        body: OptionalUserMessageIn,
        ctx: TurnContextDep,
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        resume = last_event_id(request) if reply.sse(request) else None
        if resume == events.SNAPSHOT_EVENT_ID:
            # The new chat was answered at once, whole in that `chat` event: nothing is left.
            return Response(status_code=204)
        if resume is not None:
            # Sent again with Last-Event-ID (the SSE rules): the rest of the stream it started,
            # not a second chat.
            return await ctx.resume(request, None, resume, reply)
        handle = await ctx.turns.open_chat(
            ctx.auth,
            assistant,
            body,
            idempotency_key=idempotency_key,
            delivery=reply.delivery,
            streaming=reply is Reply.STREAM,
        )
        response = await ctx.respond(request, handle, reply, status_code=201)
        async_suffix = "async/" if reply is Reply.BACKGROUND else ""
        response.headers["Location"] = f"/chats/{handle.chat.id}/{async_suffix}"
        return response

    return create


router.post(
    "/assistants/{assistant}/",
    name="create_chat",
    response_model=ChatOut,
    status_code=201,
    summary="Create a new chat for an assistant",
    description="Starts with the assistant's initial_message; a `message` is answered before the "
    "response returns.",
    responses=CREATE_ERRORS,
)(_creator(Reply.WAIT))
router.post(
    "/assistants/{assistant}/chats_stream/",
    name="create_stream_chat",
    response_model=ChatOut,
    status_code=201,
    summary="Create a new streaming-enabled chat",
    description="With `Accept: text/event-stream` and a `message`, the answer streams as SSE "
    "(the chat id is in the X-Chat-Id header and in message.created); otherwise JSON when done. "
    "The same request sent again with `Last-Event-ID` resumes that stream (200), or answers 204 "
    "after its last event.",
    responses={
        **CREATE_ERRORS,
        201: SSE_DOC,
        204: {"description": "Resumed after the stream's last event: no stream."},
    },
    dependencies=[Depends(resumes_event_stream)],
)(_creator(Reply.STREAM))


# --- one chat -------------------------------------------------------------------------------------


def _reader(reply: Reply) -> Endpoint:
    """GET a chat, answering its last user message when it waits for one, as `reply` says (SSE
    resumable with Last-Event-ID)."""

    async def read(
        request: Request,
        id: ChatId,
        ctx: TurnContextDep,
        retry: RetryFailed = False,
    ) -> Response:
        resume = last_event_id(request) if reply.sse(request) else None
        if resume is not None and resume != events.SNAPSHOT_EVENT_ID:
            return await ctx.resume(request, id, resume, reply)
        handle = await ctx.turns.answer_pending(
            ctx.auth, id, retry_failed=retry, delivery=reply.delivery
        )
        if resume is not None and handle.generation_id is None:
            # The client saw the chat (the snapshot's id) and nothing runs now: 204 ends an
            # EventSource's reconnecting, where the same snapshot again would go on forever.
            return Response(status_code=204, headers={"X-Chat-Id": str(handle.chat.id)})
        return await ctx.respond(request, handle, reply)

    return read


router.get(
    "/chats/{id}/",
    name="get_chat",
    response_model=ChatOut,
    summary="Retrieve a chat and generate an answer if needed",
    description="When the last message is from the user and no generation runs, one starts "
    "(exactly one, however many clients ask at once) and the response waits for it.",
    responses=TURN_ERRORS,
)(_reader(Reply.WAIT))


def _poster(reply: Reply, status_code: int) -> Endpoint:
    """POST a user message to a chat, answered as `reply` says."""

    @invalid_is_400
    async def post(
        request: Request,
        id: ChatId,
        body: UserMessageIn,
        ctx: TurnContextDep,
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        """Stores the user message (length, moderation, numbering) and answers it as the route says:
        JSON once the answer is stored, or Server-Sent Events on /chats_stream/ with `Accept:
        text/event-stream`. With an Idempotency-Key, a retry re-attaches to the first turn instead
        of sending the message twice."""
        resume = last_event_id(request) if reply.sse(request) else None
        if resume == events.SNAPSHOT_EVENT_ID:
            # The answer came at once, whole in that `chat` event: nothing is left to send.
            return Response(status_code=204, headers={"X-Chat-Id": str(id)})
        if resume is not None:
            # A client that follows the SSE rules sends the same request again to resume: the
            # rest of this turn's stream, not the message a second time.
            return await ctx.resume(request, id, resume, reply)
        handle = await ctx.turns.send(
            ctx.auth,
            id,
            body.message,
            dict(body.metadata),
            idempotency_key=idempotency_key,
            delivery=reply.delivery,
        )
        return await ctx.respond(request, handle, reply, status_code=status_code)

    return post


router.post(
    "/chats/{id}/",
    name="post_chat_message",
    response_model=ChatOut,
    status_code=200,
    summary="Create a new message in an existing chat",
    responses=TURN_ERRORS,
)(_poster(Reply.WAIT, status_code=200))


@router.put(
    "/chats/{id}/",
    response_model=ChatOut,
    summary="Update chat feedback and settings",
    description="like, comment, matrix_mode: only the fields sent change.",
    responses=NOT_FOUND,
)
@invalid_is_400
async def update_chat(
    id: ChatId,
    body: ChatFeedbackIn,
    session: SessionDep,
    auth: AuthDep,
) -> ChatOut:
    """Sets the chat's feedback and settings: `like`, `comment`, `matrix_mode`; only the fields sent
    change."""
    chat = await chat_service.update_feedback(session, auth, id, body)
    return ChatOut.of(chat, await chat_service.messages_of(session, chat.id))


NewMessage = UserMessageIn | AssistantMessageIn | ToolCallMessageIn


def _message_adder(
    kind: str,
    body_type: type[NewMessage],
    role: Role,
    summary: str,
    description: str | None = None,
) -> None:
    """POST /chats/{id}/add_<kind>_message/: store a message as it is (no answer is generated)."""

    @invalid_is_400
    async def add(id: ChatId, body: NewMessage, session: SessionDep, auth: AuthDep) -> MessageOut:
        """Stores the message as it is, without generating an answer."""
        if isinstance(body, UserMessageIn):  # add_message reads text and metadata in one form
            body = AssistantMessageIn(message=body.message, metadata=body.metadata)
        return MessageOut.model_validate(
            await chat_service.add_message(session, auth, id, body, role=role)
        )

    # Each route documents its own body: the annotations of this module are strings, resolved in
    # its globals, so the type is set here.
    add.__annotations__["body"] = body_type
    router.add_api_route(
        f"/chats/{{id}}/add_{kind}_message/",
        add,
        methods=["POST"],
        name=f"add_{kind}_message",
        response_model=MessageOut,
        status_code=201,
        summary=summary,
        description=description,
        responses=NOT_FOUND,
    )


_message_adder(
    "user",
    UserMessageIn,
    Role.USER,
    "Create a new user message in a chat",
    "Stores the message without answering it; a later GET of the chat answers.",
)
_message_adder(
    "assistant",
    AssistantMessageIn,
    Role.ASSISTANT,
    "Manually add an assistant message to an existing chat",
)
_message_adder(
    "tool_call", ToolCallMessageIn, Role.ASSISTANT, "Create a tool call message in a chat"
)


@router.get(
    "/chats/{id}/full/",
    response_model=ChatFullOut,
    summary="Retrieve a complete chat with full details",
    responses=NOT_FOUND,
)
async def get_full_chat(id: ChatId, ctx: TurnContextDep) -> ChatFullOut:
    """The chat with every message, each answer with its `prompt` (what the generator was sent), for
    operators."""
    chat, messages = await ctx.turns.chat_with_messages(ctx.auth, id)
    return ChatFullOut.of(chat, messages)


@router.post(
    "/chats/{id}/cancel/",
    response_model=CancelOut,
    summary="Stop the running generation of a chat",
    description="Stops the generation wherever it runs, closes the upstream request and keeps the "
    "partial answer (status cancelled). Idempotent: nothing running → cancelled false.",
    responses=NOT_FOUND,
)
async def cancel_chat(id: ChatId, ctx: TurnContextDep) -> CancelOut:
    outcome = await ctx.turns.cancel(ctx.auth, id)
    return CancelOut(
        chat=outcome.chat_id, generation_id=outcome.generation_id, cancelled=outcome.cancelled
    )


# --- streamed chats -------------------------------------------------------------------------------


router.get(
    "/chats_stream/{id}/",
    name="get_stream_chat",
    response_model=ChatOut,
    summary="Retrieve a streamed chat and generate a response",
    description="With `Accept: text/event-stream`: follows the running generation (or starts one "
    "when the last message is from the user); `Last-Event-ID` (or ?last_event_id=) resumes after "
    "that event. Nothing to stream: one `chat` event (id `0`); a reconnect with that id gets 204 "
    "while still nothing runs. Without it: JSON, like GET /chats/{id}/.",
    responses={
        **TURN_ERRORS,
        200: SSE_DOC,
        204: {
            "description": "Reconnected with the `chat` event's id while nothing runs, or with "
            "the last event of a stream that is over: no stream (an EventSource stops)."
        },
    },
    dependencies=[Depends(resumes_event_stream)],
)(_reader(Reply.STREAM))
router.post(
    "/chats_stream/{id}/",
    name="post_stream_message",
    response_model=ChatOut,
    status_code=201,
    summary="Add a new message to a streamed chat",
    description="With `Accept: text/event-stream` the answer streams as SSE. The same request "
    "sent again with `Last-Event-ID` (or ?last_event_id=) resumes that stream (200) instead of "
    "sending the message again; after its last event it answers 204.",
    responses={
        **TURN_ERRORS,
        201: SSE_DOC,
        204: {"description": "Resumed after the stream's last event: no stream."},
    },
    dependencies=[Depends(resumes_event_stream)],
)(_poster(Reply.STREAM, status_code=201))


_also_at(
    "/chats_stream/{id}/",
    update_chat,
    "update_stream_chat",
    "Update chat feedback or matrix mode settings",
)


# --- messages -------------------------------------------------------------------------------------


@router.get(
    "/messages/{id}/",
    response_model=MessageOut,
    tags=["messages"],
    summary="Retrieve a single message by ID",
    responses=NOT_FOUND,
)
async def get_message(id: MessageId, session: ReadSessionDep, auth: AuthDep) -> MessageOut:
    """One message of a chat the caller may read."""
    return MessageOut.model_validate(await chat_service.get_message(session, auth, id))


@router.put(
    "/messages/{id}/",
    response_model=MessageOut,
    tags=["messages"],
    summary="Update user feedback on a message",
    responses=NOT_FOUND,
)
@invalid_is_400
async def like_message(
    id: MessageId,
    body: MessageLikeIn,
    session: SessionDep,
    auth: AuthDep,
) -> MessageOut:
    """Sets the caller's feedback on a message: `like` true or false, or null to clear it."""
    return MessageOut.model_validate(await chat_service.like_message(session, auth, id, body.like))


# --- async chats (answered by a background job) ---------------------------------------------

ASYNC_DOC = (
    "Answers at once, with the chat's execution_status showing that an answer runs while a "
    "background job generates it; poll GET /chats/{id}/async/ or follow GET /chats_stream/{id}/ "
    "(SSE). A failed generation (the seed's 502/504) shows as FAILED with `error` on the chat."
)

_also_at(
    "/assistants/{assistant}/chats/async/",
    list_chats,
    "list_async_chats",
    "Get all chats asynchronously for an assistant",
)


router.post(
    "/assistants/{assistant}/chats/async/",
    name="create_async_chat",
    response_model=ChatOut,
    status_code=201,
    summary="Create a new chat asynchronously",
    description=ASYNC_DOC,
    responses={**NOT_FOUND, **KEY_CONFLICT},
)(_creator(Reply.BACKGROUND))
router.get(
    "/chats/{id}/async/",
    name="get_async_chat",
    response_model=ChatOut,
    summary="Retrieve a chat and generate an assistant response if needed",
    description="Never waits: when the last message is from the user and no generation runs, a "
    "background job starts one (the chat's execution_status shows it runs).",
    responses=NOT_FOUND,
)(_reader(Reply.BACKGROUND))
router.post(
    "/chats/{id}/async/",
    name="post_async_message",
    response_model=ChatOut,
    status_code=201,
    summary="Create a new message in a chat asynchronously",
    description=ASYNC_DOC,
    responses={**NOT_FOUND, **error_responses({409: "A generation is already running."})},
)(_poster(Reply.BACKGROUND, status_code=201))


_also_at(
    "/chats/{id}/async/",
    update_chat,
    "update_async_chat",
    "Update like, add a comment, or toggle matrix mode in a chat",
)
