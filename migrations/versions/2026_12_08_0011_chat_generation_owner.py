"""chats.owner_id: the process that runs a chat's generation (its heartbeat decides whether the
generation still runs)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 01:20:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ALTER TABLE on both backends (a batch operation would rebuild the table on SQLite).
    op.add_column("chats", sa.Column("owner_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column("chats", "owner_id")
