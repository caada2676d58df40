"""Threads face: chat sessions (one per user, made on first use)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from chatsvc.api.deps import AuthDep
from chatsvc.api.threads.params import SessionFieldsDep, SessionUuid
from chatsvc.api.threads.schemas import ChatSessionOut
from chatsvc.kit.web import PageDep, SlashRouter, error_responses, sparse
from chatsvc.services import ReadSessionDep, SessionDep
from chatsvc.threads import service as thread_service

router = SlashRouter(tags=["chat sessions"])
BAD_QUERY = error_responses({400: "An unknown `field` (the detail names it)."})


@router.get(
    "/api/chat-sessions/current/",
    response_model=ChatSessionOut,
    summary="Get or create current user's chat session",
    description="Returns the current user's chat session, creating it if it doesn't exist "
    "(concurrent first calls get the same session).",
)
async def chat_sessions_current_retrieve(session: SessionDep, auth: AuthDep) -> ChatSessionOut:
    return ChatSessionOut.of(await thread_service.current_session(session, auth))


@router.get(
    "/api/chat-sessions/",
    response_model=list[sparse(ChatSessionOut)],  # type: ignore[misc]
    summary="List Chat Sessions",
    description="A plain array (total in X-Total-Count, next/prev pages in Link). Member keys see "
    "their own session; admin keys every session of the workspace.",
    responses=BAD_QUERY,
)
async def chat_sessions_list(
    request: Request,
    session: ReadSessionDep,
    auth: AuthDep,
    page: PageDep,
    fields: SessionFieldsDep,
) -> JSONResponse:
    found = await thread_service.list_sessions(session, auth, page)
    return fields.page(request, found, ChatSessionOut.of)


@router.get(
    "/api/chat-sessions/{uuid}/",
    response_model=sparse(ChatSessionOut),
    summary="Retrieve chat session",
    responses={**BAD_QUERY, **error_responses({404: "No such session, or another user's."})},
)
async def chat_sessions_retrieve(
    uuid: SessionUuid, session: ReadSessionDep, auth: AuthDep, fields: SessionFieldsDep
) -> JSONResponse:
    """The caller's session with this uuid (`field` picks the fields sent)."""
    view = await thread_service.get_session(session, auth, str(uuid))
    return fields.one(ChatSessionOut.of(view))
