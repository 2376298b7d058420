"""Connections for single statements (``driver_connection``, PostgreSQL) come from the pool:
when every one is taken, a request waits for at most the pool's timeout, and then gets the
pool's own error, which the API answers 503 with Retry-After."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import text
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.kernel.db import create_engine, driver_connection, for_asyncpg
from app.kernel.settings import Settings
from tests.support.apps import http_client, new_key, started_app
from tests.support.examples import example

POOL_TIMEOUT = 0.5
SELECT_ONE = for_asyncpg(text("SELECT 1"))


@pytest.fixture
def small_pool(settings: Settings) -> Settings:
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("single statements on a driver connection are a PostgreSQL path")
    return settings.model_copy(
        update={
            "db_pool_size": 2,
            "db_pool_timeout_seconds": POOL_TIMEOUT,
            "rate_limit_storage": "memory",
        }
    )


@pytest.fixture
async def engine(small_pool: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(small_pool)
    yield engine
    await engine.dispose()


async def _hold(engine: AsyncEngine, name: str, order: list[str], until: asyncio.Event) -> None:
    async with driver_connection(engine) as connection:
        order.append(name)
        assert await connection.fetchval(SELECT_ONE, {}) == 1
        await until.wait()


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.001)


async def test_a_wait_for_a_connection_ends_within_the_pool_timeout(engine: AsyncEngine) -> None:
    order: list[str] = []
    release = asyncio.Event()
    holders = [asyncio.create_task(_hold(engine, h, order, release)) for h in ("h1", "h2")]
    await asyncio.wait_for(_until(lambda: len(order) == 2), 5)
    started = time.monotonic()
    with pytest.raises(PoolTimeoutError):  # the error the pool itself raises (a 503)
        async with driver_connection(engine):
            pass
    waited = time.monotonic() - started
    assert POOL_TIMEOUT * 0.9 <= waited < POOL_TIMEOUT + 1.0
    release.set()
    await asyncio.wait_for(asyncio.gather(*holders), 10)
    # neither the timed-out wait nor the holders kept a connection: both are free
    both = [asyncio.Event(), asyncio.Event()]
    pair = [asyncio.create_task(_hold(engine, f"p{i}", order, both[i])) for i in range(2)]
    await asyncio.wait_for(_until(lambda: len(order) == 4), 2)
    for event in both:
        event.set()
    await asyncio.gather(*pair)


async def test_a_request_cancelled_while_waiting_takes_no_connection(engine: AsyncEngine) -> None:
    order: list[str] = []
    release = {name: asyncio.Event() for name in ("h1", "h2", "gone", "next")}
    holders = [asyncio.create_task(_hold(engine, h, order, release[h])) for h in ("h1", "h2")]
    await asyncio.wait_for(_until(lambda: len(order) == 2), 5)
    gone = asyncio.create_task(_hold(engine, "gone", order, release["gone"]))
    await asyncio.sleep(0.05)  # waiting in the pool
    gone.cancel()
    following = asyncio.create_task(_hold(engine, "next", order, release["next"]))
    release["h1"].set()
    await asyncio.wait_for(_until(lambda: "next" in order), 2)
    for event in release.values():
        event.set()
    await asyncio.wait_for(asyncio.gather(*holders, following), 10)
    assert gone.cancelled()
    assert "gone" not in order


async def test_a_full_pool_is_answered_503_then_served_again(
    schema: AsyncEngine, small_pool: Settings
) -> None:
    body = json.dumps({"answers": example("adult-iop-suitable")}).encode()
    headers = {"content-type": "application/json"}
    async with started_app(schema, small_pool) as app, http_client(app, await new_key(app)) as http:
        assert (await http.post("/v1/screenings", content=body, headers=headers)).status_code == 201
        order: list[str] = []
        release = asyncio.Event()
        engine = app.state.engine
        holders = [asyncio.create_task(_hold(engine, h, order, release)) for h in ("h1", "h2")]
        await asyncio.wait_for(_until(lambda: len(order) == 2), 5)
        refused = await http.post("/v1/screenings", content=body, headers=headers)
        release.set()
        await asyncio.gather(*holders)
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == "5"
        assert refused.json()["type"].endswith("temporarily-unavailable")
        assert (await http.post("/v1/screenings", content=body, headers=headers)).status_code == 201
