"""chats, messages and reports

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 15:50:13.459091+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:

    op.create_table(
        "chats",
        sa.Column("id", ID, nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("assistant_id", ID, nullable=False),
        sa.Column("principal_id", ID, nullable=True),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("like", sa.Boolean(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("matrix_mode", sa.Boolean(), nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("max_responses", sa.Integer(), nullable=False),
        sa.Column("max_msg_length", sa.Integer(), nullable=False),
        sa.Column("execution_status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("last_msg_num", sa.Integer(), nullable=False),
        sa.Column("responses_count", sa.Integer(), nullable=False),
        sa.Column("ended", sa.Boolean(), nullable=False),
        sa.Column("generation_id", sa.String(length=36), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("is_archived", sa.Boolean(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["assistant_id"], ["assistants.id"], name=op.f("fk_chats_assistant_id_assistants")
        ),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
            name=op.f("fk_chats_principal_id_principals"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_chats_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chats")),
        sa.UniqueConstraint("uuid", name=op.f("uq_chats_uuid")),
        sa.UniqueConstraint(
            "workspace_id", "idempotency_key", name=op.f("uq_chats_workspace_id_idempotency_key")
        ),
    )
    op.create_index(op.f("ix_chats_principal_id"), "chats", ["principal_id"], unique=False)
    op.create_index(
        "ix_chats_workspace_id_assistant_id_id",
        "chats",
        ["workspace_id", "assistant_id", "id"],
        unique=False,
    )
    op.create_table(
        "messages",
        sa.Column("id", ID, nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("chat_id", ID, nullable=False),
        sa.Column("msg_num", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("usr_msg_num", sa.Integer(), nullable=True),
        sa.Column("fixed", sa.String(length=255), nullable=True),
        sa.Column("references", JSON, nullable=False),
        sa.Column("tool_call_id", sa.String(length=255), nullable=True),
        sa.Column("function_name", sa.String(length=255), nullable=True),
        sa.Column("parameters", JSON, nullable=True),
        sa.Column("like", sa.Boolean(), nullable=True),
        sa.Column("visible", sa.Boolean(), nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("prompt", JSON, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("generation_id", sa.String(length=36), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("sender_id", ID, nullable=True),
        sa.Column("replaces_id", ID, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["chat_id"], ["chats.id"], name=op.f("fk_messages_chat_id_chats"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["replaces_id"],
            ["messages.id"],
            name=op.f("fk_messages_replaces_id_messages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["sender_id"],
            ["principals.id"],
            name=op.f("fk_messages_sender_id_principals"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.UniqueConstraint(
            "chat_id", "idempotency_key", name=op.f("uq_messages_chat_id_idempotency_key")
        ),
        sa.UniqueConstraint("chat_id", "msg_num", name=op.f("uq_messages_chat_id_msg_num")),
        sa.UniqueConstraint("uuid", name=op.f("uq_messages_uuid")),
    )
    op.create_table(
        "reports",
        sa.Column("id", ID, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("chat_id", ID, nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("topic", sa.String(length=255), nullable=False),
        sa.Column("comments", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["chat_id"], ["chats.id"], name=op.f("fk_reports_chat_id_chats"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_reports_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
    )
    op.create_index(op.f("ix_reports_chat_id"), "reports", ["chat_id"], unique=False)
    op.create_index(
        "ix_reports_workspace_id_created_at",
        "reports",
        ["workspace_id", "created_at"],
        unique=False,
    )


def downgrade() -> None:

    op.drop_index("ix_reports_workspace_id_created_at", table_name="reports")
    op.drop_index(op.f("ix_reports_chat_id"), table_name="reports")
    op.drop_table("reports")
    op.drop_table("messages")
    op.drop_index("ix_chats_workspace_id_assistant_id_id", table_name="chats")
    op.drop_index(op.f("ix_chats_principal_id"), table_name="chats")
    op.drop_table("chats")
