"""Retention decided without a database: the bounds a retention must keep, when a month's rows
expire, the retention pg_partman gives the partitions, which partitions it drops whole and which
rows of which tenant to delete from the partitions that stay."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.kernel.months import Month, months_from
from app.kernel.record_keeping import first_kept_month, retention_years
from app.retention.plan import (
    TABLES,
    Partition,
    Policies,
    Retention,
    Stored,
    dropped_by_pg_partman,
    parse_partition,
    plan_expiry,
    years_before,
)

instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
retentions = st.builds(Retention, st.integers(1, 30), st.integers(6, 30))
tenant_ids = st.sampled_from(["clinic-a", "clinic-b", "clinic-c", "default", "lab-9"])


# --- bounds and expiry of a month ----------------------------------------------------------------


def test_the_audit_trail_is_kept_at_least_six_years() -> None:
    with pytest.raises(ValueError, match=r"at least 6 years \(HIPAA, 45 CFR 164.316"):
        Retention(screenings_years=10, audit_years=5)
    assert Retention(screenings_years=1, audit_years=6).years("audit_events") == 6


@pytest.mark.parametrize(
    ("records", "years", "problem"),
    [
        ("screenings", 0, "screenings retention must be at least 1 year$"),
        ("screenings", 101, "screenings retention must be at most 100 years"),
        ("audit", 101, "audit retention must be at most 100 years"),
    ],
)
def test_a_retention_out_of_bounds_is_refused(records: str, years: int, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        retention_years(records, years)  # type: ignore[arg-type]


@given(instants, instants, st.integers(1, 100))
def test_a_row_expires_once_its_whole_month_is_older_than_the_retention(
    stored: datetime, now: datetime, years: int
) -> None:
    """Every row is kept at least ``years`` years, and at most until its month's end is."""
    expired = stored < first_kept_month(now, years).start
    assert expired == (Month.of(stored).plus(12 * years).end <= now)


# --- partitions ----------------------------------------------------------------------------------


def test_partitions_are_read_from_postgresqls_description_of_their_bounds() -> None:
    month = parse_partition(
        "screenings_2026_12",
        "FOR VALUES FROM ('2026-12-01 00:00:00+00') TO ('2027-01-01 00:00:00+00')",
    )
    assert month == Partition(
        "screenings_2026_12", Month(2026, 12).start, Month(2027, 1).start, is_default=False
    )
    assert parse_partition("screenings_default", "DEFAULT").is_default
    legacy = parse_partition(
        "screenings_legacy", "FOR VALUES FROM (MINVALUE) TO ('2026-12-01 00:00:00+00')"
    )
    assert (legacy.lower, legacy.upper) == (None, Month(2026, 12).start)
    with pytest.raises(ValueError, match="not a range partition"):
        parse_partition("odd", "FOR VALUES IN ('a')")


def partition_name(table: str, month: Month) -> str:
    """pg_partman's name of a month's partition (native, monthly)."""
    return f"{table}_p{month.year:04d}_{month.month:02d}"


def _monthly(table: str, first: Month, last: Month) -> list[Partition]:
    return [
        Partition(partition_name(table, month), month.start, month.end)
        for month in months_from(first, last)
    ]


@pytest.mark.parametrize(
    ("now", "years", "before"),
    [
        (datetime(2036, 12, 15, 8, 30, tzinfo=UTC), 10, datetime(2026, 12, 15, 8, 30, tzinfo=UTC)),
        (datetime(2028, 2, 29, tzinfo=UTC), 1, datetime(2027, 2, 28, tzinfo=UTC)),
        (datetime(2032, 2, 29, tzinfo=UTC), 4, datetime(2028, 2, 29, tzinfo=UTC)),
    ],
)
def test_years_before_an_instant_are_counted_as_postgresql_subtracts_an_interval(
    now: datetime, years: int, before: datetime
) -> None:
    assert years_before(now, years) == before


def test_pg_partman_drops_a_month_once_it_ends_before_the_retention_begins() -> None:
    november = Partition("screenings_p2026_11", Month(2026, 11).start, Month(2026, 12).start)
    assert dropped_by_pg_partman(november, datetime(2036, 12, 1, 0, 0, 1, tzinfo=UTC), 10)
    assert not dropped_by_pg_partman(november, datetime(2036, 12, 1, tzinfo=UTC), 10)
    default = Partition("screenings_default", None, None, is_default=True)
    assert not dropped_by_pg_partman(default, datetime(2200, 1, 1, tzinfo=UTC), 1)


