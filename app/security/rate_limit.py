"""Per-client rate limits: a fixed window of ``limit`` requests every ``window`` seconds.

Limits are keyed by the authenticated client, never by address: EHR integrations reach us
from shared addresses. Three stores, chosen by CARELEVEL_RATE_LIMIT_STORAGE:

- redis: one pipelined round trip per request, shared by every process and replica. If Redis
  cannot be reached the request is let through (a warning is logged): the limiter protects the
  service and must not become the reason it is down.
- database: one upsert per request in a table of its own (UNLOGGED on Postgres, so it writes
  no WAL), shared by every process and replica. On Postgres it is a single statement that
  commits by itself: one round trip, and the client's counter row is locked only while the
  statement runs (in a transaction of its own, every request of a busy client would queue for
  that row until the previous request's COMMIT came back through the event loop).
- memory: this process only (one worker, tests).

A fixed window lets a client spend up to twice the limit across a window boundary; with a
generous default that is the price of a single counter per request.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import bindparam, delete
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.kernel.db import driver_connection, for_asyncpg
from app.security.models import RateLimitWindow

logger = logging.getLogger("carelevel.rate_limit")


@dataclass(frozen=True, slots=True)
class Quota:
    """What a request left of its client's quota."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the window ends

    def raw_headers(self) -> tuple[tuple[bytes, bytes], tuple[bytes, bytes]]:
        """RateLimit-Policy and RateLimit fields (draft-ietf-httpapi-ratelimit-headers), as
        ASGI headers."""
        return (
            (b"ratelimit-policy", b'"client";q=%d' % self.limit),
            (b"ratelimit", b'"client";r=%d;t=%d' % (self.remaining, self.reset_seconds)),
        )


class RateLimiter(Protocol):
    async def hit(self, client_id: str) -> Quota:
        """Count one request of ``client_id`` and say whether it is within the limit."""
        ...

    async def purge(self) -> None:
        """Forget windows that have ended."""
        ...

    async def aclose(self) -> None: ...


class _FixedWindow:
    def __init__(self, limit: int, window: int, clock: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock

    def current(self) -> tuple[int, int]:
        """(window number, seconds until it ends)."""
        now = self.clock()
        number = int(now // self.window)
        return number, max(1, math.ceil((number + 1) * self.window - now))

    def quota(self, count: int, reset: int) -> Quota:
        return Quota(count <= self.limit, self.limit, max(0, self.limit - count), reset)


class MemoryRateLimiter(_FixedWindow):
    def __init__(self, limit: int, window: int, clock: Callable[[], float] = time.time) -> None:
        super().__init__(limit, window, clock)
        self._counts: dict[str, tuple[int, int]] = {}

    async def hit(self, client_id: str) -> Quota:
        number, reset = self.current()
        seen_window, count = self._counts.get(client_id, (number, 0))
        count = count + 1 if seen_window == number else 1
        self._counts[client_id] = (number, count)
        return self.quota(count, reset)

    async def purge(self) -> None:
        number, _ = self.current()
        self._counts = {k: v for k, v in self._counts.items() if v[0] == number}

    async def aclose(self) -> None:
        return None


_COUNTS = RateLimitWindow.__table__.c
# One request of a client in a window: its count so far (PostgreSQL, run by asyncpg).
_HIT = for_asyncpg(
    postgres_insert(RateLimitWindow)
    .values(client_id=bindparam("client_id"), window=bindparam("window"), count=1)
    .on_conflict_do_update(
        index_elements=[_COUNTS.client_id, _COUNTS.window], set_={"count": _COUNTS.count + 1}
    )
    .returning(_COUNTS.count)
)


class DatabaseRateLimiter(_FixedWindow):
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        limit: int,
        window: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(limit, window, clock)
        self.sessions = sessions
        bind = sessions.kw.get("bind")
        self.postgres: AsyncEngine | None = (
            bind if isinstance(bind, AsyncEngine) and bind.dialect.name == "postgresql" else None
        )

    async def hit(self, client_id: str) -> Quota:
        number, reset = self.current()
        if self.postgres is not None:
            async with driver_connection(self.postgres) as connection:
                arguments = _HIT.arguments({"client_id": client_id, "window": number})
                count = int(await connection.fetchval(_HIT.sql, *arguments))
            return self.quota(count, reset)
        table = _COUNTS
        async with self.sessions() as session, session.begin():
            insert = (
                postgres_insert
                if session.get_bind().dialect.name == "postgresql"
                else sqlite_insert
            )
            statement = (
                insert(RateLimitWindow)
                .values(client_id=client_id, window=number, count=1)
                .on_conflict_do_update(
                    index_elements=[table.client_id, table.window],
                    set_={"count": table.count + 1},
                )
                .returning(table.count)
            )
            count = int((await session.execute(statement)).scalar_one())
        return self.quota(count, reset)

    async def purge(self) -> None:
        number, _ = self.current()
        async with self.sessions() as session, session.begin():
            await session.execute(delete(RateLimitWindow).where(RateLimitWindow.window < number))

    async def aclose(self) -> None:
        return None


# How long a request waits for Redis before it is let through uncounted.
REDIS_TIMEOUT_SECONDS = 0.5


class RedisRateLimiter(_FixedWindow):
    def __init__(
        self, url: str, limit: int, window: int, clock: Callable[[], float] = time.time
    ) -> None:
        from redis.asyncio import Redis

        super().__init__(limit, window, clock)
        self.redis = Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
        )

    async def hit(self, client_id: str) -> Quota:
        number, reset = self.current()
        key = f"carelevel:rate:{client_id}:{number}"
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.set(key, 0, ex=self.window * 2, nx=True)
                pipe.incr(key)
                _, count = await pipe.execute()
        except Exception as error:  # fail open: see the module docstring
            logger.warning(
                "rate limiter unavailable, request let through (%s)", type(error).__name__
            )
            return Quota(True, self.limit, self.limit, reset)
        return self.quota(int(count), reset)

    async def purge(self) -> None:
        return None  # keys expire by themselves

    async def aclose(self) -> None:
        await self.redis.aclose()
