"""Cognitive face: /mcp-servers/ (servers, their remote tools and selections) and /mcp-tools/
(seed 003, docs/seeds/). Translation only: rules live in chatsvc.mcp.service."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from chatsvc.api.cognitive.items import add_delete_route, add_get_route
from chatsvc.api.cognitive.params import McpServerId, McpToolId
from chatsvc.api.cognitive.tools import ToolShown, tool_fields
from chatsvc.api.deps import AdminDep, AuthDep
from chatsvc.kit.updates import add_patch_route, update_values
from chatsvc.kit.web import PageDep, SlashRouter, error_responses, invalid_is_400, page_items
from chatsvc.mcp import service as mcp_service
from chatsvc.mcp.schemas import (
    McpServerIn,
    McpServerPatch,
    McpToolIn,
    McpToolPatch,
    ToolSelectionIn,
    mask_headers,
)
from chatsvc.services import ReadSessionDep, SessionDep, ToolsDep
from chatsvc.tools.mcp_client import RemoteTool
from chatsvc.tools.models import Tool
from chatsvc.tools.schemas import ParameterOut

router = SlashRouter(tags=["mcp"])

SERVER_NOT_FOUND = error_responses({404: "No such MCP server in this workspace."})
TOOL_NOT_FOUND = error_responses({404: "No such MCP tool in this workspace."})
REMOTE = error_responses(
    {
        400: "The outbound policy refuses the server's URL or address, or a secret is missing.",
        404: "No such MCP server in this workspace.",
        409: "The MCP server is inactive: it is not called.",
        502: "The MCP server could not be reached or answered with an error.",
        504: "The MCP server did not answer in time.",
    }
)


# --- wire schemas ------------------------------------------------------------------------------


class McpServerOut(BaseModel):
    """An MCP server. Header values show `{{secret:NAME}}` references as written; literal
    values of credential headers (Authorization, *token*, *key*, ...) are masked as ****."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    url: str
    headers: dict[str, str]
    protocol_version: str
    client_name: str
    client_version: str
    active: bool
    created_at: datetime
    updated_at: datetime

    @field_validator("headers", mode="before")
    @classmethod
    def _masked(cls, value: Any) -> Any:
        return mask_headers(value) if isinstance(value, dict) else value


class McpToolOut(ToolShown):
    """A tool that calls one remote tool of an MCP server (`selected_tools` names it)."""

    portal_available: bool
    server: McpServerOut | None
    server_id: int | None
    parameters: list[ParameterOut]
    selected_tools: list[str] = Field(description="The remote tool this tool calls.")


def tool_out(tool: Tool) -> McpToolOut:
    return McpToolOut(
        **tool_fields(tool),
        portal_available=tool.portal_available,
        server=McpServerOut.model_validate(tool.server) if tool.server is not None else None,
        server_id=tool.server_id,
        selected_tools=[mcp_service.remote_name(tool)],
    )


class ConfiguredToolOut(BaseModel):
    """An MCP tool configured from a server's tool."""

    id: int
    name: str
    description: str


class ServerInfoOut(BaseModel):
    """An MCP server, briefly."""

    id: int
    name: str
    description: str


class ConfiguredToolsOut(BaseModel):
    """The MCP tools configured from a server, with the server."""

    success: bool
    message: str
    configured_tools: list[ConfiguredToolOut]
    server_info: ServerInfoOut


class ConnectOut(BaseModel):
    """Whether a connection to an MCP server succeeded, and the tools it offers."""

    server_name: str
    connection_successful: bool
    available_tools_count: int
    available_tools: list[str]
    errors: list[str]


class RemoteParameterOut(BaseModel):
    """A parameter of a tool an MCP server offers."""

    name: str
    type: str
    description: str
    required: bool
    enum: list[str | int | float | bool] | None
    properties: dict[str, Any] | None
    items: dict[str, Any] | None


class RemoteToolOut(BaseModel):
    """A tool an MCP server offers, and whether it is configured already."""

    name: str
    description: str
    input_schema: dict[str, Any] | None
    parameters: list[RemoteParameterOut]
    already_configured: bool


class ConfiguredMarkOut(ConfiguredToolOut):
    """A configured MCP tool, marked as configured."""

    configured: bool = True


