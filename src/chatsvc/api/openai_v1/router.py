"""The OpenAI-compatible face: `/v1/models` (the workspace's assistants) and
`/v1/chat/completions` (a turn of a chatsvc chat, answered by the whole pipeline). Translation
only: the turn service runs the turn (chats/turns.py); docs/openai-compatible.md says how a
conversation maps onto a chat."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import Header, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.api.deps import AuthDep, idempotency_header
from chatsvc.api.openai_v1.schemas import (
    ChatCompletionIn,
    ChatCompletionOut,
    OpenAIAnswerOut,
    OpenAIChoiceOut,
    OpenAIErrorBody,
    OpenAIModelListOut,
    OpenAIModelOut,
    OpenAIUsageOut,
    error_body,
)
from chatsvc.assistants import service as assistant_service
from chatsvc.assistants.models import Assistant
from chatsvc.auth import service as auth_service
from chatsvc.auth.service import AuthContext
from chatsvc.chats import service as chat_service
from chatsvc.chats.models import Message, Role
from chatsvc.chats.schemas import OptionalUserMessageIn
from chatsvc.chats.service import Earlier
from chatsvc.chats.turns import Delivery, TurnHandle, TurnService
from chatsvc.generation.usage import tokens_of
from chatsvc.kit.errors import FieldError, Invalid, NotFound
from chatsvc.kit.pagination import PageParams
from chatsvc.kit.sse import EventStreamResponse, last_event_id
from chatsvc.kit.validation import MAX_ID
from chatsvc.kit.web import SettingsDep, SlashRouter, invalid_is_400, status_of_kind
from chatsvc.services import ReadSessionDep, TurnsDep
from chatsvc.streaming import events
from chatsvc.streaming.broker import BrokerEntry

MODEL_PREFIX = "assistant-"
#: the most assistants /v1/models lists (one page of the repository's listing)
MAX_MODELS = 1000


def _errors(descriptions: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"model": OpenAIErrorBody, "description": text}
        for status, text in descriptions.items()
    }


AUTH_ERRORS = _errors(
    {401: "Missing or unknown API key (`Authorization: Bearer KEY`).", 403: "Not allowed."}
)
router = SlashRouter(tags=["openai"], prefix="/v1", responses=AUTH_ERRORS)
ChatIdHeader = Annotated[
    int | None,
    Header(
        alias="X-Chat-Id",
        ge=1,
        le=MAX_ID,
        description="Continue this chatsvc chat: only the last (user) message is new.",
    ),
]
IdempotencyKey = Annotated[
    str | None,
    idempotency_header(
        "A retry with the same key returns (or re-attaches to) the first turn instead of "
        "sending the message twice."
    ),
]


# --- models -------------------------------------------------------------------------------------


def _model_out(assistant: Assistant, owner: str) -> OpenAIModelOut:
    return OpenAIModelOut(
        id=f"{MODEL_PREFIX}{assistant.id}",
        created=int(assistant.created_at.timestamp()),
        owned_by=owner,
    )


def assistant_id_of(model: str) -> int:
    """The assistant a model id names; 404 `model_not_found` for any other name."""
    number = model.removeprefix(MODEL_PREFIX)
    if (
        model.startswith(MODEL_PREFIX)
        and number.isascii()
        and number.isdigit()
        and len(number) < 19
    ):
        return int(number)
    raise NotFound(
        f"The model {model!r} does not exist: models are the workspace's assistants, "
        "named `assistant-<id>` (GET /v1/models lists them).",
        code="model_not_found",
    )


async def _assistant(session: AsyncSession, auth: AuthContext, model: str) -> Assistant:
    try:
        return await assistant_service.get_assistant(
            session, auth.workspace_id, assistant_id_of(model)
        )
    except NotFound:
        raise NotFound(
            f"The model {model!r} does not exist (GET /v1/models lists the assistants).",
            code="model_not_found",
        ) from None


@router.get(
    "/models",
    response_model=OpenAIModelListOut,
    name="openai_list_models",
    summary="List models (the workspace's assistants)",
    description="Every assistant of the caller's workspace, as an OpenAI model "
    "(`assistant-<id>`, owned by the workspace's slug).",
)
async def list_models(session: ReadSessionDep, auth: AuthDep) -> OpenAIModelListOut:
    page = await assistant_service.list_assistants(
        session, auth.workspace_id, PageParams(page=1, page_size=MAX_MODELS)
    )
    owner = await auth_service.workspace_slug(session, auth.workspace_id)
    return OpenAIModelListOut(data=[_model_out(a, owner) for a in page.items])


@router.get(
    "/models/{model}",
    response_model=OpenAIModelOut,
    name="openai_retrieve_model",
    summary="Retrieve a model (an assistant)",
    description="The assistant `model` names; 404 `model_not_found` for any other name.",
    responses=_errors({404: "No such model (`model_not_found`)."}),
)
async def retrieve_model(model: str, session: ReadSessionDep, auth: AuthDep) -> OpenAIModelOut:
    assistant = await _assistant(session, auth, model)
    owner = await auth_service.workspace_slug(session, auth.workspace_id)
    return _model_out(assistant, owner)


# --- chat completions ---------------------------------------------------------------------------


def usage_of(
    prompt: int | None, completion: int | None, prompt_text: str, answer_text: str
) -> OpenAIUsageOut:
    """An answer's stored token usage (the upstream's figures, or the generator's estimate);
    for an answer stored without any (a fixed response, an answer from before usage was kept)
    an estimate from the texts, ~4 characters a token."""
    if prompt is None:
        prompt = tokens_of(len(prompt_text))
    if completion is None:
        completion = tokens_of(len(answer_text))
    return OpenAIUsageOut(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


def usage_of_message(answer: Message | None, prompt_text: str) -> OpenAIUsageOut:
    if answer is None:
        return usage_of(None, None, prompt_text, "")
    return usage_of(answer.prompt_tokens, answer.completion_tokens, prompt_text, answer.content)


def _answer_of(messages: list[Message], handle: TurnHandle) -> Message | None:
    """The assistant message answering the handle's turn (the chat's last one otherwise)."""
    asked = handle.turn.user_msg_num if handle.turn is not None else None
    answers = [m for m in messages if m.role == Role.ASSISTANT]
    if asked is not None:
        answers = [m for m in answers if m.usr_msg_num == asked] or answers
    return answers[-1] if answers else None


def _finish_reason(answer: Message | None) -> Literal["stop"]:
    """Every stored answer ends as `stop`: chatsvc has no token limit that cuts an answer
    (`length`), and tool calls run server side (never `tool_calls`)."""
    return "stop"


def _last_user_text(body: ChatCompletionIn) -> str:
    last = body.messages[-1]
    index = len(body.messages) - 1
    if last.role != "user":
        raise Invalid(
            f"The last message must be the user's new message (it is {last.role!r}).",
            code="invalid_request",
            errors=[FieldError(f"messages[{index}].role", "must be 'user'")],
        )
    text = last.text()
    if not text.strip():
        raise Invalid(
            f"messages[{index}] has no text: send the user's message as text.",
            code="invalid_request",
            errors=[FieldError(f"messages[{index}].content", "no text")],
        )
    return text


#: the request roles a new chat's history keeps (system, developer, tool and function messages
#: are not stored: the assistant's own system prompt and server-side tools decide those)
_HISTORY_ROLES = {"user": Role.USER, "assistant": Role.ASSISTANT}


def _history_of(body: ChatCompletionIn) -> list[Earlier]:
    """The request's earlier user and assistant messages (all but the last), in order, as a new
    chat's history; messages without text (an assistant's bare tool calls) are left out."""
    return [
        Earlier(_HISTORY_ROLES[message.role], text, f"messages[{index}].content")
        for index, message in enumerate(body.messages[:-1])
        if message.role in _HISTORY_ROLES and (text := message.text()).strip()
    ]


def _chat_id_of(header: int | None, body: ChatCompletionIn) -> int | None:
    if header is not None:
        return header
    raw = (body.metadata or {}).get("chat_id")
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) < 20 and 1 <= int(raw) <= MAX_ID):
        raise Invalid(
            f"metadata.chat_id {raw[:40]!r} is not a chat id.",
            code="invalid_request",
            errors=[FieldError("metadata.chat_id", "not a chat id")],
        )
    return int(raw)


async def _start(
    turns: TurnService,
    auth: AuthContext,
    body: ChatCompletionIn,
    chat_id: int | None,
    idempotency_key: str | None,
) -> TurnHandle:
    """The turn: a new chat's first, or the next of the chat named (one read before it)."""
    assistant_id = assistant_id_of(body.model)
    text = _last_user_text(body)
    if chat_id is None:
        async with turns.reads() as session:
            assistant = await _assistant(session, auth, body.model)
        return await turns.open_chat(
            auth,
            assistant.id,
            OptionalUserMessageIn(message=text),
            idempotency_key=idempotency_key,
            delivery=Delivery.LIVE,
            streaming=body.stream,
            history=_history_of(body),
        )
    async with turns.reads() as session:
        chat = await chat_service.get_chat(session, auth, chat_id)
        if chat.assistant_id != assistant_id:
            await _assistant(session, auth, body.model)  # 404 model_not_found first
            raise Invalid(
                f"Chat {chat_id} is a chat of assistant-{chat.assistant_id}, not of {body.model}.",
                code="model_mismatch",
            )
    return await turns.send(
        auth, chat_id, text, {}, idempotency_key=idempotency_key, delivery=Delivery.LIVE
    )


