"""Retention: the partitions kept ahead, expiry by each tenant's policy, and the commands.

Expiry is run "years later" by handing it a later instant: rows stored now are then as old as
rows stored years ago would be. On PostgreSQL pg_partman then drops this month's partitions,
which the ``partitions_restored`` fixture makes again (moving what was stored meanwhile into
them).
SQLite keeps plain tables: the same specifications hold there, by deleting rows.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import ARRAY, bindparam, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit.models import AuditEvent
from app.cli import main
from app.kernel.db import UtcDateTime, utcnow
from app.kernel.ids import random_uuid
from app.kernel.months import Month
from app.kernel.settings import Settings, get_settings
from app.programs.examples import EVENING_IOP
from app.referrals.models import Referral
from app.retention.plan import TABLES, Partition
from app.retention.service import RetentionService
from app.screenings.models import Decision, Screening
from app.security.actions import Action
from app.security.caller import Caller
from app.security.principal import ALL_SCOPES, Principal
from tests.support.apps import OPERATOR_TENANT, http_client, new_key
from tests.support.examples import create


def _caller(tenant: str, action: Action) -> Caller:
    principal = Principal(tenant=tenant, client_id="cli", scopes=ALL_SCOPES, label="tests")
    return Caller(principal=principal, action=action)


def years_later(years: int) -> datetime:
    """Mid-month, ``years`` years from now."""
    return Month.of(utcnow()).plus(12 * years).start + timedelta(days=14)


def partition_name(table: str, month: Month) -> str:
    """pg_partman's name of a month's partition."""
    return f"{table}_p{month.year:04d}_{month.month:02d}"


@pytest.fixture
def retention(app: FastAPI, settings: Settings) -> RetentionService:
    return RetentionService(app.state.engine, app.state.sessions, settings)


@pytest.fixture
async def partitions_restored(
    retention: RetentionService, schema: AsyncEngine, settings: Settings
) -> AsyncIterator[None]:
    """This month's partitions and the next ones, as the migration made them."""
    yield
    await retention.maintain(utcnow())  # the rows stored meanwhile move into their month's
    if not _postgres(schema):
        return
    current = Month.of(utcnow())
    months = [current.plus(n).start for n in range(settings.partition_months_ahead + 1)]
    make = text("SELECT partman.create_partition_time('public.' || :table, :months)").bindparams(
        bindparam("months", type_=ARRAY(UtcDateTime()))
    )
    async with schema.begin() as connection:
        await connection.execute(text("SET LOCAL TimeZone = 'UTC'"))
        for table in TABLES:
            await connection.execute(make, {"table": table, "months": months})


async def expire(retention: RetentionService, at: datetime, *, dry_run: bool = False) -> Any:
    caller = _caller(OPERATOR_TENANT, Action.RETENTION_EXPIRE)
    return await retention.expire(caller, at, dry_run=dry_run)


async def _audit_events(schema: AsyncEngine, **where: str) -> list[AuditEvent]:
    query = select(AuditEvent).filter_by(**where).order_by(AuditEvent.recorded_at)
    async with schema.connect() as connection:
        return [AuditEvent(**row._mapping) for row in await connection.execute(query)]


def _postgres(schema: AsyncEngine) -> bool:
    return schema.dialect.name == "postgresql"


# --- partitions ----------------------------------------------------------------------------------


async def test_the_coming_months_have_partitions_after_start_up(
    retention: RetentionService, client: httpx.AsyncClient, schema: AsyncEngine, settings: Settings
) -> None:
    listed = await retention.partitions()
    if not _postgres(schema):  # one plain table each, never dropped
        assert listed == {table: [(Partition(table, None, None), None)] for table in TABLES}
        maintained = await retention.maintain(utcnow())
        assert (maintained.created, maintained.moved) == ([], 0)
        return
    current = Month.of(utcnow())
    for table in TABLES:
        names = {partition.name for partition, _rows in listed[table]}
        ahead = [current.plus(n) for n in range(settings.partition_months_ahead + 1)]
        assert {partition_name(table, month) for month in ahead} <= names
        assert f"{table}_default" in names
    screening = await create(client)
    async with schema.connect() as connection:
        stored_in = await connection.scalar(
            text("SELECT tableoid::regclass::text FROM screenings WHERE id = :id"),
            {"id": screening["id"]},
        )
    assert stored_in == partition_name("screenings", current)


