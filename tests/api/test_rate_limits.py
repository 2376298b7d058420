"""Rate limits: a fixed window of CARELEVEL_RATE_LIMIT_WINDOW_SECONDS, in which a client may
make CARELEVEL_RATE_LIMIT_REQUESTS requests and all the clients of a tenant together
CARELEVEL_RATE_LIMIT_TENANT_REQUESTS, counted in memory or in Redis; and failed
authentications throttled per source address, at no database cost.

Request limits are keyed by the authenticated client and its tenant, never by the source
address. Every test uses new API clients and tenants of its own, so Redis keys
(``carelevel:rate:client:<client id>:<window>``) never collide between tests or runs and
expire by themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.kernel.settings import Settings
from app.main import create_app
from app.security.api_keys import generate_key
from app.security.credentials import CredentialRepository
from tests.support.apps import bearer, empty_tables, http_client, new_key
from tests.support.examples import example
from tests.support.problems import assert_problem

LIMIT = 3
WINDOW = 60
REDIS_URL = "redis://127.0.0.1:6379/15"
UNREACHABLE_REDIS_URL = "redis://127.0.0.1:1/0"
SHARED_BACKENDS = ["redis"]
BACKENDS = ["memory", *SHARED_BACKENDS]

_RATE_LIMIT = re.compile(r'"client";r=(\d+);t=(\d+), "tenant";r=(\d+);t=(\d+)')


@pytest.fixture(autouse=True)
def patient_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    """A reachable Redis that stalls for half a second on a loaded machine would let a request
    through uncounted (fail open, as designed) and a count test would see a 201 for its 429;
    the tests of an unreachable Redis are refused at once and keep testing that path."""
    monkeypatch.setattr("app.security.rate_limit.REDIS_TIMEOUT_SECONDS", 5.0)


def limited(settings: Settings, storage: str, **overrides: Any) -> Settings:
    update: dict[str, Any] = {
        "rate_limit_requests": LIMIT,
        "rate_limit_window_seconds": WINDOW,
        "rate_limit_storage": storage,
        "redis_url": REDIS_URL if storage == "redis" else None,
    }
    return settings.model_copy(update=update | overrides)


@contextlib.asynccontextmanager
async def instances(
    schema: AsyncEngine, settings: Settings, count: int = 1
) -> AsyncIterator[list[FastAPI]]:
    """``count`` applications on the same (emptied) database, like worker processes."""
    await empty_tables(schema)
    async with contextlib.AsyncExitStack() as stack:
        started = []
        for _ in range(count):
            application = create_app(settings)
            await stack.enter_async_context(LifespanManager(application))
            started.append(application)
        yield started


async def away_from_window_edge() -> None:
    """Wait (bounded, in short steps) while the current fixed window ends within 2 s, so that a
    test's requests all fall in one window."""
    for _ in range(30):
        if WINDOW - time.time() % WINDOW > 2.0:
            return
        await asyncio.sleep(0.1)


def remaining(response: httpx.Response, policy: str = "client") -> int:
    """``r`` of ``policy`` in the RateLimit field, after checking both RateLimit fields'
    shape."""
    tenant_limit = re.fullmatch(
        r'"client";q=(\d+), "tenant";q=(\d+)', response.headers["ratelimit-policy"]
    )
    assert tenant_limit is not None, response.headers["ratelimit-policy"]
    assert int(tenant_limit[1]) == LIMIT
    match = _RATE_LIMIT.fullmatch(response.headers["ratelimit"])
    assert match is not None, response.headers["ratelimit"]
    assert 1 <= int(match[2]) <= WINDOW
    assert match[2] == match[4]  # one window
    return int(match[1] if policy == "client" else match[3])


def assert_rate_limited(response: httpx.Response) -> None:
    body = assert_problem(response, 429, "rate-limited")
    assert body["type"].endswith("rate-limited")
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit(), retry_after
    assert 1 <= int(retry_after) <= WINDOW
    assert min(remaining(response), remaining(response, "tenant")) == 0
    match = _RATE_LIMIT.fullmatch(response.headers["ratelimit"])
    assert match is not None
    assert int(match[2]) == int(retry_after)


