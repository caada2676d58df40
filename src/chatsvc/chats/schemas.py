"""Validated chat inputs, as every face hands them to the chat service."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from chatsvc.kit.validation import InputModel

#: message text: the chat's max_msg_length is checked by the service; this only stops abuse early
MessageText = Annotated[str, StringConstraints(min_length=1, max_length=200_000)]
Metadata = Annotated[dict[str, Any], Field(max_length=50)]


class UserMessageIn(InputModel):
    message: MessageText
    metadata: Metadata = Field(default_factory=dict)


class OptionalUserMessageIn(InputModel):
    """A new chat: optionally its first user message, title and metadata."""

    message: MessageText | None = None
    title: Annotated[str, StringConstraints(max_length=255)] | None = None
    metadata: Metadata = Field(default_factory=dict)


class AssistantMessageIn(InputModel):
    message: MessageText
    metadata: Metadata = Field(default_factory=dict)


class ToolCallMessageIn(InputModel):
    function_name: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    parameters: Metadata = Field(default_factory=dict)
    tool_call_id: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    content: Annotated[str, StringConstraints(max_length=200_000)] = ""


class ChatFeedbackIn(InputModel):
    """like / comment / matrix_mode: only the fields sent change."""

    like: bool | None = None
    comment: Annotated[str, StringConstraints(max_length=20_000)] | None = None
    matrix_mode: bool | None = None


class MessageLikeIn(InputModel):
    like: bool | None
