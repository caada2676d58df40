"""The SSE event vocabulary, shared by every face: names, payload shapes, and the id that lets a
client resume (`<generation id>:<broker entry id>`)."""

from __future__ import annotations

from typing import Any

from chatsvc.chats.models import Chat, Message

MESSAGE_CREATED = "message.created"
DELTA = "delta"
REFERENCES = "references"
MESSAGE_COMPLETED = "message.completed"
ERROR = "error"
CHAT = "chat"
TERMINAL = frozenset({MESSAGE_COMPLETED, ERROR})


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
        "created_at": message.created_at.isoformat(),
        "updated_at": message.updated_at.isoformat(),
    }


def chat_payload(chat: Chat) -> dict[str, Any]:
    return {
        "id": chat.id,
        "title": chat.title,
        "assistant": chat.assistant_id,
        "execution_status": chat.execution_status,
        "error": chat.error,
    }
