"""Wire schemas of the threads face (seed 001 in docs/seeds/: UUIDs, snake_case) and the mappers
from the threads domain's views to them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, Field, StringConstraints, field_validator

from chatsvc.kit.validation import MAX_ID, InputModel
from chatsvc.moderation import ModerationPolicy
from chatsvc.moderation.policy import ModerationAction, ModerationSeverity
from chatsvc.threads.schemas import MessageView, SessionView, ThreadView


class ChatSessionOut(BaseModel):
    """A user's chat session: it holds the threads the user makes."""

    uuid: str
    user: str = Field(description="The user's id on this face (a UUID).")
    user_username: str
    user_full_name: str
    created: datetime
    modified: datetime = Field(description="When the session last got a new thread.")

    @classmethod
    def of(cls, view: SessionView) -> Self:
        return cls.model_validate(
            {
                "uuid": view.session.uuid,
                "user": view.session.user_uuid,
                "user_username": view.username,
                "user_full_name": view.full_name,
                "created": view.session.created_at,
                "modified": view.session.updated_at,
            }
        )


class ThreadOut(BaseModel):
    """A thread (a chat of the cognitive face)."""

    uuid: str
    name: str = Field(description="Titled after the first user message (redacted if needed).")
    chat_session: str | None = Field(
        description="The session of the thread's user; null while that user has none (a "
        "thread made through another face by a user who never opened the threads face)."
    )
    flags: list[str] = Field(
        description='Moderation categories seen in the thread: "pii:<category>" and '
        '"injection:<category>", sorted.'
    )
    is_archived: bool
    message_count: int = Field(description="Messages shown without include_history.")
    is_flagged: bool = Field(description="Whether any user message of the thread was flagged.")
    max_severity: ModerationSeverity = Field(description="The highest severity of its messages.")
    user_username: str | None
    user_full_name: str | None
    created: datetime
    modified: datetime = Field(description="The thread's last activity.")

    @classmethod
    def of(cls, view: ThreadView) -> Self:
        chat = view.chat
        return cls.model_validate(
            {
                "uuid": chat.uuid,
                "name": chat.title,
                "chat_session": view.session_uuid,
                "flags": list(chat.flags),
                "is_archived": chat.is_archived,
                "message_count": view.message_count,
                "is_flagged": chat.is_flagged,
                "max_severity": view.max_severity,
                "user_username": view.username,
                "user_full_name": view.full_name,
                "created": chat.created_at,
                "modified": chat.updated_at,
            }
        )


class ThreadMessageOut(BaseModel):
    """A message of a thread, with its moderation verdict (user messages; others keep none)."""

    uuid: str
    thread: str
    role: Literal["user", "assistant", "tool", "system"]
    content: str = Field(description="As typed (see docs/moderation-policy.md).")
    sequence_index: int = Field(description="Order in the thread, from 1, gap-free.")
    replaces: str | None = Field(
        description="The message an edit or a reload superseded (shown with include_history)."
    )
    created: datetime
    is_flagged: bool
    severity: ModerationSeverity
    injection_categories: list[str]
    pii_categories: list[str]
    action_taken: ModerationAction

    @classmethod
    def of(cls, view: MessageView) -> Self:
        message = view.message
        return cls.model_validate(
            {
                "uuid": message.uuid,
                "thread": view.thread_uuid,
                "role": message.role,
                "content": message.content,
                "sequence_index": message.msg_num,
                "replaces": view.replaces_uuid,
                "created": message.created_at,
                "is_flagged": message.is_flagged,
                "severity": message.severity,
                "injection_categories": list(message.injection_categories),
                "pii_categories": list(message.pii_categories),
                "action_taken": message.action_taken,
            }
        )


SESSION_FIELDS = tuple(ChatSessionOut.model_fields)
THREAD_FIELDS = tuple(ThreadOut.model_fields)


class ChatRequestIn(InputModel):
    """A streamed turn (the seed's ChatRequestRequest)."""

    input: Annotated[str, StringConstraints(max_length=200_000)] = Field(
        description="User input text for the chat model (ignored, may be empty, with reload)."
    )
    thread_uuid: uuid.UUID | None = Field(
        default=None, description="Existing thread UUID. If omitted, a new thread is created."
    )
    mode: Literal["reload", "edit"] | None = Field(
        default=None,
        description="'reload': replace the last assistant response. 'edit': edit a user message "
        "and re-stream. Omit for normal new-message behavior.",
    )
    edit_message_uuid: uuid.UUID | None = Field(
        default=None, description="UUID of the user message to edit. Required when mode='edit'."
    )
    assistant: Annotated[int, Field(ge=1, le=MAX_ID)] | None = Field(
        default=None,
        description="For a new thread only: the assistant's id (default: the workspace's "
        "default assistant, see GET /api/chat-settings/).",
    )


class ThreadSessionRequest(InputModel):
    """The body the seed shows on archive and unarchive; accepted and ignored."""

    name: Annotated[str, StringConstraints(max_length=255)] | None = None
    is_archived: bool | None = None


class StreamTurnOut(BaseModel):
    """The JSON answer of POST /api/chat/stream/ without `Accept: text/event-stream`."""

    thread: ThreadOut
    user_message: ThreadMessageOut = Field(description="The user message the turn answered.")
    answer: ThreadMessageOut | None = Field(description="Its answer (null: none was stored).")


class ChatSettingsOut(BaseModel):
    """The workspace's chat settings: the default assistant and the moderation policy."""

    default_assistant: int | None = Field(
        description="The assistant of threads started without one; null: the workspace's first "
        "live assistant."
    )
    moderation_policy: dict[str, Any] = Field(
        description="The moderation policy in force, every field shown (the default one unless "
        "the workspace set its own; see docs/moderation-policy.md)."
    )


class ChatSettingsPatch(InputModel):
    """Only the fields sent change; null restores a field's default."""

    default_assistant: Annotated[int, Field(ge=1, le=MAX_ID)] | None = None
    moderation_policy: dict[str, Any] | None = Field(
        default=None,
        description="A moderation policy (docs/moderation-policy.md); fields left out keep their "
        'defaults, e.g. {"pii": {"email": "flag"}, "injection_block_at": "critical"}.',
    )

    @field_validator("moderation_policy")
    @classmethod
    def _policy(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        # Validated here (a 400 naming the field); kept a plain map on the wire, so the OpenAPI
        # document does not get a second schema named Severity next to the reports' one.
        if value is not None:
            ModerationPolicy.model_validate(value)
        return value

    def policy(self) -> ModerationPolicy | None:
        if self.moderation_policy is None:
            return None
        return ModerationPolicy.model_validate(self.moderation_policy)


# The JSON form of the same models, where a face sends a document it builds itself (a stream
# event's payload).


def thread_out(view: ThreadView) -> dict[str, Any]:
    return ThreadOut.of(view).model_dump(mode="json")


def message_out(view: MessageView) -> dict[str, Any]:
    return ThreadMessageOut.of(view).model_dump(mode="json")
