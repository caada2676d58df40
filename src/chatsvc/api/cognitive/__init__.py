"""The cognitive face (seed 003: docs/seeds/003_8cf8a34b8e0a5cb7.txt): integer ids, snake_case,
`{count, next, previous, results}`."""

from fastapi import APIRouter

from chatsvc.api.cognitive import (
    assistants,
    chats,
    exports,
    jobs,
    knowledge,
    mcp,
    reports,
    secrets,
    tools,
)

router = APIRouter()
router.include_router(assistants.router)
router.include_router(knowledge.router)
router.include_router(chats.router)
router.include_router(reports.router)
router.include_router(jobs.router)
router.include_router(exports.router)
router.include_router(tools.router)
router.include_router(mcp.router)
router.include_router(secrets.router)
