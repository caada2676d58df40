"""Threads face: the messages of the caller's threads, with their moderation verdicts."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from chatsvc.api.deps import AuthDep
from chatsvc.api.threads.params import MessageFiltersDep
from chatsvc.api.threads.schemas import ChatMessageOut, message_out
from chatsvc.kit.web import (
    ERROR_RESPONSES,
    ErrorBody,
    PageDep,
    SlashRouter,
    set_list_headers,
)
from chatsvc.services import SessionDep
from chatsvc.threads import service as thread_service

router = SlashRouter(tags=["chat messages"], responses=ERROR_RESPONSES)


@router.get(
    "/api/chat-messages/",
    response_model=list[ChatMessageOut],
    summary="List Chat Messages",
    description="A plain array in thread order (total in X-Total-Count, next/prev pages in "
    "Link). Without `thread`, the messages of every thread the key sees that is not archived. "
    "Superseded messages (edited, reloaded) only with include_history=true.",
    responses={400: {"model": ErrorBody, "description": "A malformed filter value."}},
)
async def chat_messages_list(
    request: Request,
    session: SessionDep,
    auth: AuthDep,
    filters: MessageFiltersDep,
    page: PageDep,
) -> JSONResponse:
    found = await thread_service.list_messages(session, auth, filters, page)
    response = JSONResponse([message_out(view) for view in found.items])
    set_list_headers(request, response, found)
    return response
