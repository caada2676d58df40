"""artifacts v5: the resource library, bundle revisions and their attachments, drafts, and the
chat analytics (materialized views on PostgreSQL, tables on SQLite)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 17:51:31.491647+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
KINDS = (
    "persona",
    "document",
    "problem_statement",
    "objective",
    "image",
    "video",
    "question",
    "option",
    "field",
    "parameter_field",
    "parameter",
    "scenario",
    "flag",
    "department",
    "name",
    "description",
)
KIND_CHECK = "kind IN (" + ", ".join(f"'{kind}'" for kind in KINDS) + ")"

# The analytics, as of this revision. PostgreSQL keeps them as materialized views, refreshed
# CONCURRENTLY (which needs the unique indexes below); SQLite as tables that the service empties
# and fills in one transaction with the same queries (chatsvc.artifacts.analytics). A later
# migration that changes a column these read must drop and recreate the views.
CHAT_STATS = """
SELECT c.id AS chat_id,
       c.workspace_id,
       c.assistant_id,
       c.principal_id,
       count(m.id) AS message_count,
       coalesce(sum(CASE WHEN m.role = 'user' THEN 1 ELSE 0 END), 0) AS user_message_count,
       coalesce(sum(CASE WHEN m.role = 'assistant' THEN 1 ELSE 0 END), 0)
           AS assistant_message_count,
       min(m.created_at) AS first_message_at,
       max(m.created_at) AS last_message_at
FROM chats c
LEFT OUTER JOIN messages m ON m.chat_id = c.id AND m.visible IS true
GROUP BY c.id, c.workspace_id, c.assistant_id, c.principal_id
"""
ASSISTANT_STATS = """
SELECT a.id AS assistant_id,
       a.workspace_id,
       count(DISTINCT c.id) AS chat_count,
       count(m.id) AS message_count,
       coalesce(sum(CASE WHEN m.role = 'user' THEN 1 ELSE 0 END), 0) AS user_message_count,
       coalesce(sum(CASE WHEN m.role = 'assistant' THEN 1 ELSE 0 END), 0)
           AS assistant_message_count,
       count(DISTINCT CASE WHEN c."like" IS true THEN c.id END) AS liked_chat_count,
       count(DISTINCT CASE WHEN c."like" IS false THEN c.id END) AS disliked_chat_count,
       max(m.created_at) AS last_message_at
