"""threads: chat sessions, workspace chat settings, moderation verdicts on messages and their
aggregates on chats

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 18:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
STAMPS = ("created_at", "updated_at")


def _stamps() -> list[sa.Column[object]]:
    return [sa.Column(name, sa.DateTime(timezone=True), nullable=False) for name in STAMPS]


def upgrade() -> None:
    op.create_table(
        "chat_sessions",
        sa.Column("id", ID, nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("principal_id", ID, nullable=False),
        sa.Column("user_uuid", sa.String(length=36), nullable=False),
        *_stamps(),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
            name=op.f("fk_chat_sessions_principal_id_principals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_chat_sessions_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_sessions")),
        sa.UniqueConstraint(
            "workspace_id", "principal_id", name=op.f("uq_chat_sessions_workspace_id_principal_id")
        ),
        sa.UniqueConstraint("user_uuid", name=op.f("uq_chat_sessions_user_uuid")),
        sa.UniqueConstraint("uuid", name=op.f("uq_chat_sessions_uuid")),
    )
    op.create_table(
        "chat_settings",
        sa.Column("id", ID, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("default_assistant_id", ID, nullable=True),
        sa.Column("moderation_policy", JSON, nullable=True),
        *_stamps(),
        sa.ForeignKeyConstraint(
            ["default_assistant_id"],
            ["assistants.id"],
            name=op.f("fk_chat_settings_default_assistant_id_assistants"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_chat_settings_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_settings")),
        sa.UniqueConstraint("workspace_id", name=op.f("uq_chat_settings_workspace_id")),
    )

    # New NOT NULL columns get server defaults, so existing rows read as "not flagged".
    op.add_column(
        "chats", sa.Column("is_flagged", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.add_column(
        "chats", sa.Column("max_severity", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column("chats", sa.Column("flags", JSON, server_default="[]", nullable=False))
    op.create_index("ix_chats_workspace_id_updated_at", "chats", ["workspace_id", "updated_at"])

    op.add_column(
        "messages", sa.Column("is_flagged", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.add_column(
        "messages",
        sa.Column("severity", sa.String(length=16), server_default="none", nullable=False),
    )
    op.add_column(
        "messages", sa.Column("injection_categories", JSON, server_default="[]", nullable=False)
    )
    op.add_column(
        "messages", sa.Column("pii_categories", JSON, server_default="[]", nullable=False)
    )
    op.add_column(
        "messages",
        sa.Column("action_taken", sa.String(length=16), server_default="none", nullable=False),
    )
    op.add_column("messages", sa.Column("moderation", JSON, nullable=True))
    op.add_column("messages", sa.Column("redacted_content", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        for name in (
            "redacted_content",
            "moderation",
            "action_taken",
            "pii_categories",
            "injection_categories",
            "severity",
            "is_flagged",
        ):
            batch.drop_column(name)
    op.drop_index("ix_chats_workspace_id_updated_at", table_name="chats")
    with op.batch_alter_table("chats") as batch:
        for name in ("flags", "max_severity", "is_flagged"):
            batch.drop_column(name)
    op.drop_table("chat_settings")
    op.drop_table("chat_sessions")
