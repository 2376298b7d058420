"""Scale benchmark: list pages at depth and under every filter, storage per screening, and
start-up and memory with many tenants, on PostgreSQL with up to millions of rows.

For each size N of ``--sizes``: a fresh database (``carelevel_scale_<N>``) migrated by
``carelevel migrate``; one real screening per example stored through the API (each read once by
a second client, and one unknown id asked for, so the trail holds those events too), then N
screenings per tenant cloned from them in SQL (INSERT … SELECT generate_series, in chunks),
spread over the last ``--months`` (24) with time-ordered ids (UUID version 7, as
app/kernel/ids.py makes them), each with its audit event, a read event for one in five and a
failed read for one in a hundred. Columns are named by the app's own tables, so the loader
follows the schema; on partitioned tables the months' partitions are made first, the service's
way, so that rows go straight to their month. VACUUM (ANALYZE) and a CHECKPOINT follow. Then,
against ``carelevel serve`` (one worker per size, pinned to CPU 0 as in bench/service.py, this
client on CPU 1):

- GET /v1/screenings and GET /v1/audit-events, unfiltered and under each filter (some matching
  nothing): each walked with the keyset cursor to 50% and 90% of what it matches; then every
  page there and every first page, of every size, measured in ``--repeats`` rounds, each page
  once a round (after a first round: each page's first request after all the walks), so that
  a noisy moment of a shared machine hits them all alike; the processor time of the server and
  of its PostgreSQL backends per request; then each page's query (the repository's own) under
  EXPLAIN ANALYZE: its index, the tables (partitions) it reads, buffers, planning and execution;
- the bytes a screening and an audit event take (pg_total_relation_size: heap, TOAST, indexes);
- time to ready (launch until /readyz answers 200) and the worker's RSS then, with each number
  of tenants of ``--forks`` having an active fork of the shared rule set (rows cloned from the
  shared version, each retitled, so each content is its own), in rounds, every other one in
  reverse order; then a forked tenant's first evaluations (the first compiles its version).

Prints the figures, the growth factors from the smallest size to the largest and the targets,
each ratio the median over rounds of two measurements taken in the same round: a page at 90%
depth within 2× the first page; a filter matching nothing within 2× the first unfiltered page;
RSS and time to ready with the most forks within 1.5× those with none (PASS or FAIL). Exit
status 0 when all hold, 1 when one does not, 2 when the benchmark could not run. At the end
(also on Ctrl-C or a failure) the servers are stopped and the databases dropped. Not a test:
figures depend on the machine (docs/performance.md).

    python bench/scale.py [--sizes 10000 1000000] [--forks 0 500] [--months 24] [--repeats 30]
                          [--starts 8] [--screened-tenants 1] [--json FILE] [--keep-database]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from service import (
    BIN,
    ROOT,
    BenchError,
    Server,
    carelevel_env,
    clean_environment,
    database_facts,
    drop_database,
    free_port,
    guarded,
    machine,
    recreate_database,
    run,
    signals_ignored,
)
from sqlalchemy import Select, Table, TextClause, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.audit.models import AuditEvent
from app.audit.repository import audit_page_query
from app.engine import DEFAULT_RULE_SET_KEY, document_sha256, parse_document
from app.kernel.db import for_asyncpg
from app.kernel.ids import time_ordered_uuid
from app.kernel.pagination import decode_cursor
from app.kernel.tenancy import SHARED
from app.retention.partitions import move_out_of_default
from app.rulesets.models import RuleSet, RuleSetVersion
from app.screenings.models import Screening
from app.screenings.repository import page_query

EXAMPLES = ROOT / "examples"
# The examples stored as templates, and the share of the clones each one makes (percent).
TEMPLATE_SHARES = {
    "adult-iop-suitable": 40,
    "adult-iop-with-barriers": 30,
    "adolescent-step-down": 20,
    "insufficient-information": 8,
    "emergency-suicide-risk": 2,
}
MONTH = timedelta(days=365.25 / 12)  # the clones' created_at: the last --months of them
# The tenant of the few rows that make the months' partitions before the load (its tenant id
# is this and a digit), and how many it has a month.
PROBE, PROBES_A_MONTH = "scale-months-", 4
READ_EVERY, FAILED_EVERY = 5, 100  # one read event per 5 screenings, one failed read per 100
TENANT = "scale-0"  # the tenant measured; others (--screened-tenants) are scale-1, scale-2, …
FORK_TENANT = "scale-fork-{:04}"
DEPTHS = (0.0, 0.5, 0.9)
PAGE_TARGET, NOTHING_TARGET, TENANTS_TARGET = 2.0, 2.0, 1.5
TABLES = ("screenings", "audit_events")


# --- the data ---------------------------------------------------------------------------


def table(model: type[Any]) -> Table:
    found = model.__table__
    assert isinstance(found, Table)
    return found


def clone_statement(target: Table, overrides: Mapping[str, str], source: str) -> str:
    """INSERT INTO ``target`` (every column) SELECT each column's override, or else the value
    of the row aliased ``t`` in ``source``: a column added to the model is copied as it is."""
    columns = [column.name for column in target.columns]
    unknown = set(overrides) - set(columns)
    if unknown:
        raise BenchError(f"{target.name} has no column {sorted(unknown)}: update bench/scale.py")
    values = [overrides.get(name, f't."{name}"') for name in columns]
    names = ", ".join(f'"{name}"' for name in columns)
    return f"INSERT INTO {target.name} ({names}) SELECT {', '.join(values)} FROM {source}"


def time_ordered_id(at: str, seed: str) -> str:
    """SQL for a version 7 UUID as app/kernel/ids.py makes it: the Unix milliseconds of ``at``,
    then digits of md5(``seed``), reproducible, so an audit event can name its screening."""
    ms = f"lpad(to_hex(floor(extract(epoch FROM {at}) * 1000)::bigint), 12, '0')"
    digits = f"md5({seed})"
    variant = f"substr('89ab', 1 + get_byte(decode(substr({digits}, 4, 2), 'hex'), 0) % 4, 1)"
    return (
        f"substr({ms}, 1, 8) || '-' || substr({ms}, 9, 4) || '-7' || substr({digits}, 1, 3)"
        f" || '-' || {variant} || substr({digits}, 6, 3) || '-' || substr({digits}, 9, 12)"
    )


def random_id(seed: str) -> str:
    """SQL for a UUID-shaped text from md5(``seed``) (request ids, unknown resources)."""
    digits = f"md5({seed})"
    parts = ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))
    return " || '-' || ".join(f"substr({digits}, {start}, {length})" for start, length in parts)


# Row n of the generated rows: i, its number within its tenant (0 oldest), k, its tenant's
# number, and at, its time: evenly spread over the span, the tenants a millisecond apart.
GENERATED = """(
    SELECT n, n / :tenants AS i, n % :tenants AS k,
           CAST(:end AS timestamptz)
             - make_interval(secs => (:per_tenant - n / :tenants) * CAST(:step AS float8))
             + make_interval(secs => (n % :tenants) / 1000.0) AS at
    FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS n
) AS g"""
PICK = """JOIN unnest(CAST(:lows AS int[]), CAST(:highs AS int[]), CAST(:screenings AS text[]),
                   CAST(:events AS text[])) AS pick(low, high, screening, event)
  ON (g.i * 7919) % 100 >= pick.low AND (g.i * 7919) % 100 < pick.high"""
# The template rows, read once per statement (a partitioned table's primary key also holds the
# timestamp: a join on the id alone would look in every partition for every row made).
TEMPLATE_SCREENINGS = "SELECT * FROM screenings WHERE id = ANY(CAST(:screenings AS text[]))"
TEMPLATE_EVENTS = "SELECT * FROM audit_events WHERE id = ANY(CAST(:events AS text[]))"
ONE_EVENT = "SELECT * FROM audit_events WHERE id = :{}"
SCREENING_ID = time_ordered_id("g.at", "g.n::text || '/s'")
TENANT_OF_ROW = "CAST(:prefix AS text) || g.k"


def clone_statements() -> dict[str, str]:
    """The statements that make a chunk of rows: screenings, their events, reads, failures."""
    screenings, events = table(Screening), table(AuditEvent)
    event = {"tenant_id": TENANT_OF_ROW, "request_id": random_id("g.n::text || '/q' || t.id")}
    return {
        "screenings": clone_statement(
            screenings,
            {
                "id": SCREENING_ID,
                "tenant_id": TENANT_OF_ROW,
                "created_at": "g.at",
                "external_reference": "'ref-' || g.i",
                "idempotency_key": "NULL",
            },
            f"{GENERATED} {PICK} JOIN ({TEMPLATE_SCREENINGS}) AS t ON t.id = pick.screening",
        ),
        "created events": clone_statement(
            events,
            event
            | {
                "id": time_ordered_id("g.at", "g.n::text || '/c'"),
                "recorded_at": "g.at",
                "resource_id": SCREENING_ID,
            },
            f"{GENERATED} {PICK} JOIN ({TEMPLATE_EVENTS}) AS t ON t.id = pick.event",
        ),
        "read events": clone_statement(
            events,
            event
            | {
                "id": time_ordered_id("g.at + interval '37 minutes'", "g.n::text || '/r'"),
                "recorded_at": "g.at + interval '37 minutes'",
                "resource_id": SCREENING_ID,
            },
            f"{GENERATED} JOIN ({ONE_EVENT.format('read_event')}) AS t ON true "
            f"WHERE g.i % {READ_EVERY} = 0",
        ),
        "failed reads": clone_statement(
            events,
            event
            | {
                "id": time_ordered_id("g.at + interval '3 minutes'", "g.n::text || '/f'"),
                "recorded_at": "g.at + interval '3 minutes'",
                "resource_id": random_id("g.n::text || '/u'"),
            },
            f"{GENERATED} JOIN ({ONE_EVENT.format('failed_event')}) AS t ON true "
            f"WHERE g.i % {FAILED_EVERY} = {FAILED_EVERY // 2}",
        ),
    }


@dataclass
class Templates:
    """The rows stored through the API that the loader clones."""

    screenings: dict[str, str]  # example -> screening id
    events: dict[str, str]  # example -> the id of its screening.create event
    read_event: str
    failed_event: str
    reader: str  # the client id of the second client (the reads)

    def parameters(self) -> dict[str, Any]:
        lows, highs, low = [], [], 0
        for share in TEMPLATE_SHARES.values():
            lows.append(low)
            highs.append(low + share)
            low += share
        return {
            "lows": lows,
            "highs": highs,
            "screenings": [self.screenings[name] for name in TEMPLATE_SHARES],
            "events": [self.events[name] for name in TEMPLATE_SHARES],
            "read_event": self.read_event,
            "failed_event": self.failed_event,
        }


@dataclass
class Load:
    screenings: int = 0
    events: int = 0
    seconds: float = 0.0
    settle_seconds: float = 0.0  # VACUUM (ANALYZE) and a CHECKPOINT


async def load(
    engine: AsyncEngine, templates: Templates, per_tenant: int, args: argparse.Namespace
) -> Load:
    """``per_tenant`` screenings for each of ``--screened-tenants``, oldest first, over the last
    ``--months``, with their events, in chunks of ``--chunk`` rows (one transaction each)."""
    statements = [text(sql) for sql in clone_statements().values()]
    end, span = datetime.now(UTC), MONTH * args.months
    await make_months(engine, statements, templates.parameters() | {"end": end}, args.months)
    tenants, total = args.screened_tenants, per_tenant * args.screened_tenants
    fixed = templates.parameters() | {
        "end": end,
        "tenants": tenants,
        "per_tenant": per_tenant,
        "step": span.total_seconds() / per_tenant,
        "prefix": TENANT.removesuffix("0"),
    }
    done, started = Load(), time.monotonic()
    for first in range(0, total, args.chunk):
        bounds = {"first": first, "last": min(first + args.chunk, total) - 1}
        async with engine.begin() as connection:
            screenings, *events = [
                (await connection.execute(statement, fixed | bounds)).rowcount
                for statement in statements
            ]
        done.screenings += screenings
        done.events += sum(events)
        print(
            f"  loaded {done.screenings:,} screenings, {done.events:,} events "
            f"({time.monotonic() - started:.0f} s)",
            flush=True,
        )
    done.seconds = time.monotonic() - started
    return done


async def make_months(
    engine: AsyncEngine, statements: list[TextClause], fixed: dict[str, Any], months: int
) -> None:
    """On partitioned tables, a partition for each month the load spreads rows over, made the
    service's way before the load, so that the load's rows go straight to their month: a few
    rows of another tenant in each month (``PROBE``), which land in the default partition, then
    the service's ``move_out_of_default``, which makes their months and moves them there."""
    probes = PROBES_A_MONTH * months
    rows = fixed | {
        "end": fixed["end"] - timedelta(minutes=1),  # never at the same instant as a load's row
        "tenants": 1,
        "per_tenant": probes,
        "step": (MONTH * months).total_seconds() / probes,
        "prefix": PROBE,
        "first": 0,
        "last": probes - 1,
    }
    async with engine.begin() as connection:
        for statement in statements:
            await connection.execute(statement, rows)
    async with engine.connect() as connection:
        await move_out_of_default(connection)


