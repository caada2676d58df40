"""The `data:` of each Server-Sent Event of POST /api/chat/stream/, in this face's shapes (see
chatsvc.api.stream_events)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from chatsvc.api.stream_events import (
    DeltaEvent,
    EventData,
    ReferencesEvent,
    StreamErrorBase,
    ToolCallEvent,
)
from chatsvc.api.threads.schemas import ThreadMessageOut, ThreadOut
from chatsvc.chats.models import Role
from chatsvc.kit.openapi import SseEvent
from chatsvc.streaming import events


class TurnEvent(EventData):
    """The turn is accepted (the first event): the thread and the stored user message."""

    mode: Literal["message", "reload", "edit"]
    thread: ThreadOut
    user_message: ThreadMessageOut = Field(
        description="The stored user message with its moderation verdict (for a reload, the "
        "message answered again)."
    )


class ThreadMessageCreatedEvent(EventData):
    """The answer starts."""

    thread: str = Field(description="The thread's uuid.")
    generation_id: str = Field(description="The generation streaming the answer.")
    role: Role


class ThreadToolResultEvent(EventData):
    """The tool answered or failed; the call and result are stored as a `tool` message."""

    tool_call_id: str
    is_error: bool
    content: str = Field(description="What the tool returned (what the model sees).")
    message: ThreadMessageOut = Field(description="The stored `tool` message.")


class ThreadMessageCompletedEvent(EventData):
    """The answer is stored (the last event)."""

    message: ThreadMessageOut
    thread: ThreadOut


class ThreadStreamErrorEvent(StreamErrorBase):
    """The generation failed (the last event)."""

    thread: str = Field(description="The thread's uuid.")


THREAD_EVENTS = (
    SseEvent(events.TURN, TurnEvent, "the turn is accepted (first)."),
    SseEvent(events.MESSAGE_CREATED, ThreadMessageCreatedEvent, "the answer starts."),
    SseEvent(events.REFERENCES, ReferencesEvent, "sources were retrieved."),
    SseEvent(events.DELTA, DeltaEvent, "a piece of the answer."),
    SseEvent(events.TOOL_CALL, ToolCallEvent, "the model called a tool."),
    SseEvent(events.TOOL_RESULT, ThreadToolResultEvent, "the tool answered or failed."),
    SseEvent(events.MESSAGE_COMPLETED, ThreadMessageCompletedEvent, "the answer is stored (last)."),
    SseEvent(events.ERROR, ThreadStreamErrorEvent, "the generation failed (last)."),
)
