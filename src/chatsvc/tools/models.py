"""One table and one id space for every kind of tool (retrieval, script, MCP)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from chatsvc.kit.db import Base, IdType, TimestampMixin


class ToolKind(StrEnum):
    RETRIEVAL = "retrieval"
    SCRIPT = "script"
    MCP = "mcp"


class Tool(TimestampMixin, Base):
    __tablename__ = "tools"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    show_tool_message: Mapped[bool] = mapped_column(default=True)
    show_assistant_message: Mapped[bool] = mapped_column(default=True)
    edit_available: Mapped[bool] = mapped_column(default=True)
    #: kind-specific settings (retrieval_id and answer, code, MCP server and remote name)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
