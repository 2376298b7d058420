"""What partition upkeep and expiry do, decided without I/O: which monthly partitions to create,
which partitions lie wholly past every tenant's retention (dropped whole), and which rows of
which tenant are deleted from the partitions that stay."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from app.kernel.months import Month, months_from
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

    def overlaps(self, month: Month) -> bool:
        if self.is_default:
            return False
        starts_before = self.lower is None or self.lower < month.end
        return starts_before and (self.upper is None or month.start < self.upper)

    def may_hold_before(self, instant: datetime) -> bool:
        """Whether some row of this partition can be older than ``instant``."""
        return self.is_default or self.lower is None or self.lower < instant


def partition_name(table: str, month: Month) -> str:
    return f"{table}_{month.year:04d}_{month.month:02d}"


def default_partition_name(table: str) -> str:
    return f"{table}_default"


def partition_bounds(month: Month) -> str:
    """The SQL bound of ``month``'s partition (instants with their offset: the same whatever the
    session's time zone)."""
    return f"FOR VALUES FROM ('{month.start.isoformat()}') TO ('{month.end.isoformat()}')"


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


def months_to_create(
    now: datetime, months_ahead: int, existing: Sequence[Partition], stray: Iterable[Month]
) -> list[Month]:
    """The months that need a partition, oldest first: the current month and ``months_ahead``
    after it, and each month some of whose rows wait in the default partition (``stray``),
    but none that an existing partition covers, even in part."""
    current = Month.of(now)
    wanted = set(months_from(current, current.plus(months_ahead))) | set(stray)
    return sorted(month for month in wanted if not any(p.overlaps(month) for p in existing))


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

    def kept_by_all_from(self, table: Stored, now: datetime) -> datetime:
        """Every row before this instant is past every tenant's retention (the longest one's
        bound): a partition that ends by it is dropped whole."""
        longest = max(r.years(table) for r in (self.default, *self.tenants.values()))
        return first_kept_month(now, longest).start

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
    """What an expiry run removes from one table: whole partitions, then tenants' rows."""

    table: Stored
    kept_by_all_from: datetime
    drop: tuple[Partition, ...]
    sweeps: tuple[Sweep, ...]


def plan_expiry(
    table: Stored,
    now: datetime,
    policies: Policies,
    partitions: Sequence[Partition],
    tenants: Collection[str],
) -> TablePlan:
    """Drop every partition that ends before every tenant's retention begins, and delete, from
    each partition that stays, the rows of each of ``tenants`` (those with rows old enough to
    expire) that are past that tenant's own retention: a tenant with a shorter retention than
    another's, or rows left in the default partition."""
    kept_by_all_from = policies.kept_by_all_from(table, now)
    drop = tuple(
        p
        for p in partitions
        if not p.is_default and p.upper is not None and p.upper <= kept_by_all_from
    )
    staying = [p for p in partitions if p not in drop]
    sweeps = []
    for tenant in sorted(tenants):
        before = policies.kept_from(table, now, tenant)
        sweeps += [Sweep(p.name, tenant, before) for p in staying if p.may_hold_before(before)]
    return TablePlan(table, kept_by_all_from, drop, tuple(sweeps))