@router.post(
    "/chat/completions",
    response_model=ChatCompletionOut,
    name="openai_create_chat_completion",
    summary="Create a chat completion (a turn of a chatsvc chat)",
    description="The assistant `model` names answers the last (user) message with its whole "
    "pipeline. With `X-Chat-Id` (or `metadata.chat_id`) the turn continues that chat; without, "
    "a new chat is made from the messages sent (the earlier user and assistant messages are "
    "stored as its history, system/developer/tool messages are ignored) and its id returned in "
    "`X-Chat-Id`. `stream: true` answers OpenAI's `chat.completion.chunk` events, resumable "
    "with Last-Event-ID.",
    responses={
        200: {
            "description": "The completion; with `stream: true`, Server-Sent Events of "
            "`chat.completion.chunk` objects ended by `data: [DONE]`.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **_errors(
            {
                400: "Invalid request (the last message is not the user's, a bad chat id, a "
                "history too long for the assistant's limits).",
                404: "No such model (`model_not_found`) or chat.",
                409: "An answer is already running in this chat.",
                429: "Too many requests.",
                502: "The upstream model failed.",
                504: "The upstream model did not answer in time.",
            }
        ),
    },
)
@invalid_is_400
async def create_chat_completion(
    request: Request,
    body: ChatCompletionIn,
    auth: AuthDep,
    turns: TurnsDep,
    settings: SettingsDep,
    chat_header: ChatIdHeader = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    # No request session: a completion that waits or streams holds no database connection.
    chat_id = _chat_id_of(chat_header, body)
    prompt_text = _last_user_text(body)
    resume = last_event_id(request) if body.stream else None
    if resume is not None:
        assistant_id_of(body.model)
        handle = await turns.resume(auth, resume, chat_id=chat_id)
    else:
        handle = await _start(turns, auth, body, chat_id, idempotency_key)
    headers = {"X-Chat-Id": str(handle.chat.id)}
    if body.stream:
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        chunks = _Chunks(turns, auth, handle, body.model, prompt_text, include_usage)
        return EventStreamResponse(
            chunks.frames(fresh=resume is None),
            ping_seconds=settings.sse_ping_seconds,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **headers},
        )
    _, messages = await turns.outcome(auth, handle)
    answer = _answer_of(messages, handle)
    completion = ChatCompletionOut(
        id=f"chatcmpl-{answer.uuid if answer is not None else handle.chat.uuid}",
        created=int(answer.created_at.timestamp()) if answer is not None else int(time.time()),
        model=body.model,
        choices=[
            OpenAIChoiceOut(
                message=OpenAIAnswerOut(content=answer.content if answer else ""),
                finish_reason=_finish_reason(answer),
            )
        ],
        usage=usage_of_message(answer, prompt_text),
    )
    return JSONResponse(completion.model_dump(mode="json"), headers=headers)


