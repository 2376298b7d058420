"""The monthly partitions of screenings and audit events on PostgreSQL, which pg_partman 4
manages (``partman.part_config``, set up by migration 3c8f1d6a9b57): listed, given the retention
and the months ahead that carelevel decides, maintained (the months ahead created, whole months
past retention dropped) and emptied of the rows that landed in the default partition. SQLite
keeps plain tables: each is one partition without bounds, never dropped, and there is nothing
to maintain.

pg_partman computes months in the session's time zone: every call runs in UTC, the time zone
of carelevel's months. Creating or dropping a partition takes a lock on the whole table for an
instant; each call waits for it at most ``LOCK_TIMEOUT`` (requests running on the table finish
first), so a busy table delays the change rather than the requests that queue behind it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TypeVar

from sqlalchemy import bindparam, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.kernel.db import UtcDateTime
from app.retention.plan import TABLES, Partition, Stored, parse_partition

# Each table's partition key.
PARTITION_KEYS: Mapping[Stored, str] = {"screenings": "created_at", "audit_events": "recorded_at"}

LOCK_TIMEOUT = "5s"
LOCK_ATTEMPTS = 3
# Serialises carelevel's changes to partitions across processes: a transaction-level advisory
# lock, released at commit or rollback (a session-level one would stay behind on a server
# connection that a pooler in transaction mode hands to another client).
_CHANGE_LOCK_ID = 0x7265_7465  # "rete"
# pg_partman's name of a table: schema-qualified.
_PARENT = "current_schema() || '.' || :table"

T = TypeVar("T")

# pg_partman makes a partition LIKE its parent without the columns' compression, so the stored
# documents of a new month would be compressed with pglz, not the parent's LZ4 (measured: 690
# against 453 µs of database CPU per stored screening). Each partition whose column differs is
# given its parent's method; run after every change to partitions, it alters new months only.
COMPRESS_LIKE_PARENTS = """
DO $$
DECLARE change record;
BEGIN
  FOR change IN
    SELECT format('ALTER TABLE %s ALTER COLUMN %I SET COMPRESSION %s', i.inhrelid::regclass,
                  child.attname, CASE parent.attcompression WHEN 'l' THEN 'lz4' ELSE 'pglz' END)
             AS statement
    FROM pg_inherits i
    JOIN pg_attribute parent ON parent.attrelid = i.inhparent AND parent.attnum > 0
      AND NOT parent.attisdropped AND parent.attcompression <> ''
    JOIN pg_attribute child ON child.attrelid = i.inhrelid AND child.attname = parent.attname
    WHERE i.inhparent IN ('screenings'::regclass, 'audit_events'::regclass)
      AND child.attcompression <> parent.attcompression
  LOOP
    EXECUTE change.statement;
  END LOOP;