async def settle(engine: AsyncEngine, done: Load) -> None:
    """VACUUM (ANALYZE), as autovacuum would in time, then a CHECKPOINT, so that what the
    load wrote goes to disk now rather than during the measurements."""
    started = time.monotonic()
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        for name in TABLES:
            await autocommit.execute(text(f"VACUUM (ANALYZE) {name}"))
        await autocommit.execute(text("CHECKPOINT"))
    done.settle_seconds = time.monotonic() - started


# --- the storage --------------------------------------------------------------------------

# Sizes over a table's partitions, or the table itself if it has none (pg_partition_tree gives
# nothing for a plain table), and per index over the index's partitions in the same way.
RELATIONS = """(SELECT relid FROM pg_partition_tree(CAST(:name AS regclass)) WHERE isleaf
                UNION ALL SELECT CAST(:name AS regclass)
                WHERE NOT EXISTS (SELECT FROM pg_partition_tree(CAST(:name AS regclass))))"""
TABLE_SIZES = f"""
SELECT count(*), sum(pg_relation_size(relid)),
       sum(pg_table_size(relid) - pg_relation_size(relid)),
       sum(pg_indexes_size(relid)), sum(pg_total_relation_size(relid))
FROM {RELATIONS} AS tree
"""
INDEX_SIZES = """
SELECT index.relname,
       coalesce((SELECT sum(pg_relation_size(relid))
                 FROM pg_partition_tree(index.oid) WHERE isleaf), 0)
       + CASE WHEN EXISTS (SELECT FROM pg_partition_tree(index.oid)) THEN 0
              ELSE pg_relation_size(index.oid) END
FROM pg_index JOIN pg_class AS index ON index.oid = pg_index.indexrelid
WHERE pg_index.indrelid = CAST(:name AS regclass)
ORDER BY 2 DESC
"""


