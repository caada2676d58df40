"""The SSE event vocabulary, shared by every face: names, payload shapes, and the id that lets a
client resume (`<generation id>:<broker entry id>`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chatsvc.chats.models import Chat, Message

MESSAGE_CREATED = "message.created"
DELTA = "delta"
REFERENCES = "references"
#: the model called a tool: {tool_call_id, tool_id, tool_name, function_name, arguments}
TOOL_CALL = "tool.call"
#: the tool answered (or failed): {tool_call_id, is_error, content, message}
TOOL_RESULT = "tool.result"
MESSAGE_COMPLETED = "message.completed"
ERROR = "error"
CHAT = "chat"
TERMINAL = frozenset({MESSAGE_COMPLETED, ERROR})
#: the moderation verdict every message object shows (see docs/moderation-policy.md)
MODERATION_FIELDS = (
    "is_flagged",
    "severity",
    "injection_categories",
    "pii_categories",
    "action_taken",
)


def stream_key(generation_id: str) -> str:
    return f"gen:{generation_id}"


def event_id(generation_id: str, entry_id: str) -> str:
    return f"{generation_id}:{entry_id}"


def parse_event_id(value: str) -> tuple[str, str]:
    """(generation id, broker entry id) from a Last-Event-ID; ValueError when malformed."""
    generation_id, sep, entry_id = value.strip().rpartition(":")
    if not sep or len(generation_id) != 36 or not entry_id:
        raise ValueError(
            f"Last-Event-ID {value[:80]!r} is not an event id of this service "
            "(<generation id>:<entry id>)"
        )
    return generation_id, entry_id


def message_payload(message: Message) -> dict[str, Any]:
    """The stored message, with the fields of the message object of the REST faces."""
    return {
        "id": message.id,
        "role": message.role,
        "content": message.content,
        "msg_num": message.msg_num,
        "usr_msg_num": message.usr_msg_num,
        "fixed": message.fixed,
        "metadata": message.meta,
        "references": message.references,
        "tool_call_id": message.tool_call_id,
        "function_name": message.function_name,
        "parameters": message.parameters,
        "like": message.like,
        "visible": message.visible,
        "status": message.status,
        "created_at": _instant(message.created_at),
        "updated_at": _instant(message.updated_at),
        **{name: getattr(message, name) for name in MODERATION_FIELDS},
    }


def chat_payload(chat: Chat) -> dict[str, Any]:
    return {
        "id": chat.id,
        "title": chat.title,
        "assistant": chat.assistant_id,
        "execution_status": chat.execution_status,
        "error": chat.error,
    }


def _instant(value: datetime) -> str:
    """UTC as the REST faces write it (pydantic's JSON): `...Z`."""
    return value.isoformat().replace("+00:00", "Z")
