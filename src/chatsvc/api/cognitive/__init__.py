"""The cognitive face (seed 003: docs/seeds/003_8cf8a34b8e0a5cb7.txt): integer ids, snake_case,
`{count, next, previous, results}`."""

from fastapi import APIRouter

from chatsvc.api.cognitive import (
    api_keys,
    assistants,
    chats,
    exports,
    jobs,
    knowledge,
    mcp,
    reports,
    secrets,
    tools,
    usage,
    webhooks,
)

router = APIRouter()
for _module in (
    assistants,
    knowledge,
    chats,
    reports,
    jobs,
    exports,
    tools,
    mcp,
    secrets,
    usage,
    webhooks,
    api_keys,
):
    router.include_router(_module.router)
