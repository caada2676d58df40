"""Threads face: the messages of the caller's threads, with their moderation verdicts."""

from __future__ import annotations

from fastapi import Request, Response

from chatsvc.api.deps import AuthDep
from chatsvc.api.threads.params import MessageFiltersDep
from chatsvc.api.threads.schemas import ThreadMessageOut
from chatsvc.kit.web import PageDep, SlashRouter, error_responses, page_items
from chatsvc.services import ReadSessionDep
from chatsvc.threads import service as thread_service

router = SlashRouter(tags=["chat messages"])


@router.get(
    "/api/chat-messages/",
    response_model=list[ThreadMessageOut],
    summary="List Chat Messages",
    description="A plain array in thread order (total in X-Total-Count, next/prev pages in "
    "Link). Without `thread`, the messages of every thread the key sees that is not archived. "
    "Superseded messages (edited, reloaded) only with include_history=true.",
    responses=error_responses({400: "A malformed filter value."}),
)
async def chat_messages_list(
    request: Request,
    response: Response,
    session: ReadSessionDep,
    auth: AuthDep,
    filters: MessageFiltersDep,
    page: PageDep,
) -> list[ThreadMessageOut]:
    found = await thread_service.list_messages(session, auth, filters, page)
    return page_items(request, response, found, ThreadMessageOut.of)