FROM assistants a
LEFT OUTER JOIN chats c ON c.assistant_id = a.id
LEFT OUTER JOIN messages m ON m.chat_id = c.id AND m.visible IS true
GROUP BY a.id, a.workspace_id
"""


def _stamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "artifact_resources",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("created_by", ID, nullable=True),
        *_stamps(),
        sa.CheckConstraint(KIND_CHECK, name=op.f("ck_artifact_resources_resource_kind")),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["principals.id"],
            name=op.f("fk_artifact_resources_created_by_principals"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_artifact_resources_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_artifact_resources")),
    )
    op.create_index(
        "ix_artifact_resources_workspace_id_kind_name",
        "artifact_resources",
        ["workspace_id", "kind", "name"],
        unique=False,
    )
    op.create_table(
        "artifact_bundles",
        sa.Column("id", ID, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("assistant_id", ID, nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("draft_id", sa.String(length=36), nullable=True),
        sa.Column("published_by", ID, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["assistant_id"],
            ["assistants.id"],
            name=op.f("fk_artifact_bundles_assistant_id_assistants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["published_by"],
            ["principals.id"],
            name=op.f("fk_artifact_bundles_published_by_principals"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_artifact_bundles_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_artifact_bundles")),
        sa.UniqueConstraint(
            "assistant_id", "revision", name=op.f("uq_artifact_bundles_assistant_id_revision")
        ),
    )
    op.create_table(
        "artifact_attachments",
        sa.Column("bundle_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("resource_id", sa.String(length=36), nullable=False),
        sa.CheckConstraint(KIND_CHECK, name=op.f("ck_artifact_attachments_resource_kind")),
        sa.ForeignKeyConstraint(
            ["bundle_id"],
            ["artifact_bundles.id"],
            name=op.f("fk_artifact_attachments_bundle_id_artifact_bundles"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["artifact_resources.id"],
            name=op.f("fk_artifact_attachments_resource_id_artifact_resources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "bundle_id", "kind", "position", name=op.f("pk_artifact_attachments")
        ),
        sa.UniqueConstraint(
            "bundle_id", "resource_id", name=op.f("uq_artifact_attachments_bundle_id_resource_id")
        ),
    )
    op.create_index(
        "ix_artifact_attachments_resource_id",
        "artifact_attachments",
        ["resource_id"],
        unique=False,
    )
    op.create_table(
        "artifact_drafts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("assistant_id", ID, nullable=False),
        sa.Column("principal_id", ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("base_revision", sa.Integer(), nullable=False),
        sa.Column("form_state", JSON, nullable=False),
        *_stamps(),
        sa.ForeignKeyConstraint(
            ["assistant_id"],
            ["assistants.id"],
            name=op.f("fk_artifact_drafts_assistant_id_assistants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
            name=op.f("fk_artifact_drafts_principal_id_principals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_artifact_drafts_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_artifact_drafts")),
        sa.UniqueConstraint(
            "principal_id",
            "assistant_id",
            name=op.f("uq_artifact_drafts_principal_id_assistant_id"),
        ),
    )
    op.create_index(
        "ix_artifact_drafts_workspace_id_principal_id",
        "artifact_drafts",
        ["workspace_id", "principal_id"],
        unique=False,
    )
    op.create_table(
        "artifact_analytics_refreshes",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_artifact_analytics_refreshes")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE MATERIALIZED VIEW artifact_chat_stats AS {CHAT_STATS}")
        op.execute(f"CREATE MATERIALIZED VIEW artifact_assistant_stats AS {ASSISTANT_STATS}")
        # REFRESH ... CONCURRENTLY needs a unique index over all rows of each view.
        op.execute(
            "CREATE UNIQUE INDEX uq_artifact_chat_stats_chat_id ON artifact_chat_stats (chat_id)"
        )
        op.execute(
            "CREATE UNIQUE INDEX uq_artifact_assistant_stats_assistant_id "
            "ON artifact_assistant_stats (assistant_id)"
        )
        # Lookups by the other keys of a read.
        op.execute(
            "CREATE INDEX ix_artifact_assistant_stats_workspace_id "
            "ON artifact_assistant_stats (workspace_id)"
        )
    else:
        op.create_table(
            "artifact_chat_stats",
            sa.Column("chat_id", sa.Integer(), nullable=False),
            sa.Column("workspace_id", sa.Integer(), nullable=False),
            sa.Column("assistant_id", sa.Integer(), nullable=False),
            sa.Column("principal_id", sa.Integer(), nullable=True),
            sa.Column("message_count", sa.Integer(), nullable=False),
            sa.Column("user_message_count", sa.Integer(), nullable=False),
            sa.Column("assistant_message_count", sa.Integer(), nullable=False),
            sa.Column("first_message_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("last_message_at", sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("chat_id", name="pk_artifact_chat_stats"),
        )
        op.create_table(
            "artifact_assistant_stats",
            sa.Column("assistant_id", sa.Integer(), nullable=False),
            sa.Column("workspace_id", sa.Integer(), nullable=False),
            sa.Column("chat_count", sa.Integer(), nullable=False),
            sa.Column("message_count", sa.Integer(), nullable=False),
            sa.Column("user_message_count", sa.Integer(), nullable=False),
            sa.Column("assistant_message_count", sa.Integer(), nullable=False),
            sa.Column("liked_chat_count", sa.Integer(), nullable=False),
            sa.Column("disliked_chat_count", sa.Integer(), nullable=False),
            sa.Column("last_message_at", sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("assistant_id", name="pk_artifact_assistant_stats"),
        )
        # Filled now, as PostgreSQL's views are by their creation.
        op.execute(f"INSERT INTO artifact_chat_stats {CHAT_STATS}")
        op.execute(f"INSERT INTO artifact_assistant_stats {ASSISTANT_STATS}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP MATERIALIZED VIEW IF EXISTS artifact_assistant_stats")
        op.execute("DROP MATERIALIZED VIEW IF EXISTS artifact_chat_stats")
    else:
        op.drop_table("artifact_assistant_stats")
        op.drop_table("artifact_chat_stats")
    op.drop_table("artifact_analytics_refreshes")
    op.drop_index("ix_artifact_drafts_workspace_id_principal_id", table_name="artifact_drafts")
    op.drop_table("artifact_drafts")
    op.drop_index("ix_artifact_attachments_resource_id", table_name="artifact_attachments")
    op.drop_table("artifact_attachments")
    op.drop_table("artifact_bundles")
    op.drop_index("ix_artifact_resources_workspace_id_kind_name", table_name="artifact_resources")
    op.drop_table("artifact_resources")
