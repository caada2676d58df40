"""The MCP service on PostgreSQL and SQLite, against the real MCP server: servers, the tools made
from a selection (parameters replaced in place when a schema changes), soft deletion that drops
tools from assistants, re-pointing a tool, and calling a configured tool at run time. Also the
pure rules: header masking and parameters read from an input schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, cast

import pytest
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from chatsvc.assistants.models import Assistant, AssistantTool
from chatsvc.auth.service import create_workspace
from chatsvc.config import Settings
from chatsvc.kit.errors import Conflict, Invalid, NotFound, UpstreamError
from chatsvc.kit.pagination import PageParams
from chatsvc.mcp import service as mcp_service
from chatsvc.mcp.schemas import (
    McpServerIn,
    McpToolIn,
    mask_value,
    unmask_headers,
)
from chatsvc.tools.models import Tool, ToolParameter
from chatsvc.tools.runtime import ToolRuntime
from tests.fakes.mcp_server import FakeMcp
from tests.fixtures.db import sessionmaker_on
from tests.fixtures.mcp import loopback_policy

ALL = PageParams(page=1, page_size=100)


@pytest.fixture
async def runtime(
    session: AsyncSession, settings: Settings, fake: FakeMcp
) -> AsyncIterator[ToolRuntime]:
    """The tool runtime the app builds, its secret store inside the test's transaction."""
    built = ToolRuntime.build(settings, sessionmaker_on(cast(AsyncConnection, session.bind)))
    built.mcp.policy = built.policy = loopback_policy(fake)
    yield built
    await built.close()


@pytest.fixture
async def workspace_id(session: AsyncSession) -> int:
    workspace = await create_workspace(session, "mcp-domain")
    return workspace.id


async def server_of(
    session: AsyncSession, workspace_id: int, runtime: ToolRuntime, fake: FakeMcp, **fields: Any
) -> int:
    data = McpServerIn(name="Fake", url=fake.url, **fields)
    server = await mcp_service.create_server(session, workspace_id, data, runtime)
    return server.id


async def test_a_selection_becomes_tool_rows_and_a_sync_replaces_them(
    session: AsyncSession, workspace_id: int, runtime: ToolRuntime, fake: FakeMcp
) -> None:
    server_id = await server_of(session, workspace_id, runtime, fake)
    created = await mcp_service.create_server_tools(
        session, workspace_id, server_id, ["add", "echo"], runtime
    )
    assert [t.name for t in created.tools] == ["add", "echo"]
    add = created.tools[0]
    assert add.kind == "mcp"
    assert add.config["remote_name"] == "add"
    assert add.config["input_schema"]["required"] == ["a", "b"]
    assert [(p.name, p.type, p.required, p.position) for p in add.parameters] == [
        ("a", "integer", True, 0),
        ("b", "integer", True, 1),
    ]
    synced = await mcp_service.sync_server_tools(
        session, workspace_id, server_id, ["add", "big"], runtime
    )
    assert [t.name for t in synced.created] == ["big"]
    assert [t.id for t in synced.kept] == [add.id]
    assert [t.name for t in synced.deleted] == ["echo"]
    live = await mcp_service.list_tools(session, workspace_id, ALL)
    assert [t.name for t in live.items] == ["add", "big"]
    echo = await session.get(Tool, created.tools[1].id)
    assert echo is not None and echo.deleted_at is not None  # kept for the chats that used it


async def test_a_changed_schema_replaces_the_parameter_rows(
    session: AsyncSession, workspace_id: int, runtime: ToolRuntime, fake: FakeMcp
) -> None:
    def v1(query: str, limit: int) -> str:
        return query

    def v2(query: str, limit: int, offset: int = 0) -> str:
        """Now with an offset."""
        return query

    fake.add_tool(v1, name="search")
    try:
        server_id = await server_of(session, workspace_id, runtime, fake)
        (tool,) = (
            await mcp_service.create_server_tools(
                session, workspace_id, server_id, ["search"], runtime
            )
        ).tools
        fake.remove_tool("search")
        fake.add_tool(v2, name="search")
        runtime.mcp.invalidate(server_id)
        (kept,) = (
            await mcp_service.sync_server_tools(
                session, workspace_id, server_id, ["search"], runtime
            )
        ).kept
        assert kept.id == tool.id
        assert [(p.name, p.required) for p in kept.parameters] == [
            ("query", True),
            ("limit", True),
            ("offset", False),
        ]
        rows = (
            await session.scalars(select(ToolParameter).where(ToolParameter.tool_id == tool.id))
        ).all()
        assert len(rows) == 3  # the old rows are gone, not left beside the new ones
    finally:
        fake.remove_tool("search")


