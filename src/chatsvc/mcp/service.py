"""MCP rules: servers of a workspace (URL admitted by the outbound policy when saved, headers
with secret references, masked on the way out), their remote tools (inactive servers are never
called), the Tool rows made from them (one per remote tool, parameters from its input schema),
and calling such a tool at run time."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.kit.db import utcnow
from chatsvc.kit.errors import (
    ChatsvcError,
    Conflict,
    FieldError,
    Invalid,
    NotFound,
    UpstreamError,
    or_not_found,
)
from chatsvc.kit.outbound import OutboundBlocked, OutboundPolicy, check_url
from chatsvc.kit.pagination import Page, PageParams
from chatsvc.mcp.repository import McpServerRepository, McpToolRepository
from chatsvc.mcp.schemas import SECRET_REFERENCE, McpServerIn, McpToolIn, unmask_headers
from chatsvc.secrets.store import (
    SecretStore,
    origin_problem,
    reference_names,
    resolve_references,
)
from chatsvc.tools.mcp_client import McpEndpoint, RemoteResult, RemoteTool
from chatsvc.tools.models import McpServer, Tool, ToolKind
from chatsvc.tools.runtime import ToolRuntime
from chatsvc.tools.schemas import ParameterIn, parameter_rows, parameters_schema

_PARAMETER_TYPES: Final = ("string", "number", "integer", "boolean", "array", "object")
_MAX_PARAMETERS: Final = 64
_MAX_DESCRIPTION: Final = 10_000
#: a remote input schema larger than this (as JSON) is not stored
_MAX_SCHEMA_CHARS: Final = 256 * 1024
_UNSTORABLE: Final = re.compile("[\x00\ud800-\udfff]")


# -- servers ---------------------------------------------------------------------------------


async def list_servers(
    session: AsyncSession, workspace_id: int, params: PageParams
) -> Page[McpServer]:
    return await McpServerRepository(session).page(workspace_id, params)


async def get_server(session: AsyncSession, workspace_id: int, server_id: int) -> McpServer:
    server = await McpServerRepository(session).get(workspace_id, server_id)
    return or_not_found(server, f"MCP server {server_id} not found.")


def check_server_url(url: str, policy: OutboundPolicy, *, field_name: str = "url") -> str:
    """The URL when the outbound policy admits it (scheme, port, literal and local addresses,
    no credentials); else 400 naming the field. DNS is checked again at every connection."""
    try:
        return check_url(url, policy, allow_credentials=False)
    except OutboundBlocked as exc:
        raise Invalid(
            exc.message, code=exc.code, errors=[FieldError(field_name, exc.message)]
        ) from None


async def check_header_secrets(
    secrets: SecretStore, workspace_id: int, url: str, headers: dict[str, Any] | None
) -> None:
    """Refuse (400 secret_origin_not_allowed, naming the header) headers that reference a secret
    whose allowed origins exclude `url`'s origin, so that a server is not saved to fail at every
    call. A secret that does not exist yet is not checked here; every call checks again."""
    for header, raw in (headers or {}).items():
        for name in reference_names(str(raw)):
            try:
                item = await secrets.read(workspace_id, name)
            except NotFound:
                continue
            problem = origin_problem(item, url)
            if problem is not None:
                message = f"header {header!r}: {problem}"
                raise Invalid(
                    f"MCP server {message}. Allow the origin on the secret (PUT /secrets/ with "
                    "allowed_origins) or reference another secret.",
                    code="secret_origin_not_allowed",
                    errors=[FieldError(f"headers.{header}", message)],
                )


async def create_server(
    session: AsyncSession, workspace_id: int, data: McpServerIn, runtime: ToolRuntime
) -> McpServer:
    check_server_url(data.url, runtime.policy)
    await check_header_secrets(runtime.secrets, workspace_id, data.url, data.headers)
    server = McpServer(workspace_id=workspace_id, **data.model_dump())
    return await McpServerRepository(session).add(server)


async def update_server(
    session: AsyncSession,
    workspace_id: int,
    server_id: int,
    values: dict[str, Any],
    runtime: ToolRuntime,
) -> McpServer:
    """Apply `values` (every field for a replace, the sent ones for a partial update). Header
    values sent back masked keep what was stored."""
    repository = McpServerRepository(session)
    server = await get_server(session, workspace_id, server_id)
    values = dict(values)
    if "url" in values:
        check_server_url(values["url"], runtime.policy)
    if "headers" in values:
        values["headers"] = unmask_headers(values["headers"], server.headers)
    if "url" in values or "headers" in values:
        await check_header_secrets(
            runtime.secrets,
            workspace_id,
            values.get("url", server.url),
            values.get("headers", server.headers),
        )
    values["updated_at"] = utcnow()
    await repository.update(server, values)
    runtime.mcp.invalidate(server.id)
    return server


async def delete_server(
    session: AsyncSession, workspace_id: int, server_id: int, runtime: ToolRuntime
) -> None:
    """Deletes the server; its tools are soft-deleted (they leave every list and assistant)."""
    server = await get_server(session, workspace_id, server_id)
    tools = McpToolRepository(session)
    await tools.soft_delete([t.id for t in await tools.of_server(workspace_id, server_id)])
    await McpServerRepository(session).delete(server)
    runtime.mcp.invalidate(server_id)


async def configured_tools(session: AsyncSession, workspace_id: int, server_id: int) -> list[Tool]:
    await get_server(session, workspace_id, server_id)
    return await McpToolRepository(session).of_server(workspace_id, server_id)


# -- talking to a server ---------------------------------------------------------------------


def inactive(server: McpServer) -> Conflict:
    return Conflict(
        f"MCP server {server.id} ({server.name}) is inactive, so it is not called; "
        "set active to true to use it.",
        code="server_inactive",
    )


async def endpoint(secrets: SecretStore, server: McpServer) -> McpEndpoint:
    """Where and how to reach `server`, its header secrets resolved now (never stored, never
    returned, never logged)."""
    headers: dict[str, str] = {}
    for name, raw in (server.headers or {}).items():
        value = str(raw)
        if SECRET_REFERENCE.search(value):
            try:
                value = await resolve_references(
                    secrets, server.workspace_id, value, destination=server.url
                )
            except NotFound as exc:
                raise Invalid(
                    f"header {name!r} of MCP server {server.id}: {exc.message}",
                    code="secret_not_found",
                ) from None
            except Invalid as exc:
                raise Invalid(
                    f"header {name!r} of MCP server {server.id}: {exc.message}", code=exc.code
                ) from None
            if any(c in value for c in "\r\n\x00"):
                raise Invalid(
                    f"header {name!r} of MCP server {server.id}: a referenced secret holds a "
                    "line break, which a header cannot carry",
                    code="invalid_secret_value",
                )
        headers[name] = value
    return McpEndpoint(
        url=server.url,
        headers=headers,
        protocol_version=server.protocol_version,
        client_name=server.client_name,
        client_version=server.client_version,
    )


@dataclass(frozen=True, slots=True)
class ConnectReport:
    server_name: str
    connection_successful: bool
    available_tools_count: int = 0
    available_tools: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def connect(
    session: AsyncSession, workspace_id: int, server_id: int, runtime: ToolRuntime
) -> ConnectReport:
    """A connection test: always a fresh call (it refreshes the cached tool list); failures are
    reported, not raised. An inactive server is not called."""
    server = await get_server(session, workspace_id, server_id)
    if not server.active:
        return ConnectReport(server.name, False, errors=[inactive(server).message])
    try:
        tools = await runtime.mcp.list_tools(
            server.id, await endpoint(runtime.secrets, server), refresh=True
        )
    except ChatsvcError as exc:
        return ConnectReport(server.name, False, errors=[exc.message])
    return ConnectReport(server.name, True, len(tools), [t.name for t in tools])


@dataclass(frozen=True, slots=True)
class RemoteView:
    server: McpServer
    remote: list[RemoteTool]
    configured: list[Tool]

    def configured_names(self) -> set[str]:
        return {remote_name(tool) for tool in self.configured}


async def remote_tools(
    session: AsyncSession,
    workspace_id: int,
    server_id: int,
    runtime: ToolRuntime,
    *,
    refresh: bool = False,
) -> RemoteView:
    server = await get_server(session, workspace_id, server_id)
    remote = await _list_remote(server, runtime, refresh=refresh)
    return RemoteView(
        server, remote, await McpToolRepository(session).of_server(workspace_id, server_id)
    )


async def _list_remote(
    server: McpServer, runtime: ToolRuntime, *, refresh: bool = False
) -> list[RemoteTool]:
    if not server.active:
        raise inactive(server)
    ep = await endpoint(runtime.secrets, server)
    # An unsaved server (created inline) has no id yet: 0, never cached.
    return await runtime.mcp.list_tools(server.id or 0, ep, refresh=refresh)


async def _pick(
    server: McpServer,
    runtime: ToolRuntime,
    names: Sequence[str],
    *,
    field_name: str = "selected_tools",
) -> list[RemoteTool]:
    """The remote tools named, in that order; a name missing from the cached list is looked up
    once more on the server (it may be new) before it is refused."""
    remote = await _list_remote(server, runtime)
    by_name = {tool.name: tool for tool in remote}
    if server.id is not None and any(name not in by_name for name in names):
        by_name = {tool.name: tool for tool in await _list_remote(server, runtime, refresh=True)}
    missing = [name for name in names if name not in by_name]
    if missing:
        offered = ", ".join(sorted(by_name)) or "no tools"
        message = f"MCP server {server.id or '(new)'} has no tool {', '.join(map(repr, missing))}"
        raise Invalid(
            f"{message}; it offers: {offered}",
            code="unknown_remote_tool",
            errors=[FieldError(field_name, f"{message}; it offers: {offered}")],
        )
    return [by_name[name] for name in names]


# -- the tools of a server -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SelectionResult:
    server: McpServer
    created: list[Tool] = field(default_factory=list)
    kept: list[Tool] = field(default_factory=list)
    deleted: list[Tool] = field(default_factory=list)

    @property
    def tools(self) -> list[Tool]:
        return sorted([*self.created, *self.kept], key=lambda t: t.id)


def _none_selected() -> Invalid:
    message = "No tools selected: send selected_tools with at least one remote tool name."
    return Invalid(
        message,
        code="no_tools_selected",
        errors=[FieldError("selected_tools", "select at least one remote tool")],
    )


async def create_server_tools(
    session: AsyncSession,
    workspace_id: int,
    server_id: int,
    names: Sequence[str],
    runtime: ToolRuntime,
) -> SelectionResult:
    """A Tool row for each selected remote tool not configured yet (the others are kept)."""
    if not names:
        raise _none_selected()
    server = await get_server(session, workspace_id, server_id)
    picked = await _pick(server, runtime, names)
    repository = McpToolRepository(session)
    existing = {remote_name(t): t for t in await repository.of_server(workspace_id, server_id)}
    kept = [existing[r.name] for r in picked if r.name in existing]
    created = await _add_new(repository, workspace_id, server, picked, existing)
    return SelectionResult(server, created=created, kept=kept)


async def sync_server_tools(
    session: AsyncSession,
    workspace_id: int,
    server_id: int,
    names: Sequence[str],
    runtime: ToolRuntime,
) -> SelectionResult:
    """Make the server's tools exactly the selection: create the new ones, refresh the kept
    ones' input schema and parameters from the server, soft-delete the others."""
    server = await get_server(session, workspace_id, server_id)
    picked = await _pick(server, runtime, names) if names else []
    repository = McpToolRepository(session)
    current = await repository.of_server(workspace_id, server_id)
    wanted = {r.name: r for r in picked}
    deleted = [t for t in current if remote_name(t) not in wanted]
    await repository.soft_delete([t.id for t in deleted])
    existing = {remote_name(t): t for t in current if remote_name(t) in wanted}
    for tool in existing.values():
        await _refresh_schema(session, tool, wanted[remote_name(tool)])
    created = await _add_new(repository, workspace_id, server, picked, existing)
    return SelectionResult(
        server,
        created=created,
        kept=await _reloaded(repository, workspace_id, list(existing.values())),
        deleted=deleted,
    )


