"""tools: typed parameters as rows, MCP servers, metadata filters;
tools.portal_available and tools.server_id

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 17:27:52.640358+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "mcp_servers",
        sa.Column("id", ID, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("headers", JSON, nullable=False),
        sa.Column("protocol_version", sa.String(length=32), nullable=False),
        sa.Column("client_name", sa.String(length=255), nullable=False),
        sa.Column("client_version", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_mcp_servers_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mcp_servers")),
    )
    op.create_index(
        "ix_mcp_servers_workspace_id_id", "mcp_servers", ["workspace_id", "id"], unique=False
    )
    op.create_table(
        "metadata_filters",
        sa.Column("id", ID, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("metadata_config_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("possible_values", JSON, nullable=False),
        sa.Column("format", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_metadata_filters_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metadata_filters")),
        sa.UniqueConstraint(
            "workspace_id",
            "metadata_config_id",
            "name",
            name=op.f("uq_metadata_filters_workspace_id_metadata_config_id_name"),
        ),
    )
    op.create_table(
        "tool_parameters",
        sa.Column("id", ID, nullable=False),
        sa.Column("tool_id", ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("items", JSON, nullable=True),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("enum", JSON, nullable=True),
        sa.Column("properties", JSON, nullable=True),
        sa.ForeignKeyConstraint(
            ["tool_id"],
            ["tools.id"],
            name=op.f("fk_tool_parameters_tool_id_tools"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tool_parameters")),
        sa.UniqueConstraint("tool_id", "name", name=op.f("uq_tool_parameters_tool_id_name")),
    )
    with op.batch_alter_table("tools") as batch:
        batch.add_column(
            sa.Column("portal_available", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.add_column(sa.Column("server_id", ID, nullable=True))
        batch.create_foreign_key(
            op.f("fk_tools_server_id_mcp_servers"),
            "mcp_servers",
            ["server_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("tools") as batch:
        batch.alter_column("portal_available", server_default=None)
    op.create_index("ix_tools_server_id", "tools", ["server_id"], unique=False)
    op.create_index(
        "ix_tools_workspace_id_kind_id", "tools", ["workspace_id", "kind", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_tools_workspace_id_kind_id", table_name="tools")
    op.drop_index("ix_tools_server_id", table_name="tools")
    with op.batch_alter_table("tools") as batch:
        batch.drop_constraint(op.f("fk_tools_server_id_mcp_servers"), type_="foreignkey")
        batch.drop_column("server_id")
        batch.drop_column("portal_available")
    op.drop_table("tool_parameters")
    op.drop_table("metadata_filters")
    op.drop_index("ix_mcp_servers_workspace_id_id", table_name="mcp_servers")
    op.drop_table("mcp_servers")
