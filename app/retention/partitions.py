"""The monthly partitions of screenings and audit events on PostgreSQL: listed, created ahead of
time (with rows that landed in the default partition moved into their month's), and dropped
once expired. SQLite keeps plain tables: each is one partition without bounds, never dropped,
and there is nothing to create.

Creating or dropping a partition takes a lock on the whole table for an instant; each waits
for it at most ``LOCK_TIMEOUT`` (requests running on the table finish first), so a busy table
delays the change rather than the requests that queue behind it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.kernel.months import Month
from app.retention.plan import (
    TABLES,
    Partition,
    Stored,
    default_partition_name,
    months_to_create,
    parse_partition,
    partition_bounds,
    partition_name,
)

# Each table's partition key.
PARTITION_KEYS: Mapping[Stored, str] = {"screenings": "created_at", "audit_events": "recorded_at"}

LOCK_TIMEOUT = "5s"
LOCK_ATTEMPTS = 3
# Serialises the changes to partitions of every process: a transaction-level advisory lock,
# released at commit or rollback (a session-level one would stay behind on a server connection
# that a pooler in transaction mode hands to another client).
_CHANGE_LOCK_ID = 0x7265_7465  # "rete"


def _name(connection: AsyncConnection, identifier: str) -> str:
    return connection.dialect.identifier_preparer.quote(identifier)


async def list_partitions(connection: AsyncConnection, table: Stored) -> list[Partition]:
    """The partitions of ``table``, by name (SQLite: the table itself, unbounded)."""
    if connection.dialect.name != "postgresql":
        return [Partition(table, None, None)]
    async with connection.begin():
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
    if connection.dialect.name != "postgresql":
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


@dataclass(frozen=True, slots=True)
class CreatedPartition:
    name: str
    moved: int  # rows moved into it out of the default partition


async def ensure_partitions(
    connection: AsyncConnection, now: datetime, months_ahead: int
) -> list[CreatedPartition]:
    """Create what is missing of each table's partitions: the default one, the current month's
    and ``months_ahead`` after it, and one for each month some of whose rows wait in the default
    partition (those rows are moved into it). Nothing on SQLite."""
    if connection.dialect.name != "postgresql":
        return []
    created: list[CreatedPartition] = []
    for table in TABLES:
        partitions = await list_partitions(connection, table)
        default = next((p.name for p in partitions if p.is_default), None)
        if default is None:
            default = default_partition_name(table)
            create = f"CREATE TABLE IF NOT EXISTS {_name(connection, default)} PARTITION OF {table}"
            await _change(connection, f"{create} DEFAULT")
            created.append(CreatedPartition(default, 0))
        stray = await _months_in(connection, table, default)
        for month in months_to_create(now, months_ahead, partitions, stray):
            moved = await _create(connection, table, month, default if month in stray else None)
            created.append(CreatedPartition(partition_name(table, month), moved))
    return created


async def _months_in(connection: AsyncConnection, table: Stored, partition: str) -> set[Month]:
    """The months of the rows in ``partition`` (the default one: normally empty)."""
    key = PARTITION_KEYS[table]
    in_utc = f"{key} AT TIME ZONE 'UTC'"
    async with connection.begin():
        rows = await connection.execute(
            text(
                f"SELECT DISTINCT CAST(extract(year FROM {in_utc}) AS integer), "
                f"CAST(extract(month FROM {in_utc}) AS integer) FROM {_name(connection, partition)}"
            )
        )
        return {Month(year, month) for year, month in rows}


async def _create(
    connection: AsyncConnection, table: Stored, month: Month, default: str | None
) -> int:
    """Create ``month``'s partition; with ``default``, first take that month's rows out of the
    default partition (which must not hold rows of the new partition's range), and put them in
    it: one transaction, so no reader ever misses them. The rows moved."""
    name = _name(connection, partition_name(table, month))
    create = f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table} {partition_bounds(month)}"
    if default is None:
        await _change(connection, create)
        return 0
    key = PARTITION_KEYS[table]
    *_, moved = await _change(
        connection,
        f"CREATE TEMPORARY TABLE carelevel_moving (LIKE {table}) ON COMMIT DROP",
        f"WITH moved AS (DELETE FROM {_name(connection, default)} WHERE {key} >= "
        f"'{month.start.isoformat()}' AND {key} < '{month.end.isoformat()}' RETURNING *) "
        "INSERT INTO carelevel_moving SELECT * FROM moved",
        create,
        f"INSERT INTO {table} SELECT * FROM carelevel_moving",
    )
    return moved


async def count_rows(connection: AsyncConnection, partition: str) -> int:
    async with connection.begin():
        counted = await connection.scalar(
            text(f"SELECT count(*) FROM {_name(connection, partition)}")
        )
        return int(counted or 0)


async def drop_partition(connection: AsyncConnection, table: Stored, partition: str) -> int:
    """Detach and drop ``partition`` of ``table``; the rows it held (none if another process
    dropped it first). Not ``DETACH … CONCURRENTLY``: PostgreSQL refuses it while the table has
    a default partition, so the detach holds the table's lock for an instant."""
    name = _name(connection, partition)

    async def drop() -> list[int]:
        exists = await connection.scalar(
            text("SELECT to_regclass(:partition) IS NOT NULL"), {"partition": partition}
        )
        if not exists:
            return [0]
        rows = await connection.scalar(text(f"SELECT count(*) FROM {name}"))
        await connection.execute(text(f"ALTER TABLE {table} DETACH PARTITION {name}"))
        await connection.execute(text(f"DROP TABLE {name}"))
        return [int(rows or 0)]

    (rows,) = await _changing(connection, drop)
    return rows


async def _change(connection: AsyncConnection, *statements: str) -> list[int]:
    """Run ``statements`` as one change (``_changing``); the number each returned (a count) or
    changed."""

    async def run() -> list[int]:
        numbers = []
        for statement in statements:
            result = await connection.execute(text(statement))
            number = result.scalar() if result.returns_rows else result.rowcount
            numbers.append(max(int(number or 0), 0))
        return numbers

    return await _changing(connection, run)


async def _changing(
    connection: AsyncConnection, work: Callable[[], Awaitable[list[int]]]
) -> list[int]:
    """``work`` in one transaction, after every other process's change to partitions, waiting
    at most LOCK_TIMEOUT for each lock; tried again up to LOCK_ATTEMPTS times when a lock
    could not be had (requests kept the table busy)."""
    for attempt in range(1, LOCK_ATTEMPTS + 1):
        try:
            async with connection.begin():
                await connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(:id)"), {"id": _CHANGE_LOCK_ID}
                )
                return await work()
        except DBAPIError as error:
            if attempt == LOCK_ATTEMPTS or not _lock_not_available(error):
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _lock_not_available(error: DBAPIError) -> bool:
    return getattr(error.orig, "sqlstate", None) == "55P03"
