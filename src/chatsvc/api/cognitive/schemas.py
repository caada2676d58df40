"""Wire schemas of the cognitive face (snake_case, integer ids) for assistants and knowledge."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from chatsvc.assistants.schemas import AssistantIn, AssistantPatch
from chatsvc.knowledge.schemas import CommonQuestionIn, FixedResponseIn, LessonIn

__all__ = [
    "AssistantIn",
    "AssistantInfoOut",
    "AssistantInfoPage",
    "AssistantOut",
    "AssistantPage",
    "AssistantPatch",
    "CommonQuestionIn",
    "CommonQuestionOut",
    "FixedResponseIn",
    "FixedResponseOut",
    "LessonIn",
    "LessonOut",
]


class OutModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class AssistantOut(OutModel):
    id: int
    generation_config: str
    generation_config_pretools: str | None
    description: str
    system_prompt: str
    temperature: float
    max_responses: int
    max_msg_length: int
    initial_message: str | None
    end_message: str | None
    add_to_user_message: str | None
    max_consecutive_tool_calls: int
    created_at: datetime
    updated_at: datetime
    retrieval_faq: int = Field(description="Number of indexed common questions (read-only).")
    retrieval_fixed_faq: int = Field(description="Number of indexed fixed responses (read-only).")
    retrieval_lessons: int = Field(description="Number of indexed lessons (read-only).")
    matrix_mode_available: bool
    not_info_message: str | None
    strategy_to_optimize_tokens: str
    faq_available: bool
    fixed_available: bool
    lessons_available: bool
    realtime_available: bool
    info: str | None
    colors: dict[str, str] | None
    logo: str | None
    streaming_available: bool
    tools: list[int]
    pretools: list[int]


class AssistantInfoOut(OutModel):
    """What the chat UI needs to show an assistant and configure the chat."""

    id: int
    info: str | None
    description: str
    initial_message: str | None
    max_msg_length: int
    streaming_available: bool
    matrix_mode_available: bool
    realtime_available: bool
    logo: str | None
    colors: dict[str, str] | None


class AssistantPage(BaseModel):
    count: int
    next: str | None
    previous: str | None
    results: list[AssistantOut]


class AssistantInfoPage(BaseModel):
    count: int
    next: str | None
    previous: str | None
    results: list[AssistantInfoOut]


class CommonQuestionOut(OutModel):
    id: int
    name: str
    content: str
    additional_metadata: dict[str, list[str]]


class FixedResponseOut(OutModel):
    id: int
    topic: str
    content: str
    name: str
    additional_metadata: dict[str, list[str]]


class LessonOut(OutModel):
    id: int
    name: str
    content: str
    context_of_application: str
    additional_metadata: dict[str, list[str]]


def dump(model: type[OutModel], obj: Any) -> dict[str, Any]:
    return model.model_validate(obj).model_dump(mode="json")


class ReferenceOut(BaseModel):
    reference_num: int
    source: str
    showed_num: int


class MessageOut(OutModel):
    """A message of a chat. `references` is a list of sources (the seed's "string" placeholder),
    `fixed` the name of the fixed response that answered verbatim, `status` complete, cancelled or
    failed."""

    id: int
    role: str
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
    status: str
    created_at: datetime
    updated_at: datetime
    # The moderation verdict of a user message (see docs/moderation-policy.md).
    is_flagged: bool = False
    severity: str = Field(default="none", description="none, low, medium, high or critical.")
    injection_categories: list[str] = Field(default_factory=list)
    pii_categories: list[str] = Field(default_factory=list)
    action_taken: str = Field(default="none", description="none, flagged, redacted or blocked.")


class ChatOut(BaseModel):
    """A chat. `messages` is the list of its messages in order (the seed's "string" placeholder);
    `error` says why the last generation failed when execution_status is FAILED."""

    id: int
    uuid: str = Field(description="The chat's UUID: its thread uuid on the threads face.")
    title: str
    assistant: int
    messages: list[MessageOut]
    max_responses: int
    max_msg_length: int
    comment: str | None
    like: bool | None
    created_at: datetime
    updated_at: datetime
    matrix_mode: bool
    execution_status: str
    error: str | None
    metadata: dict[str, Any]


class MessageFullOut(MessageOut):
    prompt: dict[str, Any] | None = Field(
        description="What the generator was sent for this answer (generator, temperature, "
        "messages), for operators."
    )


class ChatFullOut(ChatOut):
    """A chat with every reference its answers used, and the prompts sent."""

    messages: list[MessageFullOut]  # type: ignore[assignment]
    references: list[ReferenceOut]


class GeneratorAppOut(BaseModel):
    name: str
    kind: str
    model: str | None
    description: str
    default: bool


class CancelOut(BaseModel):
    chat: int
    generation_id: str | None = Field(description="The generation asked to stop, if any ran.")
    cancelled: bool = Field(description="False when nothing was running (nothing to stop).")


def chat_out(chat: Any, messages: list[Any], *, full: bool = False) -> dict[str, Any]:
    """The wire form of a chat, ready for JSON (one pass over its messages)."""
    message_model = MessageFullOut if full else MessageOut
    body: dict[str, Any] = {
        "id": chat.id,
        "uuid": chat.uuid,
        "title": chat.title,
        "assistant": chat.assistant_id,
        "messages": [message_model.model_validate(m).model_dump(mode="json") for m in messages],
        "max_responses": chat.max_responses,
        "max_msg_length": chat.max_msg_length,
        "comment": chat.comment,
        "like": chat.like,
        "created_at": chat.created_at.isoformat(),
        "updated_at": chat.updated_at.isoformat(),
        "matrix_mode": chat.matrix_mode,
        "execution_status": chat.execution_status,
        "error": chat.error,
        "metadata": chat.meta,
    }
    if full:
        body["references"] = [ref for m in messages for ref in (m.references or [])]
    return body
