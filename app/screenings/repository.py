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
    ColumnElement,
    CursorResult,
    Table,
    bindparam,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.audit.models import AuditEvent
from app.db import Base, DriverStatement, UtcDateTime, driver_connection, for_asyncpg
from app.pagination import after_row
from app.screenings.models import Decision, IdempotencyRecord, Screening


class ScreeningRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, row: Screening | Decision | IdempotencyRecord) -> None:
        self.session.add(row)

    async def get(self, tenant: str, screening_id: str) -> Screening | None:
        """The screening ``screening_id`` if it belongs to ``tenant``."""
        query = select(Screening).where(Screening.id == screening_id, Screening.tenant_id == tenant)
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
        self,
        tenant: str,
        *,
        limit: int,
        after: tuple[datetime, str] | None,
        external_reference: str | None,
        level: str | None,
        urgency: str | None,
        rule_set_key: str | None,
        rule_set_version: int | None,
        created_from: datetime | None,
        created_to: datetime | None,
    ) -> Sequence[Screening]:
        """Newest first; ``after`` is the (created_at, id) of the last row already seen."""
        query = (
            select(Screening)
            .where(Screening.tenant_id == tenant)
            .order_by(Screening.created_at.desc(), Screening.id.desc())
        )
        if after is not None:
            query = query.where(after_row(Screening.created_at, Screening.id, after))
        if external_reference is not None:
            query = query.where(Screening.external_reference == external_reference)
        if level is not None:
            query = query.where(Screening.level == level)
        if urgency is not None:
            query = query.where(Screening.urgency == urgency)
        if rule_set_key is not None:
            query = query.where(Screening.rule_set_key == rule_set_key)
        if rule_set_version is not None:
            query = query.where(Screening.rule_set_version == rule_set_version)
        if created_from is not None:
            query = query.where(Screening.created_at >= created_from)
        if created_to is not None:
            query = query.where(Screening.created_at < created_to)
        return (await self.session.execute(query.limit(limit))).scalars().all()

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

    async def take_over_key(
        self, tenant: str, client: str, key: str, claimed_at: datetime, now: datetime
    ) -> bool:
        """Claim an abandoned in-progress key anew; False when another request got there first
        (the compare-and-set on ``claimed_at`` lets exactly one take it over)."""
        result = await self.session.execute(
            update(IdempotencyRecord)
            .where(*_claim_held_at(tenant, client, key, claimed_at))
            .values(created_at=now)
            .execution_options(synchronize_session=False)
        )
        return _changed_one_row(result)

    async def complete_key(
        self, tenant: str, client: str, key: str, claimed_at: datetime, screening_id: str
    ) -> bool:
        """Mark a key completed by the request that holds the claim made at ``claimed_at``;
        False when the claim was taken over meanwhile."""
        result = await self.session.execute(
            update(IdempotencyRecord)
            .where(*_claim_held_at(tenant, client, key, claimed_at))
            .values(state="completed", screening_id=screening_id)
            .execution_options(synchronize_session=False)
        )
        return _changed_one_row(result)

    async def release_key(self, tenant: str, client: str, key: str, claimed_at: datetime) -> None:
        """Delete an in-progress key, but only the claim made at ``claimed_at``."""
        await self.session.execute(
            delete(IdempotencyRecord)
            .where(*_claim_held_at(tenant, client, key, claimed_at))
            .execution_options(synchronize_session=False)
        )

    async def purge_expired_keys(self, now: datetime) -> None:
        await self.session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.expires_at < now)
        )


def _claim_held_at(
    tenant: str, client: str, key: str, claimed_at: datetime
) -> tuple[ColumnElement[bool], ...]:
    """The in-progress claim on a client's ``key`` made at ``claimed_at``: a compare-and-set
    condition, so only the request holding that claim can change it."""
    return (
        IdempotencyRecord.tenant_id == tenant,
        IdempotencyRecord.client_id == client,
        IdempotencyRecord.key == key,
        IdempotencyRecord.state == "in_progress",
        IdempotencyRecord.created_at == claimed_at,
    )


def _changed_one_row(result: object) -> bool:
    return isinstance(result, CursorResult) and result.rowcount == 1


# --- PostgreSQL: a screening stored in one statement -----------------------------------------

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
    JSON column of ``store_in_one_statement``: written as it is."""


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


async def store_in_one_statement(
    engine: AsyncEngine,
    screening: dict[str, Any],
    event: dict[str, Any] | None,
    key: dict[str, Any] | None,
) -> bool:
    """Store a screening (its column values) with its audit event and its completed
    idempotency key, in one statement (PostgreSQL). False, and nothing stored, when the key
    already exists."""
    statement = _one_statement(key is not None, event is not None)
    values: dict[str, Any] = {}
    _values(_SCREENING, _table(Screening), screening, values)
    if event is not None:
        _values(_EVENT, _table(AuditEvent), event, values)
    if key is not None:
        _values(_KEY, _table(IdempotencyRecord), key, values)
    async with driver_connection(engine) as connection:
        stored = await connection.fetchval(statement.sql, *statement.arguments(values))
    return stored is not None
