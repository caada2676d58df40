"""Cognitive face: chats, their messages, streams (SSE) and generator apps. Translation only: the
chat service decides, the generation manager runs answers, the broker carries their events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Header, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession
from sse_starlette import EventSourceResponse

from chatsvc.api.cognitive.params import AssistantId, ChatId, MessageId
from chatsvc.api.cognitive.schemas import (
    CancelOut,
    ChatFullOut,
    ChatOut,
    GeneratorAppOut,
    MessageOut,
    chat_out,
)
from chatsvc.api.deps import AuthDep
from chatsvc.auth.service import AuthContext
from chatsvc.chats import service as chat_service
from chatsvc.chats.jobs import enqueue_answer
from chatsvc.chats.models import Role
from chatsvc.chats.schemas import (
    AssistantMessageIn,
    ChatFeedbackIn,
    MessageLikeIn,
    OptionalUserMessageIn,
    ToolCallMessageIn,
    UserMessageIn,
)
from chatsvc.chats.service import Turn
from chatsvc.generation.registry import describe_apps
from chatsvc.generation.runner import GenerationManager
from chatsvc.generation.streams import raise_for, resumable, resume_point
from chatsvc.kit.db import unit_of_work
from chatsvc.kit.sse import last_event_id, sse_response, wants_event_stream
from chatsvc.kit.web import (
    ERROR_RESPONSES,
    ErrorBody,
    PageDep,
    SessionDep,
    SettingsDep,
    SlashRouter,
    invalid_is_400,
    set_list_headers,
)
from chatsvc.streaming import events
from chatsvc.streaming.broker import BrokerEntry

router = SlashRouter(tags=["chats"], responses=ERROR_RESPONSES)
IdempotencyKey = Annotated[
    str | None,
    Header(
        max_length=255,
        description="Retrying a POST with the same key returns (or re-attaches to) the first "
        "turn instead of sending the message twice.",
    ),
]
RetryFailed = Annotated[
    bool,
    Query(
        description="Answer the last user message again when the previous generation FAILED "
        "(without it, a FAILED chat is returned as it is, with its error).",
    ),
]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "Not found."}
}
TURN_ERRORS: dict[int | str, dict[str, Any]] = {
    **NOT_FOUND,
    409: {"model": ErrorBody, "description": "A generation is already running on this chat."},
    502: {"model": ErrorBody, "description": "The generator could not be reached or failed."},
    504: {"model": ErrorBody, "description": "The generator did not answer in time."},
}
SSE_DOC: dict[str, Any] = {
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
    "description": "With `Accept: text/event-stream`: the answer as Server-Sent Events "
    "(message.created, references, delta, message.completed, error; see the README).",
}


def _manager(request: Request) -> GenerationManager:
    manager: GenerationManager = request.app.state.generations
    return manager


async def _chat_body(
    request: Request, auth: AuthContext, chat_id: int, *, full: bool = False
) -> dict[str, Any]:
    async with request.app.state.sessionmaker() as session:
        chat = await chat_service.get_chat(session, auth, chat_id)
        messages = await chat_service.messages_of(session, chat.id)
        return chat_out(chat, messages, full=full)


async def _chat_event(body: dict[str, Any]) -> AsyncIterator[BrokerEntry]:
    yield BrokerEntry("0", events.CHAT, body)


def _sse(
    request: Request,
    chat_id: int,
    generation_id: str | None,
    *,
    after: str | None = None,
    status_code: int = 200,
    fallback: dict[str, Any] | None = None,
) -> EventSourceResponse:
    settings = request.app.state.settings
    headers = {"X-Chat-Id": str(chat_id)}
    if generation_id is None:
        return sse_response(
            _chat_event(fallback or {}),
            ping_seconds=settings.sse_ping_seconds,
            status_code=status_code,
            headers=headers,
        )
    return sse_response(
        resumable(_manager(request), chat_id, generation_id, after),
        ping_seconds=settings.sse_ping_seconds,
        status_code=status_code,
        headers=headers,
    )


async def _answer(
    request: Request,
    auth: AuthContext,
    turn: Turn | None,
    chat_id: int,
    *,
    stream: bool,
    status_code: int,
) -> Response:
    """Start (or re-attach to) the turn's generation, then answer as SSE or, when done, JSON."""
    manager = _manager(request)
    generation_id = turn.generation_id if turn else None
    if turn is not None and generation_id is not None and not turn.replayed:
        manager.start(chat_id, generation_id, turn.user_msg_num)
    if stream and generation_id is not None:
        return _sse(request, chat_id, generation_id, status_code=status_code)
    if generation_id is not None:
        raise_for(await manager.wait(chat_id, generation_id))
    body = await _chat_body(request, auth, chat_id)
    if stream:
        return _sse(request, chat_id, None, status_code=status_code, fallback=body)
    return JSONResponse(
        ChatOut.model_validate(body).model_dump(mode="json"), status_code=status_code
    )


