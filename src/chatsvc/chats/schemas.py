"""Validated chat inputs, as every face hands them to the chat service, and the one wire shape of
chats and messages that responses and stream events share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    StringConstraints,
    model_validator,
)

from chatsvc.chats.models import Chat, ExecutionStatus, Message, MessageStatus, Role
from chatsvc.kit.validation import InputModel, PatchModel
from chatsvc.moderation.policy import ModerationAction, ModerationSeverity

#: message text: the chat's max_msg_length is checked by the service; this only stops abuse early
MessageText = Annotated[str, StringConstraints(min_length=1, max_length=200_000)]
Metadata = Annotated[dict[str, Any], Field(max_length=50)]


class UserMessageIn(InputModel):
    """A user message to answer."""

    message: MessageText
    metadata: Metadata = Field(default_factory=dict)


class OptionalUserMessageIn(InputModel):
    """A new chat: optionally its first user message, title and metadata."""

    message: MessageText | None = None
    title: Annotated[str, StringConstraints(max_length=255)] | None = None
    metadata: Metadata = Field(default_factory=dict)


class AssistantMessageIn(InputModel):
    """An assistant message to store as it is (no answer is generated)."""

    message: MessageText
    metadata: Metadata = Field(default_factory=dict)


class ToolCallMessageIn(InputModel):
    """A tool call message to store as it is (no answer is generated)."""

    function_name: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    parameters: Metadata = Field(default_factory=dict)
    tool_call_id: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    content: Annotated[str, StringConstraints(max_length=200_000)] = ""


class ChatFeedbackIn(PatchModel):
    """like / comment / matrix_mode: only the fields sent change. `like` and `comment` may be
    sent as null (no verdict, no comment); `matrix_mode` is on or off, never null."""

    nullable: ClassVar[frozenset[str]] = frozenset({"like", "comment"})

    like: bool | None = None
    comment: Annotated[str, StringConstraints(max_length=20_000)] | None = None
    matrix_mode: bool | None = None


class MessageLikeIn(InputModel):
    """The caller's feedback on a message: like (true), dislike (false) or none (null)."""

    like: bool | None


# --- the wire shape of chats and messages ------------------------------------------------------
#
# One model per object, for every response and every SSE payload that shows it (the JSON of a
# REST response and the `message` of a `message.completed` event come from the same model).


class OutModel(BaseModel):
    """A response body. Every field is always sent, so the OpenAPI document lists fields with a
    default as required too (generated clients then type them as present)."""

    model_config = ConfigDict(
        from_attributes=True, json_schema_serialization_defaults_required=True
    )

    @classmethod
    def wire(cls, obj: Any) -> dict[str, Any]:
        """`obj` (a row or a mapping) as JSON-ready data."""
        return cls.model_validate(obj).model_dump(mode="json")


class ReferenceOut(BaseModel):
    """A source an answer used. One a retrieval tool found also says which tool (`tool_id`),
    what it was (`kind`), how well it matched (`score`) and where it is (`url`, when known)."""

    model_config = ConfigDict(extra="allow")

    reference_num: int
    source: str
    showed_num: int


class UsageOut(BaseModel):
    """The tokens an answer cost, summed over its model calls (tool-call rounds included)."""

    prompt_tokens: int = Field(description="Tokens of the prompts sent to the model.")
    completion_tokens: int = Field(description="Tokens the model generated.")
    total_tokens: int = Field(description="prompt_tokens + completion_tokens.")
    estimated: bool = Field(
        description="True when some figure is an estimate (~4 characters a token): the "
        "generator reported none (the offline generator, some upstreams) or a cancel cut the "
        "call short; false when every figure is the upstream's own."
    )

    @classmethod
    def of(cls, source: Any) -> UsageOut | None:
        """The usage of a message (a row or a mapping of its columns); None when it has none."""
        if isinstance(source, Mapping):
            prompt, completion = source.get("prompt_tokens"), source.get("completion_tokens")
            estimated = source.get("usage_estimated")
        else:
            prompt = getattr(source, "prompt_tokens", None)
            completion = getattr(source, "completion_tokens", None)
            estimated = getattr(source, "usage_estimated", None)
        if prompt is None and completion is None:
            return None
        prompt, completion = prompt or 0, completion or 0
        return cls(
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=prompt + completion,
            estimated=bool(estimated),
        )


