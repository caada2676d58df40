"""chats: a partial index for the sweeper's look-up of PROCESSING chats with expired leases

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 17:10:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROCESSING = sa.text("execution_status = 'PROCESSING'")


def upgrade() -> None:
    op.create_index(
        "ix_chats_processing_lease",
        "chats",
        ["lease_expires_at"],
        postgresql_where=PROCESSING,
        sqlite_where=PROCESSING,
    )


def downgrade() -> None:
    op.drop_index("ix_chats_processing_lease", table_name="chats")