async def count_rows(schema: AsyncEngine, table: str) -> int:
    async with schema.connect() as connection:
        return int((await connection.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


@pytest.mark.parametrize("storage", BACKENDS)
async def test_fourth_request_in_the_window_is_429_and_other_clients_are_unaffected(
    schema: AsyncEngine, settings: Settings, storage: str
) -> None:
    async with instances(schema, limited(settings, storage)) as [app]:
        first, second = await new_key(app, name="first"), await new_key(app, name="second")
        await away_from_window_edge()
        async with http_client(app, first) as http:
            seen = []
            for _ in range(LIMIT):
                response = await http.get("/v1/screenings")
                assert response.status_code == 200, response.text
                seen.append(remaining(response))
            assert seen == [2, 1, 0]

            assert_rate_limited(await http.get("/v1/screenings"))
            assert_rate_limited(await http.get("/v1/questionnaire"))  # any operation

        # Same tenant, same source address (the ASGI transport's), another client.
        async with http_client(app, second) as other:
            response = await other.get("/v1/screenings")
            assert response.status_code == 200, response.text
            assert remaining(response) == LIMIT - 1


@pytest.mark.parametrize("storage", SHARED_BACKENDS)
async def test_two_instances_share_the_count_with_shared_storage(
    schema: AsyncEngine, settings: Settings, storage: str
) -> None:
    """redis: every process (and replica) counts against one window."""
    async with instances(schema, limited(settings, storage), count=2) as [one, two]:
        key = await new_key(one)
        await away_from_window_edge()
        async with http_client(one, key) as via_one, http_client(two, key) as via_two:
            assert remaining(await via_one.get("/v1/screenings")) == 2
            assert remaining(await via_two.get("/v1/screenings")) == 1
            assert remaining(await via_one.get("/v1/screenings")) == 0
            assert_rate_limited(await via_two.get("/v1/screenings"))
            assert_rate_limited(await via_one.get("/v1/screenings"))


async def test_two_instances_count_separately_with_memory_storage(
    schema: AsyncEngine, settings: Settings
) -> None:
    """memory: each process counts on its own (so N workers allow N times the limit)."""
    async with instances(schema, limited(settings, "memory"), count=2) as [one, two]:
        key = await new_key(one)
        await away_from_window_edge()
        async with http_client(one, key) as via_one, http_client(two, key) as via_two:
            for expected in (2, 1, 0):
                assert remaining(await via_one.get("/v1/screenings")) == expected
            assert_rate_limited(await via_one.get("/v1/screenings"))
            response = await via_two.get("/v1/screenings")
            assert response.status_code == 200, response.text
            assert remaining(response) == LIMIT - 1


@pytest.mark.parametrize("storage", BACKENDS)
async def test_rate_limited_request_stores_nothing_and_writes_no_audit_event(
    schema: AsyncEngine, settings: Settings, storage: str
) -> None:
    body = {"answers": example("adult-iop-suitable")}
    async with instances(schema, limited(settings, storage)) as [app]:
        key = await new_key(app)
        await away_from_window_edge()
        async with http_client(app, key) as http:
            for _ in range(LIMIT):
                created = await http.post("/v1/screenings", json=body)
                assert created.status_code == 201, created.text
            screenings = await count_rows(schema, "screenings")
            events = await count_rows(schema, "audit_events")
            assert screenings == LIMIT
            assert events >= LIMIT

            assert_rate_limited(await http.post("/v1/screenings", json=body))
            assert_rate_limited(
                await http.post("/v1/screenings", json=body, headers={"Idempotency-Key": "k-1"})
            )

            assert await count_rows(schema, "screenings") == screenings
            assert await count_rows(schema, "audit_events") == events


async def test_unreachable_redis_lets_requests_through(
    schema: AsyncEngine, settings: Settings
) -> None:
    unreachable = limited(settings, "redis", redis_url=UNREACHABLE_REDIS_URL)
    async with instances(schema, unreachable) as [app]:
        key = await new_key(app)
        async with http_client(app, key) as http:
            started = time.perf_counter()
            for _ in range(LIMIT + 3):
                response = await http.get("/v1/screenings")
                assert response.status_code == 200, response.text
            assert time.perf_counter() - started < 5  # no long retries per request


@pytest.mark.parametrize("redis_url", [None, ""])
def test_redis_storage_without_redis_url_is_a_settings_error(redis_url: str | None) -> None:
    with pytest.raises(ValidationError, match="CARELEVEL_REDIS_URL"):
        Settings(rate_limit_storage="redis", redis_url=redis_url)


def test_auto_storage_is_redis_with_a_url_else_memory() -> None:
    assert Settings(rate_limit_storage="auto", redis_url=None).rate_limit_backend == "memory"
    assert Settings(rate_limit_storage="auto", redis_url=REDIS_URL).rate_limit_backend == "redis"
    assert Settings(rate_limit_storage="redis", redis_url=REDIS_URL).rate_limit_backend == "redis"


@pytest.mark.parametrize("storage", ["auto", "memory"])
def test_several_workers_counting_in_memory_are_a_settings_error(storage: str) -> None:
    with pytest.raises(ValidationError, match="CARELEVEL_REDIS_URL"):
        Settings(rate_limit_storage=storage, workers=2)
    assert Settings(rate_limit_storage="auto", workers=2, redis_url=REDIS_URL).workers == 2


def test_production_needs_redis_unless_one_process_is_declared_alone() -> None:
    production: dict[str, Any] = {
        "environment": "production",
        "database_url": "postgresql+asyncpg://carelevel@db.example:5432/carelevel",
        "public_url": "https://carelevel.example",
    }
    with pytest.raises(ValidationError, match="CARELEVEL_REDIS_URL: production needs Redis"):
        Settings(**production)
    assert Settings(**production, redis_url=REDIS_URL).rate_limit_backend == "redis"
    assert Settings(**production, rate_limit_storage="memory").rate_limit_backend == "memory"


@pytest.mark.parametrize("storage", BACKENDS)
async def test_a_tenants_clients_share_the_tenant_budget(
    schema: AsyncEngine, settings: Settings, storage: str
) -> None:
    tenant_limit = LIMIT + 1
    async with instances(
        schema, limited(settings, storage, rate_limit_tenant_requests=tenant_limit)
    ) as [app]:
        tenant = f"clinic-{uuid.uuid4().hex[:8]}"
        first = await new_key(app, tenant=tenant, name="a")
        second = await new_key(app, tenant=tenant, name="b")
        elsewhere = await new_key(app, tenant=f"other-{uuid.uuid4().hex[:8]}")
        await away_from_window_edge()
        async with (
            http_client(app, first) as one,
            http_client(app, second) as two,
            http_client(app, elsewhere) as other,
        ):
            for _ in range(LIMIT):
                assert (await one.get("/v1/screenings")).status_code == 200
            response = await two.get("/v1/screenings")  # the tenant's last request
            assert response.status_code == 200, response.text
            assert (remaining(response), remaining(response, "tenant")) == (LIMIT - 1, 0)
            refused = await two.get("/v1/screenings")
            assert_rate_limited(refused)
            assert "tenant" in refused.json()["detail"]
            another_tenant = await other.get("/v1/screenings")
            assert another_tenant.status_code == 200, another_tenant.text


def failure_counting(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The key prefixes looked up in the database from now on."""
    looked_up: list[str] = []
    original = CredentialRepository.by_prefix

    async def by_prefix(self: CredentialRepository, prefix: str) -> Any:
        looked_up.append(prefix)
        return await original(self, prefix)

    monkeypatch.setattr(CredentialRepository, "by_prefix", by_prefix)
    return looked_up


@contextlib.asynccontextmanager
async def from_address(app: FastAPI, address: str, key: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(address, 40_000))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://carelevel.test", headers=bearer(key)
    ) as http:
        yield http


def random_key() -> str:
    """A well-formed API key that no client has."""
    return generate_key().secret


@pytest.mark.parametrize("storage", BACKENDS)
async def test_failed_authentications_are_throttled_per_address_without_the_database(
    schema: AsyncEngine, settings: Settings, storage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    failures = 3
    throttled = limited(settings, storage, auth_failures_per_address=failures)
    attacker, neighbour = f"198.51.100.{secrets.randbelow(250) + 1}", "203.0.113.7"
    async with instances(schema, throttled) as [app]:
        good = await new_key(app)
        async with from_address(app, attacker, good) as trusted_before:
            assert (await trusted_before.get("/v1/screenings")).status_code == 200
        looked_up = failure_counting(app, monkeypatch)
        await away_from_window_edge()
        statuses = []
        for _ in range(failures + 3):
            async with from_address(app, attacker, random_key()) as http:
                statuses.append((await http.get("/v1/screenings")).status_code)
        assert statuses == [401] * (failures + 1) + [429, 429]
        assert len(looked_up) == failures + 1  # the refused ones cost no database read
        async with from_address(app, attacker, random_key()) as http:
            refused = await http.get("/v1/screenings")
        body = assert_problem(refused, 429, "rate-limited")
        assert "failed authentications" in body["detail"]
        assert 1 <= int(refused.headers["retry-after"]) <= WINDOW
        # A key this process already trusts still gets in from that address.
        async with from_address(app, attacker, good) as trusted:
            assert (await trusted.get("/v1/screenings")).status_code == 200
        # Another address is not affected.
        async with from_address(app, neighbour, random_key()) as other:
            assert (await other.get("/v1/screenings")).status_code == 401


async def test_a_key_found_not_valid_is_refused_again_without_a_database_read(
    schema: AsyncEngine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with instances(schema, limited(settings, "memory")) as [app]:
        looked_up = failure_counting(app, monkeypatch)
        wrong = random_key()
        async with http_client(app, wrong) as http:
            first = await http.get("/v1/screenings")
            again = await http.get("/v1/screenings")
    assert_problem(first, 401)
    assert_problem(again, 401)
    assert again.json()["detail"] == first.json()["detail"]
    assert len(looked_up) == 1
