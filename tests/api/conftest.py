"""API tests drive the real application through httpx against a real database.

CARELEVEL_TEST_DATABASE_URL selects the database (Postgres in CI); without it, a SQLite file
in a temporary directory. The schema is built once per run with the Alembic migrations, and
every test starts from empty tables plus the seeded default rule set.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.clients.service import create_client
from app.db import Base, create_engine
from app.main import create_app
from app.migrate import upgrade_to_head
from app.security.api_keys import key_prefix
from app.security.credentials import CredentialRepository
from app.security.principal import ALL_SCOPES, Scope
from app.settings import Settings

EXAMPLES = Path(__file__).parents[2] / "examples"
OPERATOR_TENANT = "default"
BASE_URL = "http://carelevel.test"


async def new_key(
    app: FastAPI,
    *,
    tenant: str = OPERATOR_TENANT,
    name: str = "test admin",
    scopes: frozenset[Scope] | set[Scope] = ALL_SCOPES,
) -> str:
    """The API key of a new client of ``tenant`` (every scope of the operator tenant by
    default), created directly in the database of a started application."""
    async with app.state.sessions() as session, session.begin():
        created = await create_client(session, tenant, name, scopes, "tests")
    return created.api_key


async def client_id_of(app: FastAPI, http: httpx.AsyncClient) -> str:
    """The id of the API client whose key ``http`` sends."""
    prefix = key_prefix(http.headers["authorization"].removeprefix("Bearer "))
    assert prefix is not None
    async with app.state.sessions() as session:
        client = await CredentialRepository(session).by_prefix(prefix)
    assert client is not None
    return client.id


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@contextlib.asynccontextmanager
async def http_client(
    app: FastAPI, key: str | None, name: str = "carelevel"
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of ``app`` that sends ``key`` with every request (none: anonymous)."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    headers = bearer(key) if key else {}
    async with httpx.AsyncClient(
        transport=transport, base_url=f"http://{name}.test", headers=headers
    ) as http:
        yield http


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


@contextlib.asynccontextmanager
async def started_app(schema: AsyncEngine, settings: Settings) -> AsyncIterator[FastAPI]:
    """An application for ``settings`` on emptied tables, started for the block."""
    await empty_tables(schema)
    application = create_app(settings)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def app(schema: AsyncEngine, settings: Settings) -> AsyncIterator[FastAPI]:
    async with started_app(schema, settings) as application:
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client authenticated as an operator-tenant client with every scope."""
    async with http_client(app, await new_key(app)) as http:
        yield http