END $$
"""


def _name(connection: AsyncConnection, identifier: str) -> str:
    return connection.dialect.identifier_preparer.quote(identifier)


def _is_postgres(connection: AsyncConnection) -> bool:
    return connection.dialect.name == "postgresql"


async def list_partitions(connection: AsyncConnection, table: Stored) -> list[Partition]:
    """The partitions of ``table``, by name (SQLite: the table itself, unbounded)."""
    if not _is_postgres(connection):
        return [Partition(table, None, None)]
    async with connection.begin():
        return await _partitions(connection, table)


async def _partitions(connection: AsyncConnection, table: Stored) -> list[Partition]:
    # Bounds are printed in the session's time zone: read them in UTC.
    await connection.execute(text("SELECT set_config('TimeZone', 'UTC', true)"))
    rows = await connection.execute(
        text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(:table) "
            "ORDER BY c.relname"
        ),
        {"table": table},
    )
    return [parse_partition(name, bound) for name, bound in rows]


async def estimated_rows(connection: AsyncConnection, table: Stored) -> dict[str, int | None]:
    """The planner's estimate of each partition's rows (None before the first ANALYZE), read
    from the catalogue rather than counted."""
    if not _is_postgres(connection):
        return {table: None}
    async with connection.begin():
        rows = await connection.execute(
            text(
                "SELECT c.relname, c.reltuples FROM pg_inherits i JOIN pg_class c "
                "ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(:table)"
            ),
            {"table": table},
        )
        return {name: None if tuples < 0 else int(tuples) for name, tuples in rows}


async def count_rows(connection: AsyncConnection, partition: str) -> int:
    async with connection.begin():
        counted = await connection.scalar(
            text(f"SELECT count(*) FROM {_name(connection, partition)}")
        )
        return int(counted or 0)


async def configure(
    connection: AsyncConnection, retention_years: dict[Stored, int], months_ahead: int
) -> None:
    """Give pg_partman each table's retention (whole months older than it are dropped by
    ``partman.run_maintenance``, whoever runs it) and the months it keeps made ahead."""
    if not _is_postgres(connection):
        return
    async with connection.begin():
        for table in TABLES:
            await connection.execute(
                text(
                    "UPDATE partman.part_config SET retention = :retention, premake = :ahead, "
                    f"retention_keep_table = false WHERE parent_table = {_PARENT}"
                ),
                {
                    "retention": f"{retention_years[table]} years",
                    "ahead": months_ahead,
                    "table": table,
                },
            )


async def run_maintenance(connection: AsyncConnection) -> list[str]:
    """``partman.run_maintenance`` of each table: the months ahead created, and the months past
    its retention dropped; the partitions it created."""
    if not _is_postgres(connection):
        return []
    created: list[str] = []
    for table in TABLES:

        async def maintain(table: Stored = table) -> list[str]:
            before = {p.name for p in await _partitions(connection, table)}
            await connection.execute(
                text(f"SELECT partman.run_maintenance(p_parent_table => {_PARENT})"),
                {"table": table},
            )
            return [p.name for p in await _partitions(connection, table) if p.name not in before]

        created += await _changing(connection, maintain)
    return created


async def move_out_of_default(connection: AsyncConnection) -> int:
    """Move the rows that landed in each table's default partition (stored for a month that had
    no partition) into their month's, which ``partman.partition_data_time`` creates: a month per
    transaction. The rows moved."""
    if not _is_postgres(connection):
        return 0
    moved = 0
    for table in TABLES:

        async def move_a_month(table: Stored = table) -> list[int]:
            rows = await connection.scalar(
                text(f"SELECT partman.partition_data_time(p_parent_table => {_PARENT})"),
                {"table": table},
            )
            return [int(rows or 0)]

        while (month := (await _changing(connection, move_a_month))[0]) > 0:
            moved += month
    return moved


async def drop_expired(
    connection: AsyncConnection, table: Stored, now: datetime, expected: list[str]
) -> list[tuple[str, int]]:
    """Drop, with ``partman.drop_partition_time`` at ``now``, the partitions of ``table`` past
    the retention it was given (``configure``); each partition dropped with its rows, counted
    beforehand among ``expected`` (those the plan says go). Nothing on SQLite."""
    if not _is_postgres(connection):
        return []

    async def drop() -> list[tuple[str, int]]:
        counted = {}
        for name in expected:
            rows = await connection.scalar(text(f"SELECT count(*) FROM {_name(connection, name)}"))
            counted[name] = int(rows or 0)
        before = {p.name for p in await _partitions(connection, table)}
        statement = text(
            f"SELECT partman.drop_partition_time({_PARENT}, p_keep_table => false, "
            "p_reference_timestamp => :now)"
        ).bindparams(bindparam("now", type_=UtcDateTime()))
        await connection.execute(statement, {"table": table, "now": now})
        after = {p.name for p in await _partitions(connection, table)}
        return [(name, counted.get(name, 0)) for name in sorted(before - after)]

    return await _changing(connection, drop)


async def _changing(connection: AsyncConnection, work: Callable[[], Awaitable[list[T]]]) -> list[T]:
    """``work`` in one transaction, in UTC, after every other carelevel process's change to
    partitions, waiting at most LOCK_TIMEOUT for each lock; tried again up to LOCK_ATTEMPTS
    times when a lock could not be had (requests kept the table busy)."""
    for attempt in range(1, LOCK_ATTEMPTS + 1):
        try:
            async with connection.begin():
                await connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
                await connection.execute(text("SET LOCAL TimeZone = 'UTC'"))
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(:id)"), {"id": _CHANGE_LOCK_ID}
                )
                done = await work()
                await connection.execute(text(COMPRESS_LIKE_PARENTS))
                return done
        except DBAPIError as error:
            if attempt == LOCK_ATTEMPTS or not _lock_not_available(error):
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _lock_not_available(error: DBAPIError) -> bool:
    return getattr(error.orig, "sqlstate", None) == "55P03"
