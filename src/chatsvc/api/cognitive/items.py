"""The two routes of the cognitive face that every resource declares alike: reading one item by
its id in the caller's workspace (any key), and deleting one (admin keys, 204). A resource names
its path, id parameter and service call; the endpoint is made here."""

# No `from __future__ import annotations`: the endpoints annotate with the id type they are
# given, which FastAPI must see as an object, not a string.

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Response
from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.api.deps import AdminDep, AuthDep
from chatsvc.kit.web import Responses, SlashRouter
from chatsvc.services import ReadSessionDep, SessionDep

T = TypeVar("T")

#: a service call on one item: (session, workspace id, item id)
ItemCall = Callable[[AsyncSession, int, int], Awaitable[T]]


def add_get_route(
    router: SlashRouter,
    path: str,
    item_id: Any,
    read: ItemCall[T],
    *,
    response_model: Any,
    out: Callable[[T], Any] | None = None,
    name: str,
    summary: str,
    responses: Responses,
) -> None:
    """GET `path`: the item `read` finds by its path parameter `id` (typed `item_id`), shown as
    `out` makes it (by default: validated as the response model)."""
    show = out or response_model.model_validate

    async def endpoint(id: item_id, session: ReadSessionDep, auth: AuthDep) -> Any:
        """One item of the caller's workspace by its id (404 when missing or in another
        workspace)."""
        return show(await read(session, auth.workspace_id, id))

    router.add_api_route(
        path,
        endpoint,
        methods=["GET"],
        response_model=response_model,
        name=name,
        summary=summary,
        responses=responses,
    )


def add_delete_route(
    router: SlashRouter,
    path: str,
    item_id: Any,
    delete: ItemCall[object],
    *,
    name: str,
    summary: str,
    description: str,
    responses: Responses,
) -> None:
    """DELETE `path` (admin keys): `delete` removes the item of the path parameter `id` (typed
    `item_id`); the answer is an empty 204."""

    async def endpoint(id: item_id, session: SessionDep, auth: AdminDep) -> Response:
        await delete(session, auth.workspace_id, id)
        return Response(status_code=204)

    router.add_api_route(
        path,
        endpoint,
        methods=["DELETE"],
        status_code=204,
        name=name,
        summary=summary,
        description=description,
        responses=responses,
    )
