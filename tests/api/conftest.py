"""API tests drive the real application through httpx against a real database.

CARELEVEL_TEST_DATABASE_URL selects the database; unset, `make test` uses the local
PostgreSQL when it answers (scripts/test_database.py), and a plain `pytest` a SQLite file in a
temporary directory. The schema is built once per run with the Alembic migrations. One started
application serves every test that takes ``app`` or ``client``, reset before each to empty
tables plus the seeded default rule set (tests/support/apps.py); a test that needs other
settings, or changes what start-up built, starts its own with ``started_app`` or ``running``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.kernel.db import Base, create_engine
from app.kernel.migrate import upgrade_to_head
from app.kernel.settings import Settings
from tests.support.apps import http_client, new_key, reset, running


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
        # Every test's requests come from the one address of the ASGI transport, and many
        # test refused credentials: the throttle of failed authentications per address has
        # tests of its own (test_rate_limits.py).
        auth_failures_per_address=100_000,
    )


@pytest.fixture(scope="session")
async def schema(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings)
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(text("DROP SCHEMA public CASCADE"))
            # pg_partman's configuration names the tables just dropped: it goes too.
            await connection.execute(text("DROP SCHEMA IF EXISTS partman CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
        else:
            await connection.run_sync(Base.metadata.drop_all)
            await connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    await upgrade_to_head(engine)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def shared_app(schema: AsyncEngine, settings: Settings) -> AsyncIterator[FastAPI]:
    """The application most tests share: started once per run (building FastAPI's routes and
    starting the lifespan cost about a tenth of a second per application)."""
    async with running(settings) as application:
        yield application


@pytest.fixture
async def app(shared_app: FastAPI, schema: AsyncEngine) -> FastAPI:
    """The shared application, reset to a fresh start's state for this test."""
    await reset(shared_app, schema)
    return shared_app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client authenticated as an operator-tenant client with every scope."""
    async with http_client(app, await new_key(app)) as http:
        yield http
