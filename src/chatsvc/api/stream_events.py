"""The `data:` of each Server-Sent Event the streaming operations send, as models for the OpenAPI
document (components referenced from each stream's `x-sse-events`). The events themselves are
published as dicts by the generation (chatsvc.generation) and translated by each face; these
models describe them, and tests/api/test_openapi.py checks real streams against them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chatsvc.chats.models import Role
from chatsvc.chats.schemas import ChatOut, ChatStateOut, MessageOut, ReferenceOut
from chatsvc.kit.openapi import SseEvent
from chatsvc.streaming import events


class EventData(BaseModel):
    """An event's data: every field is always sent."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


# --- both faces ---------------------------------------------------------------------------------


class DeltaEvent(EventData):
    """A piece of the answer's text, as the model streamed it (concatenate them)."""

    text: str


class ReferencesEvent(EventData):
    """Sources the answer uses, retrieved before the text or by a tool."""

    references: list[ReferenceOut]


class ToolCallEvent(EventData):
    """The model called a tool."""

    tool_call_id: str = Field(description="The call's id, repeated by its `tool.result`.")
    tool_id: int | None = Field(description="The tool called; null when no tool has that name.")
    tool_name: str | None = Field(description="The tool's title; null when unknown.")
    function_name: str = Field(description="The function name the model called.")
    arguments: dict[str, Any] = Field(description="The arguments the model passed.")


class ToolResultBase(EventData):
    tool_call_id: str
    is_error: bool
    content: str = Field(description="What the tool returned (what the model sees).")


class StreamErrorBase(EventData):
    code: str = Field(description="A stable machine-readable code, as in error bodies.")
    detail: str = Field(description="What went wrong.")
    status: int = Field(description="The HTTP status an error response would have had.")


# --- cognitive face (/chats_stream/) ------------------------------------------------------------


class MessageCreatedEvent(EventData):
    """The answer starts (the first event of a generation)."""

    chat_id: int
    generation_id: str = Field(description="The generation streaming the answer.")
    role: Role
    usr_msg_num: int | None = Field(description="The user message being answered.")


class ToolResultEvent(ToolResultBase):
    """The tool answered or failed; the call and result are stored as a `tool` message."""

    message: MessageOut = Field(description="The stored `tool` message.")


class MessageCompletedEvent(EventData):
    """The answer is stored (the last event); after a cancel its status is `cancelled`."""

    message: MessageOut
    chat: ChatStateOut


class StreamErrorEvent(StreamErrorBase):
    """The generation failed (the last event); the chat's execution_status is FAILED."""

    chat_id: int


def generation_events(
    created: type[BaseModel],
    tool_result: type[BaseModel],
    completed: type[BaseModel],
    error: type[BaseModel],
) -> tuple[SseEvent, ...]:
    """The events of one generation, in a face's shapes for those that carry its resources."""
    return (
        SseEvent(events.MESSAGE_CREATED, created, "the answer starts."),
        SseEvent(events.REFERENCES, ReferencesEvent, "sources were retrieved."),
        SseEvent(events.DELTA, DeltaEvent, "a piece of the answer."),
        SseEvent(events.TOOL_CALL, ToolCallEvent, "the model called a tool."),
        SseEvent(events.TOOL_RESULT, tool_result, "the tool answered or failed."),
        SseEvent(events.MESSAGE_COMPLETED, completed, "the answer is stored (last)."),
        SseEvent(events.ERROR, error, "the generation failed (last)."),
    )


CHAT_EVENTS = (
    *generation_events(
        MessageCreatedEvent, ToolResultEvent, MessageCompletedEvent, StreamErrorEvent
    ),
    SseEvent(
        events.CHAT,
        ChatOut,
        "nothing to stream: the chat as it is, with id `0` (the only event).",
    ),
)