# --- generator apps ------------------------------------------------------------------------------


@router.get(
    "/apps-generator/",
    response_model=list[GeneratorAppOut],
    tags=["generators"],
    summary="Get all available apps",
)
async def list_generator_apps(auth: AuthDep, settings: SettingsDep) -> list[dict[str, Any]]:
    return describe_apps(settings)


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
    session: SessionDep,
    auth: AuthDep,
    page: PageDep,
) -> list[dict[str, Any]]:
    result = await chat_service.list_chats(session, auth, assistant, page)
    set_list_headers(request, response, result)
    messages = await chat_service.messages_of_many(session, [chat.id for chat in result.items])
    return [chat_out(chat, messages[chat.id]) for chat in result.items]


# The seed lists streaming-enabled chats separately; every chat can stream, so it is one list.
router.add_api_route(
    "/assistants/{assistant}/chats_stream/",
    list_chats,
    methods=["GET"],
    name="list_stream_chats",
    response_model=list[ChatOut],
    summary="Get all streaming-enabled chats for an assistant",
    responses=NOT_FOUND,
)


async def _create(
    request: Request,
    auth: AuthContext,
    assistant: int,
    body: OptionalUserMessageIn,
    idempotency_key: str | None,
    *,
    stream: bool,
) -> Response:
    chat_id, turn = await _open_chat(
        request, auth, assistant, body, idempotency_key, require_streaming=stream
    )
    response = await _answer(
        request, auth, turn, chat_id, stream=stream and wants_event_stream(request), status_code=201
    )
    response.headers["Location"] = f"/chats/{chat_id}/"
    return response


async def _open_chat(
    request: Request,
    auth: AuthContext,
    assistant: int,
    body: OptionalUserMessageIn,
    idempotency_key: str | None,
    *,
    require_streaming: bool = False,
    background: bool = False,
) -> tuple[int, Turn | None]:
    """Create the chat (and accept its first message) in one committed transaction; a
    background turn's job is triggered once that transaction commits."""
    settings = request.app.state.settings
    async with unit_of_work(request.app.state.sessionmaker) as session:
        chat, turn = await chat_service.create_chat(
            session,
            auth,
            assistant,
            body,
            idempotency_key=idempotency_key,
            lease_seconds=settings.generation_lease_seconds,
            require_streaming=require_streaming,
            require_realtime=background,
        )
        if background:
            await _enqueue_turn(request, session, auth, turn)
        return chat.id, turn


