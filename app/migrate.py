"""Apply or check database migrations from inside the application."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
from collections.abc import AsyncIterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


_SEED_LOCK_ID = 0x6361_7265  # "care": the advisory lock that serialises start-up seeding


@contextlib.asynccontextmanager
async def startup_lock(settings: Settings, engine: AsyncEngine) -> AsyncIterator[object]:
    """Hold a lock shared by every process of this deployment while it prepares the database."""
    if settings.is_sqlite:
        database = settings.database_url.split("///", 1)[-1] or "carelevel.db"
        lock_path = Path(f"{database}.startup-lock")
        with lock_path.open("a") as handle:
            await asyncio.to_thread(fcntl.flock, handle, fcntl.LOCK_EX)
            try:
                yield handle
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    async with engine.connect() as connection:
        await connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _SEED_LOCK_ID})
        await connection.commit()
        try:
            yield connection
        finally:
            await connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _SEED_LOCK_ID})
            await connection.commit()


class SchemaOutdated(RuntimeError):
    """The database schema is not at the migrations' head."""


def alembic_config() -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    return config


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _current_and_head(connection: Connection) -> tuple[str | None, str | None]:
    current = MigrationContext.configure(connection).get_current_revision()
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    return current, head


async def upgrade_to_head(engine: AsyncEngine) -> None:
    """Bring the database to the latest schema (used for the embedded SQLite default)."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


async def check_schema_is_current(engine: AsyncEngine) -> None:
    """Refuse to serve against a database whose schema is behind the code."""
    async with engine.connect() as connection:
        current, head = await connection.run_sync(_current_and_head)
    if current != head:
        raise SchemaOutdated(
            f"The database schema is at revision {current or 'none'} but this version of "
            f"carelevel needs {head}: run `carelevel migrate` (alembic upgrade head) first."
        )
