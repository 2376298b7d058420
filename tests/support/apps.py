"""Started applications and HTTP clients of them, for the API specifications.

Most tests share one started application (the ``app`` fixture in tests/api/conftest.py) and
get it reset to what a fresh start gives: empty tables, the shipped rule set seeded and active.
Tests that need other settings, or that change what the application built at start-up, start
their own with ``started_app`` or ``running``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.clients.service import create_client
from app.kernel.db import Base
from app.kernel.settings import Settings
from app.main import create_app
from app.security.api_keys import key_prefix
from app.security.credentials import CredentialRepository
from app.security.principal import ALL_SCOPES, Scope

OPERATOR_TENANT = "default"
BASE_URL = "http://carelevel.test"
# Start-up seeds and compiles the shipped rule set; on a loaded 2-core machine that can take
# longer than asgi-lifespan's default of 5 seconds.
STARTUP_TIMEOUT_SECONDS = 60


async def empty_tables(engine: AsyncEngine) -> None:
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))
        else:
            for table in tables:
                await connection.execute(text(f"DELETE FROM {table}"))


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[FastAPI]:
    """An application for ``settings``, started (lifespan run) for the block: another process
    serving the same database as the shared one."""
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=STARTUP_TIMEOUT_SECONDS):
        yield application


@contextlib.asynccontextmanager
async def started_app(schema: AsyncEngine, settings: Settings) -> AsyncIterator[FastAPI]:
    """An application of its own for ``settings`` on emptied tables, started for the block."""
    await empty_tables(schema)
    async with running(settings) as application:
        yield application


async def reset(app: FastAPI, schema: AsyncEngine) -> None:
    """Return a started ``app`` to what a fresh start gives: empty tables, the shipped rule set
    seeded and active, no active version remembered from before."""
    await empty_tables(schema)
    await app.state.rule_set_service.ensure_default()
    app.state.rule_set_cache.clear()  # after seeding: a refresh begun earlier is dropped
    async with app.state.sessions() as session:
        await app.state.rule_set_cache.refresh(session)


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


@contextlib.asynccontextmanager
async def admin_client(app: FastAPI, name: str = "carelevel") -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of ``app`` authenticated as a new operator-tenant admin."""
    async with http_client(app, await new_key(app), name) as http:
        yield http
