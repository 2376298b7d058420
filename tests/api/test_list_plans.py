"""Lists cost the same at any depth: PostgreSQL's plan of every list filter, at a cursor deep in
a large tenant, seeks an index that starts with the tenant and reads no row it then throws away;
and a look-up by id reads the one month its time-ordered id names.

The plans are read with ``EXPLAIN (ANALYZE, FORMAT JSON)`` on tables holding thousands of rows of
two tenants, spread over nine monthly partitions, after ``ANALYZE``. What is checked is the
plan's shape (an index of the tenant's in each partition read, no sequential scan, nothing read
and thrown away, no more rows read than a page), never a time. Partitions are read each in
order and merged: each may read one row beyond what the page takes from it. SQLite has no such
planner to speak of: these specifications run on PostgreSQL (CI runs them there).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit.repository import audit_page_query
from app.kernel.ids import random_uuid, time_ordered_uuid
from app.retention.partitions import move_out_of_default
from app.screenings.repository import page_query, screening_query
from tests.support.apps import reset

TENANT, OTHER = "plans-tenant", "plans-other"
# Per tenant, one every 20 minutes over nine months: enough in each month for the planner to
# prefer a seek to a scan.
ROWS = 20_000
PAGE = 51
START = datetime(2026, 1, 1, tzinfo=UTC)
DEEP = (START + timedelta(minutes=20 * (ROWS // 10)), "0")  # 90% of the way down, newest first

SCREENING_FILTERS: list[dict[str, Any]] = [
    {},
    {"external_reference": "enc-17"},
    {"level": "residential"},
    {"urgency": "emergent"},
    {"rule_set_key": "no-such-key"},
    {"rule_set_version": 1},
    {"person_id": "p-person-17"},
    {"level": "no-such-level"},
]
AUDIT_FILTERS: list[dict[str, Any]] = [
    {},
    {"action": "screening.read"},
    {"resource_type": "rule_set"},
    {"resource_id": "s-17"},
    {"client_id": "client-3"},
    {"status": 404},
    {"failed": True},
    {"action": "no.such.action"},
]


@pytest.fixture(scope="module")
async def large_tenants(shared_app: FastAPI, schema: AsyncEngine) -> AsyncEngine:
    """The two tenants' rows, stored once for this module's tests (which only read them)."""
    if schema.dialect.name != "postgresql":
        pytest.skip("query plans are specified on PostgreSQL")
    await reset(shared_app, schema)
    async with schema.begin() as connection:
        version_id = (
            await connection.execute(text("SELECT id FROM rule_set_versions LIMIT 1"))
        ).scalar_one()
        for tenant in (TENANT, OTHER):
            await connection.execute(_SCREENINGS, {"tenant": tenant, "version": version_id})
            await connection.execute(_EVENTS, {"tenant": tenant})
    async with schema.connect() as connection:  # the months' partitions, rows moved into them
        await move_out_of_default(connection)
    async with schema.begin() as connection:
        await connection.execute(text("ANALYZE screenings"))
        await connection.execute(text("ANALYZE audit_events"))
    return schema


_SCREENINGS = text(
    f"""
    INSERT INTO screenings (id, tenant_id, client_id, created_at, external_reference,
        rule_set_version_id, rule_set_owner, rule_set_key, rule_set_version, rule_set_sha256,
        engine_version, status, level, urgency, iop_verdict, answers, determination, person_id)
    SELECT :tenant || '-' || n, :tenant, 'client-1',
        timestamptz '2026-01-01 00:00:00+00' + n * interval '20 minutes', 'enc-' || (n % 997),
        :version, 'shared', 'iop-level-of-care', 1 + (n % 3), repeat('a', 64), '2.0.0',
        'complete', (ARRAY['outpatient', 'intensive_outpatient', 'residential'])[1 + n % 3],
        (ARRAY['routine', 'urgent', 'emergent'])[1 + n % 3], 'suitable', '{{}}', '{{}}',
        'p-person-' || (n % 997)
    FROM generate_series(1, {ROWS}) AS n
    """
)
_EVENTS = text(
    f"""
    INSERT INTO audit_events (id, recorded_at, tenant_id, client_id, action, resource_type,
        resource_id, outcome, details)
    SELECT :tenant || '-e' || n,
        timestamptz '2026-01-01 00:00:00+00' + n * interval '20 minutes',
        :tenant, 'client-' || (n % 7),
        (ARRAY['screening.read', 'screening.create', 'rule_set_version.read'])[1 + n % 3],
        (ARRAY['screening', 'rule_set'])[1 + n % 2], 's-' || (n % 997),
        (ARRAY[200, 201, 404, 422])[1 + n % 4], '{{}}'
    FROM generate_series(1, {ROWS}) AS n
    """
)


async def _plan(engine: AsyncEngine, query: Select[Any]) -> dict[str, Any]:
    """The executed plan, each index and relation named as its parent table's (partitions, and
    their indexes, are named after their month)."""
    compiled = query.compile(dialect=engine.dialect)
    parameters = [compiled.params[name] for name in compiled.positiontup or ()]
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        found = await driver.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {compiled}", *parameters)
        roots = dict(await driver.fetch(_ROOTS))
    document = found if isinstance(found, list) else json.loads(found)
    plan: dict[str, Any] = document[0]["Plan"]
    for node in _nodes(plan):
        for name in ("Index Name", "Relation Name"):
            if name in node:
                node[name] = roots.get(node[name], node[name])
    return plan


# Each partition, and each index of a partition, with what it is a partition of.
_ROOTS = """
    SELECT relname, pg_partition_root(oid)::regclass::text FROM pg_class
    WHERE relispartition AND relnamespace = 'public'::regnamespace