@dataclass
class TableSize:
    rows: int
    relations: int
    heap: int
    toast: int
    indexes: int
    total: int
    by_index: dict[str, int]

    @property
    def per_row(self) -> float:
        return self.total / self.rows if self.rows else 0.0


async def table_size(engine: AsyncEngine, name: str) -> TableSize:
    async with engine.connect() as connection:
        rows = (await connection.execute(text(f"SELECT count(*) FROM {name}"))).scalar_one()
        sizes = (await connection.execute(text(TABLE_SIZES), {"name": name})).one()
        indexes = (await connection.execute(text(INDEX_SIZES), {"name": name})).all()
    relations, heap, toast, indexes_bytes, total = (int(value) for value in sizes)
    return TableSize(
        rows, relations, heap, toast, indexes_bytes, total, {n: int(s) for n, s in indexes}
    )


# --- the API ------------------------------------------------------------------------------


@dataclass
class Clients:
    writer: str  # the key of a client with screenings:write, screenings:read and audit:read
    reader: str  # the key of a client with screenings:read
    fork: str  # the key of a client of the first forked tenant


def create_client(
    carelevel: list[str], env: dict[str, str], cwd: Path, tenant: str, name: str, *scopes: str
) -> str:
    out = run(
        [*carelevel, "clients", "create", "--tenant", tenant, "--name", name, "--scopes", *scopes],
        env,
        cwd,
    )
    key = next((line.strip() for line in out.splitlines() if line.strip().startswith("clk_")), "")
    if not key:
        raise BenchError(f"no API key in the output of carelevel clients create:\n{out}")
    return key


def create_clients(env: dict[str, str], cwd: Path) -> Clients:
    carelevel = [str(BIN / "carelevel")]
    run([*carelevel, "migrate"], env, cwd)
    return Clients(
        writer=create_client(
            carelevel,
            env,
            cwd,
            TENANT,
            "intake",
            "screenings:write",
            "screenings:read",
            "audit:read",
        ),
        reader=create_client(carelevel, env, cwd, TENANT, "clinician-view", "screenings:read"),
        fork=create_client(
            carelevel, env, cwd, FORK_TENANT.format(0), "intake", "screenings:write"
        ),
    )


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def expect(response: httpx.Response, status: int) -> Any:
    if response.status_code != status:
        raise BenchError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code}, not {status}: {response.text[:500]}"
        )
    return response.json()


async def store_templates(
    client: httpx.AsyncClient, engine: AsyncEngine, clients: Clients
) -> Templates:
    """One screening per example, stored and read back through the API, and one unknown id
    asked for: real rows, as the service writes them, for the loader to clone."""
    screenings: dict[str, str] = {}
    for name in TEMPLATE_SHARES:
        answers = json.loads((EXAMPLES / f"{name}.json").read_text())
        created = await client.post(
            "/v1/screenings", json={"answers": answers}, headers=bearer(clients.writer)
        )
        screenings[name] = (await expect(created, 201))["id"]
        await expect(
            await client.get(f"/v1/screenings/{screenings[name]}", headers=bearer(clients.reader)),
            200,
        )
    unknown = await client.get(
        f"/v1/screenings/{time_ordered_uuid()}", headers=bearer(clients.reader)
    )
    await expect(unknown, 404)
    events = table(AuditEvent)
    async with engine.connect() as connection:
        rows = (await connection.execute(select(events).where(events.c.tenant_id == TENANT))).all()
    created_by = {row.resource_id: row.id for row in rows if row.action == "screening.create"}
    reads = [row for row in rows if row.action == "screening.read"]
    read = next(row for row in reads if row.outcome == 200)
    failed = next(row for row in reads if row.outcome == 404)
    return Templates(
        screenings=screenings,
        events={name: created_by[screening] for name, screening in screenings.items()},
        read_event=read.id,
        failed_event=failed.id,
        reader=read.client_id,
    )