@given(instants, st.integers(1, 100), st.integers(-1300, 24))
def test_pg_partman_drops_only_months_whose_rows_every_retention_lets_go(
    now: datetime, years: int, offset: int
) -> None:
    month = Month.of(now).plus(offset)
    partition = Partition(partition_name("screenings", month), month.start, month.end)
    if dropped_by_pg_partman(partition, now, years):
        assert month.end <= first_kept_month(now, years).start


def test_pg_partman_keeps_a_tables_last_partition_even_past_retention() -> None:
    partitions = _monthly("screenings", Month(2026, 12), Month(2027, 3))
    plan = plan_expiry(
        "screenings", datetime(2040, 1, 1, tzinfo=UTC), Policies(Retention(10, 10)), partitions, []
    )
    assert [p.name for p in plan.drop] == [p.name for p in partitions[:-1]]


# --- expiry --------------------------------------------------------------------------------------


def test_ten_years_on_the_oldest_months_go_and_a_shorter_tenant_loses_its_rows() -> None:
    now = datetime(2036, 12, 15, tzinfo=UTC)
    policies = Policies(
        default=Retention(10, 10), tenants={"clinic-a": Retention(2, 10), "lab": Retention(10, 12)}
    )
    partitions = [
        *_monthly("screenings", Month(2026, 10), Month(2037, 3)),
        Partition("screenings_default", None, None, is_default=True),
    ]

    plan = plan_expiry("screenings", now, policies, partitions, ["clinic-a", "clinic-b"])

    assert [p.name for p in plan.drop] == ["screenings_p2026_10", "screenings_p2026_11"]
    assert plan.kept_by_all_from == datetime(2026, 12, 1, tzinfo=UTC)
    swept = {(sweep.tenant, sweep.partition) for sweep in plan.sweeps}
    # clinic-a keeps two years: the months from the drop to December 2034, and the default
    # partition, are swept of its rows; clinic-b keeps the default ten years: only the default
    # partition may hold rows of its older than what stays.
    assert swept == {
        *(("clinic-a", p.name) for p in _monthly("screenings", Month(2026, 12), Month(2034, 11))),
        ("clinic-a", "screenings_default"),
        ("clinic-b", "screenings_default"),
    }
    assert {sweep.before for sweep in plan.sweeps if sweep.tenant == "clinic-a"} == {
        datetime(2034, 12, 1, tzinfo=UTC)
    }

    audit = plan_expiry("audit_events", now, policies, [], ["clinic-a"])
    assert audit.kept_by_all_from == datetime(2024, 12, 1, tzinfo=UTC)  # lab keeps twelve years


def test_sqlite_tables_are_never_dropped_only_swept() -> None:
    whole = Partition("screenings", None, None)
    plan = plan_expiry(
        "screenings", datetime(2040, 1, 1, tzinfo=UTC), Policies(Retention(1, 6)), [whole], ["t"]
    )
    assert plan.drop == ()
    assert [(s.partition, s.tenant) for s in plan.sweeps] == [("screenings", "t")]


@given(
    table=st.sampled_from(TABLES),
    now=instants,
    default=retentions,
    own=st.dictionaries(tenant_ids, retentions, max_size=3),
    tenants=st.sets(tenant_ids, max_size=5),
    first=st.integers(-40 * 12, 0),
    count=st.integers(0, 60),
)
def test_expiry_removes_exactly_what_is_past_each_tenants_retention(
    table: Stored,
    now: datetime,
    default: Retention,
    own: dict[str, Retention],
    tenants: set[str],
    first: int,
    count: int,
) -> None:
    policies = Policies(default, own)
    oldest = Month.of(now).plus(first)
    partitions = [
        *_monthly(table, oldest, oldest.plus(count)),
        Partition(f"{table}_default", None, None, is_default=True),
    ]

    plan = plan_expiry(table, now, policies, partitions, tenants)

    everyone = tenants | set(own) | {"a-tenant-with-no-policy"}
    for partition in plan.drop:  # nothing any tenant still keeps is dropped
        assert not partition.is_default
        assert partition.upper is not None
        assert all(partition.upper <= policies.kept_from(table, now, t) for t in everyone)
    for sweep in plan.sweeps:  # a sweep deletes only the rows past its tenant's retention
        assert sweep.before == policies.kept_from(table, now, sweep.tenant)
    swept = {(sweep.tenant, sweep.partition) for sweep in plan.sweeps}
    for partition in partitions:  # every row past its tenant's retention is removed
        if partition in plan.drop:
            continue
        for tenant in tenants:
            expired_rows_possible = partition.is_default or (
                partition.lower is not None
                and partition.lower < policies.kept_from(table, now, tenant)
            )
            assert ((tenant, partition.name) in swept) == expired_rows_possible