class MessageOut(OutModel):
    """A message of a chat. `references` is a list of sources (the seed's "string" placeholder),
    `fixed` the name of the fixed response that answered verbatim, `status` complete, cancelled or
    failed."""

    id: int
    role: Role
    content: str
    msg_num: int
    usr_msg_num: int | None
    fixed: str | None
    metadata: dict[str, Any] = Field(validation_alias=AliasChoices("meta", "metadata"))
    references: list[ReferenceOut]
    tool_call_id: str | None
    function_name: str | None
    parameters: dict[str, Any] | None
    like: bool | None
    visible: bool
    status: MessageStatus
    created_at: datetime
    updated_at: datetime
    # The moderation verdict of a user message (see docs/moderation-policy.md).
    is_flagged: bool = False
    severity: ModerationSeverity = ModerationSeverity.NONE
    injection_categories: list[str] = Field(default_factory=list)
    pii_categories: list[str] = Field(default_factory=list)
    action_taken: ModerationAction = ModerationAction.NONE
    usage: UsageOut | None = Field(
        default=None,
        description="The tokens an assistant answer cost (its tool-call rounds included); null "
        "on other messages and on answers given without the model (fixed responses).",
    )

    @model_validator(mode="wrap")
    @classmethod
    def _with_usage(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        # The stored columns prompt_tokens, completion_tokens, usage_estimated become `usage`.
        message = handler(data)
        if message.usage is None:
            message.usage = UsageOut.of(data)
        return message


class MessageFullOut(MessageOut):
    """A message with the prompt its answer was generated from (for operators)."""

    prompt: dict[str, Any] | None = Field(
        description="What the generator was sent for this answer (generator, temperature, "
        "messages), for operators."
    )


class ChatStateOut(OutModel):
    """A chat's state after a generation (the `chat` of a `message.completed` event)."""

    id: int
    title: str
    assistant: int = Field(validation_alias=AliasChoices("assistant_id", "assistant"))
    execution_status: ExecutionStatus
    error: str | None


class ChatOut(OutModel):
    """A chat. `messages` is the list of its messages in order (the seed's "string" placeholder);
    `error` says why the last generation failed when execution_status is FAILED."""

    id: int
    uuid: str = Field(description="The chat's UUID: its thread uuid on the threads face.")
    title: str
    assistant: int = Field(validation_alias=AliasChoices("assistant_id", "assistant"))
    messages: list[MessageOut]
    max_responses: int
    max_msg_length: int
    comment: str | None
    like: bool | None
    created_at: datetime
    updated_at: datetime
    matrix_mode: bool
    execution_status: ExecutionStatus
    error: str | None
    metadata: dict[str, Any] = Field(validation_alias=AliasChoices("meta", "metadata"))

    @classmethod
    def of(cls, chat: Chat, messages: Sequence[Message]) -> Self:
        return cls.model_validate(_chat_fields(chat, messages))


class ChatFullOut(ChatOut):
    """A chat with every reference its answers used, and the prompts sent."""

    messages: list[MessageFullOut]  # type: ignore[assignment]
    references: list[ReferenceOut]

    @classmethod
    def of(cls, chat: Chat, messages: Sequence[Message]) -> Self:
        references = [ref for message in messages for ref in (message.references or [])]
        return cls.model_validate({**_chat_fields(chat, messages), "references": references})


def _chat_fields(chat: Chat, messages: Sequence[Message]) -> dict[str, Any]:
    return {
        "id": chat.id,
        "uuid": chat.uuid,
        "title": chat.title,
        "assistant": chat.assistant_id,
        "messages": messages,
        "max_responses": chat.max_responses,
        "max_msg_length": chat.max_msg_length,
        "comment": chat.comment,
        "like": chat.like,
        "created_at": chat.created_at,
        "updated_at": chat.updated_at,
        "matrix_mode": chat.matrix_mode,
        "execution_status": chat.execution_status,
        "error": chat.error,
        "metadata": chat.meta,
    }