async def check_a_clone(client: httpx.AsyncClient, engine: AsyncEngine, clients: Clients) -> None:
    """A cloned screening reads back through the API with its template's determination."""
    screenings = table(Screening)
    query = (
        select(screenings.c.id, screenings.c.external_reference)
        .where(screenings.c.tenant_id == TENANT, screenings.c.external_reference == "ref-7")
        .limit(1)
    )
    async with engine.connect() as connection:
        clone = (await connection.execute(query)).one()
    body = await expect(
        await client.get(f"/v1/screenings/{clone.id}", headers=bearer(clients.reader)), 200
    )
    if body["id"] != clone.id or "recommended_level" not in body["determination"]:
        raise BenchError(f"the cloned screening {clone.id} does not read back as stored")


# --- the lists ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Listing:
    """One list endpoint under one filter (as the repository's query builder takes it)."""

    path: str
    label: str
    filters: dict[str, Any]
    nothing: bool = False  # a filter meant to match nothing

    def params(self) -> dict[str, str]:
        """The filter as the query string writes it."""
        params: dict[str, str] = {}
        for name, value in self.filters.items():
            if name == "failed":
                params["outcome"] = "failure" if value else "success"
            elif isinstance(value, datetime):
                params[name] = value.isoformat()
            else:
                params[name] = str(value)
        return params

    def query(self, after: tuple[datetime, str] | None, limit: int) -> Select[Any]:
        """The repository's own query for this page."""
        if self.path == "/v1/screenings":
            return page_query(TENANT, limit=limit, after=after, **self.filters)
        return audit_page_query(TENANT, limit=limit, after=after, **self.filters)


def listings(templates: Templates, per_tenant: int, months: int) -> list[Listing]:
    """Every filter of the two lists, some matching a few rows, some most, some nothing."""
    middle = datetime.now(UTC) - MONTH * months / 2
    month = {"created_from": middle, "created_to": middle + timedelta(days=30)}
    s, a = "/v1/screenings", "/v1/audit-events"
    return [
        Listing(s, "no filter", {}),
        Listing(s, "level=intensive_outpatient", {"level": "intensive_outpatient"}),
        Listing(s, "level=emergency_evaluation", {"level": "emergency_evaluation"}),
        Listing(s, "urgency=emergent", {"urgency": "emergent"}),
        Listing(s, "rule_set_key", {"rule_set_key": DEFAULT_RULE_SET_KEY}),
        Listing(s, "rule_set_version=1", {"rule_set_version": 1}),
        Listing(s, "external_reference (one)", {"external_reference": f"ref-{per_tenant // 2}"}),
        Listing(s, "created_from/to (30 days)", month),
        Listing(s, "level=residential (none)", {"level": "residential"}, nothing=True),
        Listing(s, "rule_set_version=999 (none)", {"rule_set_version": 999}, nothing=True),
        Listing(s, "external_reference (none)", {"external_reference": "no-such"}, nothing=True),
        Listing(a, "no filter", {}),
        Listing(a, "action=screening.read", {"action": "screening.read"}),
        Listing(a, "resource_type=screening", {"resource_type": "screening"}),
        Listing(a, "client_id (reader)", {"client_id": templates.reader}),
        Listing(a, "outcome=failure", {"failed": True}),
        Listing(a, "status=404", {"status": 404}),
        Listing(
            a,
            "recorded_from/to (30 days)",
            {"recorded_from": month["created_from"], "recorded_to": month["created_to"]},
        ),
        Listing(
            a,
            "action=rule_set_version.publish (none)",
            {"action": "rule_set_version.publish"},
            nothing=True,
        ),
        Listing(a, "client_id (none)", {"client_id": "no-such-client"}, nothing=True),
        Listing(a, "status=500 (none)", {"status": 500}, nothing=True),
    ]


@dataclass
class Page:
    """One page measured: its first request after every walk, then one request per round."""

    depth: float
    offset: int
    cursor: str | None
    rows: int = 0
    first_ms: float = 0.0
    rounds_ms: list[float] = field(default_factory=list)
    index: str = ""  # the first index its query reads (EXPLAIN ANALYZE, after the rounds)
    relations: int = 0  # the tables (partitions) its query read
    buffers: int = 0  # the shared buffers its query touched (hit or read)
    plan_ms: float = 0.0  # its query's planning time in PostgreSQL
    sql_ms: float = 0.0  # its query's execution time in PostgreSQL

    @property
    def median_ms(self) -> float:
        return statistics.median(self.rounds_ms)


@dataclass
class Measured:
    listing: Listing
    matches: int
    walked: int = 0
    walk_seconds: float = 0.0
    pages: list[Page] = field(default_factory=list)

    def page(self, depth: float) -> Page | None:
        return next((page for page in self.pages if page.depth == depth), None)


async def matches(engine: AsyncEngine, listing: Listing) -> int:
    """How many rows the filter matches (the repository's query, without its limit)."""
    query = listing.query(None, 1).limit(None).order_by(None)
    async with engine.connect() as connection:
        count = await connection.execute(select(func.count()).select_from(query.subquery()))
    return int(count.scalar_one())


async def list_page(
    client: httpx.AsyncClient, key: str, listing: Listing, cursor: str | None, limit: int
) -> tuple[float, dict[str, Any]]:
    """One page through the API: (milliseconds, body)."""
    params = listing.params() | {"limit": str(limit)} | ({"cursor": cursor} if cursor else {})
    started = time.perf_counter()
    response = await client.get(listing.path, params=params, headers=bearer(key))
    elapsed = (time.perf_counter() - started) * 1000
    return elapsed, await expect(response, 200)


async def walk(
    client: httpx.AsyncClient, key: str, measured: Measured, page_size: int, walk_size: int
) -> None:
    """Follow the cursor to each depth, in pages of up to ``walk_size``, the last page of each
    stretch cut to land on the depth exactly: the pages to measure there."""
    cursor: str | None = None
    seen, started = 0, time.monotonic()
    for depth in DEPTHS:
        target = int(measured.matches * depth)
        if depth and measured.matches < 2 * page_size:
            continue  # one or two pages: no depth to speak of
        while seen < target:
            _, body = await list_page(
                client, key, measured.listing, cursor, min(walk_size, target - seen)
            )
            seen += len(body["items"])
            cursor = body["next_cursor"]
            if cursor is None:
                raise BenchError(f"{measured.listing.label}: the list ended at {seen} rows")
        measured.pages.append(Page(depth, target, cursor))
    measured.walked, measured.walk_seconds = seen, time.monotonic() - started