async def delete_server_tools(
    session: AsyncSession, workspace_id: int, server_id: int
) -> SelectionResult:
    server = await get_server(session, workspace_id, server_id)
    repository = McpToolRepository(session)
    current = await repository.of_server(workspace_id, server_id)
    await repository.soft_delete([t.id for t in current])
    return SelectionResult(server, deleted=current)


# -- MCP tools -------------------------------------------------------------------------------


async def list_tools(session: AsyncSession, workspace_id: int, params: PageParams) -> Page[Tool]:
    return await McpToolRepository(session).page(workspace_id, params)


async def get_tool(session: AsyncSession, workspace_id: int, tool_id: int) -> Tool:
    tool = await McpToolRepository(session).get(workspace_id, tool_id)
    return or_not_found(tool, f"MCP tool {tool_id} not found.")


async def create_tools(
    session: AsyncSession, workspace_id: int, data: McpToolIn, runtime: ToolRuntime
) -> list[Tool]:
    """One Tool row per selected remote tool of the server named by `server_id` (or of the new
    server `server`, created with them); `name` and `description` apply when one is selected.
    Nothing is written unless every selected tool exists on the server."""
    names = data.selected_tools or []
    if not names:
        raise _none_selected()
    if len(names) > 1:
        for name in ("name", "description"):
            if getattr(data, name) is not None:
                message = f"{name} applies to one tool; select one remote tool or leave {name} out"
                raise Invalid(message, errors=[FieldError(name, message)])
    server = await _server_for(session, workspace_id, data, runtime, required=True)
    assert server is not None
    picked = await _pick(server, runtime, names)
    repository = McpToolRepository(session)
    if server.id is not None:
        existing = {remote_name(t): t for t in await repository.of_server(workspace_id, server.id)}
        taken = [f"{r.name!r} (tool {existing[r.name].id})" for r in picked if r.name in existing]
        if taken:
            raise Conflict(
                f"MCP server {server.id} already has a tool for {', '.join(taken)}; "
                "change that tool instead",
                code="already_configured",
            )
    else:
        await McpServerRepository(session).add(server)
    flags = data.model_dump(
        include={
            "show_tool_message",
            "show_assistant_message",
            "edit_available",
            "portal_available",
        }
    )
    created = [await _add_tool(repository, workspace_id, server, r, **flags) for r in picked]
    if data.name is not None or data.description is not None:
        only = created[0]
        only.name = data.name if data.name is not None else only.name
        only.description = data.description if data.description is not None else only.description
        await session.flush()
    return await _reloaded(repository, workspace_id, created)


