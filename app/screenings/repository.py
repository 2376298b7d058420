"""All SQL about screenings, decisions and idempotency keys."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import cache
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    Column,
    Insert,
    Select,
    Table,
    Text,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import load_only

from app.audit.models import AuditEvent
from app.kernel.db import Base, DriverStatement, UtcDateTime, driver_connection, for_asyncpg
from app.kernel.months import stored_near_id
from app.kernel.pagination import after_row
from app.rulesets.overrides import UNKNOWN_LEVEL
from app.screenings.models import Decision, IdempotencyRecord, Screening


async def recent_screenings_of_key(
    session: AsyncSession, tenant: str | None, key: str, limit: int
) -> Sequence[tuple[str, dict[str, Any], str | None, str | None, str | None, str | None]]:
    """The most recent screenings decided under rule-set ``key`` (of ``tenant``; None: every
    tenant's), as (id, answers, level, urgency, IOP verdict, final level): what a rule-set
    simulation re-evaluates. The final level is the one the screening's latest clinician
    decision chose (None: no decision; ``UNKNOWN_LEVEL``: a CDS override that did not say)."""
    final_level = (
        select(func.coalesce(Decision.final_level, UNKNOWN_LEVEL))
        .where(
            Decision.screening_id == Screening.id,
            Decision.tenant_id == Screening.tenant_id,
        )
        .order_by(Decision.created_at.desc(), Decision.id.desc())
        .limit(1)
        .correlate(Screening)
        .scalar_subquery()
    )
    query = (
        select(
            Screening.id,
            Screening.answers,
            Screening.level,
            Screening.urgency,
            Screening.iop_verdict,
            final_level,
        )
        .where(Screening.rule_set_key == key)
        .order_by(Screening.created_at.desc(), Screening.id.desc())
        .limit(limit)
    )
    if tenant is not None:
        query = query.where(Screening.tenant_id == tenant)
    rows = (await session.execute(query)).all()
    return [(row[0], row[1], row[2], row[3], row[4], row[5]) for row in rows]


# What a page of GET /v1/screenings shows of each screening.
LISTED_COLUMNS = (
    Screening.id,
    Screening.created_at,
    Screening.external_reference,
    Screening.person_id,
    Screening.rule_set_owner,
    Screening.rule_set_key,
    Screening.rule_set_version,
    Screening.rule_set_sha256,
    Screening.status,
    Screening.level,
    Screening.urgency,
    Screening.iop_verdict,
)


def page_query(
    tenant: str,
    *,
    limit: int,
    after: tuple[datetime, str] | None,
    external_reference: str | None = None,
    level: str | None = None,
    urgency: str | None = None,
    rule_set_key: str | None = None,
    rule_set_version: int | None = None,
    person_id: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
) -> Select[Screening]:
    """A page of ``tenant``'s screenings, newest first, after the (created_at, id) last seen.
    Only the columns a page shows are read (never the answers or the determination), and each
    filter is served by an index that starts with the tenant (``Screening.__table_args__``)."""
    query = (
        select(Screening)
        .options(load_only(*LISTED_COLUMNS, raiseload=True))
        .where(Screening.tenant_id == tenant)
        .order_by(Screening.created_at.desc(), Screening.id.desc())
        .limit(limit)
    )
    if after is not None:
        query = query.where(after_row(Screening.created_at, Screening.id, after))
    for column, value in (
        (Screening.external_reference, external_reference),
        (Screening.level, level),
        (Screening.urgency, urgency),
        (Screening.rule_set_key, rule_set_key),
        (Screening.rule_set_version, rule_set_version),
        (Screening.person_id, person_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if created_from is not None:
        query = query.where(Screening.created_at >= created_from)
    if created_to is not None:
        query = query.where(Screening.created_at < created_to)
    return query


def subject_query(
    tenant: str, references: frozenset[str], *, limit: int, after: tuple[datetime, str] | None
) -> Select[Screening]:
    """A batch of ``tenant``'s screenings whose subject is one of ``references``, newest first,
    after the (created_at, id) last seen: whole rows, which FHIR searches render. Served by the
    index on (tenant, subject reference, created_at, id)."""
    query = (
        select(Screening)
        .where(Screening.tenant_id == tenant, Screening.subject_reference.in_(sorted(references)))
        .order_by(Screening.created_at.desc(), Screening.id.desc())
        .limit(limit)
    )
    if after is not None:
        query = query.where(after_row(Screening.created_at, Screening.id, after))
    return query


def screening_query(tenant: str, screening_id: str) -> Select[Screening]:
    """The screening ``screening_id`` of ``tenant``: on PostgreSQL, read from the month its
    time-ordered id names (from every month for an older, random id)."""
    return select(Screening).where(
        Screening.id == screening_id,
        Screening.tenant_id == tenant,
        *stored_near_id(Screening.created_at, screening_id),
    )


class ScreeningRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, row: Screening | Decision | IdempotencyRecord) -> None:
        self.session.add(row)

    async def get(self, tenant: str, screening_id: str) -> Screening | None:
        """The screening ``screening_id`` if it belongs to ``tenant``."""
        query = screening_query(tenant, screening_id)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def latest_for_response(self, tenant: str, digest: str) -> Screening | None:
        """The tenant's latest screening of the QuestionnaireResponse with ``digest``."""
        query = (
            select(Screening)
            .where(Screening.tenant_id == tenant, Screening.response_digest == digest)
            .order_by(Screening.created_at.desc(), Screening.id.desc())
            .limit(1)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def page(
        self, tenant: str, *, limit: int, after: tuple[datetime, str] | None, **filters: Any
    ) -> Sequence[Screening]:
        """Newest first; ``after`` is the (created_at, id) of the last row already seen."""
        query = page_query(tenant, limit=limit, after=after, **filters)
        return (await self.session.execute(query)).scalars().all()

    async def of_subjects(
        self,
        tenant: str,
        references: frozenset[str],
        *,
        limit: int,
        after: tuple[datetime, str] | None,
    ) -> Sequence[Screening]:
        query = subject_query(tenant, references, limit=limit, after=after)
        return (await self.session.execute(query)).scalars().all()

    async def latest_decision(self, screening_id: str) -> Decision | None:
        query = (
            select(Decision)
            .where(Decision.screening_id == screening_id)
            .order_by(Decision.created_at.desc(), Decision.id.desc())
            .limit(1)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def idempotency(self, tenant: str, client: str, key: str) -> IdempotencyRecord | None:
        return await self.session.get(IdempotencyRecord, (tenant, client, key))

    async def forget_key(self, tenant: str, client: str, key: str, now: datetime) -> None:
        """Delete a client's key if it is expired (or has no screening: a claim an earlier
        version of the service left behind). A key stored meanwhile by another request is
        neither, and stays."""
        await self.session.execute(
            delete(IdempotencyRecord)
            .where(
                IdempotencyRecord.tenant_id == tenant,
                IdempotencyRecord.client_id == client,
                IdempotencyRecord.key == key,
                or_(IdempotencyRecord.expires_at < now, IdempotencyRecord.screening_id.is_(None)),
            )
            .execution_options(synchronize_session=False)
        )

    async def purge_expired_keys(self, now: datetime) -> None:
        await self.session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.expires_at < now)
        )


# --- Storing a screening: its idempotency key, the screening and its audit event, atomically --


async def store_screening(
    engine: AsyncEngine,
    screening: dict[str, Any],
    event: dict[str, Any] | None,
    key: dict[str, Any] | None,
) -> bool:
    """Store a screening (its column values) with its audit event and its idempotency key,
    all of it or nothing. False, and nothing stored, when the client's key already exists:
    a request that finds it being stored waits for that to commit (or roll back) first.

    PostgreSQL: one statement (one round trip, one commit). SQLite: one write transaction,
    begun ``IMMEDIATE`` so that concurrent writers queue for it one after the other."""
    if engine.dialect.name == "postgresql":
        return await _store_in_one_statement(engine, screening, event, key)
    return await _store_in_one_transaction(engine, screening, event, key)


_SCREENING, _EVENT, _KEY = "s_", "a_", "k_"
_POSTGRES = asyncpg_dialect()  # type: ignore[no-untyped-call]


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _parameters(table: Table, prefix: str) -> list[Any]:
    return [bindparam(prefix + column.key, type_=column.type) for column in table.columns]


@cache
def _one_statement(with_key: bool, with_event: bool) -> DriverStatement:
    """INSERT the screening; with a key, only if the key is new (its row inserted first, as
    completed); with an event, the audit event of the screening that was inserted. One
    statement, so one round trip and one commit: all of it is stored, or none."""
    screenings, events, keys = _table(Screening), _table(AuditEvent), _table(IdempotencyRecord)
    screening_columns = [column.key for column in screenings.columns]
    screening: Any
    if with_key:
        claim = (
            postgres_insert(keys)
            .values(dict(zip([c.key for c in keys.columns], _parameters(keys, _KEY), strict=True)))
            .on_conflict_do_nothing()
            .returning(keys.c.key)
            .cte("claim")
        )
        screening = insert(screenings).from_select(
            screening_columns, select(*_parameters(screenings, _SCREENING)).select_from(claim)
        )
    else:
        screening = insert(screenings).values(
            dict(zip(screening_columns, _parameters(screenings, _SCREENING), strict=True))
        )
    screening = screening.returning(screenings.c.id)
    if not with_event:
        return for_asyncpg(screening)
    stored = screening.cte("screening")
    event = insert(events).from_select(
        [column.key for column in events.columns],
        select(*_parameters(events, _EVENT)).select_from(stored),
    )
    return for_asyncpg(event.returning(events.c.id))


class JsonText(str):
    """A JSON document already serialised (the determination as the engine wrote it), for a
    JSON column of ``store_screening``: written as it is."""


def _json(value: Any) -> str:
    # None is JSON null, as the ORM writes it for these columns
    return value if isinstance(value, JsonText) else orjson.dumps(value).decode()


def _converter(column: Column[Any]) -> Callable[[Any], Any] | None:
    """What the column's type does to a value on its way to asyncpg (which for_asyncpg
    statements skip): JSON serialised, timestamps checked and converted to UTC."""
    if isinstance(column.type, JSON):
        return _json
    if isinstance(column.type, UtcDateTime):
        kind = column.type
        return lambda value: kind.process_bind_param(value, _POSTGRES)
    return None


@cache
def _converters(table: Table) -> tuple[tuple[str, Callable[[Any], Any] | None], ...]:
    return tuple((column.key, _converter(column)) for column in table.columns)


def _values(prefix: str, table: Table, row: dict[str, Any], values: dict[str, Any]) -> None:
    """The statement's values for ``row`` (every column must be given)."""
    for key, convert in _converters(table):
        value = row[key]
        values[prefix + key] = value if convert is None else convert(value)


async def _store_in_one_statement(
    engine: AsyncEngine,
    screening: dict[str, Any],
    event: dict[str, Any] | None,
    key: dict[str, Any] | None,
) -> bool:
    """PostgreSQL: ``store_screening`` in one statement, on a pooled connection in autocommit
    (``driver_connection``). A key being inserted by another request makes this statement's
    INSERT of it wait for that request's outcome."""
    statement = _one_statement(key is not None, event is not None)
    values: dict[str, Any] = {}
    _values(_SCREENING, _table(Screening), screening, values)
    if event is not None:
        _values(_EVENT, _table(AuditEvent), event, values)
    if key is not None:
        _values(_KEY, _table(IdempotencyRecord), key, values)
    async with driver_connection(engine) as connection:
        stored = await connection.fetchval(statement, values)
    return stored is not None


@cache
def _insert(table: Table, *, if_new: bool = False) -> Insert:
    """INSERT a row of ``table`` given as its column values (every column), JSON columns as
    JSON text (``_json``, so the determination is stored as the engine wrote it); ``if_new``:
    nothing when a row with the same primary key exists."""
    parameters = {
        column.key: bindparam(
            column.key, type_=Text() if isinstance(column.type, JSON) else column.type
        )
        for column in table.columns
    }
    if if_new:
        return sqlite_insert(table).values(parameters).on_conflict_do_nothing()
    return insert(table).values(parameters)


def _row(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    return {
        key: row[key] if convert is not _json else _json(row[key])
        for key, convert in _converters(table)
    }


async def _store_in_one_transaction(
    engine: AsyncEngine,
    screening: dict[str, Any],
    event: dict[str, Any] | None,
    key: dict[str, Any] | None,
) -> bool:
    """SQLite: ``store_screening`` in one write transaction. ``BEGIN IMMEDIATE`` takes the
    database's write lock before anything is read or written, so concurrent writers wait for
    it (``busy_timeout``) rather than fail, and the key is inserted only after every earlier
    writer has committed: a request whose key exists sees it, and stores nothing."""
    async with engine.begin() as connection:
        await connection.exec_driver_sql("BEGIN IMMEDIATE")
        if key is not None:
            keys = _table(IdempotencyRecord)
            inserted = await connection.execute(_insert(keys, if_new=True), _row(keys, key))
            if inserted.rowcount != 1:
                return False  # the key exists: commit the empty transaction
        screenings = _table(Screening)
        await connection.execute(_insert(screenings), _row(screenings, screening))
        if event is not None:
            events = _table(AuditEvent)
            await connection.execute(_insert(events), _row(events, event))
    return True
