"""Threads face: chat sessions (one per user, made on first use)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from chatsvc.api.deps import AuthDep
from chatsvc.api.threads.params import SessionFieldsDep, SessionUuid
from chatsvc.api.threads.schemas import ChatSessionOut, session_out
from chatsvc.kit.filtering import pick
from chatsvc.kit.web import (
    ERROR_RESPONSES,
    ErrorBody,
    PageDep,
    SlashRouter,
    set_list_headers,
)
from chatsvc.services import SessionDep
from chatsvc.threads import service as thread_service

router = SlashRouter(tags=["chat sessions"], responses=ERROR_RESPONSES)
BAD_QUERY: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "An unknown `field` (the detail names it)."}
}


@router.get(
    "/api/chat-sessions/current/",
    response_model=ChatSessionOut,
    summary="Get or create current user's chat session",
    description="Returns the current user's chat session, creating it if it doesn't exist "
    "(concurrent first calls get the same session).",
)
async def chat_sessions_current_retrieve(session: SessionDep, auth: AuthDep) -> dict[str, Any]:
    return session_out(await thread_service.current_session(session, auth))


@router.get(
    "/api/chat-sessions/",
    response_model=list[ChatSessionOut],
    summary="List Chat Sessions",
    description="A plain array (total in X-Total-Count, next/prev pages in Link). Member keys see "
    "their own session; admin keys every session of the workspace.",
    responses=BAD_QUERY,
)
async def chat_sessions_list(
    request: Request, session: SessionDep, auth: AuthDep, page: PageDep, fields: SessionFieldsDep
) -> JSONResponse:
    found = await thread_service.list_sessions(session, auth, page)
    response = JSONResponse([pick(session_out(view), fields) for view in found.items])
    set_list_headers(request, response, found)
    return response


@router.get(
    "/api/chat-sessions/{uuid}/",
    response_model=ChatSessionOut,
    summary="Retrieve chat session",
    responses={
        **BAD_QUERY,
        404: {"model": ErrorBody, "description": "No such session, or another user's."},
    },
)
async def chat_sessions_retrieve(
    uuid: SessionUuid, session: SessionDep, auth: AuthDep, fields: SessionFieldsDep
) -> JSONResponse:
    view = await thread_service.get_session(session, auth, str(uuid))
    return JSONResponse(pick(session_out(view), fields))