class RemoteToolsOut(BaseModel):
    """The tools an MCP server offers, and those configured from it."""

    tools: list[RemoteToolOut]
    configured_tools: list[ConfiguredMarkOut]


class SelectionOut(BaseModel):
    """What a tool selection on an MCP server configured."""

    success: bool
    message: str
    result_data: dict[str, Any] = Field(
        description="Remote tool names: created, already_configured / kept, deleted."
    )
    tools: list[McpToolOut]
    server_info: McpServerOut


class DeletionOut(BaseModel):
    """What a deletion removed."""

    success: bool
    message: str
    result_data: dict[str, Any]


def _remote_out(tool: RemoteTool, configured: set[str]) -> RemoteToolOut:
    return RemoteToolOut(
        name=tool.name,
        description=tool.description,
        input_schema=tool.input_schema,
        parameters=[
            RemoteParameterOut(**p.model_dump())
            for p in mcp_service.parameters_from_schema(tool.input_schema)
        ],
        already_configured=tool.name in configured,
    )


def _names(tools: list[Tool]) -> list[str]:
    return [mcp_service.remote_name(t) for t in tools]


def _selection_out(result: mcp_service.SelectionResult, message: str) -> SelectionOut:
    return SelectionOut(
        success=True,
        message=message,
        result_data={
            "created": _names(result.created),
            "kept": _names(result.kept),
            "deleted": _names(result.deleted),
        },
        tools=[tool_out(t) for t in result.tools],
        server_info=McpServerOut.model_validate(result.server),
    )


def _counted(count: int, what: str) -> str:
    return f"{count} {what}" + ("" if count == 1 else "s")


# --- servers -----------------------------------------------------------------------------------


@router.get("/mcp-servers/", response_model=list[McpServerOut], summary="List all MCP servers")
async def list_mcp_servers(
    request: Request, response: Response, session: ReadSessionDep, auth: AuthDep, page: PageDep
) -> list[McpServerOut]:
    """A plain array; the total is in X-Total-Count, next/prev pages in Link."""
    found = await mcp_service.list_servers(session, auth.workspace_id, page)
    return page_items(request, response, found, McpServerOut.model_validate)


@router.post(
    "/mcp-servers/",
    response_model=McpServerOut,
    status_code=201,
    summary="Create a new MCP server",
    description="The URL must pass the outbound policy (400 otherwise); nothing is called yet.",
)
@invalid_is_400
async def create_mcp_server(
    runtime: ToolsDep, body: McpServerIn, session: SessionDep, auth: AdminDep
) -> McpServerOut:
    server = await mcp_service.create_server(session, auth.workspace_id, body, runtime)
    return McpServerOut.model_validate(server)


add_get_route(
    router,
    "/mcp-servers/{id}/",
    McpServerId,
    mcp_service.get_server,
    response_model=McpServerOut,
    name="get_mcp_server",
    summary="Get a specific MCP server",
    responses=SERVER_NOT_FOUND,
)


@router.put(
    "/mcp-servers/{id}/",
    response_model=McpServerOut,
    summary="Update an MCP server",
    description="Replaces the configuration: omitted fields take their defaults. A masked header "
    "value sent back unchanged keeps the stored value.",
    responses=SERVER_NOT_FOUND,
)
@invalid_is_400
async def update_mcp_server(
    runtime: ToolsDep, id: McpServerId, body: McpServerIn, session: SessionDep, auth: AdminDep
) -> McpServerOut:
    server = await mcp_service.update_server(
        session, auth.workspace_id, id, update_values(body), runtime
    )
    return McpServerOut.model_validate(server)


partial_update_mcp_server = add_patch_route(
    router,
    update_mcp_server,
    McpServerPatch,
    summary="Partially update an MCP server",
    description="Only the fields sent change; `headers`, when sent, replaces the map.",
)


@router.delete(
    "/mcp-servers/{id}/",
    status_code=204,
    summary="Delete an MCP server",
    description="The server is removed; its tools are deleted too (they leave assistants).",
    responses=SERVER_NOT_FOUND,
)
async def delete_mcp_server(
    runtime: ToolsDep, id: McpServerId, session: SessionDep, auth: AdminDep
) -> Response:
    await mcp_service.delete_server(session, auth.workspace_id, id, runtime)
    return Response(status_code=204)