async def test_rows_in_the_default_partition_are_moved_into_their_months_partition(
    retention: RetentionService, client: httpx.AsyncClient, schema: AsyncEngine
) -> None:
    if not _postgres(schema):
        pytest.skip("partitions are PostgreSQL's")
    screening = await create(client)
    older = await _copy(schema, screening["id"], random_uuid(), datetime(2020, 3, 15, tzinfo=UTC))
    assert await _stored_in(schema, older) == "screenings_default"

    maintained = await retention.maintain(utcnow())

    assert (maintained.created, maintained.moved) == (["screenings_p2020_03"], 1)
    assert await _stored_in(schema, older) == "screenings_p2020_03"
    assert (await client.get(f"/v1/screenings/{older}")).status_code == 200


async def _copy(schema: AsyncEngine, source: str, new_id: str, created_at: datetime | None) -> str:
    """A copy of screening ``source`` under another id (and, given, another created_at), as an
    older version of the service, or another month, stored it."""
    columns = [c.name for c in Screening.__table__.columns if c.name not in ("id", "created_at")]
    listed = ", ".join(columns)
    at = "created_at" if created_at is None else ":created_at"
    copy = text(
        f"INSERT INTO screenings (id, created_at, {listed}) "
        f"SELECT :new_id, {at}, {listed} FROM screenings WHERE id = :source"
    )
    values: dict[str, Any] = {"new_id": new_id, "source": source}
    if created_at is not None:
        copy = copy.bindparams(bindparam("created_at", type_=UtcDateTime()))
        values["created_at"] = created_at
    async with schema.begin() as connection:
        await connection.execute(copy, values)
    return new_id


async def _stored_in(schema: AsyncEngine, screening_id: str) -> str:
    async with schema.connect() as connection:
        found = await connection.scalar(
            text("SELECT tableoid::regclass::text FROM screenings WHERE id = :id"),
            {"id": screening_id},
        )
    return str(found)


async def test_a_screening_stored_with_a_random_id_is_still_found_and_listed(
    client: httpx.AsyncClient, schema: AsyncEngine
) -> None:
    screening = await create(client)
    older = await _copy(schema, screening["id"], random_uuid(), None)

    found = await client.get(f"/v1/screenings/{older}")

    assert found.status_code == 200, found.text
    assert found.json()["determination"] == screening["determination"]
    listed = (await client.get("/v1/screenings")).json()["items"]
    assert {item["id"] for item in listed} == {screening["id"], older}


# --- expiry --------------------------------------------------------------------------------------


@pytest.mark.usefixtures("partitions_restored")
async def test_a_screening_past_retention_goes_and_its_audit_event_stays_until_the_trails_does(
    retention: RetentionService, client: httpx.AsyncClient, schema: AsyncEngine
) -> None:
    await retention.set_policy(_caller(OPERATOR_TENANT, Action.RETENTION_SET), 10, 12)
    screening = await create(client)
    decided = await client.post(
        f"/v1/screenings/{screening['id']}/decision",
        json={"final_level": "intensive_outpatient", "decided_by": "clinician-042"},
    )
    assert decided.status_code == 201, decided.text
    async with schema.begin() as connection:  # as the previous release recorded it, undated
        await connection.execute(text("UPDATE decisions SET screening_created_at = NULL"))
    created = {"action": "screening.create", "resource_id": screening["id"]}

    report = await expire(retention, years_later(9))
    assert report.removed["screenings"] == 0
    assert (await client.get(f"/v1/screenings/{screening['id']}")).status_code == 200

    report = await expire(retention, years_later(11))
    assert (await client.get(f"/v1/screenings/{screening['id']}")).status_code == 404
    assert report.removed["screenings"] >= 1
    assert report.removed["decisions"] == 1
    async with schema.connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(Decision)) == 0
    if _postgres(schema):
        this_month = partition_name("screenings", Month.of(utcnow()))
        assert this_month in report.details(completed=True)["dropped"]
    listed = await client.get("/v1/audit-events", params={"resource_id": screening["id"]})
    assert "screening.create" in {event["action"] for event in listed.json()["items"]}

    await expire(retention, years_later(13))
    assert await _audit_events(schema, **created) == []


