"""Cognitive face: an assistant's common questions, fixed responses and lessons. One route factory
serves the three kinds; the seed's differences (statuses, trailing slashes) are its parameters."""

# No `from __future__ import annotations`: the factory's endpoints annotate with local classes,
# which FastAPI must see as objects, not strings.

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Path, Request, Response

from chatsvc.api.cognitive.params import AssistantId
from chatsvc.api.cognitive.schemas import (
    CommonQuestionIn,
    CommonQuestionOut,
    FixedResponseIn,
    FixedResponseOut,
    LessonIn,
    LessonOut,
    OutModel,
)
from chatsvc.api.deps import AdminDep, AuthDep
from chatsvc.kit.validation import MAX_ID
from chatsvc.kit.web import (
    ERROR_RESPONSES,
    ErrorBody,
    PageDep,
    SettingsDep,
    SlashRouter,
    invalid_is_400,
    set_list_headers,
)
from chatsvc.knowledge import service as knowledge_service
from chatsvc.knowledge.models import CommonQuestion, FixedResponse, KnowledgeItem, Lesson
from chatsvc.knowledge.schemas import KnowledgeIn
from chatsvc.services import SessionDep

router = SlashRouter(tags=["knowledge"], responses=ERROR_RESPONSES)


@dataclass(frozen=True)
class Kind:
    segment: str  # path segment under /assistants/{assistant}/
    item_param: str  # name of the item's path parameter
    singular: str  # for operation ids: list_<plural>, create_<singular>, ...
    plural: str
    title: str
    model: type[KnowledgeItem]
    body: type[KnowledgeIn]
    out: type[OutModel]
    put_status: int
    item_slash: bool


KINDS = (
    Kind("common_questions", "question", "common_question", "common_questions",
         "common question", CommonQuestion, CommonQuestionIn, CommonQuestionOut, 200, True),
    Kind("fixed_questions", "question", "fixed_response", "fixed_responses",
         "fixed response", FixedResponse, FixedResponseIn, FixedResponseOut, 201, True),
    Kind("lessons", "lesson", "lesson", "lessons",
         "lesson", Lesson, LessonIn, LessonOut, 200, False),
)  # fmt: skip


def _register(kind: Kind) -> None:
    base = f"/assistants/{{assistant}}/{kind.segment}/"
    item = f"{base}{{{kind.item_param}}}" + ("/" if kind.item_slash else "")
    not_found: dict[int | str, dict[str, Any]] = {
        404: {"model": ErrorBody, "description": f"Assistant or {kind.title} not found."}
    }
    item_id = Annotated[int, Path(ge=1, le=MAX_ID, alias=kind.item_param)]
    body_type = kind.body
    out = kind.out

    async def list_items(
        request: Request,
        response: Response,
        assistant: AssistantId,
        session: SessionDep,
        auth: AuthDep,
        page: PageDep,
    ) -> Any:
        result = await knowledge_service.list_items(
            session, auth.workspace_id, assistant, kind.model, page
        )
        set_list_headers(request, response, result)
        return result.items

    @invalid_is_400
    async def create_item(
        assistant: AssistantId,
        body: body_type,  # type: ignore[valid-type]
        session: SessionDep,
        auth: AdminDep,
        settings: SettingsDep,
    ) -> Any:
        return await knowledge_service.create_item(
            session, auth.workspace_id, assistant, body, settings
        )

    @invalid_is_400
    async def update_item(
        assistant: AssistantId,
        item: item_id,
        body: body_type,  # type: ignore[valid-type]
        session: SessionDep,
        auth: AdminDep,
        settings: SettingsDep,
    ) -> Any:
        return await knowledge_service.update_item(
            session, auth.workspace_id, assistant, item, body, settings
        )

    async def delete_item(
        assistant: AssistantId,
        item: item_id,
        session: SessionDep,
        auth: AdminDep,
    ) -> dict[str, Any]:
        await knowledge_service.delete_item(session, auth.workspace_id, assistant, kind.model, item)
        return {"id": item, "deleted": True}

    router.add_api_route(
        base,
        list_items,
        methods=["GET"],
        response_model=list[out],  # type: ignore[valid-type]
        name=f"list_{kind.plural}",
        summary=f"List the {kind.title}s of an assistant",
        description="A plain array; the total is in X-Total-Count, next/prev pages in Link.",
        responses=not_found,
    )
    router.add_api_route(
        base,
        create_item,
        methods=["POST"],
        response_model=out,
        status_code=201,
        name=f"create_{kind.singular}",
        summary=f"Create a {kind.title}",
        responses=not_found,
    )
    router.add_api_route(
        item,
        update_item,
        methods=["PUT"],
        response_model=out,
        status_code=kind.put_status,
        name=f"update_{kind.singular}",
        summary=f"Update a {kind.title}",
        responses=not_found,
    )
    router.add_api_route(
        item,
        delete_item,
        methods=["DELETE"],
        response_model=DeletedOut,
        name=f"delete_{kind.singular}",
        summary=f"Delete a {kind.title}",
        responses=not_found,
    )


class DeletedOut(OutModel):
    id: int
    deleted: bool


for _kind in KINDS:
    _register(_kind)