@router.get(
    "/mcp-servers/{server_id}/configured-tools/",
    response_model=ConfiguredToolsOut,
    summary="Get configured tools for an MCP server",
    description="The server's MCP tools, without connecting to it.",
    responses=SERVER_NOT_FOUND,
)
async def get_mcp_server_configured_tools(
    server_id: McpServerId, session: SessionDep, auth: AuthDep
) -> ConfiguredToolsOut:
    server = await mcp_service.get_server(session, auth.workspace_id, server_id)
    tools = await mcp_service.configured_tools(session, auth.workspace_id, server_id)
    return ConfiguredToolsOut(
        success=True,
        message=f"{_counted(len(tools), 'tool')} configured for MCP server {server.id}",
        configured_tools=[
            ConfiguredToolOut(id=t.id, name=t.name, description=t.description) for t in tools
        ],
        server_info=ServerInfoOut(id=server.id, name=server.name, description=server.description),
    )


@router.get(
    "/mcp-servers/{server_id}/connect/",
    response_model=ConnectOut,
    summary="Connect to an MCP server",
    description="A connection test: 200 whatever happens, with `errors` saying what failed. "
    "It lists the remote tools afresh (and refreshes the cached list). An inactive server is "
    "not called.",
    responses=SERVER_NOT_FOUND,
)
async def connect_mcp_server(
    runtime: ToolsDep, server_id: McpServerId, session: SessionDep, auth: AuthDep
) -> ConnectOut:
    report = await mcp_service.connect(session, auth.workspace_id, server_id, runtime)
    return ConnectOut.model_validate(report, from_attributes=True)


@router.get(
    "/mcp-servers/{server_id}/tools/",
    response_model=RemoteToolsOut,
    summary="List tools for an MCP server",
    description="The server's remote tools (from the cache unless `refresh=true`), each marked "
    "`already_configured` when an MCP tool calls it, and the configured tools.",
    responses=REMOTE,
)
async def list_mcp_server_tools(
    runtime: ToolsDep,
    server_id: McpServerId,
    session: SessionDep,
    auth: AuthDep,
    refresh: Annotated[
        bool, Query(description="Ask the server again instead of using the cached list.")
    ] = False,
) -> RemoteToolsOut:
    view = await mcp_service.remote_tools(
        session, auth.workspace_id, server_id, runtime, refresh=refresh
    )
    configured = view.configured_names()
    return RemoteToolsOut(
        tools=[_remote_out(t, configured) for t in view.remote],
        configured_tools=[
            ConfiguredMarkOut(id=t.id, name=t.name, description=t.description)
            for t in view.configured
        ],
    )


@router.post(
    "/mcp-servers/{server_id}/tools/",
    response_model=SelectionOut,
    status_code=201,
    summary="Create tools for an MCP server",
    description="An MCP tool for each selected remote tool not configured yet; 400 when none "
    "is selected or one is not offered by the server.",
    responses=REMOTE,
)
@invalid_is_400
async def create_mcp_server_tools(
    runtime: ToolsDep,
    server_id: McpServerId,
    body: ToolSelectionIn,
    session: SessionDep,
    auth: AdminDep,
) -> SelectionOut:
    result = await mcp_service.create_server_tools(
        session, auth.workspace_id, server_id, body.selected_tools, runtime
    )
    message = f"Created {_counted(len(result.created), 'tool')}"
    if result.kept:
        message += f"; already configured: {', '.join(_names(result.kept))}"
    return _selection_out(result, message)


@router.put(
    "/mcp-servers/{server_id}/tools/",
    response_model=SelectionOut,
    summary="Update tools for an MCP server",
    description="Makes the server's tools exactly the selection (an empty one removes them "
    "all): new ones are created, kept ones get the current input schema, others are deleted.",
    responses=REMOTE,
)
@invalid_is_400
async def update_mcp_server_tools(
    runtime: ToolsDep,
    server_id: McpServerId,
    body: ToolSelectionIn,
    session: SessionDep,
    auth: AdminDep,
) -> SelectionOut:
    result = await mcp_service.sync_server_tools(
        session, auth.workspace_id, server_id, body.selected_tools, runtime
    )
    message = (
        f"Created {len(result.created)}, kept {len(result.kept)}, "
        f"deleted {_counted(len(result.deleted), 'tool')}"
    )
    return _selection_out(result, message)


