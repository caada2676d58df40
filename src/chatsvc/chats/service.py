"""Chat rules: who sees which chat, limits (max_msg_length, max_responses, end_message), gap-free
message numbers, idempotent turns, and the one-generation-per-chat claim. Each function runs in
the caller's transaction; turns are committed before their generation starts."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.assistants import service as assistant_service
from chatsvc.assistants.models import Assistant
from chatsvc.assistants.repository import AssistantRepository
from chatsvc.auth.service import AuthContext
from chatsvc.chats.models import (
    Chat,
    ChatSettings,
    ExecutionStatus,
    Message,
    MessageStatus,
    Role,
)
from chatsvc.chats.repository import (
    ChatRepository,
    ChatScope,
    ChatSettingsRepository,
    MessageRepository,
    TurnTarget,
)
from chatsvc.chats.schemas import (
    AssistantMessageIn,
    ChatFeedbackIn,
    OptionalUserMessageIn,
    ToolCallMessageIn,
)
from chatsvc.kit.db import utcnow
from chatsvc.kit.errors import (
    Conflict,
    FieldError,
    Invalid,
    NotFound,
    Unavailable,
    or_not_found,
)
from chatsvc.kit.pagination import Page, PageParams
from chatsvc.moderation import (
    DEFAULT_POLICY,
    Action,
    ModerationPolicy,
    Severity,
    Verdict,
    guard,
)

TITLE_LENGTH = 80
#: severity names, in rank order (a thread keeps its highest as the rank)
SEVERITIES = tuple(severity.value for severity in Severity)
#: longer messages are scanned in a worker thread, so the event loop keeps serving others
SCAN_OFF_LOOP_CHARS = 4000
#: the most earlier messages a new chat may be created with (`create_chat`'s `history`)
MAX_HISTORY = 1000
logger = logging.getLogger("chatsvc.chats")


def scope_of(auth: AuthContext) -> ChatScope:
    """Admins see every chat of the workspace; members only their own."""
    return ChatScope(auth.workspace_id, None if auth.is_admin else auth.principal_id)


@dataclass(frozen=True, slots=True)
class Turn:
    """A user message accepted for an answer."""

    chat_id: int
    user_msg_num: int
    #: the generation that answers it; None when it was answered at once (end_message). On a
    #: replay it may have ended already: following it replays its events while they are kept.
    generation_id: str | None
    #: True when an Idempotency-Key matched an earlier turn: nothing new was stored
    replayed: bool = False


async def get_chat(session: AsyncSession, auth: AuthContext, chat_id: int) -> Chat:
    chat = await ChatRepository(session).get(scope_of(auth), chat_id)
    return or_not_found(chat, f"Chat {chat_id} not found.")


async def ensure_generation_of(
    session: AsyncSession, auth: AuthContext, chat_id: int, generation_id: str
) -> None:
    """404 unless the caller sees the chat and the generation answered (or answers) in it: a
    stream is only readable through its own chat."""
    chat = await get_chat(session, auth, chat_id)
    if chat.generation_id != generation_id and not await MessageRepository(session).has_generation(
        chat.id, generation_id
    ):
        raise NotFound(f"No stream {generation_id} in chat {chat_id}.", code="stream_not_found")


async def messages_of(session: AsyncSession, chat_id: int) -> list[Message]:
    return await MessageRepository(session).for_chat(chat_id)


async def messages_of_many(session: AsyncSession, chat_ids: list[int]) -> dict[int, list[Message]]:
    return await MessageRepository(session).for_chats(chat_ids)


async def list_chats(
    session: AsyncSession, auth: AuthContext, assistant_id: int, params: PageParams
) -> Page[Chat]:
    # Chats of a deleted assistant stay readable, so only the workspace is checked here.
    if not await AssistantRepository(session).exists_any(auth.workspace_id, assistant_id):
        raise NotFound(f"Assistant {assistant_id} not found.")
    return await ChatRepository(session).list_for_assistant(scope_of(auth), assistant_id, params)


@dataclass(frozen=True, slots=True)
class Earlier:
    """A message of a conversation held elsewhere (a stateless client's copy), stored as a new
    chat's history before its first turn."""

    role: Role
    text: str
    #: where the client sent it, as errors name it (e.g. `messages[2].content`)
    field: str = "history"


async def create_chat(
    session: AsyncSession,
    auth: AuthContext,
    assistant_id: int,
    data: OptionalUserMessageIn,
    *,
    idempotency_key: str | None,
    lease_seconds: int,
    owner: str | None = None,
    require_streaming: bool = False,
    require_realtime: bool = False,
    history: Sequence[Earlier] = (),
) -> tuple[Chat, Turn | None]:
    """A new chat with the assistant's limits and initial_message, and the turn of its first user
    message when one is given.

    `history`: earlier user and assistant messages of a conversation the client held (a
    stateless OpenAI client sends it whole), stored in order before the first message, in this
    transaction, so the first turn's prompt carries them. They count as stored messages do:
    each user message is checked against max_msg_length and screened by the moderation policy,
    each assistant message counts as an answer against max_responses (400 `history_too_long`
    when none would be left, or beyond MAX_HISTORY messages). A chat made with a history has
    no initial_message: its conversation began in the client, which never showed it.

    An Idempotency-Key belongs to the caller (the principal) who first used it; keys are unique
    per workspace (the chats' unique constraint), and looked up per workspace too:

    * the same caller, the same assistant: the first chat (and its turn) is returned, nothing is
      stored twice; of concurrent requests with one key, the one whose insert loses the race
      on the unique constraint returns the winner's chat the same way;
    * the same caller, another assistant: 409 `idempotency_key_mismatch`;
    * another caller of the workspace (an admin too): 409 `idempotency_key_in_use`, nothing
      of the other chat is shown."""
    repository = ChatRepository(session)
    # No key and an empty key are one thing here and in the stored row (the unique constraint
    # would otherwise hold every "" of the workspace to one chat).
    idempotency_key = idempotency_key or None
    if idempotency_key:
        existing = await repository.by_idempotency_key(auth.workspace_id, idempotency_key)
        if existing is not None:
            return await _replayed_chat(session, auth, assistant_id, existing, idempotency_key)
    assistant = await assistant_service.get_assistant(session, auth.workspace_id, assistant_id)
    if require_streaming and not assistant.streaming_available:
        raise Invalid(f"Assistant {assistant_id} does not stream (streaming_available is false).")
    if require_realtime and not assistant.realtime_available:
        raise Invalid(
            f"Assistant {assistant_id} is not configured for realtime chat "
            "(realtime_available is false).",
            code="not_realtime",
        )
    if data.message is not None:
        _check_length(data.message, assistant.max_msg_length)
    screened = await _screen_history(session, auth.workspace_id, assistant, history)
    answers = sum(1 for earlier in history if earlier.role == Role.ASSISTANT)
    chat = Chat(
        workspace_id=auth.workspace_id,
        assistant_id=assistant.id,
        principal_id=auth.principal_id,
        title=data.title or _history_title(history, screened),
        meta=dict(data.metadata),
        max_responses=assistant.max_responses,
        max_msg_length=assistant.max_msg_length,
        responses_count=answers,
        idempotency_key=idempotency_key,
    )
    if not idempotency_key:
        await repository.add(chat)
    else:
        try:
            # A savepoint: a request that loses the race on the key leaves nothing behind.
            async with session.begin_nested():
                await repository.add(chat)
        except IntegrityError:
            # A concurrent request with the same key made its chat first (its insert waited
            # for that transaction): answer with it, as a retry would be.
            existing = await repository.by_idempotency_key(auth.workspace_id, idempotency_key)
            if existing is None:
                raise
            return await _replayed_chat(session, auth, assistant_id, existing, idempotency_key)
    if history:
        await _store_history(session, auth, chat, history, screened)
    elif assistant.initial_message:
        await _append(
            session, chat, Role.ASSISTANT, assistant.initial_message, meta={"initial": True}
        )
    turn = None
    if data.message is not None:
        turn = await _accept_user_message(
            session,
            auth,
            chat,
            assistant,
            data.message,
            dict(data.metadata),
            idempotency_key,
            lease_seconds,
            owner=owner,
        )
    return chat, turn


@dataclass(frozen=True, slots=True)
class UserMessage:
    """A user message sent to a chat to be answered."""

    chat_id: int
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    #: the request's Idempotency-Key: a retry with it re-attaches to the first turn
    idempotency_key: str | None = None
    #: an edit: the user message it replaces (that one and everything after it are hidden)
    edit_uuid: str | None = None


async def submit_user_message(
    session: AsyncSession,
    auth: AuthContext,
    sent: UserMessage,
    *,
    lease_seconds: int,
    owner: str | None = None,
) -> Turn:
    """Store a user message and claim the chat for its answer (409 while another runs). An
    edit hides the message it replaces and every message after it (kept); the new one
    `replaces` it and is answered on the branch so made. `owner`: the process that will run
    the generation (None: a background job)."""
    chat = await get_chat(session, auth, sent.chat_id)
    if sent.idempotency_key:
        replay = await _replayed_turn(session, chat, sent.idempotency_key)
        if replay is not None:
            return replay
    assistant = await _live_assistant(session, chat)
    return await _accept_user_message(
        session,
        auth,
        chat,
        assistant,
        sent.text,
        sent.metadata,
        sent.idempotency_key,
        lease_seconds,
        owner=owner,
        edit_uuid=sent.edit_uuid,
    )


async def accept_in_one_statement(
    session: AsyncSession,
    auth: AuthContext,
    sent: UserMessage,
    *,
    lease_seconds: int,
    owner: str | None = None,
) -> tuple[TurnTarget, Turn] | None:
    """The common turn (a new user message in a chat that may take it) in two round trips on
    PostgreSQL: one read (the chat, its assistant's liveness, the moderation policy, a replayed
    turn), one statement that claims the chat and stores the message. `session` needs no
    transaction (an autocommit session): the write is one atomic statement.

    Returns None where `submit_user_message` must decide (it explains refusals and handles the
    rarer cases: a flagged message, a deleted assistant, a chat at its limit or busy): nothing
    was written then. Raises what it can tell at once (not found, too long)."""
    if session.get_bind().dialect.name != "postgresql" or sent.edit_uuid is not None:
        return None
    text, idempotency_key = sent.text, sent.idempotency_key
    repository = ChatRepository(session)
    target = await repository.turn_target(scope_of(auth), sent.chat_id, idempotency_key)
    if target is None:
        raise NotFound(f"Chat {sent.chat_id} not found.")
    if target.replay is not None:
        number, replayed = target.replay
        return target, Turn(target.chat_id, number, replayed, replayed=True)
    if not target.assistant_live:
        return None
    _check_length(text, target.max_msg_length)
    policy = parsed_policy(target.moderation_policy, target.workspace_id)
    screened = await _scan(text, policy)
    if screened.is_flagged:
        return None  # the chat's moderation aggregates are kept by the full path
    generation_id = str(uuid.uuid4())
    now = utcnow()
    try:
        stored = await repository.accept_turn(
            target.chat_id,
            generation_id,
            now,
            now + timedelta(seconds=lease_seconds),
            _title(screened.redacted_content or text),
            {
                "role": Role.USER,
                "content": text,
                "meta": sent.metadata,
                "sender_id": auth.principal_id,
                "idempotency_key": idempotency_key,
                "generation_id": generation_id,
                **screened.columns(),
            },
            owner=owner,
        )
    except IntegrityError:
        return None  # a concurrent retry with the same key stored it: the full path replays
    if stored is None:
        return None
    return target, Turn(target.chat_id, stored, generation_id)


def may_start(chat: Chat, now: datetime, *, retry_failed: bool) -> bool:
    """Whether a GET may start a generation in `chat` (its last message aside): none runs (a
    PROCESSING chat whose lease expired lost its generation: it may be taken over), it has not
    ended, and it did not fail (unless the caller retries)."""
    live_lease = chat.lease_expires_at is None or chat.lease_expires_at > now
    if (chat.execution_status == ExecutionStatus.PROCESSING and live_lease) or chat.ended:
        return False
    return chat.execution_status != ExecutionStatus.FAILED or retry_failed


def awaits_answer(
    chat: Chat, messages: list[Message], now: datetime, *, retry_failed: bool
) -> bool:
    """Whether a GET of `chat` (with all its `messages`) should try to start an answer: the
    check `claim_pending` makes again, under the claim, before starting one."""
    last = next((m for m in reversed(messages) if m.visible), None)
    return (
        last is not None
        and last.role == Role.USER
        and may_start(chat, now, retry_failed=retry_failed)
    )


async def claim_pending(
    session: AsyncSession,
    auth: AuthContext,
    chat_id: int,
    *,
    lease_seconds: int,
    owner: str | None = None,
    retry_failed: bool = False,
) -> tuple[Chat, Turn | None]:
    """For GET: when the last message is from the user and no generation runs, claim the chat
    for one (exactly one of many concurrent callers wins). Returns the chat and the turn to
    answer, or None when there is nothing to start. A FAILED chat keeps its error for pollers
    to see; only `retry_failed` (an explicit retry) answers its last message again."""
    chat = await get_chat(session, auth, chat_id)
    now = utcnow()
    if not may_start(chat, now, retry_failed=retry_failed):
        return chat, None
    last = await MessageRepository(session).last(chat.id)
    if last is None or last.role != Role.USER:
        return chat, None
    assistant = await AssistantRepository(session).get(chat.workspace_id, chat.assistant_id)
    if assistant is None:
        return chat, None
    generation_id = str(uuid.uuid4())
    # Only if nothing was stored since `chat` was read: an answer stored meanwhile (by a
    # generation that ended between these reads) means there is nothing left to start.
    claimed = await ChatRepository(session).claim_generation(
        chat.id,
        generation_id,
        now,
        now + timedelta(seconds=lease_seconds),
        unchanged_since=chat.last_msg_num,
        owner=owner,
    )
    if not claimed:
        await session.refresh(chat)  # another caller won: report its generation
        return chat, None
    last.generation_id = generation_id
    await session.flush()
    return chat, Turn(chat.id, last.msg_num, generation_id)


async def reload_answer(
    session: AsyncSession,
    auth: AuthContext,
    chat_id: int,
    *,
    lease_seconds: int,
    owner: str | None = None,
) -> Turn:
    """Answer the chat's last user message again. Its answer (with the tool messages of that
    turn) is hidden, kept, and `replaced` by the new answer; a generation must not be running."""
    chat = await get_chat(session, auth, chat_id)
    await _live_assistant(session, chat)
    generation_id = await _claim(session, chat, lease_seconds, owner)
    messages = await MessageRepository(session).for_chat(chat.id)
    user = next((m for m in reversed(messages) if m.visible and m.role == Role.USER), None)
    if user is None:
        raise Invalid(
            f"Chat {chat.id} has no user message to answer again.", code="nothing_to_reload"
        )
    for message in messages:
        if message.msg_num > user.msg_num and message.visible:
            message.visible = False
    await session.flush()
    return Turn(chat.id, user.msg_num, generation_id)


async def add_message(
    session: AsyncSession,
    auth: AuthContext,
    chat_id: int,
    data: AssistantMessageIn | ToolCallMessageIn,
    *,
    role: Role,
) -> Message:
    """add_user_message / add_assistant_message / add_tool_call_message: store, never generate."""
    chat = await get_chat(session, auth, chat_id)
    if isinstance(data, ToolCallMessageIn):
        return await _append(
            session,
            chat,
            Role.ASSISTANT,
            data.content,
            meta={},
            tool_call_id=data.tool_call_id,
            function_name=data.function_name,
            parameters=dict(data.parameters),
        )
    screened = Screened()
    if role == Role.USER:
        _check_length(data.message, chat.max_msg_length)
        screened = await screen(session, chat.workspace_id, data.message)
    message = await _append(
        session,
        chat,
        role,
        data.message,
        meta=dict(data.metadata),
        sender_id=auth.principal_id,
        **screened.columns(),
    )
    await _aggregate(session, chat, screened)
    if role == Role.USER and not chat.title:
        chat.title = _title(screened.redacted_content or data.message)
    return message


async def update_feedback(
    session: AsyncSession, auth: AuthContext, chat_id: int, data: ChatFeedbackIn
) -> Chat:
    chat = await get_chat(session, auth, chat_id)
    changes = data.model_dump(include=data.model_fields_set)
    if changes.get("matrix_mode"):
        assistant = await AssistantRepository(session).get(chat.workspace_id, chat.assistant_id)
        if assistant is None or not assistant.matrix_mode_available:
            raise Invalid(
                "matrix_mode is not available for this chat's assistant.",
                errors=[FieldError("matrix_mode", "matrix_mode_available is false")],
            )
    for key, value in changes.items():
        setattr(chat, key, value)
    chat.updated_at = utcnow()
    await session.flush()
    return chat


async def get_message(session: AsyncSession, auth: AuthContext, message_id: int) -> Message:
    message = await MessageRepository(session).get_scoped(scope_of(auth), message_id)
    return or_not_found(message, f"Message {message_id} not found.")


async def like_message(
    session: AsyncSession, auth: AuthContext, message_id: int, like: bool | None
) -> Message:
    message = await get_message(session, auth, message_id)
    message.like = like
    message.updated_at = utcnow()
    await session.flush()
    return message


# --- moderation -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Screened:
    """A user message's moderation verdict, as the message's columns keep it."""

    is_flagged: bool = False
    severity: Severity = Severity.NONE
    injection_categories: tuple[str, ...] = ()
    pii_categories: tuple[str, ...] = ()
    action_taken: Action = Action.NONE
    #: rules version, findings (spans and categories, never the matched text), block message
    moderation: dict[str, Any] | None = None
    #: what the generator is sent instead of the text, when the policy redacted some of it
    redacted_content: str | None = None

    @classmethod
    def of(cls, verdict: Verdict) -> Screened:
        return cls(
            is_flagged=verdict.is_flagged,
            severity=verdict.severity,
            injection_categories=tuple(verdict.injection_categories),
            pii_categories=tuple(verdict.pii_categories),
            action_taken=verdict.action_taken,
            moderation={
                "rules_version": verdict.rules_version,
                "findings": [f.model_dump(mode="json") for f in verdict.findings],
                "limits_reached": list(verdict.limits_reached),
                "block_message": verdict.block_message,
            },
            redacted_content=verdict.redacted_text,
        )

    def columns(self) -> dict[str, Any]:
        return {
            "is_flagged": self.is_flagged,
            "severity": self.severity,
            "injection_categories": list(self.injection_categories),
            "pii_categories": list(self.pii_categories),
            "action_taken": self.action_taken,
            "moderation": self.moderation,
            "redacted_content": self.redacted_content,
        }


async def workspace_settings(session: AsyncSession, workspace_id: int) -> ChatSettings | None:
    """The workspace's chat settings, or None while it has the defaults."""
    return await ChatSettingsRepository(session).of_workspace(workspace_id)


async def moderation_policy(session: AsyncSession, workspace_id: int) -> ModerationPolicy:
    """The workspace's moderation policy (the default one unless it set its own). A stored policy
    that no longer validates stops messages (503) rather than letting them pass unchecked."""
    settings = await workspace_settings(session, workspace_id)
    return parsed_policy(settings.moderation_policy if settings else None, workspace_id)


def parsed_policy(stored: dict[str, Any] | None, workspace_id: int) -> ModerationPolicy:
    """A stored policy (None: the default) as a ModerationPolicy, or 503 when it is invalid."""
    if stored is None:
        return DEFAULT_POLICY
    try:
        return ModerationPolicy.model_validate(stored)
    except ValidationError as exc:
        logger.error(
            "workspace %s: stored moderation policy is invalid (%d errors); messages refused",
            workspace_id,
            exc.error_count(),
        )
        raise Unavailable(
            "Messages cannot be checked: this workspace's moderation policy is invalid. An "
            "admin must set it again (PATCH /api/chat-settings/).",
            code="moderation_unavailable",
        ) from None


async def screen(session: AsyncSession, workspace_id: int, text: str) -> Screened:
    """The moderation step every user message passes, in every face, before it is stored. The
    scanner fails closed: an error in it blocks the message."""
    return await _scan(text, await moderation_policy(session, workspace_id))


async def _scan(text: str, policy: ModerationPolicy) -> Screened:
    if len(text) > SCAN_OFF_LOOP_CHARS:
        verdict = await asyncio.to_thread(guard, text, policy)
    else:
        verdict = guard(text, policy)
    return Screened.of(verdict)


async def _aggregate(session: AsyncSession, chat: Chat, screened: Screened) -> None:
    """Fold a flagged message into its chat's is_flagged, max_severity and flags. The chat row
    is locked by the message's number, so the re-read values are current."""
    if not screened.is_flagged:
        return
    await session.refresh(chat, ["is_flagged", "max_severity", "flags"])
    chat.is_flagged = True
    chat.max_severity = max(chat.max_severity, screened.severity.rank)
    seen = {f"pii:{c}" for c in screened.pii_categories}
    seen |= {f"injection:{c}" for c in screened.injection_categories}
    chat.flags = sorted(set(chat.flags) | seen)
    await session.flush()


# --- internals ------------------------------------------------------------------------------


async def _live_assistant(session: AsyncSession, chat: Chat) -> Assistant:
    assistant = await AssistantRepository(session).get(chat.workspace_id, chat.assistant_id)
    if assistant is None:
        raise Invalid(
            f"The assistant of chat {chat.id} was deleted: the chat can be read but not continued.",
            code="assistant_deleted",
        )
    return assistant


def _check_length(text: str, limit: int) -> None:
    if len(text) > limit:
        raise Invalid(
            f"The message is {len(text)} characters long; this chat accepts at most {limit} "
            "(max_msg_length).",
            code="message_too_long",
            errors=[FieldError("message", f"longer than max_msg_length ({limit})")],
        )


async def _screen_history(
    session: AsyncSession, workspace_id: int, assistant: Assistant, history: Sequence[Earlier]
) -> list[Screened | None]:
    """Check a new chat's history against the assistant's limits (400 otherwise) and screen its
    user messages (one read of the policy); one verdict per message, None for the assistant's."""
    if not history:
        return []
    if len(history) > MAX_HISTORY:
        raise Invalid(
            f"The conversation has {len(history)} earlier messages; a new chat takes at most "
            f"{MAX_HISTORY}. Continue a chatsvc chat instead (send only the new message).",
            code="history_too_long",
            errors=[FieldError(history[-1].field, f"more than {MAX_HISTORY} earlier messages")],
        )
    answers = [earlier for earlier in history if earlier.role == Role.ASSISTANT]
    if len(answers) >= assistant.max_responses:
        raise Invalid(
            f"The conversation has {len(answers)} assistant answers; assistant {assistant.id} "
            f"gives at most {assistant.max_responses} in a chat (max_responses), so none would "
            "be left for this message. Start a new conversation.",
            code="history_too_long",
            errors=[FieldError(answers[-1].field, "max_responses reached")],
        )
    policy: ModerationPolicy | None = None
    verdicts: list[Screened | None] = []
    for earlier in history:
        if earlier.role != Role.USER:
            verdicts.append(None)
            continue
        if len(earlier.text) > assistant.max_msg_length:
            limit = assistant.max_msg_length
            raise Invalid(
                f"An earlier message is {len(earlier.text)} characters long; this assistant "
                f"accepts at most {limit} (max_msg_length).",
                code="message_too_long",
                errors=[FieldError(earlier.field, f"longer than max_msg_length ({limit})")],
            )
        if policy is None:
            policy = await moderation_policy(session, workspace_id)
        verdicts.append(await _scan(earlier.text, policy))
    return verdicts


def _history_title(history: Sequence[Earlier], screened: list[Screened | None]) -> str:
    """A chat made with a history is titled by its first user message (as any chat is)."""
    for earlier, verdict in zip(history, screened, strict=False):
        if verdict is not None:
            return _title(verdict.redacted_content or earlier.text)
    return ""


async def _store_history(
    session: AsyncSession,
    auth: AuthContext,
    chat: Chat,
    history: Sequence[Earlier],
    screened: list[Screened | None],
) -> None:
    """A new chat's earlier messages, numbered in one statement and inserted in one more
    (however many there are)."""
    last = await ChatRepository(session).reserve_msg_nums(chat.id, len(history))
    first = last - len(history) + 1
    # Every row sets the same columns (an assistant's: no sender, no verdict), so the flush
    # sends them as one INSERT rather than one per change of shape. An assistant message answers
    # the user message before it (`usr_msg_num`), as a generated answer does: a blocked user
    # message and the reply to it stay out of prompts together.
    rows = []
    asked: int | None = None
    for offset, (earlier, verdict) in enumerate(zip(history, screened, strict=True)):
        msg_num = first + offset
        if verdict is not None:
            asked = msg_num
        rows.append(
            Message(
                chat_id=chat.id,
                msg_num=msg_num,
                role=earlier.role,
                content=earlier.text,
                meta={"history": True},
                sender_id=auth.principal_id if verdict is not None else None,
                usr_msg_num=None if verdict is not None else asked,
                **(verdict or Screened()).columns(),
            )
        )
    await MessageRepository(session).add_all(rows)
    for verdict in screened:
        if verdict is not None:
            await _aggregate(session, chat, verdict)


def _title(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1].rstrip() + "…"


async def _append(
    session: AsyncSession, chat: Chat, role: Role, content: str, **fields: Any
) -> Message:
    msg_num = await ChatRepository(session).next_msg_num(chat.id)
    meta = fields.pop("meta", {})
    return await MessageRepository(session).add(
        Message(chat_id=chat.id, msg_num=msg_num, role=role, content=content, meta=meta, **fields)
    )


async def _accept_user_message(
    session: AsyncSession,
    auth: AuthContext,
    chat: Chat,
    assistant: Assistant,
    text: str,
    metadata: dict[str, Any],
    idempotency_key: str | None,
    lease_seconds: int,
    *,
    owner: str | None = None,
    edit_uuid: str | None = None,
) -> Turn:
    _check_length(text, chat.max_msg_length)
    screened = await screen(session, chat.workspace_id, text)
    generation_id = await _claim(session, chat, lease_seconds, owner)
    replaces_id = await _supersede(session, chat, edit_uuid) if edit_uuid is not None else None
    user = await _append(
        session,
        chat,
        Role.USER,
        text,
        meta=metadata,
        sender_id=auth.principal_id,
        idempotency_key=idempotency_key,
        generation_id=generation_id,
        replaces_id=replaces_id,
        **screened.columns(),
    )
    await _aggregate(session, chat, screened)
    if not chat.title:
        chat.title = _title(screened.redacted_content or text)
    repository = ChatRepository(session)
    if chat.responses_count >= chat.max_responses:
        # The limit is reached: answer end_message once, without the model, and close the chat.
        await _append(
            session,
            chat,
            Role.ASSISTANT,
            assistant.end_message or "This chat has reached its limit of answers.",
            meta={"end": True},
            usr_msg_num=user.msg_num,
            generation_id=generation_id,
        )
        await repository.release_generation(
            chat.id, generation_id, ExecutionStatus.AVAILABLE, ended=True
        )
        await session.refresh(chat)
        return Turn(chat.id, user.msg_num, None)
    return Turn(chat.id, user.msg_num, generation_id)


async def _claim(
    session: AsyncSession, chat: Chat, lease_seconds: int, owner: str | None = None
) -> str:
    """Claim the chat for a new generation (409 while another runs) and check, under the row
    lock the claim takes, that it may be continued. Returns the generation id."""
    generation_id = str(uuid.uuid4())
    now = utcnow()
    if not await ChatRepository(session).claim_generation(
        chat.id, generation_id, now, now + timedelta(seconds=lease_seconds), owner=owner
    ):
        raise Conflict(
            f"A generation is already running on chat {chat.id}: wait for it to finish or cancel "
            f"it (POST /chats/{chat.id}/cancel/), then send the message again.",
            code="generation_running",
        )
    await session.refresh(chat)
    if chat.ended:
        raise Invalid(
            f"Chat {chat.id} has ended: it reached its limit of {chat.max_responses} answers "
            "(max_responses). Start a new chat.",
            code="chat_ended",
        )
    if chat.is_archived:
        raise Invalid(
            f"Chat {chat.id} (thread {chat.uuid}) is archived: unarchive it "
            f"(POST /api/chat-threads/{chat.uuid}/unarchive/) to continue it.",
            code="thread_archived",
        )
    return generation_id


async def _supersede(session: AsyncSession, chat: Chat, message_uuid: str) -> int:
    """Hide the user message being edited and everything after it (kept, out of the history);
    returns its id, which the edited message `replaces`."""
    messages = await MessageRepository(session).for_chat(chat.id)
    target = next((m for m in messages if m.uuid == message_uuid), None)
    problem = None
    if target is None:
        problem = "is not a message of this thread"
    elif target.role != Role.USER:
        problem = f"is a message of role {target.role}; only user messages can be edited"
    elif not target.visible:
        problem = "was already superseded; edit its latest version"
    if target is None or problem is not None:
        raise Invalid(
            f"Message {message_uuid} {problem}.",
            code="not_editable",
            errors=[FieldError("edit_message_uuid", str(problem))],
        )
    for message in messages:
        if message.msg_num >= target.msg_num and message.visible:
            message.visible = False
    await session.flush()
    return target.id


async def _replayed_chat(
    session: AsyncSession, auth: AuthContext, assistant_id: int, chat: Chat, key: str
) -> tuple[Chat, Turn | None]:
    """The chat an Idempotency-Key already made, for a retry of the request that made it: only
    its caller may replay it, and only against the same assistant (see `create_chat`)."""
    if chat.principal_id != auth.principal_id:
        raise Conflict(
            "This Idempotency-Key is already in use in this workspace by another caller: "
            "send the request again with a key of your own (a new UUID, for example).",
            code="idempotency_key_in_use",
        )
    if chat.assistant_id != assistant_id:
        raise Conflict(
            f"This Idempotency-Key already created chat {chat.id} with assistant "
            f"{chat.assistant_id}, not assistant {assistant_id}: a key may be reused only to "
            "retry the same request. Use a new key for a new chat.",
            code="idempotency_key_mismatch",
        )
    return chat, await _replayed_turn(session, chat, key)


async def _replayed_turn(session: AsyncSession, chat: Chat, key: str) -> Turn | None:
    message = await MessageRepository(session).by_idempotency_key(chat.id, key)
    if message is None:
        return None
    return Turn(chat.id, message.msg_num, message.generation_id, replayed=True)


def answer_status(message: Message) -> str:
    return message.status or MessageStatus.COMPLETE