# The index a partition's index belongs to (or the index itself, on a plain table).
PARENT_INDEX = (
    "SELECT coalesce((SELECT CAST(inhparent AS regclass)::text FROM pg_inherits "
    "WHERE inhrelid = to_regclass($1)), $1)"
)


async def explain(engine: AsyncEngine, listing: Listing, page: Page, limit: int) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of the page's own query (the service asks for one row more
    than the page): the index it reads, the tables (partitions) it reads, the buffers it
    touches, its planning and execution time."""
    after = decode_cursor(page.cursor) if page.cursor else None
    statement = for_asyncpg(listing.query(after, limit + 1))
    async with engine.connect() as connection:
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        explained = await driver.fetchval(
            f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {statement.sql}", *statement.arguments({})
        )
        # SQLAlchemy's asyncpg connections decode JSON themselves
        result = (json.loads(explained) if isinstance(explained, str) else explained)[0]
        top = result["Plan"]
        scans = _scans(top)
        index = next((scan["Index Name"] for scan in scans if "Index Name" in scan), "")
        page.index = await driver.fetchval(PARENT_INDEX, index) if index else ""
    page.relations = len({scan["Relation Name"] for scan in scans})
    page.buffers = int(top.get("Shared Hit Blocks", 0)) + int(top.get("Shared Read Blocks", 0))
    page.plan_ms = float(result["Planning Time"])
    page.sql_ms = float(result["Execution Time"])


def _scans(node: dict[str, Any]) -> list[dict[str, Any]]:
    """The scans the plan ran (not those of partitions pruned or never reached)."""
    own = [node] if "Relation Name" in node and node.get("Actual Loops", 0) > 0 else []
    return own + [scan for child in node.get("Plans", []) for scan in _scans(child)]


def cpu_seconds(pid: int) -> float:
    """The processor time (user and system) a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def backends(engine: AsyncEngine) -> dict[int, float]:
    """The processor time of every other PostgreSQL backend serving this database, by pid."""
    query = text(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
    )
    async with engine.connect() as connection:
        pids = (await connection.execute(query)).scalars().all()
    return {pid: cpu_seconds(pid) for pid in pids if Path(f"/proc/{pid}").exists()}


@dataclass
class Processor:
    """Processor time per list request (ms): the server's, and its PostgreSQL backends'."""

    server_ms: float = 0.0
    database_ms: float = 0.0


async def walked(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    key: str,
    all_listings: list[Listing],
    args: argparse.Namespace,
) -> list[Measured]:
    """Every listing counted and walked to its depths."""
    results = [Measured(listing, await matches(engine, listing)) for listing in all_listings]
    for measured in results:
        if measured.listing.nothing and measured.matches:
            raise BenchError(f"{measured.listing.label} matches {measured.matches} rows")
    for measured in results:
        await walk(client, key, measured, args.page_size, args.walk_size)
        print(
            f"  walked {measured.listing.path} {measured.listing.label}: "
            f"{measured.walked:,} of {measured.matches:,} rows in {measured.walk_seconds:.1f} s",
            flush=True,
        )
    return results


# --- start-up and memory with many tenants ---------------------------------------------


async def add_forks(engine: AsyncEngine, count: int) -> list[str]:
    """``count`` tenants, each with its own published fork of the shared rule set's active
    version: rows cloned from it, retitled (so each content, and its sha256, is its own)."""
    versions, sets = table(RuleSetVersion), table(RuleSet)
    async with engine.connect() as connection:
        shared = (
            await connection.execute(
                select(versions).where(versions.c.owner == SHARED, versions.c.status == "active")
            )
        ).one()
    document = parse_document(shared.content)
    tenants = [FORK_TENANT.format(number) for number in range(count)]
    titles = [f"{tenant} rules" for tenant in tenants]
    values = {
        "tenants": tenants,
        "sets": [time_ordered_uuid() for _ in tenants],
        "ids": [time_ordered_uuid() for _ in tenants],
        "titles": titles,
        "shas": [document_sha256(document.model_copy(update={"title": t})) for t in titles],
        "shared": shared.id,
    }
    forks = (
        "unnest(CAST(:tenants AS text[]), CAST(:sets AS text[]), CAST(:ids AS text[]), "
        "CAST(:titles AS text[]), CAST(:shas AS text[])) "
        "AS f(tenant, set_id, version_id, title, sha)"
    )
    new_sets = clone_statement(
        sets,
        {"id": "f.set_id", "owner": "f.tenant", "created_at": "now()"},
        f"{forks} JOIN rule_sets AS t ON t.id = :shared_set",
    )
    new_versions = clone_statement(
        versions,
        {
            "id": "f.version_id",
            "rule_set_id": "f.set_id",
            "owner": "f.tenant",
            "version": "1",
            "status": "'published'",
            "title": "f.title",
            "sha256": "f.sha",
            "content": "jsonb_set(t.content, '{title}', to_jsonb(f.title))",
            "parent_owner": f"'{SHARED}'",
            "parent_version": "t.version",
        },
        f"{forks} JOIN rule_set_versions AS t ON t.id = :shared",
    )
    async with engine.begin() as connection:
        await connection.execute(text(new_sets), values | {"shared_set": shared.rule_set_id})
        await connection.execute(text(new_versions), values)
        stored = (
            await connection.execute(select(versions).where(versions.c.owner == tenants[0]))
        ).one()
    if document_sha256(parse_document(stored.content)) != stored.sha256:
        raise BenchError("a cloned fork's sha256 is not that of its content")
    return tenants


async def activate_forks(engine: AsyncEngine, tenants: Sequence[str], active: int) -> None:
    """The first ``active`` forks active, the others published."""
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE rule_set_versions SET status = CASE "
                "WHEN owner = ANY(CAST(:active AS text[])) THEN 'active' ELSE 'published' END "
                "WHERE owner = ANY(CAST(:all AS text[]))"
            ),
            {"active": list(tenants[:active]), "all": list(tenants)},
        )