@router.post(
    "/assistants/{assistant}/",
    response_model=ChatOut,
    status_code=201,
    summary="Create a new chat for an assistant",
    description="Starts with the assistant's initial_message; a `message` is answered before the "
    "response returns.",
    responses=TURN_ERRORS,
)
@invalid_is_400
async def create_chat(
    request: Request,
    assistant: AssistantId,
    body: OptionalUserMessageIn,
    auth: AuthDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    return await _create(request, auth, assistant, body, idempotency_key, stream=False)


@router.post(
    "/assistants/{assistant}/chats_stream/",
    response_model=ChatOut,
    status_code=201,
    summary="Create a new streaming-enabled chat",
    description="With `Accept: text/event-stream` and a `message`, the answer streams as SSE "
    "(the chat id is in the X-Chat-Id header and in message.created); otherwise JSON when done.",
    responses={**TURN_ERRORS, 201: SSE_DOC},
)
@invalid_is_400
async def create_stream_chat(
    request: Request,
    assistant: AssistantId,
    body: OptionalUserMessageIn,
    auth: AuthDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    return await _create(request, auth, assistant, body, idempotency_key, stream=True)


# --- one chat -------------------------------------------------------------------------------------


async def _post_message(
    request: Request,
    auth: AuthContext,
    chat_id: int,
    body: UserMessageIn,
    idempotency_key: str | None,
    *,
    stream: bool,
    status_code: int,
) -> Response:
    turn = await _accept(request, auth, chat_id, body, idempotency_key)
    return await _answer(request, auth, turn, chat_id, stream=stream, status_code=status_code)


async def _accept(
    request: Request,
    auth: AuthContext,
    chat_id: int,
    body: UserMessageIn,
    idempotency_key: str | None,
    *,
    background: bool = False,
) -> Turn:
    """Store the user message and claim the chat, in one committed transaction; a background
    turn's job is triggered once that transaction commits."""
    settings = request.app.state.settings
    async with unit_of_work(request.app.state.sessionmaker) as session:
        turn = await chat_service.submit_user_message(
            session,
            auth,
            chat_id,
            body.message,
            dict(body.metadata),
            idempotency_key=idempotency_key,
            lease_seconds=settings.generation_lease_seconds,
        )
        if background:
            await _enqueue_turn(request, session, auth, turn)
    return turn


async def _get_and_generate(
    request: Request, auth: AuthContext, chat_id: int, *, stream: bool, retry: bool = False
) -> Response:
    manager = _manager(request)
    settings = request.app.state.settings
    resume = last_event_id(request) if stream else None
    if resume is not None:
        resumed, after = await resume_point(manager, resume)
        async with request.app.state.sessionmaker() as session:
            await chat_service.ensure_generation_of(session, auth, chat_id, resumed)
        return _sse(request, chat_id, resumed, after=after)
    async with unit_of_work(request.app.state.sessionmaker) as session:
        chat, pending = await chat_service.claim_pending(
            session,
            auth,
            chat_id,
            lease_seconds=settings.generation_lease_seconds,
            retry_failed=retry,
        )
        running = chat.generation_id if chat.execution_status == "PROCESSING" else None
    generation_id = pending.generation_id if pending is not None else running
    if pending is not None and pending.generation_id is not None:
        manager.start(chat_id, pending.generation_id, pending.user_msg_num)
    if stream and generation_id is not None:
        return _sse(request, chat_id, generation_id)
    if generation_id is not None:
        raise_for(await manager.wait(chat_id, generation_id))
    body = await _chat_body(request, auth, chat_id)
    if stream:
        return _sse(request, chat_id, None, fallback=body)
    return JSONResponse(body)


@router.get(
    "/chats/{id}/",
    response_model=ChatOut,
    summary="Retrieve a chat and generate an answer if needed",
    description="When the last message is from the user and no generation runs, one starts "
    "(exactly one, however many clients ask at once) and the response waits for it.",
    responses=TURN_ERRORS,
)
async def get_chat(
    request: Request, id: ChatId, auth: AuthDep, retry: RetryFailed = False
) -> Response:
    return await _get_and_generate(request, auth, id, stream=False, retry=retry)


@router.post(
    "/chats/{id}/",
    response_model=ChatOut,
    status_code=200,
    summary="Create a new message in an existing chat",
    responses=TURN_ERRORS,
)
@invalid_is_400
async def post_chat_message(
    request: Request,
    id: ChatId,
    body: UserMessageIn,
    auth: AuthDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    return await _post_message(
        request, auth, id, body, idempotency_key, stream=False, status_code=200
    )


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
) -> dict[str, Any]:
    chat = await chat_service.update_feedback(session, auth, id, body)
    return chat_out(chat, await chat_service.messages_of(session, chat.id))


@router.post(
    "/chats/{id}/add_user_message/",
    response_model=MessageOut,
    status_code=201,
    summary="Create a new user message in a chat",
    description="Stores the message without answering it; a later GET of the chat answers.",
    responses=NOT_FOUND,
)
@invalid_is_400
async def add_user_message(
    id: ChatId,
    body: UserMessageIn,
    session: SessionDep,
    auth: AuthDep,
) -> Any:
    return await chat_service.add_message(
        session,
        auth,
        id,
        AssistantMessageIn(message=body.message, metadata=body.metadata),
        role=Role.USER,
    )


@router.post(
    "/chats/{id}/add_assistant_message/",
    response_model=MessageOut,
    status_code=201,
    summary="Manually add an assistant message to an existing chat",
    responses=NOT_FOUND,
)
@invalid_is_400
async def add_assistant_message(
    id: ChatId,
    body: AssistantMessageIn,
    session: SessionDep,
    auth: AuthDep,
) -> Any:
    return await chat_service.add_message(session, auth, id, body, role=Role.ASSISTANT)


@router.post(
    "/chats/{id}/add_tool_call_message/",
    response_model=MessageOut,
    status_code=201,
    summary="Create a tool call message in a chat",
    responses=NOT_FOUND,
)
@invalid_is_400
async def add_tool_call_message(
    id: ChatId,
    body: ToolCallMessageIn,
    session: SessionDep,
    auth: AuthDep,
) -> Any:
    return await chat_service.add_message(session, auth, id, body, role=Role.ASSISTANT)


@router.get(
    "/chats/{id}/full/",
    response_model=ChatFullOut,
    summary="Retrieve a complete chat with full details",
    responses=NOT_FOUND,
)
async def get_full_chat(request: Request, id: ChatId, auth: AuthDep) -> dict[str, Any]:
    return await _chat_body(request, auth, id, full=True)


@router.post(
    "/chats/{id}/cancel/",
    response_model=CancelOut,
    summary="Stop the running generation of a chat",
    description="Stops the generation wherever it runs, closes the upstream request and keeps the "
    "partial answer (status cancelled). Idempotent: nothing running → cancelled false.",
    responses=NOT_FOUND,
)
async def cancel_chat(
    request: Request, id: ChatId, session: SessionDep, auth: AuthDep
) -> dict[str, Any]:
    chat = await chat_service.get_chat(session, auth, id)
    running = chat.execution_status == "PROCESSING" and chat.generation_id is not None
    if running and chat.generation_id is not None:
        await _manager(request).cancel(chat.generation_id)
    return {
        "chat": chat.id,
        "generation_id": chat.generation_id if running else None,
        "cancelled": running,
    }


# --- streamed chats -------------------------------------------------------------------------------


@router.get(
    "/chats_stream/{id}/",
    response_model=ChatOut,
    summary="Retrieve a streamed chat and generate a response",
    description="With `Accept: text/event-stream`: follows the running generation (or starts one "
    "when the last message is from the user); `Last-Event-ID` (or ?last_event_id=) resumes after "
    "that event. Nothing to stream: one `chat` event. Without it: JSON, like GET /chats/{id}/.",
    responses={**TURN_ERRORS, 200: SSE_DOC},
)
async def get_stream_chat(
    request: Request, id: ChatId, auth: AuthDep, retry: RetryFailed = False
) -> Response:
    return await _get_and_generate(
        request, auth, id, stream=wants_event_stream(request), retry=retry
    )


@router.post(
    "/chats_stream/{id}/",
    response_model=ChatOut,
    status_code=201,
    summary="Add a new message to a streamed chat",
    responses={**TURN_ERRORS, 201: SSE_DOC},
)
@invalid_is_400
async def post_stream_message(
    request: Request,
    id: ChatId,
    body: UserMessageIn,
    auth: AuthDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    return await _post_message(
        request,
        auth,
        id,
        body,
        idempotency_key,
        stream=wants_event_stream(request),
        status_code=201,
    )


router.add_api_route(
    "/chats_stream/{id}/",
    update_chat,
    methods=["PUT"],
    name="update_stream_chat",
    response_model=ChatOut,
    summary="Update chat feedback or matrix mode settings",
    responses=NOT_FOUND,
)


# --- messages -------------------------------------------------------------------------------------


@router.get(
    "/messages/{id}/",
    response_model=MessageOut,
    tags=["messages"],
    summary="Retrieve a single message by ID",
    responses=NOT_FOUND,
)
async def get_message(id: MessageId, session: SessionDep, auth: AuthDep) -> Any:
    return await chat_service.get_message(session, auth, id)


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
) -> Any:
    return await chat_service.like_message(session, auth, id, body.like)


# --- async chats (answered by a background job) ---------------------------------------------


async def _enqueue_turn(
    request: Request, session: AsyncSession, auth: AuthContext, turn: Turn | None
) -> None:
    """Queue the turn's generation as a job, triggered after this transaction commits."""
    await enqueue_answer(
        session, request.app.state.jobs_queue, request.app.state.settings, auth, turn
    )


ASYNC_DOC = (
    "Answers at once with execution_status PROCESSING while a background job generates; poll "
    "GET /chats/{id}/async/ or follow GET /chats_stream/{id}/ (SSE). A failed generation (the "
    "seed's 502/504) shows as FAILED with `error` on the chat."
)

router.add_api_route(
    "/assistants/{assistant}/chats/async/",
    list_chats,
    methods=["GET"],
    name="list_async_chats",
    response_model=list[ChatOut],
    summary="Get all chats asynchronously for an assistant",
    responses=NOT_FOUND,
)


@router.post(
    "/assistants/{assistant}/chats/async/",
    response_model=ChatOut,
    status_code=201,
    summary="Create a new chat asynchronously",
    description=ASYNC_DOC,
    responses=NOT_FOUND,
)
@invalid_is_400
async def create_async_chat(
    request: Request,
    assistant: AssistantId,
    body: OptionalUserMessageIn,
    auth: AuthDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    chat_id, _turn = await _open_chat(
        request, auth, assistant, body, idempotency_key, background=True
    )
    response = JSONResponse(await _chat_body(request, auth, chat_id), status_code=201)
    response.headers["Location"] = f"/chats/{chat_id}/async/"
    return response


@router.get(
    "/chats/{id}/async/",
    response_model=ChatOut,
    summary="Retrieve a chat and generate an assistant response if needed",
    description="Never waits: when the last message is from the user and no generation runs, a "
    "background job starts one (execution_status PROCESSING).",
    responses=NOT_FOUND,
)
async def get_async_chat(
    request: Request, id: ChatId, auth: AuthDep, retry: RetryFailed = False
) -> Response:
    settings = request.app.state.settings
    async with unit_of_work(request.app.state.sessionmaker) as session:
        _chat, pending = await chat_service.claim_pending(
            session,
            auth,
            id,
            lease_seconds=settings.generation_lease_seconds,
            retry_failed=retry,
        )
        await _enqueue_turn(request, session, auth, pending)
    return JSONResponse(await _chat_body(request, auth, id))


@router.post(
    "/chats/{id}/async/",
    response_model=ChatOut,
    status_code=201,
    summary="Create a new message in a chat asynchronously",
    description=ASYNC_DOC,
    responses={
        **NOT_FOUND,
        409: {"model": ErrorBody, "description": "A generation is already running."},
    },
)
@invalid_is_400
async def post_async_message(
    request: Request,
    id: ChatId,
    body: UserMessageIn,
    auth: AuthDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    await _accept(request, auth, id, body, idempotency_key, background=True)
    return JSONResponse(await _chat_body(request, auth, id), status_code=201)


router.add_api_route(
    "/chats/{id}/async/",
    update_chat,
    methods=["PUT"],
    name="update_async_chat",
    response_model=ChatOut,
    summary="Update like, add a comment, or toggle matrix mode in a chat",
    responses=NOT_FOUND,
)
