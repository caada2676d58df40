"""messages-v1: external ids and sub-threads on messages, ticket references on chats

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 19:00:00+00:00

Additive only, and no table rebuild on SQLite: nullable columns, and a unique index rather than a
unique constraint (adding a constraint makes alembic's batch mode copy and drop the table, and
SQLite's DROP TABLE runs the ON DELETE actions of the tables that refer to it).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("messages", sa.Column("external_id", sa.String(length=250), nullable=True))
    op.add_column("messages", sa.Column("thread_key", sa.String(length=36), nullable=True))
    op.create_index(
        "ix_messages_chat_id_external_id", "messages", ["chat_id", "external_id"], unique=True
    )
    op.create_index(
        "ix_messages_chat_id_thread_key_msg_num", "messages", ["chat_id", "thread_key", "msg_num"]
    )
    op.create_table(
        "chat_tickets",
        sa.Column("chat_id", ID, nullable=False),
        sa.Column("ticket_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["chat_id"],
            ["chats.id"],
            name=op.f("fk_chat_tickets_chat_id_chats"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("chat_id", "ticket_id", name=op.f("pk_chat_tickets")),
    )
    op.create_index(op.f("ix_chat_tickets_ticket_id"), "chat_tickets", ["ticket_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_chat_tickets_ticket_id"), table_name="chat_tickets")
    op.drop_table("chat_tickets")
    op.drop_index("ix_messages_chat_id_thread_key_msg_num", table_name="messages")
    op.drop_index("ix_messages_chat_id_external_id", table_name="messages")
    # In place on SQLite too (3.35+): nothing indexes or refers to these columns any more.
    op.drop_column("messages", "thread_key")
    op.drop_column("messages", "external_id")