def rss_bytes(pid: int) -> int:
    """The resident memory of a process and its descendants."""
    total = 0
    status = Path(f"/proc/{pid}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            total += int(line.split()[1]) * 1024
    children = Path(f"/proc/{pid}/task/{pid}/children")
    for child in children.read_text().split() if children.exists() else []:
        total += rss_bytes(int(child))
    return total


def start_until_ready(server: Server, workdir: Path, timeout: float = 120.0) -> tuple[float, int]:
    """Launch ``server`` and poll /readyz every 20 ms: (seconds until it answered 200, the RSS
    of its processes then)."""
    server.port = free_port()
    command = [*server.command, "--port", str(server.port)]
    if server.cpus is not None:
        command = ["taskset", "-c", server.cpus, *command]
    started = time.monotonic()
    with server.log.open("wb") as log:
        server.process = subprocess.Popen(
            command,
            cwd=workdir,
            env=server.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    with httpx.Client(timeout=2) as client:
        while time.monotonic() - started < timeout:
            if server.process.poll() is not None:
                raise BenchError(f"{server.name} exited at start; see {server.log}")
            try:
                if client.get(f"{server.base}/readyz").status_code == 200:
                    return time.monotonic() - started, rss_bytes(server.process.pid)
            except httpx.TransportError:
                pass
            time.sleep(0.02)
    raise BenchError(f"{server.name} was not ready within {timeout:.0f} s; see {server.log}")


@dataclass
class Start:
    forks: int
    seconds: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.seconds)

    @property
    def median_rss(self) -> float:
        return statistics.median(self.rss)


async def first_use_of_a_fork(client: httpx.AsyncClient, key: str, tenant: str) -> list[float]:
    """A forked tenant's first evaluations (the first compiles its version): milliseconds, and
    a check that its fork decided."""
    body = {"answers": json.loads((EXAMPLES / "adult-iop-suitable.json").read_text())}
    times = []
    for _ in range(3):
        started = time.perf_counter()
        response = await client.post("/v1/screenings/evaluate", json=body, headers=bearer(key))
        times.append((time.perf_counter() - started) * 1000)
        decided = (await expect(response, 200))["rule_set"]
        if decided["owner"] != tenant:
            raise BenchError(f"{tenant}'s screening was decided by {decided}, not its fork")
    return times


# --- the sizes ----------------------------------------------------------------------------


@dataclass
class Size:
    """One size: its database loaded, its lists walked and its server running, then its
    figures as they are taken."""

    size: int
    database: str
    engine: AsyncEngine
    server: Server
    client: httpx.AsyncClient
    clients: Clients
    load: Load
    lists: list[Measured]
    processor: Processor = field(default_factory=Processor)  # per list request
    tables: dict[str, TableSize] = field(default_factory=dict)
    forks: list[str] = field(default_factory=list)  # the tenants with a fork
    starts: list[Start] = field(default_factory=list)
    fork_first_use_ms: list[float] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "load": asdict(self.load),
            "lists": [asdict(measured) for measured in self.lists],
            "processor_per_list_request": asdict(self.processor),
            "tables": {name: asdict(size) for name, size in self.tables.items()},
            "starts": [asdict(start) for start in self.starts],
            "fork_first_use_ms": self.fork_first_use_ms,
        }


@dataclass
class Run:
    args: argparse.Namespace
    workdir: Path
    servers: list[Server] = field(default_factory=list)
    databases: list[str] = field(default_factory=list)

    def dsn(self, database: str) -> str:
        return f"{self.args.postgres.rstrip('/')}/{database}"

    def clean_up(self) -> None:
        with signals_ignored():
            for server in self.servers:
                server.stop()
            if not self.args.keep_database:
                for database in self.databases:
                    asyncio.run(drop_database(self.dsn("postgres"), database))
            if self.args.keep_logs:
                print(f"logs kept in {self.workdir}")
            else:
                shutil.rmtree(self.workdir, ignore_errors=True)


def server_for(run_: Run, env: dict[str, str], name: str) -> Server:
    command = [str(BIN / "carelevel"), "serve", "--workers", "1"]
    cpus = run_.args.server_cpus if run_.args.pin else None
    server = Server(name, command, env, run_.workdir / f"{name}.log", cpus)
    run_.servers.append(server)
    return server


async def prepare(run_: Run, size: int, stack: contextlib.AsyncExitStack) -> Size:
    """A fresh database of ``size`` screenings per tenant, its server started, its lists
    walked to their depths."""
    args = run_.args
    database = f"{args.database}_{size}"
    run_.databases.append(database)  # from here on the clean-up drops it
    await recreate_database(run_.dsn("postgres"), database)
    url = run_.dsn(database).replace("postgresql://", "postgresql+asyncpg://", 1)
    env = carelevel_env(clean_environment(), url, args, "memory")
    env["CARELEVEL_MAX_PAGE_SIZE"] = str(args.walk_size)  # walks take long pages
    clients = create_clients(env, run_.workdir)
    engine = create_async_engine(url)
    stack.push_async_callback(engine.dispose)
    server = server_for(run_, env, f"carelevel-{size}")
    server.start(run_.workdir)
    client = await stack.enter_async_context(httpx.AsyncClient(base_url=server.base, timeout=120))
    templates = await store_templates(client, engine, clients)
    print(f"{size:,} screenings per tenant: loading", flush=True)
    loaded = await load(engine, templates, size, args)
    await settle(engine, loaded)
    await check_a_clone(client, engine, clients)
    lists = await walked(
        client, engine, clients.writer, listings(templates, size, args.months), args
    )
    return Size(size, database, engine, server, client, clients, loaded, lists)


async def measure_rounds(sizes: list[Size], args: argparse.Namespace) -> None:
    """Every page of every size, one request each per round, so that a noisy moment hits them
    all alike; the first round is each page's first request after all the walks. Then the
    processor time each size's server and PostgreSQL backends took per request."""
    pages = [
        (size, measured.listing, page)
        for size in sizes
        for measured in size.lists
        for page in measured.pages
    ]
    before = {size.size: (server_cpu(size), await backends(size.engine)) for size in sizes}
    for number in range(args.repeats + 1):
        for size, listing, page in pages:
            key = size.clients.writer
            elapsed, body = await list_page(size.client, key, listing, page.cursor, args.page_size)
            if number == 0:
                page.first_ms, page.rows = elapsed, len(body["items"])
            else:
                page.rounds_ms.append(elapsed)
    for size in sizes:
        server, database = before[size.size]
        requests = (args.repeats + 1) * sum(len(measured.pages) for measured in size.lists)
        after = await backends(size.engine)
        used = sum(seconds - database.get(pid, 0.0) for pid, seconds in after.items())
        size.processor = Processor(
            (server_cpu(size) - server) * 1000 / requests, used * 1000 / requests
        )


