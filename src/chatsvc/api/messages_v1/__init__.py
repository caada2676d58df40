"""The messages-v1 face (seed 002: docs/seeds/002_7946cb815ed95795.txt): `/api/v1/chat-messages`,
camelCase JSON, UUID ids, the API key in the `authorization` header."""

from chatsvc.api.messages_v1.messages import router

__all__ = ["router"]
