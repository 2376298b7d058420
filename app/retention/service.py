"""Retention use cases: each tenant's policy, pg_partman's maintenance of the partitions, and
expiry.

pg_partman creates the months ahead and drops whole months past the longest retention any
tenant has; carelevel decides that retention and the months ahead, and deletes, itself, the rows
of tenants whose retention is shorter. Expiry is not one unit of work: it drops partitions and
deletes rows in many short transactions, so that it never holds a long lock or a long
transaction on a live database. Its audit event, in the operator tenant's trail, counts what it
removed (counts and partition names only, never a row's content), and is written even when the
run stops part-way.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from app.audit.trail import record
from app.kernel.settings import Settings
from app.retention import repository
from app.retention.partitions import (
    configure,
    count_rows,
    drop_expired,
    estimated_rows,
    list_partitions,
    move_out_of_default,
    run_maintenance,
)
from app.retention.plan import TABLES, Partition, Policies, Retention, Stored, plan_expiry
from app.security.caller import Caller


@dataclass(frozen=True, slots=True)
class Maintenance:
    """What pg_partman's maintenance did: the partitions it created, and the rows moved out of
    the default partitions into their months' (partitions it created too)."""

    created: list[str]
    moved: int


@dataclass(slots=True)
class TableExpiry:
    """What expiry removed (or, in a dry run, would remove) of one table."""

    table: Stored
    retention_years: int  # pg_partman's: the longest any tenant has
    kept_by_all_from: datetime
    dropped: list[tuple[str, int]] = field(default_factory=list)  # partition, rows
    swept: Counter[str] = field(default_factory=Counter)  # tenant: rows


@dataclass(slots=True)
class ExpiryReport:
    dry_run: bool
    tables: list[TableExpiry] = field(default_factory=list)
    removed: Counter[str] = field(default_factory=Counter)  # table: rows, decisions and cards too
    created: list[str] = field(default_factory=list)

    def details(self, completed: bool) -> dict[str, object]:
        """The expiry's audit event details: counts and partition names only."""
        dropped = [name for table in self.tables for name, _ in table.dropped]
        return {"completed": completed, "removed": dict(+self.removed), "dropped": dropped}


async def _partition_names(connection: AsyncConnection) -> set[str]:
    return {p.name for table in TABLES for p in await list_partitions(connection, table)}


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

    async def maintain(self, now: datetime, months_ahead: int | None = None) -> Maintenance:
        """Give pg_partman the retention the tenants' policies call for and the months ahead,
        run its maintenance (create the months ahead, drop the months past retention: their
        screenings' decisions and cards are deleted first), and move the rows that wait in the
        default partitions into their months'."""
        policies = await self.policies()
        async with self.engine.connect() as connection:
            before = await _partition_names(connection)
            await self._configure(connection, policies, months_ahead)
            await repository.delete_following_before(
                connection, policies.kept_by_all_from("screenings", now)
            )
            await run_maintenance(connection)
            moved = await move_out_of_default(connection)
            created = sorted(await _partition_names(connection) - before)
        return Maintenance(created, moved)

    async def _configure(
        self, connection: AsyncConnection, policies: Policies, months_ahead: int | None = None
    ) -> None:
        years = {table: policies.longest(table) for table in TABLES}
        await configure(connection, years, months_ahead or self.months_ahead)

    async def expire(self, caller: Caller, now: datetime, *, dry_run: bool) -> ExpiryReport:
        """Remove what is past retention at ``now``: pg_partman drops the months past the
        longest retention and runs its maintenance (the months ahead), carelevel deletes the
        rows of tenants with a shorter one; or, with ``dry_run``, count what would be removed
        and change nothing."""
        policies = await self.policies()
        report = ExpiryReport(dry_run)
        completed = False
        try:
            async with self.engine.connect() as connection:
                if not dry_run:
                    await self._configure(connection, policies)
                for table in TABLES:
                    await self._expire(connection, table, now, policies, report)
                if not dry_run:
                    report.created = await run_maintenance(connection)
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
        done = TableExpiry(table, plan.retention_years, plan.kept_by_all_from)
        report.tables.append(done)
        if table == "screenings":  # decisions and cards first: they name their screening
            following = repository.count_following_before
            if not report.dry_run:
                following = repository.delete_following_before
            report.removed.update(await following(connection, plan.kept_by_all_from))
        dropping = [partition.name for partition in plan.drop]
        if report.dry_run:
            done.dropped = [(name, await count_rows(connection, name)) for name in dropping]
        else:
            done.dropped = await drop_expired(connection, table, now, dropping)
        report.removed[table] += sum(rows for _, rows in done.dropped)
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
