"""Tools in a generation: the assistant's tools loaded as functions for the model, and one call
run under a deadline. Whatever a tool does (fails, hangs, answers too much), the model gets a
result it can read; the chat does not fail because of a tool."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chatsvc.config import Settings
from chatsvc.generation.types import ToolCall, ToolSpec
from chatsvc.kit.errors import ChatsvcError
from chatsvc.mcp import service as mcp_service
from chatsvc.tools import retrieval
from chatsvc.tools.models import Tool, ToolKind
from chatsvc.tools.repository import ToolRepository
from chatsvc.tools.runtime import ToolRuntime
from chatsvc.tools.schemas import function_name, parameters_schema

logger = logging.getLogger("chatsvc.tools")


@dataclass(frozen=True, slots=True)
class BoundTool:
    """A tool as one generation sees it: read once, before the model runs."""

    spec: ToolSpec
    tool_id: int
    kind: str
    title: str
    show_tool_message: bool
    show_assistant_message: bool


@dataclass(slots=True)
class ToolResult:
    content: str
    is_error: bool = False
    references: list[dict[str, Any]] = field(default_factory=list)
    #: a retrieval tool with `answer: true`: this text is the answer, no further model call
    answer: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


async def load_tools(
    session: AsyncSession, workspace_id: int, tool_ids: list[int]
) -> list[BoundTool]:
    """The live tools among `tool_ids`, in that order, as functions for the model."""
    bound = []
    for tool in await ToolRepository(session).live_by_ids(workspace_id, tool_ids):
        schema = await _schema(session, workspace_id, tool)
        bound.append(
            BoundTool(
                spec=ToolSpec(function_name(tool), tool.name, tool.description, schema),
                tool_id=tool.id,
                kind=tool.kind,
                title=tool.name,
                show_tool_message=tool.show_tool_message,
                show_assistant_message=tool.show_assistant_message,
            )
        )
    return bound


async def _schema(session: AsyncSession, workspace_id: int, tool: Tool) -> dict[str, Any]:
    if tool.kind == ToolKind.RETRIEVAL:
        # The metadata filters of its backend extend a retrieval tool's schema.
        return await retrieval.tool_schema(session, workspace_id, tool)
    if tool.kind == ToolKind.MCP:
        return mcp_service.tool_schema(tool)  # the remote input schema, whole
    return parameters_schema(tool.parameters)


def argument_problem(call: ToolCall, spec: ToolSpec) -> str | None:
    """Why the model's arguments cannot be used, in words the model can act on."""
    if call.raw_arguments is not None:
        return "the arguments are not a JSON object; call the tool again with a JSON object"
    properties = spec.parameters.get("properties") or {}
    missing = [name for name in spec.parameters.get("required") or [] if name not in call.arguments]
    if missing:
        return f"missing required argument(s): {', '.join(missing)}"
    for name, value in call.arguments.items():
        expected = (properties.get(name) or {}).get("type")
        if expected and not _is_type(value, expected):
            return f"argument {name!r} must be of type {expected}"
        allowed = (properties.get(name) or {}).get("enum")
        if allowed and value not in allowed:
            return f"argument {name!r} must be one of {allowed}"
    return None


def _is_type(value: Any, expected: str) -> bool:
    checks: dict[str, Any] = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
    }
    check = checks.get(expected)
    return True if check is None else bool(check(value))


class ToolExecutor:
    """Runs one tool call: script in the sandbox pool, MCP through the MCP client, retrieval
    against its backend; each under `tool_timeout_seconds`, each result capped. `sessionmaker`
    reads the tool's row (autocommit sessions in a process: no write lock is held on SQLite
    while a retrieval backend answers)."""

    def __init__(
        self,
        runtime: ToolRuntime | None,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        self.runtime = runtime
        self.sessionmaker = sessionmaker
        self.settings = settings

    async def execute(self, workspace_id: int, tool: BoundTool, call: ToolCall) -> ToolResult:
        started = time.monotonic()
        problem = argument_problem(call, tool.spec)
        if problem is not None:
            result = ToolResult(f"Error: {problem}.", is_error=True)
        else:
            result = await self._guarded(workspace_id, tool, call)
        result.meta.update(
            tool_id=tool.tool_id,
            tool_kind=tool.kind,
            tool_name=tool.title,
            is_error=result.is_error,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )
        limit = self.settings.tool_result_max_chars
        if len(result.content) > limit:
            result.content = result.content[:limit] + f"\n[cut at {limit} characters]"
            result.meta["truncated"] = True
        return result

    async def _guarded(self, workspace_id: int, tool: BoundTool, call: ToolCall) -> ToolResult:
        deadline = self.settings.tool_timeout_seconds
        try:
            async with asyncio.timeout(deadline):
                return await self._invoke(workspace_id, tool, call)
        except TimeoutError:
            return ToolResult(
                f"Error: the tool {tool.title!r} did not answer within {deadline:g} seconds.",
                is_error=True,
            )
        except ChatsvcError as exc:
            return ToolResult(f"Error: {exc.message}", is_error=True)
        except Exception:
            logger.exception("tool %s (%s) failed", tool.tool_id, tool.kind)
            return ToolResult(f"Error: the tool {tool.title!r} failed unexpectedly.", is_error=True)

    async def _invoke(self, workspace_id: int, tool: BoundTool, call: ToolCall) -> ToolResult:
        runtime = self.runtime
        if runtime is None:
            return ToolResult("Error: tools are not available in this process.", is_error=True)
        async with self.sessionmaker() as session:
            row = await session.get(Tool, tool.tool_id)
            if row is None or row.deleted_at is not None:
                return ToolResult(f"Error: the tool {tool.title!r} was deleted.", is_error=True)
            if row.kind == ToolKind.SCRIPT:
                code = str(row.config.get("code", ""))
                await session.close()  # no session held while the script runs
                outcome = await runtime.scripts.run(code, call.arguments)
                meta: dict[str, Any] = {"logs": outcome.logs} if outcome.logs else {}
                if not outcome.ok:
                    return ToolResult(f"Error: {outcome.error}", is_error=True, meta=meta)
                return ToolResult(_text(outcome.value), meta=meta)
            if row.kind == ToolKind.MCP:
                return await self._mcp(session, runtime, row, call)
            if row.kind == ToolKind.RETRIEVAL:
                found = await retrieval.run_retrieval(
                    runtime, session, workspace_id, row, call.arguments
                )
                answer = found.content if row.config.get("answer") else None
                return ToolResult(found.content, references=found.references, answer=answer)
        return ToolResult(f"Error: unknown tool kind {tool.kind!r}.", is_error=True)

    async def _mcp(
        self,
        session: AsyncSession,
        runtime: ToolRuntime,
        row: Tool,
        call: ToolCall,
    ) -> ToolResult:
        await session.close()  # its server is loaded; no session held during the remote call
        result = await mcp_service.call_tool(runtime, row, call.arguments)
        return ToolResult(
            f"Error: {result.text}" if result.is_error else result.text,
            is_error=result.is_error,
        )


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)