async def _referred(http: httpx.AsyncClient) -> str:
    """A stored screening of ``http``'s tenant, referred to a program of its directory."""
    program = await http.post("/v1/programs", json=EVENING_IOP)
    assert program.status_code == 201, program.text
    screening = await create(http)
    referred = await http.post(
        f"/v1/screenings/{screening['id']}/referrals",
        json={"program_id": program.json()["id"], "referred_by": "clinician-042"},
    )
    assert referred.status_code == 201, referred.text
    return str(screening["id"])


@pytest.mark.usefixtures("partitions_restored")
async def test_a_screenings_referrals_expire_with_it_whether_its_month_is_dropped_or_swept(
    app: FastAPI, retention: RetentionService, schema: AsyncEngine
) -> None:
    await retention.set_policy(_caller("clinic-a", Action.RETENTION_SET), 2, None)
    async with (
        http_client(app, await new_key(app, tenant="clinic-a")) as clinic_a,
        http_client(app, await new_key(app, tenant="clinic-b")) as clinic_b,
    ):
        of_a, of_b = await _referred(clinic_a), await _referred(clinic_b)

        swept = await expire(retention, years_later(3))  # clinic-b keeps the month: swept

        assert swept.removed["referrals"] == 1
        assert (await clinic_a.get(f"/v1/screenings/{of_a}/referrals")).status_code == 404
        kept = await clinic_b.get(f"/v1/screenings/{of_b}/referrals")
        assert len(kept.json()["items"]) == 1

        dropped = await expire(retention, years_later(11))  # past everyone's: dropped

        assert dropped.removed["referrals"] == 1
    async with schema.connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(Referral)) == 0


@pytest.mark.usefixtures("partitions_restored")
async def test_each_tenant_keeps_its_rows_as_long_as_its_own_retention_says(
    app: FastAPI, retention: RetentionService, schema: AsyncEngine
) -> None:
    await retention.set_policy(_caller("clinic-a", Action.RETENTION_SET), 2, None)
    async with (
        http_client(app, await new_key(app, tenant="clinic-a")) as clinic_a,
        http_client(app, await new_key(app, tenant="clinic-b")) as clinic_b,
    ):
        of_a, of_b = await create(clinic_a), await create(clinic_b)

        dry = await expire(retention, years_later(3), dry_run=True)
        assert dry.tables[0].swept["clinic-a"] == 1
        assert dry.tables[0].dropped == []
        assert (await clinic_a.get(f"/v1/screenings/{of_a['id']}")).status_code == 200
        assert await _audit_events(schema, action="retention.expire") == []

        report = await expire(retention, years_later(3))

        assert (await clinic_a.get(f"/v1/screenings/{of_a['id']}")).status_code == 404
        assert (await clinic_b.get(f"/v1/screenings/{of_b['id']}")).status_code == 200
        assert report.tables[0].dropped == []  # clinic-b's rows keep the month
        assert report.removed["screenings"] == 1
        # clinic-a keeps its audit trail the default ten years
        trail = (await clinic_a.get("/v1/audit-events", params={"resource_id": of_a["id"]})).json()
        assert [event["action"] for event in trail["items"]][-1] == "screening.create"
    (event,) = await _audit_events(schema, action="retention.expire")
    assert (event.tenant_id, event.resource_type, event.outcome) == (
        OPERATOR_TENANT,
        "retention",
        200,
    )
    assert event.details == {"completed": True, "removed": dict(+report.removed), "dropped": []}


# --- the commands --------------------------------------------------------------------------------


