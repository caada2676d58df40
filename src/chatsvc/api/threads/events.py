"""The `data:` of each Server-Sent Event of POST /api/chat/stream/, in this face's shapes (see
chatsvc.api.stream_events)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from chatsvc.api.stream_events import (
    EventData,
    StreamErrorBase,
    ToolResultBase,
    generation_events,
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


class ThreadToolResultEvent(ToolResultBase):
    """The tool answered or failed; the call and result are stored as a `tool` message."""

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
    *generation_events(
        ThreadMessageCreatedEvent,
        ThreadToolResultEvent,
        ThreadMessageCompletedEvent,
        ThreadStreamErrorEvent,
    ),
)
