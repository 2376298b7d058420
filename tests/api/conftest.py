"""API tests drive the real application through httpx against a real database.

CARELEVEL_TEST_DATABASE_URL selects the database (Postgres in CI); without it, a SQLite file
in a temporary directory. The schema is built once per run with the Alembic migrations, and
every test starts from empty tables plus the seeded default rule set.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import Base, create_engine
from app.main import create_app
from app.migrate import upgrade_to_head
from app.settings import Settings

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("CARELEVEL_TEST_DATABASE_URL")
    if configured:
        yield configured
    else:
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'carelevel-test.db'}"


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        environment="test",
        rule_set_refresh_seconds=0.2,
        db_pool_size=20,
        simulation_sample_size=50,
    )


@pytest.fixture(scope="session")
async def schema(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings)
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(text("DROP SCHEMA public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
        else:
            await connection.run_sync(Base.metadata.drop_all)
            await connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    await upgrade_to_head(engine)
    yield engine
    await engine.dispose()


async def empty_tables(engine: AsyncEngine) -> None:
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))
        else:
            for table in tables:
                await connection.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
async def app(schema: AsyncEngine, settings: Settings) -> AsyncIterator[FastAPI]:
    await empty_tables(schema)
    application = create_app(settings)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://carelevel.test") as http:
        yield http