def server_cpu(size: Size) -> float:
    assert size.server.process is not None
    return cpu_seconds(size.server.process.pid)


async def finish_lists(size: Size, args: argparse.Namespace) -> None:
    """Every page's plan, the server stopped, the tables' sizes, the forks added."""
    for measured in size.lists:
        for page in measured.pages:
            await explain(size.engine, measured.listing, page, args.page_size)
    size.server.stop()
    size.tables = {name: await table_size(size.engine, name) for name in TABLES}
    size.forks = await add_forks(size.engine, max(args.forks))


async def measure_starts(sizes: list[Size], args: argparse.Namespace, workdir: Path) -> None:
    """Start-up time and RSS of each size's server with each number of active forks, in
    rounds, every other one in the reverse order."""
    for size in sizes:
        size.starts = [Start(count) for count in args.forks]
    runs = [(size, start) for size in sizes for start in size.starts]
    for number in range(args.starts):
        for size, start in runs if number % 2 == 0 else reversed(runs):
            await activate_forks(size.engine, size.forks, start.forks)
            seconds, rss = start_until_ready(size.server, workdir)
            size.server.stop()
            start.seconds.append(seconds)
            start.rss.append(rss)
            print(
                f"  start {number + 1}/{args.starts} at {size.size:,} with {start.forks} forks: "
                f"ready in {seconds:.2f} s, RSS {rss / 2**20:.0f} MB",
                flush=True,
            )


async def check_forks(size: Size, workdir: Path) -> None:
    """Every fork active, a forked tenant's first evaluations: its own fork decides them."""
    if not size.forks:
        return
    await activate_forks(size.engine, size.forks, len(size.forks))
    size.server.start(workdir)
    async with httpx.AsyncClient(base_url=size.server.base, timeout=120) as client:
        size.fork_first_use_ms = await first_use_of_a_fork(client, size.clients.fork, size.forks[0])
    size.server.stop()


# --- the report ---------------------------------------------------------------------------


def _ms(value: float) -> str:
    return f"{value:.1f}"


def per_round(slower: Sequence[float], faster: Sequence[float]) -> float:
    """The median over rounds of one measurement over another taken in the same round."""
    return statistics.median(a / b for a, b in zip(slower, faster, strict=True))