@pytest.fixture
def cli_database(
    app: FastAPI, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    monkeypatch.setenv("CARELEVEL_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the command as from a shell (in a thread: it runs its own event loop)."""
    code = await asyncio.to_thread(main, list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.usefixtures("cli_database")
async def test_a_tenants_retention_is_set_shown_and_recorded(
    capsys: pytest.CaptureFixture[str], schema: AsyncEngine
) -> None:
    code, out, err = await run(
        capsys, "retention", "set", "--tenant", "clinic-a", "--audit-years", "5"
    )
    assert code == 2
    assert "audit retention must be at least 6 years (HIPAA, 45 CFR 164.316(b)(2)(i))" in err

    code, out, _ = await run(
        capsys, "retention", "set", "--tenant", "clinic-a", "--screenings-years", "3"
    )
    assert code == 0
    assert out == (
        "Tenant clinic-a keeps its screenings 3 years and its audit events 10 years (recorded "
        "in its audit trail).\n"
    )
    code, out, _ = await run(capsys, "retention", "show", "--tenant", "clinic-a")
    assert (
        out.splitlines()[1]
        == "Tenant clinic-a: screenings 3 years, audit events 10 years (its own)"
    )
    (event,) = await _audit_events(schema, action="retention.set")
    assert (event.tenant_id, event.resource_id) == ("clinic-a", "clinic-a")
    assert event.details == {"screenings_years": 3, "audit_years": 10}


@pytest.mark.usefixtures("cli_database")
async def test_expire_from_the_command_line_says_what_it_removed_and_records_it(
    capsys: pytest.CaptureFixture[str], schema: AsyncEngine
) -> None:
    code, out, _ = await run(capsys, "retention", "expire", "--dry-run")
    assert code == 0
    assert out.splitlines()[-1] == "Would remove: nothing. Nothing was changed."
    assert await _audit_events(schema, action="retention.expire") == []

    code, out, _ = await run(capsys, "retention", "expire")
    assert code == 0
    assert out.splitlines()[-1].startswith("Removed: ")
    (event,) = await _audit_events(schema, action="retention.expire")
    assert event.details["completed"] is True


@pytest.mark.usefixtures("cli_database")
async def test_partitions_are_listed_and_made_from_the_command_line(
    capsys: pytest.CaptureFixture[str], schema: AsyncEngine
) -> None:
    code, _, err = await run(capsys, "partitions", "ensure", "--months-ahead", "25")
    assert (code, err) == (2, "carelevel: --months-ahead must be 1 to 24\n")
    code, out, _ = await run(capsys, "partitions", "ensure")
    assert (code, out) == (0, "No partition was missing.\n")

    code, out, _ = await run(capsys, "partitions", "list")
    assert code == 0
    rows = [line.split() for line in out.splitlines()[1:]]
    if not _postgres(schema):
        assert rows == [
            ["screenings", "screenings", "-", "-", "?"],
            ["audit_events", "audit_events", "-", "-", "?"],
        ]
        return
    current = Month.of(utcnow())
    assert [partition_name("screenings", current), f"{current.start:%Y-%m-%d}"] in [
        row[1:3] for row in rows
    ]
    assert ["screenings", "screenings_default", "(default)"] in [row[:3] for row in rows]
    assert all(re.fullmatch(r"\d+|\?", row[-1]) for row in rows)


async def test_every_partition_compresses_stored_documents_as_its_parent_does(
    retention: RetentionService, schema: AsyncEngine, settings: Settings
) -> None:
    if not _postgres(schema):
        pytest.skip("partitions and column compression are PostgreSQL's")
    # Months made by pg_partman now, beside those the migration made.
    await retention.maintain(utcnow(), months_ahead=settings.partition_months_ahead + 2)
    async with schema.connect() as connection:
        methods = await connection.scalar(
            text("SELECT enumvals::text FROM pg_settings WHERE name = 'default_toast_compression'")
        )
        columns = (
            await connection.execute(
                text(
                    "SELECT i.inhrelid::regclass::text, child.attname, child.attcompression::text, "
                    "parent.attcompression::text FROM pg_inherits i "
                    "JOIN pg_attribute parent ON parent.attrelid = i.inhparent "
                    "JOIN pg_attribute child ON child.attrelid = i.inhrelid "
                    "AND child.attname = parent.attname "
                    "WHERE i.inhparent = 'screenings'::regclass "
                    "AND parent.attname IN ('answers', 'determination')"
                )
            )
        ).all()
    ahead = Month.of(utcnow()).plus(settings.partition_months_ahead + 2)
    assert partition_name("screenings", ahead) in {partition for partition, *_ in columns}
    expected = "l" if "lz4" in (methods or "") else "p"
    assert {(child, parent) for _, _, child, parent in columns} == {(expected, expected)}
