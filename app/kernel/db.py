"""Database engine, sessions and the declarative base shared by every table."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import JSON, DateTime, Dialect, MetaData, String, TypeDecorator, event, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Session, SessionTransaction
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.util import greenlet_spawn

from app.kernel.ids import time_ordered_uuid
from app.kernel.settings import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSON documents: JSONB on Postgres, JSON text elsewhere.
JSONDocument = JSON().with_variant(JSONB(), "postgresql")


class UtcDateTime(TypeDecorator[datetime]):
    """Timestamps are timezone-aware UTC on every database (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        return None if value is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: JSONDocument}


def new_id() -> str:
    """A new row's identifier: a time-ordered UUID (version 7) as text, portable across
    databases; new rows land at the end of their primary-key index."""
    return time_ordered_uuid()


def utcnow() -> datetime:
    return datetime.now(UTC)


IdColumn = String(36)


def create_engine(settings: Settings) -> AsyncEngine:
    """The async engine for the configured database."""
    if settings.is_sqlite:
        engine = create_async_engine(
            settings.database_url, connect_args={"timeout": 30}, hide_parameters=True
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    engine = create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=0,
        pool_timeout=settings.db_pool_timeout_seconds,
        hide_parameters=True,  # statements in errors and logs never carry the values
        connect_args={
            # A server that stops answering (a paused machine, a network dropping packets)
            # keeps its connections open: without these, a request would wait until it
            # answers again.
            "timeout": settings.db_statement_timeout_seconds,
            "command_timeout": settings.db_statement_timeout_seconds,
            # No named prepared statements: a pooler in transaction mode (PgBouncer) hands the
            # server connection to another client after each transaction, where a name would
            # be missing or taken. asyncpg then sends each statement unnamed, parsed in the
            # message that runs it; SQLAlchemy and ``DriverConnection`` keep what asyncpg
            # learnt of a statement per connection, so it still takes one round trip.
            "statement_cache_size": 0,
        },
    )
    check_connections_before_use(engine)
    return engine


def database_shown(database_url: str, working_directory: Path) -> str:
    """The database a URL names, fit to print: its password masked (``***``), its query left
    out (it may carry credentials too), and a relative SQLite path made absolute against
    ``working_directory``, where the file is opened."""
    try:
        url = make_url(database_url).set(query={})
    except ArgumentError:
        return "(CARELEVEL_DATABASE_URL is not a database URL)"
    path = url.database
    if url.get_backend_name() == "sqlite" and path and path != ":memory:":
        url = url.set(database=os.path.normpath(working_directory / path))
    return url.render_as_string(hide_password=True)


# A pooled connection idle for longer than this is pinged before it is handed out.
PING_AFTER_IDLE_SECONDS = 1.0
_IDLE_SINCE = "carelevel.idle_since"


def check_connections_before_use(engine: AsyncEngine) -> None:
    """Hand out only live connections, without a round trip per checkout under load.

    A connection the server has closed (a restart, ``pg_terminate_backend``, an idle timeout)
    is known to be closed as soon as the event loop has read the end of its socket: it is
    replaced at once. One that has sat idle for more than ``PING_AFTER_IDLE_SECONDS`` is pinged
    first, as SQLAlchemy's ``pool_pre_ping`` would (which pings every checkout: a BEGIN, a
    query and a ROLLBACK on asyncpg, three round trips for each unit of work). A failed check
    makes the pool open a new connection.
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if dbapi_connection.driver_connection.is_closed():
            raise DisconnectionError("the server closed the connection")
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is not None and time.monotonic() - idle_since > PING_AFTER_IDLE_SECONDS:
            try:
                dbapi_connection.ping()
            except Exception as error:
                raise DisconnectionError("the connection failed its ping") from error


# Errors after which a connection cannot be used again, or the server is going away.
_UNAVAILABLE = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
)


@dataclass(frozen=True, slots=True)
class DriverStatement:
    """A Core statement compiled once to asyncpg's SQL, its parameters by name in order."""

    sql: str
    names: tuple[str, ...]
    constants: dict[str, Any]

    def arguments(self, values: dict[str, Any]) -> list[Any]:
        return [values[name] if name in values else self.constants[name] for name in self.names]


def for_asyncpg(statement: ClauseElement) -> DriverStatement:
    """Compile ``statement`` (with ``bindparam``s for what varies) for ``driver_connection``.
    Values are passed as asyncpg takes them: the column types' own conversions do not run."""
    compiled = statement.compile(dialect=asyncpg_dialect())  # type: ignore[no-untyped-call]
    names = tuple(getattr(compiled, "positiontup", None) or ())
    return DriverStatement(str(compiled), names, dict(compiled.params))


_PREPARED = "carelevel.prepared"


