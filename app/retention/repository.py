"""All SQL about tenants' retention policies and the rows that expire (partitions themselves:
``partitions.py``). Rows are deleted in batches, each batch its own short transaction, so an
expiry run never holds many locks or a long transaction."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    String,
    Table,
    TableClause,
    bindparam,
    column,
    delete,
    func,
    select,
    table,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.cds_hooks.models import IssuedCard
from app.kernel.db import Base, IdColumn, UtcDateTime
from app.referrals.models import Referral
from app.retention.models import RetentionPolicy
from app.retention.partitions import PARTITION_KEYS
from app.retention.plan import Retention, Stored, Sweep
from app.screenings.models import Decision, Screening

BATCH_ROWS = 1000


def _table(model: type[Base]) -> Table:
    found = model.__table__
    assert isinstance(found, Table)
    return found


# What lasts as long as its screening (by the screening's created_at it records), with its key.
_FOLLOWING_SCREENINGS = (
    (_table(Decision), "id"),
    (_table(IssuedCard), "uuid"),
    (_table(Referral), "id"),
)


async def tenant_policies(session: AsyncSession) -> dict[str, Retention]:
    rows = (await session.execute(select(RetentionPolicy))).scalars()
    return {row.tenant_id: Retention(row.screenings_years, row.audit_years) for row in rows}


async def save_policy(session: AsyncSession, tenant: str, retention: Retention, by: str) -> None:
    row = await session.get(RetentionPolicy, tenant)
    if row is None:
        row = RetentionPolicy(tenant_id=tenant)
        session.add(row)
    row.screenings_years = retention.screenings_years
    row.audit_years = retention.audit_years
    row.updated_by = by


def _rows(stored: Stored, partition: str) -> TableClause:
    """A partition of ``stored`` (on SQLite, the table itself), with the columns expiry reads."""
    return table(
        partition,
        column("id", IdColumn),
        column("tenant_id", String(64)),
        column(PARTITION_KEYS[stored], UtcDateTime()),
    )


async def tenants_with_rows_before(
    connection: AsyncConnection, stored: Stored, before: datetime
) -> list[str]:
    """The tenants with rows of ``stored`` older than ``before``, found by one seek per tenant
    in the index that starts with the tenant (a loose index scan; no scan of the rows)."""
    key = PARTITION_KEYS[stored]
    statement = text(
        f"""
        WITH RECURSIVE tenants (tenant_id) AS (
            SELECT min(tenant_id) FROM {stored} WHERE {key} < :before
            UNION ALL
            SELECT (SELECT min(later.tenant_id) FROM {stored} AS later
                    WHERE later.tenant_id > tenants.tenant_id AND later.{key} < :before)
            FROM tenants WHERE tenants.tenant_id IS NOT NULL
        )
        SELECT tenant_id FROM tenants WHERE tenant_id IS NOT NULL
        """
    ).bindparams(bindparam("before", type_=UtcDateTime()))
    async with connection.begin():
        return list((await connection.execute(statement, {"before": before})).scalars())


def _expired(stored: Stored, sweep: Sweep) -> tuple[TableClause, ColumnElement[bool]]:
    rows = _rows(stored, sweep.partition)
    expired = (rows.c.tenant_id == sweep.tenant) & (rows.c[PARTITION_KEYS[stored]] < sweep.before)
    return rows, expired


async def count_sweep(connection: AsyncConnection, stored: Stored, sweep: Sweep) -> int:
    rows, expired = _expired(stored, sweep)
    async with connection.begin():
        return int(
            await connection.scalar(select(func.count()).select_from(rows).where(expired)) or 0
        )


async def delete_sweep(
    connection: AsyncConnection, stored: Stored, sweep: Sweep, batch: int = BATCH_ROWS
) -> Counter[str]:
    """Delete the rows of ``sweep`` (a screening with its decisions and cards), a batch per
    transaction; the rows deleted, by table."""
    removed: Counter[str] = Counter()
    while True:
        async with connection.begin():
            deleted = await _delete_batch(connection, stored, sweep, batch)
        removed.update(deleted)
        if deleted[stored] < batch:
            return removed


async def _delete_batch(
    connection: AsyncConnection, stored: Stored, sweep: Sweep, batch: int
) -> Counter[str]:
    rows, expired = _expired(stored, sweep)
    ids = list((await connection.execute(select(rows.c.id).where(expired).limit(batch))).scalars())
    deleted: Counter[str] = Counter({stored: 0})
    if not ids:
        return deleted
    if stored == "screenings":
        for following, _ in _FOLLOWING_SCREENINGS:
            gone = await connection.execute(
                delete(following).where(following.c.screening_id.in_(ids))
            )
            deleted[following.name] += max(gone.rowcount, 0)
    gone = await connection.execute(delete(rows).where(rows.c.id.in_(ids), expired))
    deleted[stored] += max(gone.rowcount, 0)
    return deleted


async def _date_or_delete_undated(connection: AsyncConnection) -> Counter[str]:
    """Give the decisions and cards that the previous release recorded during an upgrade (with
    no screening_created_at) their screening's, and delete those whose screening is gone."""
    screenings = _table(Screening)
    removed: Counter[str] = Counter()
    for following, _ in _FOLLOWING_SCREENINGS:
        undated = following.c.screening_created_at.is_(None) & following.c.screening_id.is_not(None)
        created_at = (
            select(screenings.c.created_at)
            .where(screenings.c.id == following.c.screening_id)
            .scalar_subquery()
        )
        async with connection.begin():
            await connection.execute(
                update(following).where(undated).values(screening_created_at=created_at)
            )
            gone = await connection.execute(delete(following).where(undated))
        removed[following.name] += max(gone.rowcount, 0)
    return removed


async def count_following_before(connection: AsyncConnection, before: datetime) -> Counter[str]:
    """The decisions and cards of screenings stored before ``before``."""
    counted: Counter[str] = Counter()
    async with connection.begin():
        for following, _ in _FOLLOWING_SCREENINGS:
            query = select(func.count()).where(following.c.screening_created_at < before)
            counted[following.name] = int(await connection.scalar(query) or 0)
    return counted


async def delete_following_before(
    connection: AsyncConnection, before: datetime, batch: int = BATCH_ROWS
) -> Counter[str]:
    """Delete the decisions and cards of screenings stored before ``before`` (before their
    partitions are dropped), a batch per transaction."""
    removed = await _date_or_delete_undated(connection)
    for following, key in _FOLLOWING_SCREENINGS:
        doomed = select(following.c[key]).where(following.c.screening_created_at < before)
        while True:
            async with connection.begin():
                gone = await connection.execute(
                    delete(following).where(following.c[key].in_(doomed.limit(batch)))
                )
            removed[following.name] += max(gone.rowcount, 0)
            if gone.rowcount < batch:
                break
    return removed
