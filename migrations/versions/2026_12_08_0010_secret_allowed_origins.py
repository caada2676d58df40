"""secrets: allowed_origins, the origins a secret's value may be sent to (null: any origin)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 01:20:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


# Plain ALTER TABLE on both backends (SQLite adds and drops a column in place): a batch
# operation would copy the table on SQLite and lose its expression index (the unique lower(name)).


def upgrade() -> None:
    op.add_column("secrets", sa.Column("allowed_origins", JSON, nullable=True))


def downgrade() -> None:
    op.drop_column("secrets", "allowed_origins")
