"""Apply or check database migrations from inside the application."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
from collections.abc import AsyncIterator
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from app.kernel.settings import Settings


@contextlib.asynccontextmanager
async def startup_lock(settings: Settings) -> AsyncIterator[None]:
    """SQLite: hold a file lock shared by every process of this deployment while it migrates
    and seeds the database. PostgreSQL: nothing to hold, since each seeding transaction
    serialises itself (a rule set's row lock, ``hold_seeding_lock``): a lock held across
    transactions would stay on the server connection a pooler in transaction mode (PgBouncer)
    hands to other clients."""
    if not settings.is_sqlite:
        yield None
        return
    database = settings.database_url.split("///", 1)[-1] or "carelevel.db"
    lock_path = Path(f"{database}.startup-lock")
    with lock_path.open("a") as handle:
        await asyncio.to_thread(fcntl.flock, handle, fcntl.LOCK_EX)
        try:
            yield None
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class SchemaOutdated(RuntimeError):
    """The database schema is not at the migrations' head."""


def alembic_config() -> Config:
    """Alembic's configuration for the service: the migrations are the package
    ``app.migrations``, which the wheel carries and which an editable install maps to the
    checkout's migrations/ directory (pyproject.toml), so a checkout and an installed package
    find them the same way. alembic.ini serves the ``alembic`` command in a checkout only."""
    config = Config()
    config.set_main_option("script_location", str(files("app.migrations")))
    return config


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


@cache
def head_revision() -> str | None:
    """The revision the code's schema is at: the head of migrations/ (read once)."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@cache
def _known_revisions() -> frozenset[str]:
    scripts = ScriptDirectory.from_config(alembic_config())
    return frozenset(script.revision for script in scripts.walk_revisions())


def schema_state(current: str | None) -> Literal["at_head", "ahead", "behind"]:
    """Where a database at revision ``current`` stands against the code's migrations. A
    revision the code does not know is ahead: a newer release migrated the database (a rolling
    deploy; migrations only add, so this code still works on it)."""
    if current == head_revision():
        return "at_head"
    if current is not None and current not in _known_revisions():
        return "ahead"
    return "behind"


def current_revision(connection: Connection) -> str | None:
    """The revision the database's schema is at (None: never migrated)."""
    return MigrationContext.configure(connection).get_current_revision()


def _current_and_head(connection: Connection) -> tuple[str | None, str | None]:
    return current_revision(connection), head_revision()


async def upgrade_to_head(engine: AsyncEngine) -> None:
    """Bring the database to the latest schema (used for the embedded SQLite default)."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


async def check_schema_is_current(engine: AsyncEngine) -> None:
    """Refuse to serve against a database whose schema is behind the code (ahead is fine: a
    newer release migrated it during a rolling deploy)."""
    async with engine.connect() as connection:
        current, head = await connection.run_sync(_current_and_head)
    if schema_state(current) == "behind":
        raise SchemaOutdated(
            f"The database schema is at revision {current or 'none'} but this version of "
            f"carelevel needs {head}: run `carelevel migrate` (alembic upgrade head) first."
        )
