"""LZ4 compression for the documents stored with each screening (PostgreSQL 14 and later)

A determination is about 16 KB of JSON, which PostgreSQL compresses out of line (TOAST) when a
screening is stored. With its default method, pglz, that compression is most of the database's
work for a stored screening: measured on PostgreSQL 15, an insert of a screening's answers and
determination cost the server 405 µs of CPU with pglz and 240 µs with lz4. The method applies to
values written from now on; stored values keep theirs and read back the same. Servers built
without lz4, and versions before 14, keep pglz (nothing changes on SQLite).

Revision ID: 7e1f0b3c9a42
Revises: c204c6fdd9c1
Create Date: 2026-12-01 15:30:00.000000
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "7e1f0b3c9a42"
down_revision: str | None = "c204c6fdd9c1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (("screenings", "determination"), ("screenings", "answers"))


def _supports_lz4() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    methods = bind.execute(
        text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
    ).scalar()
    return methods is not None and "lz4" in methods


def _compress_with(method: str) -> None:
    for table, column in COLUMNS:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION {method}")


def upgrade() -> None:
    if _supports_lz4():
        _compress_with("lz4")


def downgrade() -> None:
    if _supports_lz4():
        _compress_with("pglz")