async def test_deleting_a_server_soft_deletes_its_tools_and_unlinks_them(
    session: AsyncSession, workspace_id: int, runtime: ToolRuntime, fake: FakeMcp
) -> None:
    server_id = await server_of(session, workspace_id, runtime, fake)
    tools = (
        await mcp_service.create_server_tools(session, workspace_id, server_id, ["add"], runtime)
    ).tools
    assistant = Assistant(
        workspace_id=workspace_id,
        description="Calc",
        generation_config="offline",
        system_prompt="",
        temperature=0.7,
        max_responses=10,
        max_msg_length=100,
        max_consecutive_tool_calls=3,
        strategy_to_optimize_tokens="none",
    )
    assistant.tool_links = [AssistantTool(slot="tools", position=0, tool_id=tools[0].id)]
    session.add(assistant)
    await session.flush()
    await mcp_service.delete_server(session, workspace_id, server_id, runtime)
    links = (
        await session.scalars(select(AssistantTool).where(AssistantTool.tool_id == tools[0].id))
    ).all()
    assert links == []
    with pytest.raises(NotFound):
        await mcp_service.get_tool(session, workspace_id, tools[0].id)
    with pytest.raises(NotFound):
        await mcp_service.get_server(session, workspace_id, server_id)


async def test_a_tool_is_re_pointed_and_its_schema_read_again(
    session: AsyncSession, workspace_id: int, runtime: ToolRuntime, fake: FakeMcp
) -> None:
    server_id = await server_of(session, workspace_id, runtime, fake)
    data = McpToolIn(server_id=server_id, selected_tools=["add"], name="Adder")
    (tool,) = await mcp_service.create_tools(session, workspace_id, data, runtime)
    assert tool.name == "Adder"
    updated = await mcp_service.update_tool(
        session, workspace_id, tool.id, {"selected_tools": ["echo"]}, runtime
    )
    assert mcp_service.remote_name(updated) == "echo"
    assert [p.name for p in updated.parameters] == ["text"]
    assert updated.name == "Adder"


async def test_calling_a_configured_tool(
    session: AsyncSession, workspace_id: int, runtime: ToolRuntime, fake: FakeMcp
) -> None:
    server_id = await server_of(session, workspace_id, runtime, fake)
    (tool,) = (
        await mcp_service.create_server_tools(session, workspace_id, server_id, ["add"], runtime)
    ).tools
    result = await mcp_service.call_tool(runtime, tool, {"a": 20, "b": 22})
    assert (result.is_error, result.text) == (False, "42")
    assert mcp_service.tool_schema(tool)["properties"]["a"]["type"] == "integer"
    await mcp_service.update_server(session, workspace_id, server_id, {"active": False}, runtime)
    fake.reset()
    with pytest.raises(Conflict, match="inactive"):
        await mcp_service.call_tool(runtime, tool, {"a": 1, "b": 2})
    assert fake.requests == []  # an inactive server is not called


async def test_a_missing_secret_is_a_clear_error(
    session: AsyncSession, workspace_id: int, runtime: ToolRuntime, fake: FakeMcp
) -> None:
    server_id = await server_of(
        session, workspace_id, runtime, fake, headers={"Authorization": "Bearer {{secret:NOPE}}"}
    )
    report = await mcp_service.connect(session, workspace_id, server_id, runtime)
    assert not report.connection_successful
    assert "NOPE" in report.errors[0]
    with pytest.raises(Invalid) as caught:
        await mcp_service.remote_tools(session, workspace_id, server_id, runtime)
    assert caught.value.code == "secret_not_found"
    await runtime.secrets.create(workspace_id, "NOPE", "now-it-exists")
    fake.configure(required_headers={"authorization": "Bearer now-it-exists"})
    report = await mcp_service.connect(session, workspace_id, server_id, runtime)
    assert report.connection_successful, report


