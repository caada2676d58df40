"""The messages-v1 face (seed 002): `/api/v1/chat-messages`, camelCase JSON, UUID ids, the API
key in the `authorization` header."""

from chatsvc.api.messages_v1.messages import router

__all__ = ["router"]
