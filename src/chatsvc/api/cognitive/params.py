"""Path parameters of the cognitive face: integer ids, refused (422) outside the id range
before any query runs. One alias per kind of id, shared by every route that takes it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path

from chatsvc.kit.validation import MAX_ID


def path_id(description: str | None = None, *, alias: str | None = None) -> Any:
    """An integer id in the path, 1 to MAX_ID."""
    return Path(ge=1, le=MAX_ID, description=description, alias=alias)


AssistantId = Annotated[int, path_id("The assistant's id.")]
ChatId = Annotated[int, path_id("The chat's id.")]
MessageId = Annotated[int, path_id("The message's id.")]
JobId = Annotated[int, path_id("The job's id.")]
ReportId = Annotated[int, path_id("The report's id.")]
ToolId = Annotated[int, path_id("The tool's id.")]
McpServerId = Annotated[int, path_id("The MCP server's id.")]
McpToolId = Annotated[int, path_id("The MCP tool's id.")]