async def test_what_a_server_sends_is_stored_even_with_unstorable_characters(
    session: AsyncSession, workspace_id: int, runtime: ToolRuntime, fake: FakeMcp
) -> None:
    def odd(text: Annotated[str, Field(description="nul\x00inside")]) -> str:
        return text

    def huge(text: Annotated[str, Field(description="x" * 300_000)]) -> str:
        return text

    fake.add_tool(odd, name="odd", description="a\x00b")
    fake.add_tool(huge, name="huge")
    try:
        server_id = await server_of(session, workspace_id, runtime, fake)
        (tool,) = (
            await mcp_service.create_server_tools(
                session, workspace_id, server_id, ["odd"], runtime
            )
        ).tools
        assert tool.description == "a\ufffdb"
        schema = tool.config["input_schema"]
        assert schema["properties"]["text"]["description"] == "nul\ufffdinside"
        assert [p.description for p in tool.parameters] == ["nul\ufffdinside"]
        with pytest.raises(UpstreamError, match="larger than 262144 characters"):
            await mcp_service.create_server_tools(
                session, workspace_id, server_id, ["huge"], runtime
            )
    finally:
        fake.remove_tool("odd")
        fake.remove_tool("huge")


# -- pure rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("Authorization", "Bearer sk-123", "Bearer ****"),
        ("authorization", "basic dXNlcjpwYXNz", "basic ****"),
        ("Authorization", "Bearer {{secret:TOKEN}}", "Bearer {{secret:TOKEN}}"),
        ("X-Api-Key", "abc{{secret:K}}def", "****{{secret:K}}****"),
        ("X-Api-Key", "{{secret:A}}{{secret:B}}", "{{secret:A}}{{secret:B}}"),
        ("Cookie", "session=abc", "****"),
        ("X-Auth-Token", "", ""),
        ("X-Tenant", "acme", "acme"),
        ("Accept-Language", "en", "en"),
    ],
)
def test_masking(name: str, value: str, shown: str) -> None:
    assert mask_value(name, value) == shown


def test_unmasking_keeps_stored_values_only_for_their_own_mask() -> None:
    stored = {"Authorization": "Bearer real", "X-Tenant": "acme"}
    sent = {"authorization": "Bearer ****", "X-Tenant": "other", "X-New": "****"}
    assert unmask_headers(sent, stored) == {
        "authorization": "Bearer real",
        "X-Tenant": "other",
        "X-New": "****",
    }
    assert unmask_headers({"Authorization": "Bearer new"}, stored) == {
        "Authorization": "Bearer new"
    }


def test_parameters_from_an_input_schema() -> None:
    schema = {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "What to look for"},
            "limit": {"type": ["integer", "null"], "title": "Limit"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "mode": {"enum": ["fast", "exact", None]},
            "filter": {"anyOf": [{"type": "object", "properties": {"k": {}}}, {"type": "null"}]},
            "bad name!": {"type": "string"},
            "nested": {"type": "object", "properties": {"x": {"type": "number"}}},
        },
        "required": ["query", "bad name!"],
    }
    parameters = mcp_service.parameters_from_schema(schema)
    assert [(p.name, p.type, p.required) for p in parameters] == [
        ("query", "string", True),
        ("limit", "integer", False),
        ("tags", "array", False),
        ("mode", "string", False),
        ("filter", "object", False),
        ("nested", "object", False),
    ]
    assert parameters[0].description == "What to look for"
    assert parameters[1].description == "Limit"
    assert parameters[2].items == {"type": "string"}
    assert parameters[3].enum == ["fast", "exact"]
    assert parameters[5].properties == {"x": {"type": "number"}}
    assert mcp_service.parameters_from_schema({"type": "object"}) == []
    odd = {"properties": {"a": {"enum": "abc"}, "b": []}, "required": [{"x": 1}, "a"]}
    assert [(p.name, p.required, p.enum) for p in mcp_service.parameters_from_schema(odd)] == [
        ("a", True, None),
        ("b", False, None),
    ]
