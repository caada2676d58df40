"""Cognitive face: /assistants/ and /assistants/info/."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from chatsvc.api.cognitive.items import add_delete_route, add_get_route
from chatsvc.api.cognitive.params import AssistantId
from chatsvc.api.cognitive.schemas import (
    AssistantIn,
    AssistantInfoPage,
    AssistantOut,
    AssistantPage,
    AssistantPatch,
)
from chatsvc.api.deps import AdminDep, AuthDep
from chatsvc.assistants import service as assistant_service
from chatsvc.kit.updates import add_patch_route, update_values
from chatsvc.kit.web import (
    PageDep,
    SettingsDep,
    SlashRouter,
    envelope,
    error_responses,
    invalid_is_400,
)
from chatsvc.services import ReadSessionDep, SessionDep

router = SlashRouter(tags=["assistants"])
NOT_FOUND = error_responses({404: "No such assistant in this workspace."})


@router.get("/assistants/", response_model=AssistantPage, summary="List all assistants")
async def list_assistants(
    request: Request, session: ReadSessionDep, auth: AuthDep, page: PageDep
) -> dict[str, Any]:
    """The workspace's assistants, a page at a time (`page`, `page_size`), with `count`, `next` and
    `previous`."""
    # The page's envelope of whole assistants: the route's response model shows them (here
    # AssistantOut; AssistantInfoOut on /assistants/info/, which this endpoint serves too).
    result = await assistant_service.list_assistants(session, auth.workspace_id, page)
    return envelope(request, result, result.items)


@router.post(
    "/assistants/",
    response_model=AssistantOut,
    status_code=201,
    summary="Create a new assistant",
)
@invalid_is_400
async def create_assistant(
    body: AssistantIn, session: SessionDep, auth: AdminDep, settings: SettingsDep
) -> AssistantOut:
    """Creates an assistant in the caller's workspace (admin keys). Omitted fields take their
    defaults; an unknown generator or tool is 400."""
    assistant = await assistant_service.create_assistant(session, auth.workspace_id, body, settings)
    return AssistantOut.model_validate(assistant)


router.get(
    "/assistants/info/",
    response_model=AssistantInfoPage,
    name="list_assistants_info",
    summary="List all assistants with minimal information for chat-ui",
)(list_assistants)


add_get_route(
    router,
    "/assistants/{id}/",
    AssistantId,
    assistant_service.get_assistant,
    response_model=AssistantOut,
    name="get_assistant",
    summary="Retrieve a specific assistant configuration",
    responses=NOT_FOUND,
)


@router.put(
    "/assistants/{id}/",
    response_model=AssistantOut,
    summary="Update an assistant configuration",
    description="Replaces the configuration: fields left out take their defaults.",
    responses=NOT_FOUND,
)
async def update_assistant(
    id: AssistantId,
    body: AssistantIn,
    session: SessionDep,
    auth: AdminDep,
    settings: SettingsDep,
) -> AssistantOut:
    """Changes an assistant's configuration (admin keys): PUT replaces it (omitted fields take their
    defaults), PATCH changes only the fields sent."""
    assistant = await assistant_service.update_assistant(
        session, auth.workspace_id, id, update_values(body), settings
    )
    return AssistantOut.model_validate(assistant)


partial_update_assistant = add_patch_route(
    router,
    update_assistant,
    AssistantPatch,
    summary="Partially update an assistant configuration",
    description="Changes only the fields sent (admin keys); the others keep their values.",
)


add_delete_route(
    router,
    "/assistants/{id}/",
    AssistantId,
    assistant_service.delete_assistant,
    name="delete_assistant",
    summary="Delete an assistant",
    description="The assistant and its knowledge leave the API; chats made with it stay readable.",
    responses=NOT_FOUND,
)
