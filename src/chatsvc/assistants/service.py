"""Assistant rules: defaults, generator and tool references checked, soft deletion."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.assistants.models import Assistant, AssistantTool
from chatsvc.assistants.repository import AssistantRepository
from chatsvc.assistants.schemas import AssistantIn
from chatsvc.config import Settings
from chatsvc.kit.db import utcnow
from chatsvc.kit.errors import FieldError, Invalid, NotFound, or_not_found
from chatsvc.kit.pagination import Page, PageParams

SLOTS = ("tools", "pretools")


async def get_assistant(session: AsyncSession, workspace_id: int, assistant_id: int) -> Assistant:
    found = await AssistantRepository(session).get(workspace_id, assistant_id)
    return or_not_found(found, f"Assistant {assistant_id} not found.")


async def ensure_assistant(session: AsyncSession, workspace_id: int, assistant_id: int) -> None:
    """Raise NotFound unless the assistant exists, without loading it."""
    if not await AssistantRepository(session).exists(workspace_id, assistant_id):
        raise NotFound(f"Assistant {assistant_id} not found.")


async def list_assistants(
    session: AsyncSession, workspace_id: int, params: PageParams
) -> Page[Assistant]:
    return await AssistantRepository(session).list(workspace_id, params)


async def create_assistant(
    session: AsyncSession, workspace_id: int, data: AssistantIn, settings: Settings
) -> Assistant:
    values = data.model_dump()
    await _check(session, workspace_id, values, settings)
    tool_lists = {slot: values.pop(slot) for slot in SLOTS}
    values["generation_config"] = values["generation_config"] or settings.default_generator
    assistant = Assistant(workspace_id=workspace_id, **values)
    assistant.tool_links = _links(tool_lists)
    repository = AssistantRepository(session)
    await repository.add(assistant)
    return await _reload(repository, workspace_id, assistant.id)


async def update_assistant(
    session: AsyncSession,
    workspace_id: int,
    assistant_id: int,
    values: dict[str, Any],
    settings: Settings,
) -> Assistant:
    """Apply `values` (all fields for a replace, the sent ones for a partial update)."""
    repository = AssistantRepository(session)
    assistant = await get_assistant(session, workspace_id, assistant_id)
    await _check(session, workspace_id, values, settings)
    values = dict(values)
    if "generation_config" in values:
        values["generation_config"] = values["generation_config"] or settings.default_generator
    tool_lists = {slot: values.pop(slot) for slot in SLOTS if slot in values}
    if tool_lists:
        current = {slot: assistant.tool_ids(slot) for slot in SLOTS}
        current.update(tool_lists)
        assistant.tool_links = _links(current)
    values["updated_at"] = utcnow()
    await repository.update(assistant, values)
    return await _reload(repository, workspace_id, assistant_id)


async def delete_assistant(session: AsyncSession, workspace_id: int, assistant_id: int) -> None:
    """Soft delete: the assistant and its knowledge leave the API; its chats stay readable."""
    assistant = await get_assistant(session, workspace_id, assistant_id)
    await AssistantRepository(session).update(assistant, {"deleted_at": utcnow()})


def _links(tool_lists: dict[str, list[int]]) -> list[AssistantTool]:
    return [
        AssistantTool(slot=slot, position=position, tool_id=tool_id)
        for slot, ids in tool_lists.items()
        for position, tool_id in enumerate(ids)
    ]


async def _reload(
    repository: AssistantRepository, workspace_id: int, assistant_id: int
) -> Assistant:
    assistant = await repository.get(workspace_id, assistant_id, fresh=True)
    assert assistant is not None
    return assistant


async def _check(
    session: AsyncSession, workspace_id: int, values: dict[str, Any], settings: Settings
) -> None:
    errors: list[FieldError] = []
    for field in ("generation_config", "generation_config_pretools"):
        name = values.get(field)
        if name and name not in settings.generator_apps:
            available = ", ".join(sorted(settings.generator_apps))
            errors.append(
                FieldError(field, f"unknown generator app {name!r}; configured apps: {available}")
            )
    wanted = {slot: values[slot] for slot in SLOTS if values.get(slot)}
    if wanted:
        all_ids = {tool_id for ids in wanted.values() for tool_id in ids}
        found = await AssistantRepository(session).existing_tool_ids(workspace_id, all_ids)
        for slot, ids in wanted.items():
            missing = [tool_id for tool_id in ids if tool_id not in found]
            if missing:
                errors.append(
                    FieldError(
                        slot, f"no tool with id {', '.join(map(str, missing))} in this workspace"
                    )
                )
    if errors:
        raise Invalid("; ".join(f"{e.field}: {e.message}" for e in errors), errors=errors)