class _Chunks:
    """A turn's generation events as OpenAI `chat.completion.chunk` frames."""

    def __init__(
        self,
        turns: TurnService,
        auth: AuthContext,
        handle: TurnHandle,
        model: str,
        prompt_text: str,
        include_usage: bool,
    ) -> None:
        self.turns = turns
        self.auth = auth
        self.handle = handle
        self.model = model
        self.prompt_text = prompt_text
        self.include_usage = include_usage
        self.id = f"chatcmpl-{handle.generation_id or handle.chat.uuid}"
        self.created = int(time.time())

    def chunk(
        self, delta: dict[str, Any], finish: str | None = None, ident: str | None = None
    ) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _frame(self._chunk_body([choice]), ident)

    def _chunk_body(self, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        """A `chat.completion.chunk` of this completion with `choices` (and `extra` fields)."""
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": choices,
            **extra,
        }

    async def frames(self, *, fresh: bool) -> AsyncIterator[bytes]:
        if fresh:
            yield self.chunk({"role": "assistant", "content": ""})
        if self.handle.ended:
            yield b"data: [DONE]\n\n"
            return
        entries: AsyncIterator[BrokerEntry] = self.turns.events(self.handle)
        try:
            async for entry in entries:
                if entry.event == events.DELTA:
                    yield self.chunk({"content": entry.data.get("text", "")}, ident=entry.id)
                elif entry.event == events.ERROR:
                    status = status_of_kind(str(entry.data.get("kind", "error")))
                    detail = str(entry.data.get("detail", "The generation failed."))
                    code = str(entry.data.get("code", "error"))
                    yield _frame(error_body(status, detail, code), entry.id)
                    return
                elif entry.event == events.MESSAGE_COMPLETED:
                    stored = entry.data.get("message") or {}
                    usage = stored.get("usage") or {}
                    counted = usage_of(
                        usage.get("prompt_tokens"),
                        usage.get("completion_tokens"),
                        self.prompt_text,
                        str(stored.get("content") or ""),
                    )
                    async for frame in self._end(entry.id, counted):
                        yield frame
                    return
        finally:
            await entries.aclose()  # type: ignore[attr-defined]
        # Nothing ran (answered at once, e.g. a fixed response): the stored answer whole.
        if self.handle.generation_id is None:
            _, messages = await self.turns.chat_with_messages(self.auth, self.handle.chat.id)
            answer = _answer_of(messages, self.handle)
            yield self.chunk({"content": answer.content if answer else ""})
            async for frame in self._end(None, usage_of_message(answer, self.prompt_text)):
                yield frame

    async def _end(self, ident: str | None, usage: OpenAIUsageOut) -> AsyncIterator[bytes]:
        yield self.chunk({}, finish="stop", ident=ident)
        if self.include_usage:
            yield _frame(self._chunk_body([], usage=usage.model_dump()), None)
        yield b"data: [DONE]\n\n"


def _frame(data: dict[str, Any], ident: str | None) -> bytes:
    encoded = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    head = f"id: {ident}\n" if ident else ""
    return f"{head}data: {encoded}\n\n".encode()