async def update_tool(
    session: AsyncSession,
    workspace_id: int,
    tool_id: int,
    values: dict[str, Any],
    runtime: ToolRuntime,
) -> Tool:
    """Apply `values` (a replace sends every field, a patch the ones sent). `server_id` /
    `server` and `selected_tools` re-point the tool, its schema read from the server; the
    same server and remote tool leave the schema as it is, without a call."""
    repository = McpToolRepository(session)
    tool = await get_tool(session, workspace_id, tool_id)
    values = dict(values)
    data = McpToolIn.model_construct(
        server=values.pop("server", None), server_id=values.pop("server_id", None)
    )
    selected = values.pop("selected_tools", None)
    server = await _server_for(session, workspace_id, data, runtime, required=False)
    if selected is not None and len(selected) != 1:
        message = "an MCP tool calls exactly one remote tool; select one"
        raise Invalid(message, errors=[FieldError("selected_tools", message)])
    target_name = selected[0] if selected else remote_name(tool)
    target_server = server or tool.server
    if target_server is None:
        raise Invalid("the tool's MCP server was deleted; give server_id", code="no_server")
    moved = target_server.id != tool.server_id or target_name != remote_name(tool)
    if moved:
        (remote,) = await _pick(target_server, runtime, [target_name], field_name="selected_tools")
        if target_server.id is None:
            await McpServerRepository(session).add(target_server)
        tool.server_id = target_server.id
        await _refresh_schema(session, tool, remote)
    config = tool.config or {}
    if "name" in values:
        values["name"] = values["name"] or config.get("remote_name") or tool.name
    if "description" in values:
        values["description"] = (
            values["description"]
            if values["description"] is not None
            else config.get("remote_description", "")
        )
    values["updated_at"] = utcnow()
    await repository.update(tool, values)
    refreshed = await repository.get(workspace_id, tool.id, fresh=True)
    assert refreshed is not None
    return refreshed


