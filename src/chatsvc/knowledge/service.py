"""Knowledge rules, one implementation for the three kinds: items live under a live assistant of
the caller's workspace, and content is capped by settings."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.assistants import service as assistant_service
from chatsvc.config import Settings
from chatsvc.kit.db import utcnow
from chatsvc.kit.errors import FieldError, Invalid, or_not_found
from chatsvc.kit.pagination import Page, PageParams
from chatsvc.kit.repository import RepositoryBase
from chatsvc.knowledge.models import CommonQuestion, FixedResponse, KnowledgeItem, Lesson
from chatsvc.knowledge.repository import KnowledgeRepository
from chatsvc.knowledge.schemas import CommonQuestionIn, FixedResponseIn, KnowledgeIn, LessonIn

K = TypeVar("K", bound=KnowledgeItem)

MODELS: dict[type[KnowledgeIn], type[KnowledgeItem]] = {
    CommonQuestionIn: CommonQuestion,
    FixedResponseIn: FixedResponse,
    LessonIn: Lesson,
}
LABELS: dict[type[KnowledgeItem], str] = {
    CommonQuestion: "Common question",
    FixedResponse: "Fixed response",
    Lesson: "Lesson",
}


async def list_items(
    session: AsyncSession,
    workspace_id: int,
    assistant_id: int,
    model: type[K],
    params: PageParams,
) -> Page[K]:
    await assistant_service.ensure_assistant(session, workspace_id, assistant_id)
    return await KnowledgeRepository(session, model).page(assistant_id, params)


async def get_item(
    session: AsyncSession, workspace_id: int, assistant_id: int, model: type[K], item_id: int
) -> K:
    await assistant_service.ensure_assistant(session, workspace_id, assistant_id)
    item = await KnowledgeRepository(session, model).get(assistant_id, item_id)
    return or_not_found(item, f"{LABELS[model]} {item_id} not found for assistant {assistant_id}.")


async def create_item(
    session: AsyncSession,
    workspace_id: int,
    assistant_id: int,
    data: KnowledgeIn,
    settings: Settings,
) -> KnowledgeItem:
    await assistant_service.ensure_assistant(session, workspace_id, assistant_id)
    _check_length(data, settings)
    item = MODELS[type(data)](assistant_id=assistant_id, **data.model_dump())
    return await RepositoryBase[KnowledgeItem](session).add(item)


async def update_item(
    session: AsyncSession,
    workspace_id: int,
    assistant_id: int,
    item_id: int,
    data: KnowledgeIn,
    settings: Settings,
) -> KnowledgeItem:
    item = await get_item(session, workspace_id, assistant_id, MODELS[type(data)], item_id)
    _check_length(data, settings)
    values = {**data.model_dump(), "updated_at": utcnow()}
    return await RepositoryBase[KnowledgeItem](session).update(item, values)


async def delete_item(
    session: AsyncSession, workspace_id: int, assistant_id: int, model: type[K], item_id: int
) -> None:
    item = await get_item(session, workspace_id, assistant_id, model, item_id)
    await RepositoryBase[K](session).delete(item)


def _check_length(data: KnowledgeIn, settings: Settings) -> None:
    limit = settings.knowledge_max_chars
    errors = [
        FieldError(field, f"is {len(value)} characters long; the limit is {limit}")
        for field, value in data.model_dump().items()
        if isinstance(value, str) and len(value) > limit
    ]
    if errors:
        raise Invalid(
            "; ".join(f"{e.field} {e.message}" for e in errors),
            code="too_long",
            errors=errors,
        )