def print_lists(result: Size) -> None:
    print(
        f"\n{result.size:,} screenings per tenant: pages of {result.lists[0].pages[0].rows} rows; "
        "HTTP ms: first request / median of the rounds; 90% / first: median per round; "
        "the query (EXPLAIN ANALYZE) at 0%, 50%, 90%: buffers, planning + execution ms"
    )
    print(
        "| List | Filter | Matches | First page | 50% | 90% | 90% / first | Index (tables read) "
        "| Buffers | Plan + run ms |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    for measured in result.lists:
        cells = []
        for depth in DEPTHS:
            page = measured.page(depth)
            cells.append(f"{_ms(page.first_ms)} / {_ms(page.median_ms)}" if page else "—")
        first, deepest = measured.page(0.0), measured.page(0.9)
        ratio = f"{per_round(deepest.rounds_ms, first.rounds_ms):.2f}" if first and deepest else "—"
        deepest_page = measured.pages[-1]
        index = f"{deepest_page.index or 'no index'} ({deepest_page.relations} read)"
        buffers = " / ".join(str(page.buffers) for page in measured.pages)
        sql = " / ".join(f"{page.plan_ms:.2f} + {page.sql_ms:.2f}" for page in measured.pages)
        print(
            f"| {measured.listing.path} | {measured.listing.label} | {measured.matches:,} | "
            f"{' | '.join(cells)} | {ratio} | {index} | {buffers} | {sql} |"
        )
    used = result.processor
    print(
        f"processor time per list request: the server {used.server_ms:.2f} ms, its PostgreSQL "
        f"backends {used.database_ms:.2f} ms"
    )


def print_storage(result: Size) -> None:
    print(
        f"\nstorage at {result.size:,} per tenant (load {result.load.seconds:.0f} s, "
        f"VACUUM ANALYZE and CHECKPOINT {result.load.settle_seconds:.0f} s)"
    )
    for name, size in result.tables.items():
        print(
            f"  {name}: {size.rows:,} rows, {size.relations} relation(s); heap "
            f"{size.heap / 2**20:.0f} MB, TOAST {size.toast / 2**20:.0f} MB, indexes "
            f"{size.indexes / 2**20:.0f} MB, total {size.total / 2**20:.0f} MB: "
            f"{size.per_row:,.0f} bytes per row"
        )
        for index, bytes_ in size.by_index.items():
            print(f"    {index}: {bytes_ / 2**20:.1f} MB ({bytes_ / max(size.rows, 1):.0f} B/row)")
    screenings, events = result.tables["screenings"], result.tables["audit_events"]
    per_screening = events.rows / max(screenings.rows, 1)
    print(
        f"  per screening with its {per_screening:.2f} audit events: "
        f"{(screenings.total + events.total) / max(screenings.rows, 1):,.0f} bytes; with one: "
        f"{screenings.per_row + events.per_row:,.0f} bytes"
    )


def print_starts(result: Size) -> None:
    print("\nstart-up of one worker: ready after (s), RSS (MB), medians (all runs)")
    for start in result.starts:
        print(
            f"  {start.forks} forks: {start.median_seconds:.2f} s "
            f"({', '.join(f'{s:.2f}' for s in start.seconds)}), "
            f"{start.median_rss / 2**20:.0f} MB "
            f"({', '.join(f'{r / 2**20:.0f}' for r in start.rss)})"
        )
    print(
        "  a forked tenant's first evaluations (ms; the first compiles its version): "
        + ", ".join(_ms(ms) for ms in result.fork_first_use_ms)
    )


Check = tuple[str, float, float, bool]


def check(what: str, ratio: float, target: float) -> Check:
    return what, ratio, target, ratio <= target


def targets(result: Size) -> list[Check]:
    """(what, measured ratio, target, held) for each target of one size; every ratio is the
    median over rounds of the two measurements taken in the same round."""
    checks = []
    firsts = {m.listing.path: m.page(0.0) for m in result.lists if not m.listing.filters}
    for measured in result.lists:
        first, deepest = measured.page(0.0), measured.page(0.9)
        label = f"{measured.listing.path} {measured.listing.label}"
        if first and deepest:
            ratio = per_round(deepest.rounds_ms, first.rounds_ms)
            checks.append(check(f"90% page / first page, {label}", ratio, PAGE_TARGET))
        unfiltered = firsts[measured.listing.path]
        if measured.listing.nothing and first and unfiltered:
            ratio = per_round(first.rounds_ms, unfiltered.rounds_ms)
            what = f"nothing matched / first unfiltered page, {label}"
            checks.append(check(what, ratio, NOTHING_TARGET))
    none, most = result.starts[0], result.starts[-1]
    versus = f"with {most.forks} forks / with {none.forks}"
    ready = per_round(most.seconds, none.seconds)
    checks.append(check(f"time to ready {versus}", ready, TENANTS_TARGET))
    rss = per_round(most.rss, none.rss)
    checks.append(check(f"RSS {versus}", rss, TENANTS_TARGET))
    return checks


def print_targets(result: Size) -> bool:
    print(f"\ntargets at {result.size:,} per tenant")
    held = True
    for what, ratio, target, ok in targets(result):
        held = held and ok
        print(f"  {'PASS' if ok else 'FAIL'}  {what}: {ratio:.2f} (≤ {target})")
    return held


def print_growth(small: Size, large: Size) -> None:
    factor = large.size / small.size
    print(
        f"\ngrowth from {small.size:,} to {large.size:,} per tenant (×{factor:,.0f} rows): "
        "page latency, large / small, median per round"
    )
    for before, after in zip(small.lists, large.lists, strict=True):
        cells = []
        for depth in DEPTHS:
            b, a = before.page(depth), after.page(depth)
            growth = f"{depth:.0%} ×{per_round(a.rounds_ms, b.rounds_ms):.2f}" if a and b else ""
            cells.append(growth)
        print(f"  {after.listing.path} {after.listing.label}: {', '.join(filter(None, cells))}")
    print(
        f"  processor time per list request: server ×"
        f"{large.processor.server_ms / small.processor.server_ms:.2f}, PostgreSQL ×"
        f"{large.processor.database_ms / small.processor.database_ms:.2f}"
    )
    for name in small.tables:
        print(
            f"  {name} bytes per row ×{large.tables[name].per_row / small.tables[name].per_row:.2f}"
        )
    rates = [result.load.screenings / result.load.seconds for result in (small, large)]
    print(f"  rows loaded per second ×{rates[1] / rates[0]:.2f}")
    for before_start, after_start in zip(small.starts, large.starts, strict=True):
        print(
            f"  start-up with {after_start.forks} forks ×"
            f"{per_round(after_start.seconds, before_start.seconds):.2f}, RSS ×"
            f"{per_round(after_start.rss, before_start.rss):.2f}"
        )


# --- the run ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[10_000, 1_000_000],
        help="screenings per tenant, one database each (10000 1000000)",
    )
    parser.add_argument(
        "--forks",
        type=int,
        nargs="+",
        default=[0, 500],
        help="tenants with an active fork, compared at start-up (0 500)",
    )
    parser.add_argument(
        "--screened-tenants",
        type=int,
        default=1,
        help="tenants with --sizes screenings each (1); the first is measured",
    )
    parser.add_argument("--months", type=int, default=24,
                        help="months the screenings are spread over, to now (24)")  # fmt: skip
    parser.add_argument("--page-size", type=int, default=50, help="rows per measured page (50)")
    parser.add_argument("--walk-size", type=int, default=1000, help="rows per page walked (1000)")
    parser.add_argument("--repeats", type=int, default=30, help="rounds of the pages (30)")
    parser.add_argument("--starts", type=int, default=8, help="start-ups per fork count (8)")
    parser.add_argument("--chunk", type=int, default=100_000, help="rows per INSERT (100000)")
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432",
        help="server to create the databases on",
    )
    parser.add_argument(
        "--database",
        default="carelevel_scale",
        help="prefix of the databases (dropped and recreated)",
    )
    parser.add_argument("--pool-size", type=int, help="carelevel's pool per process (default)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="do not pin the server and this client to separate CPUs",
    )
    parser.add_argument("--server-cpus", default="0", help="CPUs of the server (0)")
    parser.add_argument("--client-cpus", default="1", help="CPUs of this client (1)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--keep-logs", action="store_true", help="keep the servers' logs")
    args = parser.parse_args(argv)
    args.sizes, args.forks = sorted(args.sizes), sorted(args.forks)
    return args


def report(results: list[Size], facts: dict[str, Any]) -> bool:
    held = True
    for result in results:
        print_lists(result)
        print_storage(result)
        print_starts(result)
        held = print_targets(result) and held
    if len(results) > 1:
        print_growth(results[0], results[-1])
    print(
        f"\nmachine: {facts['cpus']} × {facts['cpu']}, {facts['memory']}, {facts['python']}, "
        f"PostgreSQL {facts['postgres']['version']} (shared_buffers "
        f"{facts['postgres']['shared_buffers']}); {facts['date']}; load average "
        f"{facts['load_average'][0]:.2f} at the start, {facts['load_average_end'][0]:.2f} "
        "at the end"
    )
    return held


def write_json(path: Path, results: list[Size], facts: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sizes = [result.figures() for result in results]
    path.write_text(json.dumps({"machine": facts, "sizes": sizes}, indent=2, default=str))


async def benchmark(run_: Run) -> int:
    args = run_.args
    facts = machine(await database_facts(run_.dsn("postgres")))
    if args.pin and shutil.which("taskset"):
        os.sched_setaffinity(0, {int(cpu) for cpu in args.client_cpus.split(",")})
    else:
        args.pin = False
    async with contextlib.AsyncExitStack() as stack:
        sizes = [await prepare(run_, size, stack) for size in args.sizes]
        print(f"measuring every page in {args.repeats} rounds", flush=True)
        await measure_rounds(sizes, args)
        for size in sizes:
            await finish_lists(size, args)
        await measure_starts(sizes, args, run_.workdir)
        for size in sizes:
            await check_forks(size, run_.workdir)
    facts["load_average_end"] = os.getloadavg()
    held = report(sizes, facts)
    if args.json is not None:
        write_json(args.json, sizes, facts)
    return 0 if held else 1


def main(argv: list[str] | None = None) -> int:
    run_ = Run(parse_args(argv), Path(tempfile.mkdtemp(prefix="carelevel-scale-")))
    return guarded(lambda: asyncio.run(benchmark(run_)), run_.clean_up)


if __name__ == "__main__":
    raise SystemExit(main())
