"""What expiry does, decided without I/O: the retention pg_partman keeps each table's monthly
partitions for (the longest any tenant needs), which partitions it drops whole at that retention,
and which rows of which tenant are deleted from the partitions that stay."""

from __future__ import annotations

import re
from calendar import isleap
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from app.kernel.record_keeping import first_kept_month, retention_years

# The tables that are partitioned by month, and the retention that applies to each.
Stored = Literal["screenings", "audit_events"]
TABLES: tuple[Stored, ...] = ("screenings", "audit_events")


@dataclass(frozen=True, slots=True)
class Partition:
    """A partition of a table and the range of timestamps it holds: ``lower`` included,
    ``upper`` excluded, None where unbounded. The default partition holds whatever no other
    one does; on SQLite, a table is one partition with no bounds, never dropped."""

    name: str
    lower: datetime | None
    upper: datetime | None
    is_default: bool = False

    def may_hold_before(self, instant: datetime) -> bool:
        """Whether some row of this partition can be older than ``instant``."""
        return self.is_default or self.lower is None or self.lower < instant


_RANGE = re.compile(r"FOR VALUES FROM \((.+)\) TO \((.+)\)")


def _bound(value: str) -> datetime | None:
    if value in ("MINVALUE", "MAXVALUE"):
        return None
    return datetime.fromisoformat(value.strip("'"))


def parse_partition(name: str, bound: str) -> Partition:
    """A partition from PostgreSQL's description of its bound (``pg_get_expr`` of
    ``relpartbound``, read with the time zone UTC): ``DEFAULT``, or
    ``FOR VALUES FROM ('2026-12-01 00:00:00+00') TO ('2027-01-01 00:00:00+00')``, either end
    possibly ``MINVALUE`` or ``MAXVALUE``."""
    if bound == "DEFAULT":
        return Partition(name, None, None, is_default=True)
    found = _RANGE.fullmatch(bound)
    if found is None:
        raise ValueError(f"partition {name} is not a range partition: {bound}")
    return Partition(name, _bound(found[1]), _bound(found[2]))


# --- retention policies --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Retention:
    """How many years a tenant's screenings (with their decisions and cards) and audit events
    are kept; out of bounds, ValueError saying why (app/kernel/record_keeping.py)."""

    screenings_years: int
    audit_years: int

    def __post_init__(self) -> None:
        retention_years("screenings", self.screenings_years)
        retention_years("audit", self.audit_years)

    def years(self, table: Stored) -> int:
        return self.screenings_years if table == "screenings" else self.audit_years


@dataclass(frozen=True, slots=True)
class Policies:
    """The default retention (settings) and the tenants that have their own."""

    default: Retention
    tenants: Mapping[str, Retention] = field(default_factory=dict)

    def of(self, tenant: str) -> Retention:
        return self.tenants.get(tenant, self.default)

    def kept_from(self, table: Stored, now: datetime, tenant: str) -> datetime:
        """The oldest instant of ``tenant``'s rows of ``table`` kept at ``now``."""
        return first_kept_month(now, self.of(tenant).years(table)).start

    def longest(self, table: Stored) -> int:
        """The years the longest retention of any tenant keeps rows of ``table``: pg_partman's
        retention of its partitions (never under six for the audit trail, as no tenant's is)."""
        return max(r.years(table) for r in (self.default, *self.tenants.values()))

    def kept_by_all_from(self, table: Stored, now: datetime) -> datetime:
        """Every row before this instant is past every tenant's retention (the longest one's
        bound)."""
        return first_kept_month(now, self.longest(table)).start

    def kept_by_some_from(self, table: Stored, now: datetime) -> datetime:
        """Rows from this instant on are within every tenant's retention (the shortest one's
        bound): only tenants with older rows can have rows to delete."""
        shortest = min(r.years(table) for r in (self.default, *self.tenants.values()))
        return first_kept_month(now, shortest).start


# --- expiry --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sweep:
    """The rows of ``tenant`` older than ``before`` in a partition that stays: deleted in
    batches."""

    partition: str
    tenant: str
    before: datetime


@dataclass(frozen=True, slots=True)
class TablePlan:
    """What an expiry run removes from one table: whole partitions (pg_partman, keeping them
    ``retention_years``), then tenants' rows."""

    table: Stored
    retention_years: int
    kept_by_all_from: datetime
    drop: tuple[Partition, ...]
    sweeps: tuple[Sweep, ...]


def years_before(instant: datetime, years: int) -> datetime:
    """``instant - interval 'N years'`` as PostgreSQL computes it in UTC: the same day and time
    ``years`` earlier, 29 February becoming the 28th."""
    at = instant.astimezone(UTC)
    year = at.year - years
    day = min(at.day, 28) if at.month == 2 and not isleap(year) else at.day
    return at.replace(year=year, day=day)


def dropped_by_pg_partman(partition: Partition, now: datetime, years: int) -> bool:
    """Whether pg_partman's retention of ``years`` drops ``partition`` at ``now``
    (``partman.drop_partition_time``: the partition ends before ``now`` less the retention).
    Never the default partition, nor one without an end."""
    if partition.is_default or partition.upper is None:
        return False
    return partition.upper < years_before(now, years)


def plan_expiry(
    table: Stored,
    now: datetime,
    policies: Policies,
    partitions: Sequence[Partition],
    tenants: Collection[str],
) -> TablePlan:
    """The partitions pg_partman drops at the longest retention (each ends before every
    tenant's retention begins), and, from each partition that stays, the rows of each of
    ``tenants`` (those with rows old enough to expire) that are past that tenant's own
    retention: a tenant with a shorter retention than another's, or rows left in the default
    partition."""
    kept_by_all_from = policies.kept_by_all_from(table, now)
    longest = policies.longest(table)
    drop = tuple(p for p in partitions if dropped_by_pg_partman(p, now, longest))
    months = [p for p in partitions if not p.is_default]
    if months and len(drop) == len(months):  # pg_partman never drops a table's last partition
        last = max(months, key=lambda p: (p.upper is None, p.upper or now))
        drop = tuple(p for p in drop if p != last)
    staying = [p for p in partitions if p not in drop]
    sweeps = []
    for tenant in sorted(tenants):
        before = policies.kept_from(table, now, tenant)
        sweeps += [Sweep(p.name, tenant, before) for p in staying if p.may_hold_before(before)]
    return TablePlan(table, longest, kept_by_all_from, drop, tuple(sweeps))