async def delete_tool(session: AsyncSession, workspace_id: int, tool_id: int) -> None:
    tool = await get_tool(session, workspace_id, tool_id)
    await McpToolRepository(session).soft_delete([tool.id])


async def _server_for(
    session: AsyncSession,
    workspace_id: int,
    data: McpToolIn,
    runtime: ToolRuntime,
    *,
    required: bool,
) -> McpServer | None:
    """The server a tool body names: `server_id` (400 when it is not one of the workspace's),
    else a new, not yet saved server from `server`."""
    if data.server_id is not None:
        server = await McpServerRepository(session).get(workspace_id, data.server_id)
        if server is None:
            message = f"no MCP server {data.server_id} in this workspace"
            raise Invalid(message, code="unknown_server", errors=[FieldError("server_id", message)])
        return server
    if data.server is not None:
        spec = data.server if isinstance(data.server, McpServerIn) else McpServerIn(**data.server)
        check_server_url(spec.url, runtime.policy, field_name="server.url")
        return McpServer(workspace_id=workspace_id, **spec.model_dump())
    if required:
        message = "name the MCP server: server_id, or server to create one"
        raise Invalid(message, code="no_server", errors=[FieldError("server_id", message)])
    return None


async def _add_tool(
    repository: McpToolRepository,
    workspace_id: int,
    server: McpServer,
    remote: RemoteTool,
    **flags: bool,
) -> Tool:
    config = _config(remote)
    tool = Tool(
        **flags,
        workspace_id=workspace_id,
        kind=ToolKind.MCP,
        name=remote.name,
        description=_description(remote),
        server_id=server.id,
        config=config,
        parameters=parameter_rows(parameters_from_schema(config["input_schema"])),
    )
    return await repository.add(tool)


