"""Rate limits leave the database: counts live in Redis (several processes) or in memory

The database backend of the rate limiter cost one transaction per request; its table of
counters goes. Its rows were counts of the current window only (an UNLOGGED table, never
backed up), so nothing of value is dropped. A downgrade creates the table again, empty.

Revision ID: e5a1c3f08d27
Revises: b41e5c7d2a90
Create Date: 2026-12-07 16:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e5a1c3f08d27"
down_revision: str | None = "b41e5c7d2a90"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_table("rate_limit_windows")


def downgrade() -> None:
    op.create_table(
        "rate_limit_windows",
        sa.Column("client_id", sa.String(length=300), nullable=False),
        sa.Column("window", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "window", name=op.f("pk_rate_limit_windows")),
        prefixes=["UNLOGGED"] if op.get_bind().dialect.name == "postgresql" else [],
    )
