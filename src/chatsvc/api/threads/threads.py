"""Threads face: threads (chats) with filters, ordering and sparse fieldsets; archive."""

from __future__ import annotations

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from chatsvc.api.deps import AuthDep
from chatsvc.api.threads.params import OrderingDep, ThreadFieldsDep, ThreadFiltersDep, ThreadUuid
from chatsvc.api.threads.schemas import ThreadOut, ThreadSessionRequest
from chatsvc.kit.web import PageDep, SlashRouter, error_responses, sparse
from chatsvc.services import ReadSessionDep, SessionDep
from chatsvc.threads import service as thread_service

router = SlashRouter(tags=["chat threads"])
NOT_FOUND = error_responses({404: "No such thread, or another user's."})


@router.get(
    "/api/chat-threads/",
    response_model=list[sparse(ThreadOut)],  # type: ignore[misc]
    summary="List Chat Threads",
    description="A plain array (total in X-Total-Count, next/prev pages in Link), newest "
    "activity first unless `o` says otherwise. Archived threads are hidden unless `is_archived` "
    "is given. Member keys see their own threads; admin keys the workspace's (filter with "
    "`user`).",
    responses=error_responses(
        {
            400: "A malformed or unknown filter value, ordering key or field (the detail names "
            "the parameter)."
        }
    ),
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
    return fields.page(request, found, ThreadOut.of)


@router.get(
    "/api/chat-threads/{uuid}/",
    response_model=sparse(ThreadOut),
    summary="Retrieve chat thread",
    description="Archived threads too.",
    responses={**NOT_FOUND, **error_responses({400: "An unknown `field`."})},
)
async def chat_threads_retrieve(
    uuid: ThreadUuid, session: ReadSessionDep, auth: AuthDep, fields: ThreadFieldsDep
) -> JSONResponse:
    view = await thread_service.get_thread(session, auth, str(uuid))
    return fields.one(ThreadOut.of(view))


def _archive_route(action: str, archived: bool, summary: str, description: str) -> None:
    """POST /api/chat-threads/{uuid}/<action>/: one endpoint that sets `is_archived`."""

    async def endpoint(
        uuid: ThreadUuid,
        session: SessionDep,
        auth: AuthDep,
        body: ThreadSessionRequest | None = None,
    ) -> Response:
        await thread_service.set_archived(session, auth, str(uuid), archived)
        return Response(status_code=204)

    router.add_api_route(
        f"/api/chat-threads/{{uuid}}/{action}/",
        endpoint,
        methods=["POST"],
        status_code=204,
        response_class=Response,
        name=f"chat_threads_{action}",
        summary=summary,
        description=f"{description} The body the seed shows is accepted and ignored.",
        responses=NOT_FOUND,
    )


_archive_route(
    "archive",
    True,
    "Archive thread",
    "Archive a thread (soft delete): it leaves the lists (unless `is_archived=true`) and takes "
    "no new messages until it is unarchived; it stays readable. Idempotent.",
)
_archive_route("unarchive", False, "Unarchive thread", "Restore an archived thread. Idempotent.")