async def _add_new(
    repository: McpToolRepository,
    workspace_id: int,
    server: McpServer,
    picked: Sequence[RemoteTool],
    existing: Mapping[str, Tool],
) -> list[Tool]:
    """A Tool row for each picked remote tool not among `existing` (by remote name), read back."""
    created = [
        await _add_tool(repository, workspace_id, server, r)
        for r in picked
        if r.name not in existing
    ]
    return await _reloaded(repository, workspace_id, created)


async def _refresh_schema(session: AsyncSession, tool: Tool, remote: RemoteTool) -> None:
    config = _config(remote)
    if tool.config == config:
        return
    tool.config = config
    # Old rows go first: the new ones may reuse their names (unique per tool).
    tool.parameters = []
    await session.flush()
    tool.parameters = parameter_rows(parameters_from_schema(config["input_schema"]))
    await session.flush()


async def _reloaded(
    repository: McpToolRepository, workspace_id: int, tools: Sequence[Tool]
) -> list[Tool]:
    found = [await repository.get(workspace_id, t.id, fresh=True) for t in tools]
    return [t for t in found if t is not None]


def _config(remote: RemoteTool) -> dict[str, Any]:
    schema = _storable(remote.input_schema)
    if len(json.dumps(schema)) > _MAX_SCHEMA_CHARS:
        raise UpstreamError(
            f"the input schema of remote tool {remote.name!r} is larger than "
            f"{_MAX_SCHEMA_CHARS} characters; it is not stored",
            code="mcp_error",
        )
    return {
        "remote_name": remote.name,
        "input_schema": schema,
        "remote_description": _description(remote),
    }