@router.delete(
    "/mcp-servers/{server_id}/tools/",
    response_model=DeletionOut,
    summary="Delete tools from an MCP server",
    description="Deletes every MCP tool of the server (they leave assistants); the server stays.",
    responses=SERVER_NOT_FOUND,
)
async def delete_mcp_server_tools(
    server_id: McpServerId, session: SessionDep, auth: AdminDep
) -> DeletionOut:
    result = await mcp_service.delete_server_tools(session, auth.workspace_id, server_id)
    return DeletionOut(
        success=True,
        message=f"Deleted {_counted(len(result.deleted), 'tool')}",
        result_data={"deleted": _names(result.deleted), "ids": [t.id for t in result.deleted]},
    )


# --- MCP tools ---------------------------------------------------------------------------------


@router.get("/mcp-tools/", response_model=list[McpToolOut], summary="List all MCP tools")
async def list_mcp_tools(
    request: Request, response: Response, session: ReadSessionDep, auth: AuthDep, page: PageDep
) -> list[McpToolOut]:
    """A plain array; the total is in X-Total-Count, next/prev pages in Link."""
    result = await mcp_service.list_tools(session, auth.workspace_id, page)
    return page_items(request, response, result, tool_out)


@router.post(
    "/mcp-tools/",
    response_model=McpToolOut,
    status_code=201,
    summary="Create a new MCP tool",
    description="One MCP tool per remote tool in `selected_tools`, of the server `server_id` "
    "(else of a new server described by `server`). The response is the first tool created; "
    "the ids of all of them are in the X-Created-Ids header.",
    responses={
        **REMOTE,
        **error_responses(
            {409: "The server is inactive, or a selected remote tool is already configured."}
        ),
    },
)
@invalid_is_400
async def create_mcp_tool(
    runtime: ToolsDep, response: Response, body: McpToolIn, session: SessionDep, auth: AdminDep
) -> McpToolOut:
    tools = await mcp_service.create_tools(session, auth.workspace_id, body, runtime)
    response.headers["X-Created-Ids"] = ",".join(str(t.id) for t in tools)
    return tool_out(tools[0])


add_get_route(
    router,
    "/mcp-tools/{id}/",
    McpToolId,
    mcp_service.get_tool,
    response_model=McpToolOut,
    out=tool_out,
    name="get_mcp_tool",
    summary="Get a specific MCP tool",
    responses=TOOL_NOT_FOUND,
)


@router.put(
    "/mcp-tools/{id}/",
    response_model=McpToolOut,
    summary="Update an MCP tool",
    description="Replaces the display settings (name and description default to the remote "
    "tool's). `server_id` / `server` and `selected_tools` (one name) re-point the tool.",
    responses={**REMOTE, **TOOL_NOT_FOUND},
)
@invalid_is_400
async def update_mcp_tool(
    runtime: ToolsDep, id: McpToolId, body: McpToolIn, session: SessionDep, auth: AdminDep
) -> McpToolOut:
    values = {name: getattr(body, name) for name in McpToolIn.model_fields}
    tool = await mcp_service.update_tool(session, auth.workspace_id, id, values, runtime)
    return tool_out(tool)


@router.patch(
    "/mcp-tools/{id}/",
    response_model=McpToolOut,
    summary="Partially update an MCP tool",
    responses={**REMOTE, **TOOL_NOT_FOUND},
)
@invalid_is_400
async def partial_update_mcp_tool(
    runtime: ToolsDep, id: McpToolId, body: McpToolPatch, session: SessionDep, auth: AdminDep
) -> McpToolOut:
    """Changes only the fields sent (admin keys); moving the tool to another server or remote tool
    reads its schema from the server again."""
    tool = await mcp_service.update_tool(session, auth.workspace_id, id, body.changes(), runtime)
    return tool_out(tool)


add_delete_route(
    router,
    "/mcp-tools/{id}/",
    McpToolId,
    mcp_service.delete_tool,
    name="delete_mcp_tool",
    summary="Delete an MCP tool",
    description="The tool leaves every list and assistant; chats that used it stay readable.",
    responses=TOOL_NOT_FOUND,
)
