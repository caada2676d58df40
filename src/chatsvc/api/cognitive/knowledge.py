"""Cognitive face: an assistant's common questions, fixed responses and lessons. One route factory
serves the three kinds; the seed's differences (statuses, trailing slashes) are its parameters."""

# No `from __future__ import annotations`: the factory's endpoints annotate with local classes,
# which FastAPI must see as objects, not strings.

from dataclasses import dataclass
from typing import Annotated

from fastapi import Request, Response

from chatsvc.api.cognitive.params import AssistantId, path_id
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
from chatsvc.kit.web import (
    PageDep,
    RouteSpec,
    SettingsDep,
    SlashRouter,
    error_responses,
    invalid_is_400,
    page_items,
)
from chatsvc.knowledge import service as knowledge_service
from chatsvc.knowledge.models import CommonQuestion, FixedResponse, KnowledgeItem, Lesson
from chatsvc.knowledge.schemas import KnowledgeIn
from chatsvc.services import SessionDep

router = SlashRouter(tags=["knowledge"])


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
    item_id = Annotated[int, path_id(alias=kind.item_param)]
    body_type = kind.body
    out = kind.out

    async def list_items(
        request: Request,
        response: Response,
        assistant: AssistantId,
        session: SessionDep,
        auth: AuthDep,
        page: PageDep,
    ) -> list[OutModel]:
        """A plain array; the total is in X-Total-Count, next/prev pages in Link."""
        found = await knowledge_service.list_items(
            session, auth.workspace_id, assistant, kind.model, page
        )
        return page_items(request, response, found, out.model_validate)

    @invalid_is_400
    async def create_item(
        assistant: AssistantId,
        body: body_type,  # type: ignore[valid-type]
        session: SessionDep,
        auth: AdminDep,
        settings: SettingsDep,
    ) -> OutModel:
        """Adds the item to the assistant's knowledge (admin keys); an invalid body is 400."""
        row = await knowledge_service.create_item(
            session, auth.workspace_id, assistant, body, settings
        )
        return out.model_validate(row)

    @invalid_is_400
    async def update_item(
        assistant: AssistantId,
        item: item_id,
        body: body_type,  # type: ignore[valid-type]
        session: SessionDep,
        auth: AdminDep,
        settings: SettingsDep,
    ) -> OutModel:
        """Replaces the item (admin keys); an invalid body is 400."""
        row = await knowledge_service.update_item(
            session, auth.workspace_id, assistant, item, body, settings
        )
        return out.model_validate(row)

    async def delete_item(
        assistant: AssistantId, item: item_id, session: SessionDep, auth: AdminDep
    ) -> DeletedOut:
        """Deletes the item (admin keys); the answer names the deleted id."""
        await knowledge_service.delete_item(session, auth.workspace_id, assistant, kind.model, item)
        return DeletedOut(id=item, deleted=True)

    not_found = error_responses({404: f"Assistant or {kind.title} not found."})
    one, title = kind.singular, kind.title
    router.add_routes((
        RouteSpec("GET", base, list_items, list[out], 200, f"list_{kind.plural}",  # type: ignore[valid-type]
                  f"List the {title}s of an assistant", not_found),
        RouteSpec("POST", base, create_item, out, 201, f"create_{one}", f"Create a {title}",
                  not_found),
        RouteSpec("PUT", item, update_item, out, kind.put_status, f"update_{one}",
                  f"Update a {title}", not_found),
        RouteSpec("DELETE", item, delete_item, DeletedOut, 200, f"delete_{one}",
                  f"Delete a {title}", not_found),
    ))  # fmt: skip


class DeletedOut(OutModel):
    """The knowledge item deleted."""

    id: int
    deleted: bool


for _kind in KINDS:
    _register(_kind)
