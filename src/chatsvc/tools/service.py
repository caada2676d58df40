"""Tool rules, one implementation for every kind: tools live in a workspace, are kept (soft
deleted) when deleted and then leave every assistant's lists; parameters are rows replaced as a
whole; each kind checks its own settings (a retrieval backend that exists, code that compiles).
Also the metadata filter definitions retrieval tools apply."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.config import Settings
from chatsvc.kit.db import utcnow
from chatsvc.kit.errors import FieldError, Invalid, NotFound, or_not_found
from chatsvc.kit.pagination import Page, PageParams
from chatsvc.tools import retrieval
from chatsvc.tools.models import MetadataFilter, Tool, ToolKind, ToolParameter
from chatsvc.tools.repository import MetadataFilterRepository, ToolRepository
from chatsvc.tools.runtime import ToolRuntime
from chatsvc.tools.schemas import ParameterIn

#: Tool columns a create or update may set; any other key of `values` is kind configuration
COLUMNS = frozenset(
    {
        "name",
        "description",
        "show_tool_message",
        "show_assistant_message",
        "edit_available",
        "portal_available",
        "server_id",
    }
)

ConfigCheck = Callable[[ToolRuntime, int, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class KindRules:
    """What differs between tool kinds in the domain: how to name one in messages, which
    configuration keys it has (stored in Tool.config) and how to check changed ones."""

    label: str
    config_keys: tuple[str, ...]
    check: ConfigCheck


async def _check_retrieval(
    runtime: ToolRuntime, workspace_id: int, changes: dict[str, Any]
) -> None:
    if "retrieval_id" in changes:
        retrieval.backend_of(runtime.settings, changes["retrieval_id"])


async def _check_script(runtime: ToolRuntime, workspace_id: int, changes: dict[str, Any]) -> None:
    if "code" not in changes:
        return
    try:
        await runtime.scripts.check(changes["code"])
    except Invalid as exc:  # ScriptSyntaxError (naming the line) or code the sandbox refuses
        raise Invalid(
            exc.message, code=exc.code, errors=exc.errors or [FieldError("code", exc.message)]
        ) from exc


async def _no_check(runtime: ToolRuntime, workspace_id: int, changes: dict[str, Any]) -> None:
    return None


KINDS: dict[ToolKind, KindRules] = {
    ToolKind.RETRIEVAL: KindRules("Retrieval tool", ("retrieval_id", "answer"), _check_retrieval),
    ToolKind.SCRIPT: KindRules("Script tool", ("code",), _check_script),
    # The MCP work may replace this entry with its own rules.
    ToolKind.MCP: KindRules("MCP tool", ("remote_name", "input_schema"), _no_check),
}


def _rules(kind: ToolKind) -> KindRules:
    return KINDS[kind]


async def list_tools(
    session: AsyncSession, workspace_id: int, kind: ToolKind, params: PageParams
) -> Page[Tool]:
    return await ToolRepository(session).list(workspace_id, kind, params)


async def get_tool(
    session: AsyncSession,
    workspace_id: int,
    kind: ToolKind,
    tool_id: int,
    *,
    for_update: bool = False,
) -> Tool:
    tool = await ToolRepository(session).get(workspace_id, kind, tool_id, for_update=for_update)
    return or_not_found(tool, f"{_rules(kind).label} {tool_id} not found.")


async def create_tool(
    session: AsyncSession,
    runtime: ToolRuntime,
    workspace_id: int,
    kind: ToolKind,
    values: dict[str, Any],
    parameters: Sequence[ParameterIn],
) -> Tool:
    """A new tool from `values` (Tool columns and the kind's configuration keys)."""
    columns, config = _split(kind, values)
    await _rules(kind).check(runtime, workspace_id, config)
    tool = Tool(workspace_id=workspace_id, kind=kind.value, config=config, **columns)
    tool.parameters = _parameter_rows([], parameters)
    return await ToolRepository(session).add(tool)


async def update_tool(
    session: AsyncSession,
    runtime: ToolRuntime,
    workspace_id: int,
    kind: ToolKind,
    tool_id: int,
    values: dict[str, Any],
    parameters: Sequence[ParameterIn] | None,
) -> Tool:
    """Apply `values` (every field for a replace, the sent ones for a partial update); the
    parameters are replaced as a whole when given. Only changed configuration is checked."""
    tool = await get_tool(session, workspace_id, kind, tool_id, for_update=True)
    columns, config = _split(kind, values)
    await _rules(kind).check(runtime, workspace_id, config)
    if parameters is not None:
        tool.parameters = _parameter_rows(tool.parameters, parameters)
    changes: dict[str, Any] = {**columns, "updated_at": utcnow()}
    if config:
        changes["config"] = {**tool.config, **config}  # a new dict: JSON columns track by value
    return await ToolRepository(session).update(tool, changes)


async def delete_tool(
    session: AsyncSession, workspace_id: int, kind: ToolKind, tool_id: int
) -> None:
    """Soft delete: the tool leaves the API and every assistant's tools and pretools lists; the
    row stays for the chats whose messages name it."""
    tool = await get_tool(session, workspace_id, kind, tool_id, for_update=True)
    repository = ToolRepository(session)
    await repository.unlink_from_assistants(tool.id)
    now = utcnow()
    await repository.update(tool, {"deleted_at": now, "updated_at": now})


def _split(kind: ToolKind, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    keys = _rules(kind).config_keys
    unknown = set(values) - COLUMNS - set(keys)
    if unknown:  # a programming error, not user input: faces send known fields only
        raise TypeError(f"not a field of a {kind.value} tool: {', '.join(sorted(unknown))}")
    columns = {key: value for key, value in values.items() if key in COLUMNS}
    config = {key: value for key, value in values.items() if key in keys}
    return columns, config


def _parameter_rows(
    current: Sequence[ToolParameter], parameters: Sequence[ParameterIn]
) -> list[ToolParameter]:
    """The rows of `parameters`, in order. A parameter that keeps its name keeps its row (and
    id), so a PUT that sends back what it got changes no ids and never trips the unique name."""
    existing = {row.name: row for row in current}
    rows: list[ToolParameter] = []
    for position, parameter in enumerate(parameters):
        row = existing.get(parameter.name) or ToolParameter(name=parameter.name)
        row.position = position
        row.description = parameter.description
        row.type = parameter.type
        row.items = parameter.items
        row.required = parameter.required
        row.enum = list(parameter.enum) if parameter.enum is not None else None
        row.properties = parameter.properties
        rows.append(row)
    return rows


# -- metadata filters -----------------------------------------------------------------------


async def list_filters(
    session: AsyncSession, workspace_id: int, metadata_config_id: int
) -> list[MetadataFilter]:
    return await MetadataFilterRepository(session).list_for(workspace_id, metadata_config_id)


async def update_filter(
    session: AsyncSession,
    settings: Settings,
    workspace_id: int,
    *,
    metadata_config_id: int,
    name: str,
    type: str,
    possible_values: Sequence[str],
    format: str,
    delete: bool = False,
) -> list[MetadataFilter]:
    """Create or replace the filter `name` of a retrieval backend (by workspace,
    metadata_config_id and name), or remove it (`delete`; NotFound when there is none).
    Returns the backend's filter definitions after the change, by name."""
    repository = MetadataFilterRepository(session)
    existing = await repository.get(workspace_id, metadata_config_id, name)
    if delete:
        if existing is None:
            raise NotFound(
                f"No filter {name!r} is defined for metadata_config_id {metadata_config_id}."
            )
        await repository.delete(existing)
        return await repository.list_for(workspace_id, metadata_config_id)
    try:
        retrieval.backend_of(settings, metadata_config_id)
    except Invalid as exc:
        raise Invalid(
            exc.message.replace("retrieval_id", "metadata_config_id", 1),
            code=exc.code,
            errors=[FieldError("metadata_config_id", e.message) for e in exc.errors],
        ) from None
    values, stored_format = retrieval.check_definition(type, possible_values, format)
    definition = {"type": type, "possible_values": values, "format": stored_format}
    if existing is not None:
        await repository.update(existing, {**definition, "updated_at": utcnow()})
    else:
        row = MetadataFilter(
            workspace_id=workspace_id,
            metadata_config_id=metadata_config_id,
            name=name,
            **definition,
        )
        try:
            async with session.begin_nested():  # a concurrent upsert of the same name may win
                await repository.add(row)
        except IntegrityError:
            winner = await repository.get(workspace_id, metadata_config_id, name)
            if winner is None:
                raise
            await repository.update(winner, {**definition, "updated_at": utcnow()})
    return await repository.list_for(workspace_id, metadata_config_id)
