"""Lists cost the same at any depth: PostgreSQL's plan of every list filter, at a cursor deep in
a large tenant, seeks an index that starts with the tenant and reads no row it then throws away.

The plans are read with ``EXPLAIN (ANALYZE, FORMAT JSON)`` on tables holding thousands of rows of
two tenants, after ``ANALYZE``. What is checked is the plan's shape (an index of the tenant's, no
sequential scan, nothing read and thrown away, no more rows read than a page), never a time.
SQLite has no such planner to speak of: these specifications run on PostgreSQL (CI runs them
there).
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
from app.screenings.repository import page_query

TENANT, OTHER = "plans-tenant", "plans-other"
ROWS = 6000  # per tenant: enough for the planner to prefer a seek to a scan
PAGE = 51
START = datetime(2026, 1, 1, tzinfo=UTC)
DEEP = (START + timedelta(seconds=ROWS // 10), "0")  # 90% of the way down, newest first

SCREENING_FILTERS: list[dict[str, Any]] = [
    {},
    {"external_reference": "enc-17"},
    {"level": "residential"},
    {"urgency": "emergent"},
    {"rule_set_key": "no-such-key"},
    {"rule_set_version": 1},
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


@pytest.fixture
async def large_tenants(app: FastAPI, schema: AsyncEngine) -> AsyncEngine:
    if schema.dialect.name != "postgresql":
        pytest.skip("query plans are specified on PostgreSQL")
    async with schema.begin() as connection:
        version_id = (
            await connection.execute(text("SELECT id FROM rule_set_versions LIMIT 1"))
        ).scalar_one()
        for tenant in (TENANT, OTHER):
            await connection.execute(_SCREENINGS, {"tenant": tenant, "version": version_id})
            await connection.execute(_EVENTS, {"tenant": tenant})
        await connection.execute(text("ANALYZE screenings"))
        await connection.execute(text("ANALYZE audit_events"))
    return schema


_SCREENINGS = text(
    f"""
    INSERT INTO screenings (id, tenant_id, client_id, created_at, external_reference,
        rule_set_version_id, rule_set_owner, rule_set_key, rule_set_version, rule_set_sha256,
        engine_version, status, level, urgency, iop_verdict, answers, determination)
    SELECT :tenant || '-' || n, :tenant, 'client-1',
        timestamptz '2026-01-01 00:00:00+00' + n * interval '1 second', 'enc-' || (n % 997),
        :version, 'shared', 'iop-level-of-care', 1 + (n % 3), repeat('a', 64), '2.0.0',
        'complete', (ARRAY['outpatient', 'intensive_outpatient', 'residential'])[1 + n % 3],
        (ARRAY['routine', 'urgent', 'emergent'])[1 + n % 3], 'suitable', '{{}}', '{{}}'
    FROM generate_series(1, {ROWS}) AS n
    """
)
_EVENTS = text(
    f"""
    INSERT INTO audit_events (id, recorded_at, tenant_id, client_id, action, resource_type,
        resource_id, outcome, details)
    SELECT :tenant || '-e' || n, timestamptz '2026-01-01 00:00:00+00' + n * interval '1 second',
        :tenant, 'client-' || (n % 7),
        (ARRAY['screening.read', 'screening.create', 'rule_set_version.read'])[1 + n % 3],
        (ARRAY['screening', 'rule_set'])[1 + n % 2], 's-' || (n % 997),
        (ARRAY[200, 201, 404, 422])[1 + n % 4], '{{}}'
    FROM generate_series(1, {ROWS}) AS n
    """
)


async def _plan(engine: AsyncEngine, query: Select[Any]) -> dict[str, Any]:
    compiled = query.compile(dialect=engine.dialect)
    parameters = [compiled.params[name] for name in compiled.positiontup or ()]
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        found = await driver.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {compiled}", *parameters)
    document = found if isinstance(found, list) else json.loads(found)
    plan: dict[str, Any] = document[0]["Plan"]
    return plan


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _assert_seeks(plan: dict[str, Any], table: str) -> None:
    """An index of the tenant's, no sequential scan, and no more rows read than the page: a
    sort is allowed only over what the index found, when that is no more than a page (a
    selective filter, such as one reference or resource id)."""
    nodes = list(_nodes(plan))
    kinds = [node["Node Type"] for node in nodes]
    assert "Seq Scan" not in kinds, kinds
    indexes = [node["Index Name"] for node in nodes if "Index Name" in node]
    assert indexes, kinds
    assert all(name.startswith(f"ix_{table}_tenant_id_") for name in indexes), indexes
    (scan,) = [node for node in nodes if node.get("Relation Name") == table]
    assert scan.get("Rows Removed by Filter", 0) == 0, scan
    assert scan.get("Rows Removed by Index Recheck", 0) == 0, scan
    assert scan["Actual Rows"] <= PAGE, scan


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
