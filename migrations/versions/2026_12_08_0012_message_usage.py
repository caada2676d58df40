"""messages.prompt_tokens, completion_tokens, usage_estimated: the token usage of every answer

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 02:10:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLEs on both backends (a batch operation would rebuild the table on SQLite
    # and lose its expression indexes).
    op.add_column("messages", sa.Column("prompt_tokens", sa.Integer(), nullable=True))
    op.add_column("messages", sa.Column("completion_tokens", sa.Integer(), nullable=True))
    op.add_column(
        "messages",
        sa.Column("usage_estimated", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("messages", "usage_estimated")
    op.drop_column("messages", "completion_tokens")
    op.drop_column("messages", "prompt_tokens")
