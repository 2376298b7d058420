"""Alembic environment: async, reading the same settings as the service.

A caller may hand over an open connection in ``config.attributes["connection"]`` (the service
does, to migrate the embedded database on start); otherwise the URL comes from
CARELEVEL_DATABASE_URL.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from app.audit import models as audit_tables
from app.cds_hooks import models as cds_tables
from app.kernel.db import Base, UtcDateTime, create_engine
from app.kernel.settings import Settings
from app.programs import models as program_tables
from app.referrals import models as referral_tables
from app.retention import models as retention_tables
from app.rulesets import models as rule_set_tables
from app.screenings import models as screening_tables
from app.security import models as security_tables

# Importing the model modules registers their tables on Base.metadata.
TABLE_MODULES = (
    audit_tables,
    cds_tables,
    program_tables,
    referral_tables,
    retention_tables,
    rule_set_tables,
    screening_tables,
    security_tables,
)
target_metadata = Base.metadata


def render_item(kind: str, item: Any, autogen_context: Any) -> str | bool:
    """Render our timestamp type as the plain SQL type it stores (no app import in revisions)."""
    if kind == "type" and isinstance(item, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def partitions_of_tables(connection: Connection) -> frozenset[str]:
    """PostgreSQL's partitions (screenings_p2026_12, …): made and dropped by pg_partman's
    maintenance (app/retention), never by migrations, and so left out of the comparison with
    the models."""
    if connection.dialect.name != "postgresql":
        return frozenset()
    found = connection.exec_driver_sql(
        "SELECT relname FROM pg_class WHERE relispartition AND relkind IN ('r', 'p')"
    )
    return frozenset(found.scalars())


def run_with(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # SQLite changes a table by copying it into a new one; with foreign keys enforced, the
        # copy would fire the ON DELETE actions of every table that references it. Checked
        # again below, once the migrations have run.
        began = not connection.in_transaction()
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        if began:
            connection.commit()  # else Alembic would join this transaction and never commit

    def not_a_partition(name: str | None, kind: str, _parents: Any) -> bool:
        return kind != "table" or name not in partitions_of_tables(connection)

    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_name=not_a_partition,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()
    if sqlite:
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        if connection.in_transaction() and began:
            connection.commit()
        if broken:
            raise RuntimeError(f"foreign keys broken by the migration in tables {broken}")


async def run_online() -> None:
    engine = create_engine(Settings())
    async with engine.connect() as connection:
        await connection.run_sync(run_with)
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Offline (SQL script) migrations are not supported; run against a database.")

connection = context.config.attributes.get("connection")
if connection is not None:
    run_with(connection)
else:
    asyncio.run(run_online())
