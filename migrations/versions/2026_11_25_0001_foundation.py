"""foundation: workspaces, principals, API keys, tools, assistants and their knowledge

Revision ID: 0001
Revises:
Create Date: 2026-11-25 15:30:40.211959+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:

    op.create_table(
        "workspaces",
        sa.Column("id", ID, nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspaces")),
        sa.UniqueConstraint("slug", name=op.f("uq_workspaces_slug")),
    )
    op.create_table(
        "assistants",
        sa.Column("id", ID, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("info", sa.String(length=255), nullable=True),
        sa.Column("system_prompt", sa.Text(), nullable=False),
        sa.Column("generation_config", sa.String(length=100), nullable=False),
        sa.Column("generation_config_pretools", sa.String(length=100), nullable=True),
        sa.Column("temperature", sa.Double(), nullable=False),
        sa.Column("max_responses", sa.Integer(), nullable=False),
        sa.Column("max_msg_length", sa.Integer(), nullable=False),
        sa.Column("max_consecutive_tool_calls", sa.Integer(), nullable=False),
        sa.Column("initial_message", sa.Text(), nullable=True),
        sa.Column("end_message", sa.Text(), nullable=True),
        sa.Column("add_to_user_message", sa.Text(), nullable=True),
        sa.Column("not_info_message", sa.Text(), nullable=True),
        sa.Column("strategy_to_optimize_tokens", sa.String(length=32), nullable=False),
        sa.Column("matrix_mode_available", sa.Boolean(), nullable=False),
        sa.Column("faq_available", sa.Boolean(), nullable=False),
        sa.Column("fixed_available", sa.Boolean(), nullable=False),
        sa.Column("lessons_available", sa.Boolean(), nullable=False),
        sa.Column("realtime_available", sa.Boolean(), nullable=False),
        sa.Column("streaming_available", sa.Boolean(), nullable=False),
        sa.Column("colors", JSON, nullable=True),
        sa.Column("logo", sa.String(length=2048), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_assistants_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assistants")),
    )
    op.create_index("ix_assistants_workspace_id_id", "assistants", ["workspace_id", "id"])
    op.create_table(
        "principals",
        sa.Column("id", ID, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("username", sa.String(length=150), nullable=False),
        sa.Column("full_name", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_principals_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_principals")),
        sa.UniqueConstraint(
            "workspace_id", "username", name=op.f("uq_principals_workspace_id_username")
        ),
    )
    op.create_index(
        op.f("ix_principals_workspace_id"), "principals", ["workspace_id"], unique=False
    )
    op.create_table(
        "tools",
        sa.Column("id", ID, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("show_tool_message", sa.Boolean(), nullable=False),
        sa.Column("show_assistant_message", sa.Boolean(), nullable=False),
        sa.Column("edit_available", sa.Boolean(), nullable=False),
        sa.Column("config", JSON, nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_tools_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tools")),
    )
    op.create_index(op.f("ix_tools_workspace_id"), "tools", ["workspace_id"], unique=False)
    op.create_table(
        "api_keys",
        sa.Column("id", ID, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("principal_id", ID, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
            name=op.f("fk_api_keys_principal_id_principals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_api_keys_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index(op.f("ix_api_keys_principal_id"), "api_keys", ["principal_id"], unique=False)
    op.create_index(op.f("ix_api_keys_workspace_id"), "api_keys", ["workspace_id"], unique=False)
    op.create_table(
        "assistant_tools",
        sa.Column("assistant_id", ID, nullable=False),
        sa.Column("slot", sa.String(length=8), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("tool_id", ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["assistant_id"],
            ["assistants.id"],
            name=op.f("fk_assistant_tools_assistant_id_assistants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tool_id"],
            ["tools.id"],
            name=op.f("fk_assistant_tools_tool_id_tools"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "assistant_id", "slot", "position", name=op.f("pk_assistant_tools")
        ),
    )
    op.create_index(
        op.f("ix_assistant_tools_tool_id"), "assistant_tools", ["tool_id"], unique=False
    )
    op.create_table(
        "common_questions",
        sa.Column("id", ID, nullable=False),
        sa.Column("assistant_id", ID, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("additional_metadata", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["assistant_id"],
            ["assistants.id"],
            name=op.f("fk_common_questions_assistant_id_assistants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_common_questions")),
    )
    op.create_index(
        "ix_common_questions_assistant_id_id", "common_questions", ["assistant_id", "id"]
    )
    op.create_table(
        "fixed_responses",
        sa.Column("topic", sa.String(length=255), nullable=False),
        sa.Column("id", ID, nullable=False),
        sa.Column("assistant_id", ID, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("additional_metadata", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["assistant_id"],
            ["assistants.id"],
            name=op.f("fk_fixed_responses_assistant_id_assistants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fixed_responses")),
    )
    op.create_index("ix_fixed_responses_assistant_id_id", "fixed_responses", ["assistant_id", "id"])
    op.create_table(
        "lessons",
        sa.Column("context_of_application", sa.Text(), nullable=False),
        sa.Column("id", ID, nullable=False),
        sa.Column("assistant_id", ID, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("additional_metadata", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["assistant_id"],
            ["assistants.id"],
            name=op.f("fk_lessons_assistant_id_assistants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lessons")),
    )
    op.create_index("ix_lessons_assistant_id_id", "lessons", ["assistant_id", "id"])


def downgrade() -> None:

    op.drop_index("ix_lessons_assistant_id_id", table_name="lessons")
    op.drop_table("lessons")
    op.drop_index("ix_fixed_responses_assistant_id_id", table_name="fixed_responses")
    op.drop_table("fixed_responses")
    op.drop_index("ix_common_questions_assistant_id_id", table_name="common_questions")
    op.drop_table("common_questions")
    op.drop_index(op.f("ix_assistant_tools_tool_id"), table_name="assistant_tools")
    op.drop_table("assistant_tools")
    op.drop_index(op.f("ix_api_keys_workspace_id"), table_name="api_keys")
    op.drop_index(op.f("ix_api_keys_principal_id"), table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_index(op.f("ix_tools_workspace_id"), table_name="tools")
    op.drop_table("tools")
    op.drop_index(op.f("ix_principals_workspace_id"), table_name="principals")
    op.drop_table("principals")
    op.drop_index("ix_assistants_workspace_id_id", table_name="assistants")
    op.drop_table("assistants")
    op.drop_table("workspaces")
