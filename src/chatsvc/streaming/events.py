"""The SSE event vocabulary, shared by every face: names, payload shapes, and the id that lets a
client resume (`<generation id>:<broker entry id>`)."""

from __future__ import annotations

from typing import Any

from chatsvc.kit.errors import ChatsvcError, from_kind

MESSAGE_CREATED = "message.created"
DELTA = "delta"
REFERENCES = "references"
#: the model called a tool: {tool_call_id, tool_id, tool_name, function_name, arguments}
TOOL_CALL = "tool.call"
#: the tool answered (or failed): {tool_call_id, is_error, content, message}
TOOL_RESULT = "tool.result"
MESSAGE_COMPLETED = "message.completed"
ERROR = "error"
#: a chat shown whole where there is nothing to stream (cognitive face)
CHAT = "chat"
#: the first event of a threads-face turn: {mode, thread, user_message}
TURN = "turn"
TERMINAL = frozenset({MESSAGE_COMPLETED, ERROR})


def stream_key(generation_id: str) -> str:
    return f"gen:{generation_id}"


#: the id of the one `chat` event a stream sends when nothing runs (the chat as it is): a client
#: that reconnects with it has seen the chat; it gets what has started since, or 204
SNAPSHOT_EVENT_ID = "0"


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


def error_payload(error: ChatsvcError, chat_id: int) -> dict[str, Any]:
    """An `error` event's data: what failed (`kind` names the error class; each face shows it
    in its own terms, e.g. an HTTP status), in words and as a stable code."""
    return {"code": error.code, "detail": error.message, "kind": error.kind, "chat_id": chat_id}


def error_of(data: dict[str, Any]) -> ChatsvcError:
    """The error an `error` event reports, to raise again where a request waited for it; it
    names the chat the failed turn is stored in."""
    chat_id = data.get("chat_id")
    return from_kind(
        str(data.get("kind", "error")),
        str(data.get("detail", "The generation failed.")),
        str(data.get("code", "error")),
        chat_id=chat_id if isinstance(chat_id, int) else None,
    )
