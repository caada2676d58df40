"""Cognitive face: /assistants/ and /assistants/info/."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

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
from chatsvc.kit.web import (
    ERROR_RESPONSES,
    ErrorBody,
    PageDep,
    SettingsDep,
    SlashRouter,
    envelope,
    invalid_is_400,
)
from chatsvc.services import SessionDep

router = SlashRouter(tags=["assistants"], responses=ERROR_RESPONSES)
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such assistant in this workspace."}
}


@router.get("/assistants/", response_model=AssistantPage, summary="List all assistants")
async def list_assistants(
    request: Request, session: SessionDep, auth: AuthDep, page: PageDep
) -> dict[str, Any]:
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
) -> Any:
    return await assistant_service.create_assistant(session, auth.workspace_id, body, settings)


@router.get(
    "/assistants/info/",
    response_model=AssistantInfoPage,
    summary="List all assistants with minimal information for chat-ui",
)
async def list_assistants_info(
    request: Request, session: SessionDep, auth: AuthDep, page: PageDep
) -> dict[str, Any]:
    result = await assistant_service.list_assistants(session, auth.workspace_id, page)
    return envelope(request, result, result.items)


@router.get(
    "/assistants/{id}/",
    response_model=AssistantOut,
    summary="Retrieve a specific assistant configuration",
    responses=NOT_FOUND,
)
async def get_assistant(id: AssistantId, session: SessionDep, auth: AuthDep) -> Any:
    return await assistant_service.get_assistant(session, auth.workspace_id, id)


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
) -> Any:
    return await assistant_service.update_assistant(
        session, auth.workspace_id, id, body.model_dump(), settings
    )


@router.patch(
    "/assistants/{id}/",
    response_model=AssistantOut,
    summary="Partially update an assistant configuration",
    responses=NOT_FOUND,
)
async def partial_update_assistant(
    id: AssistantId,
    body: AssistantPatch,
    session: SessionDep,
    auth: AdminDep,
    settings: SettingsDep,
) -> Any:
    return await assistant_service.update_assistant(
        session, auth.workspace_id, id, body.changes(), settings
    )


@router.delete(
    "/assistants/{id}/",
    status_code=204,
    summary="Delete an assistant",
    description="The assistant and its knowledge leave the API; chats made with it stay readable.",
    responses=NOT_FOUND,
)
async def delete_assistant(id: AssistantId, session: SessionDep, auth: AdminDep) -> Response:
    await assistant_service.delete_assistant(session, auth.workspace_id, id)
    return Response(status_code=204)
