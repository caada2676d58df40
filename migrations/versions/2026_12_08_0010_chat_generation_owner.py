"""chats.owner_id: the process that runs a chat's generation (its heartbeat decides whether the
generation still runs)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 01:20:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("chats") as batch:
        batch.add_column(sa.Column("owner_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("chats") as batch:
        batch.drop_column("owner_id")
