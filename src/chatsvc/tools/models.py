"""Tools: one table and one id space for every kind (retrieval, script, MCP), their typed
parameters as rows, the MCP servers MCP tools call, and the metadata filters retrieval applies."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from chatsvc.kit.db import Base, IdType, StrEnumType, TimestampMixin


class ToolKind(StrEnum):
    RETRIEVAL = "retrieval"
    SCRIPT = "script"
    MCP = "mcp"


class McpServer(TimestampMixin, Base):
    """A remote MCP server. `headers` values may hold `{{secret:NAME}}` references, resolved
    at call time; the API never returns resolved values."""

    __tablename__ = "mcp_servers"
    __table_args__ = (Index("ix_mcp_servers_workspace_id_id", "workspace_id", "id"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str] = mapped_column(String(2048))
    headers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    protocol_version: Mapped[str] = mapped_column(String(32), default="")
    client_name: Mapped[str] = mapped_column(String(255), default="")
    client_version: Mapped[str] = mapped_column(String(64), default="")
    active: Mapped[bool] = mapped_column(default=True)


class Tool(TimestampMixin, Base):
    __tablename__ = "tools"
    __table_args__ = (
        Index("ix_tools_workspace_id_kind_id", "workspace_id", "kind", "id"),
        Index("ix_tools_server_id", "server_id"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[ToolKind] = mapped_column(StrEnumType(ToolKind, 16))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    show_tool_message: Mapped[bool] = mapped_column(default=True)
    show_assistant_message: Mapped[bool] = mapped_column(default=True)
    edit_available: Mapped[bool] = mapped_column(default=True)
    portal_available: Mapped[bool] = mapped_column(default=True)
    #: the MCP server an MCP tool calls
    server_id: Mapped[int | None] = mapped_column(
        ForeignKey("mcp_servers.id", ondelete="SET NULL"), default=None
    )
    #: kind-specific settings: retrieval {retrieval_id, answer}; script {code};
    #: mcp {remote_name, input_schema}
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)

    parameters: Mapped[list[ToolParameter]] = relationship(
        order_by="ToolParameter.position",
        cascade="all, delete-orphan",
        lazy="selectin",
    )
    server: Mapped[McpServer | None] = relationship(lazy="selectin")


class ToolParameter(Base):
    """One typed parameter of a tool: a property of the JSON Schema the model is offered."""

    __tablename__ = "tool_parameters"
    __table_args__ = (UniqueConstraint("tool_id", "name"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    tool_id: Mapped[int] = mapped_column(ForeignKey("tools.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    #: JSON Schema type: string, number, integer, boolean, array, object
    type: Mapped[str] = mapped_column(String(16), default="string")
    #: for arrays: the JSON Schema of one item
    items: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    required: Mapped[bool] = mapped_column(default=True)
    enum: Mapped[list[Any] | None] = mapped_column(default=None)
    #: for objects: the JSON Schema properties
    properties: Mapped[dict[str, Any] | None] = mapped_column(default=None)


class MetadataFilter(TimestampMixin, Base):
    """A filter definition retrieval applies (POST /tools/update_filters/): retrieval tools
    whose retrieval_id equals metadata_config_id offer it to the model as an optional
    parameter, and pass the chosen value to the backend."""

    __tablename__ = "metadata_filters"
    __table_args__ = (UniqueConstraint("workspace_id", "metadata_config_id", "name"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    metadata_config_id: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    #: string, number, integer, boolean, date, enum
    type: Mapped[str] = mapped_column(String(16), default="string")
    possible_values: Mapped[list[str]] = mapped_column(default=list)
    format: Mapped[str] = mapped_column(String(64), default="")