"""


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _assert_seeks(plan: dict[str, Any], table: str) -> None:
    """An index of the tenant's, no sequential scan of any row, and no more rows read than the
    page: a sort is allowed only over what the index found, when that is no more than a page
    (a selective filter, such as one reference or resource id). The planner reads a partition
    with no row at all (a month ahead, the default partition) sequentially: it reads nothing."""
    nodes = list(_nodes(plan))
    kinds = [node["Node Type"] for node in nodes]
    for node in nodes:
        if node["Node Type"] == "Seq Scan":
            assert node["Actual Rows"] == node.get("Rows Removed by Filter", 0) == 0, node
    indexes = [node["Index Name"] for node in nodes if "Index Name" in node]
    assert indexes, kinds
    assert all(name.startswith(f"ix_{table}_tenant_id_") for name in indexes), indexes
    scans = [node for node in nodes if node.get("Relation Name") == table]
    assert scans, kinds
    for scan in scans:
        assert scan.get("Rows Removed by Filter", 0) == 0, scan
        assert scan.get("Rows Removed by Index Recheck", 0) == 0, scan
    read = sum(scan["Actual Rows"] * scan["Actual Loops"] for scan in scans)
    assert read <= PAGE + len(scans) - 1, scans


@pytest.mark.parametrize("filters", SCREENING_FILTERS, ids=lambda f: ",".join(f) or "none")
async def test_a_deep_page_of_screenings_seeks_its_index(
    large_tenants: AsyncEngine, filters: dict[str, Any]
) -> None:
    for after in (None, DEEP):
        query = page_query(TENANT, limit=PAGE, after=after, **filters)
        _assert_seeks(await _plan(large_tenants, query), "screenings")


@pytest.mark.parametrize("filters", AUDIT_FILTERS, ids=lambda f: ",".join(f) or "none")
async def test_a_deep_page_of_audit_events_seeks_its_index(
    large_tenants: AsyncEngine, filters: dict[str, Any]
) -> None:
    for after in (None, DEEP):
        query = audit_page_query(TENANT, limit=PAGE, after=after, **filters)
        _assert_seeks(await _plan(large_tenants, query), "audit_events")


def _made_at(instant: datetime) -> str:
    """A time-ordered id made at ``instant``."""
    milliseconds = (instant - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    stamp = f"{milliseconds:012x}"
    return f"{stamp[:8]}-{stamp[8:]}{time_ordered_uuid()[13:]}"


async def test_a_look_up_by_id_reads_the_one_month_its_id_names(
    large_tenants: AsyncEngine,
) -> None:
    """GET /v1/screenings/{id} (and FHIR, CDS Hooks, decisions) find a screening by a seek in
    the primary key of the month its time-ordered id was made in; an older, random id needs a
    seek in every month's."""
    in_june = _made_at(datetime(2026, 6, 15, 12, tzinfo=UTC))
    nodes = list(_nodes(await _plan(large_tenants, screening_query(TENANT, in_june))))
    (scan,) = [node for node in nodes if node.get("Relation Name") == "screenings"]
    assert scan["Index Name"] == "pk_screenings", scan

    nodes = list(_nodes(await _plan(large_tenants, screening_query(TENANT, random_uuid()))))
    scans = [node for node in nodes if node.get("Relation Name") == "screenings"]
    assert len(scans) > 9, scans  # every month's, and the default partition's
