"""The threads face (seed 001: docs/seeds/001_06bdf6c13c7feae5.txt): `/api/chat-…`, UUIDs,
snake_case, plain-array lists with `field` sparse fieldsets and `o` ordering."""

from fastapi import APIRouter

from chatsvc.api.threads import messages, sessions, settings, stream, threads

router = APIRouter()
for _module in (messages, sessions, threads, stream, settings):
    router.include_router(_module.router)