class DriverConnection:
    """A pooled connection's asyncpg connection, with the statements prepared on it."""

    __slots__ = ("driver", "_prepared")

    def __init__(
        self, driver: asyncpg.Connection, prepared: dict[str, asyncpg.PreparedStatement]
    ) -> None:
        self.driver = driver
        self._prepared = prepared

    async def fetchval(self, statement: DriverStatement, values: dict[str, Any]) -> Any:
        """The first column of ``statement``'s first row. The statement is described once
        per connection (a round trip), then each run is one round trip, which parses it again
        (it is unnamed: see ``create_engine``)."""
        prepared = self._prepared.get(statement.sql)
        if prepared is None:
            prepared = self._prepared[statement.sql] = await self.driver.prepare(statement.sql)
        return await prepared.fetchval(*statement.arguments(values))


@contextlib.asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[DriverConnection]:
    """A pooled PostgreSQL connection to run single statements on with asyncpg itself, each
    committing by itself (no transaction is open): for the hot paths, whose one statement
    would otherwise cost a BEGIN and a COMMIT and SQLAlchemy's execution machinery. A single
    statement in autocommit leaves nothing behind on the server connection, so it is safe
    behind a pooler in transaction mode.

    The connection is the pool's own, without an ``AsyncConnection`` around it: half the cost
    of a checkout and return (each is one hop into SQLAlchemy's synchronous pool). When every
    connection is taken, the request waits in the pool, for at most its timeout (then the
    pool's ``TimeoutError``: 503 for the API). Failures are those SQLAlchemy would raise: a lost
    connection (or a server shutting down) invalidates the connection and raises
    ``OperationalError`` (503), any other database error ``DBAPIError``; a cancelled statement
    leaves a connection that is closed rather than returned to the pool.
    """
    dialect = engine.dialect
    try:
        fairy = await greenlet_spawn(engine.sync_engine.raw_connection)
    except dialect.loaded_dbapi.Error as error:  # wrapped as engine.connect() would wrap it
        raise DBAPIError.instance(
            None,
            None,
            error,
            dialect.loaded_dbapi.Error,
            connection_invalidated=dialect.is_disconnect(error, None, None),
            dialect=dialect,
        ) from error
    try:
        driver: asyncpg.Connection = fairy.driver_connection
        try:
            # what was prepared lives as long as the connection (the pool clears it on a new one)
            yield DriverConnection(driver, fairy.info.setdefault(_PREPARED, {}))
        except (
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            asyncpg.InternalClientError,
        ) as error:
            # InternalClientError: a connection the server dropped mid-protocol (a fast
            # shutdown's FATAL) is left in a state no statement can use: replace it.
            broken = isinstance(error, asyncpg.InternalClientError)
            if broken or driver.is_closed() or isinstance(error, _UNAVAILABLE):
                fairy.invalidate(error)
                raise OperationalError(None, None, error, connection_invalidated=True) from None
            raise DBAPIError(None, None, error) from None
        except (OSError, TimeoutError, asyncio.CancelledError) as error:
            # the statement's fate is unknown and so is the connection's: close it
            fairy.invalidate(error if isinstance(error, Exception) else None)
            raise
    finally:
        await greenlet_spawn(fairy.close)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


_SEEDING_LOCK_ID = 0x6361_7265  # "care"


async def hold_seeding_lock(session: AsyncSession) -> None:
    """Wait for, then hold until the session's transaction ends, the lock that serialises the
    start-up seeding of the processes of a deployment. PostgreSQL: a transaction-level
    advisory lock, released by the commit or rollback; never a session-level one, which a
    pooler in transaction mode would leave on a server connection it hands to other clients.
    SQLite: nothing to take, start-up holds a file lock there (``startup_lock``)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _SEEDING_LOCK_ID})


_AFTER_COMMIT = "carelevel.after_commit"


def after_commit(session: AsyncSession, action: Callable[[], None]) -> None:
    """Run ``action`` once the session's transaction has committed; drop it if the transaction
    rolls back or is closed without committing.

    For effects outside the database (the in-process rule-set cache) that must only happen for
    work that became visible to everyone else.
    """
    pending: list[Callable[[], None]] | None = session.info.get(_AFTER_COMMIT)
    if pending is None:
        pending = session.info[_AFTER_COMMIT] = []
        actions = pending

        def committed(sync_session: Session) -> None:
            if sync_session.in_nested_transaction():
                return  # a savepoint was released; the outer transaction may still roll back
            ready = list(actions)
            actions.clear()
            for ready_action in ready:
                ready_action()

        def ended(_sync_session: Session, transaction: SessionTransaction) -> None:
            if transaction.parent is None:
                actions.clear()

        event.listen(session.sync_session, "after_commit", committed)
        event.listen(session.sync_session, "after_transaction_end", ended)
    pending.append(action)
