"""Retention use cases: each tenant's policy, the partitions kept ahead, and expiry.

Expiry is not one unit of work: it drops partitions and deletes rows in many short
transactions, so that it never holds a long lock or a long transaction on a live database. Its
audit event, in the operator tenant's trail, counts what it removed (counts and partition names
only, never a row's content), and is written even when the run stops part-way.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from app.audit.trail import record
from app.kernel.db import utcnow
from app.kernel.settings import Settings
from app.retention import repository
from app.retention.partitions import (
    CreatedPartition,
    count_rows,
    drop_partition,
    ensure_partitions,
    estimated_rows,
    list_partitions,
)
from app.retention.plan import TABLES, Partition, Policies, Retention, Stored, plan_expiry
from app.security.caller import Caller

logger = logging.getLogger("carelevel.retention")


@dataclass(slots=True)
class TableExpiry:
    """What expiry removed (or, in a dry run, would remove) of one table."""

    table: Stored
    kept_by_all_from: datetime
    dropped: list[tuple[str, int]] = field(default_factory=list)  # partition, rows
    swept: Counter[str] = field(default_factory=Counter)  # tenant: rows


@dataclass(slots=True)
class ExpiryReport:
    dry_run: bool
    tables: list[TableExpiry] = field(default_factory=list)
    removed: Counter[str] = field(default_factory=Counter)  # table: rows, decisions and cards too
    created: list[CreatedPartition] = field(default_factory=list)

    def details(self, completed: bool) -> dict[str, object]:
        """The expiry's audit event details: counts and partition names only."""
        dropped = [name for table in self.tables for name, _ in table.dropped]
        return {"completed": completed, "removed": dict(+self.removed), "dropped": dropped}


class RetentionService:
    def __init__(
        self, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], settings: Settings
    ) -> None:
        self.engine = engine
        self.sessions = sessions
        self.default = Retention(settings.screening_retention_years, settings.audit_retention_years)
        self.months_ahead = settings.partition_months_ahead

    async def policies(self) -> Policies:
        async with self.sessions() as session:
            return Policies(self.default, await repository.tenant_policies(session))

    async def set_policy(
        self, caller: Caller, screenings_years: int | None, audit_years: int | None
    ) -> Retention:
        """Give ``caller``'s tenant its own retention (what is not given stays as it was);
        ValueError for a period out of bounds (an audit trail under six years)."""
        tenant = caller.tenant
        async with self.sessions() as session, session.begin():
            before = (await repository.tenant_policies(session)).get(tenant, self.default)
            retention = Retention(
                screenings_years if screenings_years is not None else before.screenings_years,
                audit_years if audit_years is not None else before.audit_years,
            )
            await repository.save_policy(session, tenant, retention, caller.principal.label)
            years = {
                "screenings_years": retention.screenings_years,
                "audit_years": retention.audit_years,
            }
            record(session, caller, 200, resource_id=tenant, details=years)
        return retention

    async def partitions(self) -> dict[Stored, list[tuple[Partition, int | None]]]:
        """Each table's partitions with the planner's estimate of their rows."""
        listed: dict[Stored, list[tuple[Partition, int | None]]] = {}
        async with self.engine.connect() as connection:
            for table in TABLES:
                estimates = await estimated_rows(connection, table)
                partitions = await list_partitions(connection, table)
                listed[table] = [(p, estimates.get(p.name)) for p in partitions]
        return listed

    async def ensure_partitions(
        self, now: datetime, months_ahead: int | None = None
    ) -> list[CreatedPartition]:
        """Create the partitions that are missing (``partitions.ensure_partitions``)."""
        async with self.engine.connect() as connection:
            return await ensure_partitions(connection, now, months_ahead or self.months_ahead)

    async def keep_partitions_ahead(self) -> None:
        """``ensure_partitions`` for the service itself (at start-up and every few minutes):
        a failure is logged, never raised; the default partition holds new rows meanwhile."""
        try:
            for created in await self.ensure_partitions(utcnow()):
                logger.info("partition %s created (%d rows moved in)", created.name, created.moved)
        except Exception as error:  # e.g. a database role that may not create tables
            logger.warning(
                "partitions not created (%s): run `carelevel partitions ensure` as the owner of "
                "the tables",
                type(error).__name__,
            )

    async def expire(self, caller: Caller, now: datetime, *, dry_run: bool) -> ExpiryReport:
        """Remove what is past retention at ``now`` (first creating the missing partitions,
        so that rows in the default partition are in their month's), or, with ``dry_run``,
        count what would be and change nothing."""
        policies = await self.policies()
        report = ExpiryReport(dry_run)
        completed = False
        try:
            async with self.engine.connect() as connection:
                if not dry_run:
                    report.created = await ensure_partitions(connection, now, self.months_ahead)
                for table in TABLES:
                    await self._expire(connection, table, now, policies, report)
            completed = True
        finally:
            if not dry_run:
                await self._record(caller, report, completed)
        return report

    async def _expire(
        self,
        connection: AsyncConnection,
        table: Stored,
        now: datetime,
        policies: Policies,
        report: ExpiryReport,
    ) -> None:
        partitions = await list_partitions(connection, table)
        old = policies.kept_by_some_from(table, now)
        tenants = await repository.tenants_with_rows_before(connection, table, old)
        plan = plan_expiry(table, now, policies, partitions, tenants)
        done = TableExpiry(table, plan.kept_by_all_from)
        report.tables.append(done)
        if table == "screenings":  # decisions and cards first: they name their screening
            following = repository.count_following_before
            if not report.dry_run:
                following = repository.delete_following_before
            report.removed.update(await following(connection, plan.kept_by_all_from))
        for partition in plan.drop:
            if report.dry_run:
                rows = await count_rows(connection, partition.name)
            else:
                rows = await drop_partition(connection, table, partition.name)
            done.dropped.append((partition.name, rows))
            report.removed[table] += rows
        for sweep in plan.sweeps:
            swept: Counter[str] = Counter()
            if report.dry_run:
                swept[table] = await repository.count_sweep(connection, table, sweep)
            else:
                swept = await repository.delete_sweep(connection, table, sweep)
            done.swept[sweep.tenant] += swept[table]
            report.removed.update(swept)

    async def _record(self, caller: Caller, report: ExpiryReport, completed: bool) -> None:
        async with self.sessions() as session, session.begin():
            record(session, caller, 200, details=report.details(completed))
