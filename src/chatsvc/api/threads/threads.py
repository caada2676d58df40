"""Threads face: threads (chats) with filters, ordering and sparse fieldsets; archive."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from chatsvc.api.deps import AuthDep
from chatsvc.api.threads.params import (
    OrderingDep,
    ThreadFieldsDep,
    ThreadFiltersDep,
    ThreadUuid,
)
from chatsvc.api.threads.schemas import ThreadOut, ThreadSessionRequest, thread_out
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

router = SlashRouter(tags=["chat threads"], responses=ERROR_RESPONSES)
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such thread, or another user's."}
}


@router.get(
    "/api/chat-threads/",
    response_model=list[ThreadOut],
    summary="List Chat Threads",
    description="A plain array (total in X-Total-Count, next/prev pages in Link), newest "
    "activity first unless `o` says otherwise. Archived threads are hidden unless `is_archived` "
    "is given. Member keys see their own threads; admin keys the workspace's (filter with "
    "`user`).",
    responses={
        400: {
            "model": ErrorBody,
            "description": "A malformed or unknown filter value, ordering key or field (the "
            "detail names the parameter).",
        }
    },
)
async def chat_threads_list(
    request: Request,
    session: SessionDep,
    auth: AuthDep,
    filters: ThreadFiltersDep,
    ordering: OrderingDep,
    page: PageDep,
    fields: ThreadFieldsDep,
) -> JSONResponse:
    found = await thread_service.list_threads(session, auth, filters, ordering, page)
    response = JSONResponse([pick(thread_out(view), fields) for view in found.items])
    set_list_headers(request, response, found)
    return response


@router.get(
    "/api/chat-threads/{uuid}/",
    response_model=ThreadOut,
    summary="Retrieve chat thread",
    description="Archived threads too.",
    responses={
        **NOT_FOUND,
        400: {"model": ErrorBody, "description": "An unknown `field`."},
    },
)
async def chat_threads_retrieve(
    uuid: ThreadUuid, session: SessionDep, auth: AuthDep, fields: ThreadFieldsDep
) -> JSONResponse:
    view = await thread_service.get_thread(session, auth, str(uuid))
    return JSONResponse(pick(thread_out(view), fields))


@router.post(
    "/api/chat-threads/{uuid}/archive/",
    status_code=204,
    response_class=Response,
    summary="Archive thread",
    description="Archive a thread (soft delete): it leaves the lists (unless `is_archived=true`) "
    "and takes no new messages until it is unarchived; it stays readable. Idempotent. The body "
    "the seed shows is accepted and ignored.",
    responses=NOT_FOUND,
)
async def chat_threads_archive(
    uuid: ThreadUuid,
    session: SessionDep,
    auth: AuthDep,
    body: ThreadSessionRequest | None = None,
) -> Response:
    await thread_service.set_archived(session, auth, str(uuid), True)
    return Response(status_code=204)


@router.post(
    "/api/chat-threads/{uuid}/unarchive/",
    status_code=204,
    response_class=Response,
    summary="Unarchive thread",
    description="Restore an archived thread. Idempotent. The body the seed shows is accepted "
    "and ignored.",
    responses=NOT_FOUND,
)
async def chat_threads_unarchive(
    uuid: ThreadUuid,
    session: SessionDep,
    auth: AuthDep,
    body: ThreadSessionRequest | None = None,
) -> Response:
    await thread_service.set_archived(session, auth, str(uuid), False)
    return Response(status_code=204)