def _description(remote: RemoteTool) -> str:
    return str(_storable(remote.description[:_MAX_DESCRIPTION]))


def _storable(value: Any) -> Any:
    """`value` (what a remote server sent) with the characters the databases cannot store (NUL,
    unpaired surrogates) replaced, in strings and keys alike."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_storable(str(k)): _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return value


def remote_name(tool: Tool) -> str:
    return str((tool.config or {}).get("remote_name", tool.name))


# -- parameters from a remote input schema ---------------------------------------------------


def parameters_from_schema(schema: dict[str, Any]) -> list[ParameterIn]:
    """The top-level properties of a remote tool's input schema as typed parameters. They
    describe the tool; the model is offered the input schema itself (`tool_schema`), so a
    property that does not fit a parameter (an odd name, a nested union) loses nothing."""
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return []
    required = schema.get("required")
    required_names = (
        {r for r in required if isinstance(r, str)} if isinstance(required, list) else set()
    )
    parameters: list[ParameterIn] = []
    for name, spec in properties.items():
        if len(parameters) == _MAX_PARAMETERS:
            break
        spec = spec if isinstance(spec, dict) else {}
        kind = _parameter_type(spec)
        description = spec.get("description") or spec.get("title") or ""
        values = spec.get("enum")
        enum = (
            [v for v in values if isinstance(v, str | int | float | bool)]
            if isinstance(values, list)
            else []
        )
        try:
            parameters.append(
                ParameterIn(
                    name=name,
                    description=str(description)[:2000],
                    type=kind,
                    items=spec.get("items")
                    if kind == "array" and isinstance(spec.get("items"), dict)
                    else None,
                    required=name in required_names,
                    enum=enum[:500] or None,
                    properties=(
                        spec.get("properties")
                        if kind == "object" and isinstance(spec.get("properties"), dict)
                        else None
                    ),
                )
            )
        except ValidationError:
            continue  # still in the input schema the model is offered
    return parameters


def _parameter_type(spec: dict[str, Any]) -> str:
    kind = spec.get("type")
    if isinstance(kind, str) and kind in _PARAMETER_TYPES:
        return kind
    if isinstance(kind, list):
        for item in kind:
            if item in _PARAMETER_TYPES:
                return str(item)
    for union in ("anyOf", "oneOf"):
        for variant in spec.get(union) or []:
            if isinstance(variant, dict) and variant.get("type") in _PARAMETER_TYPES:
                return str(variant["type"])
    return "string"


# -- at run time -----------------------------------------------------------------------------


def tool_schema(tool: Tool) -> dict[str, Any]:
    """The JSON Schema of an MCP tool's arguments to offer the model: the remote input schema
    as the server gave it (else one built from the parameter rows)."""
    schema = (tool.config or {}).get("input_schema")
    if isinstance(schema, dict) and schema.get("type") == "object":
        return schema
    return parameters_schema(tool.parameters)


async def call_tool(runtime: ToolRuntime, tool: Tool, arguments: dict[str, Any]) -> RemoteResult:
    """Call a configured MCP tool (its `server` loaded, as the repository loads it). Raises
    NotFound (server deleted), Conflict (server inactive: not called), Invalid (a missing
    secret; OutboundBlocked), UpstreamError or UpstreamTimeout; the tool-calling loop turns
    them into a tool error for the model."""
    server = tool.server
    if server is None:
        raise NotFound(f"the MCP server of tool {tool.id} was deleted", code="no_server")
    if not server.active:
        raise inactive(server)
    ep = await endpoint(runtime.secrets, server)
    return await runtime.mcp.call_tool(ep, remote_name(tool), arguments)
