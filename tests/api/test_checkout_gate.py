"""Connections for single statements (``driver_connection``, PostgreSQL) go to requests in the
order they asked, and a wait for one ends within the pool's timeout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import _GATES, create_engine, driver_connection
from app.settings import Settings

POOL_TIMEOUT = 0.5


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("single statements on a driver connection are a PostgreSQL path")
    small = settings.model_copy(update={"db_pool_size": 2, "db_pool_timeout_seconds": POOL_TIMEOUT})
    engine = create_engine(small)
    yield engine
    await engine.dispose()


async def _hold(engine: AsyncEngine, name: str, order: list[str], until: asyncio.Event) -> None:
    async with driver_connection(engine) as connection:
        order.append(name)
        assert await connection.fetchval("SELECT 1") == 1
        await until.wait()


async def _waiting(engine: AsyncEngine, count: int) -> None:
    """Until ``count`` checkouts wait at the gate (read from its waiters, to wait no longer
    than needed)."""
    for _ in range(1000):
        await asyncio.sleep(0.001)
        gate = _GATES.get(engine.sync_engine.pool)
        if gate is not None and gate._waiters is not None and len(gate._waiters) == count:
            return
    raise AssertionError(f"{count} checkouts never waited")


async def test_connections_go_to_waiting_requests_in_the_order_they_asked(
    engine: AsyncEngine,
) -> None:
    order: list[str] = []
    release = {name: asyncio.Event() for name in ("h1", "h2", "w1", "w2", "w3", "w4", "late")}
    holders = [asyncio.create_task(_hold(engine, h, order, release[h])) for h in ("h1", "h2")]
    await asyncio.wait_for(_until(lambda: len(order) == 2), 5)
    waiters = []
    for name in ("w1", "w2", "w3", "w4"):
        waiters.append(asyncio.create_task(_hold(engine, name, order, release[name])))
        await _waiting(engine, len(waiters))
    for event in release.values():
        event.set()  # everyone lets go as soon as it has had its turn
    # a request arriving just as connections come back waits behind those already waiting
    late = asyncio.create_task(_hold(engine, "late", order, release["late"]))
    await asyncio.wait_for(asyncio.gather(*holders, *waiters, late), 10)
    # the two holders connect at once, in either order; everyone after them waited in turn
    assert sorted(order[:2]) == ["h1", "h2"]
    assert order[2:] == ["w1", "w2", "w3", "w4", "late"]


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
    # neither the timed-out wait nor the holders kept a place: both connections are free
    both = [asyncio.Event(), asyncio.Event()]
    pair = [asyncio.create_task(_hold(engine, f"p{i}", order, both[i])) for i in range(2)]
    await asyncio.wait_for(_until(lambda: len(order) == 4), 2)
    for event in both:
        event.set()
    await asyncio.gather(*pair)


async def test_a_request_cancelled_while_waiting_gives_its_turn_away(engine: AsyncEngine) -> None:
    order: list[str] = []
    release = {name: asyncio.Event() for name in ("h1", "h2", "gone", "next")}
    holders = [asyncio.create_task(_hold(engine, h, order, release[h])) for h in ("h1", "h2")]
    await asyncio.wait_for(_until(lambda: len(order) == 2), 5)
    gone = asyncio.create_task(_hold(engine, "gone", order, release["gone"]))
    await _waiting(engine, 1)
    following = asyncio.create_task(_hold(engine, "next", order, release["next"]))
    await _waiting(engine, 2)
    gone.cancel()
    release["h1"].set()
    await asyncio.wait_for(_until(lambda: "next" in order), 2)
    for event in release.values():
        event.set()
    await asyncio.wait_for(asyncio.gather(*holders, following), 10)
    assert gone.cancelled()
    assert sorted(order[:2]) == ["h1", "h2"]
    assert order[2:] == ["next"]


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.001)
