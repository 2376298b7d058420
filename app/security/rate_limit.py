"""Rate limits: fixed windows of ``window`` seconds, counted per client, per tenant and, for
failed authentications, per source address.

Every authenticated request counts once against its client's limit and once against its
tenant's, so a tenant cannot multiply its budget by creating clients. Both counts are taken in
one round trip. A request is refused (429) when either is spent; the RateLimit fields name
both policies.

Where the counts live, by CARELEVEL_RATE_LIMIT_STORAGE:

- redis: one pipelined round trip per request, shared by every process and replica. If Redis
  cannot be reached the request is let through (a warning is logged): the limiter protects the
  service and must not become the reason it is down.
- memory: this process only. Refused with several worker processes (each would count alone);
  a deployment of several replicas must use Redis (docs/deployment.md).

The database is never used: a counter there cost one transaction per request.

A fixed window lets a client spend up to twice the limit across a window boundary; with a
generous default that is the price of a single counter per request.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

logger = logging.getLogger("carelevel.rate_limit")


@dataclass(frozen=True, slots=True)
class Quota:
    """What a request left of one policy's budget (``policy``: client or tenant)."""

    policy: str
    limit: int
    remaining: int
    reset_seconds: int  # until the window ends
    allowed: bool


@dataclass(frozen=True, slots=True)
class Quotas:
    """What a request left of each policy that counted it."""

    items: tuple[Quota, ...]

    @property
    def allowed(self) -> bool:
        return all(quota.allowed for quota in self.items)

    @property
    def spent(self) -> Quota | None:
        """The first policy whose budget is spent, if any."""
        return next((quota for quota in self.items if not quota.allowed), None)

    def raw_headers(self) -> tuple[tuple[bytes, bytes], tuple[bytes, bytes]]:
        """RateLimit-Policy and RateLimit fields (draft-ietf-httpapi-ratelimit-headers), as
        ASGI headers: one list member per policy."""
        policies = b", ".join(b'"%s";q=%d' % (q.policy.encode(), q.limit) for q in self.items)
        left = b", ".join(
            b'"%s";r=%d;t=%d' % (q.policy.encode(), q.remaining, q.reset_seconds)
            for q in self.items
        )
        return ((b"ratelimit-policy", policies), (b"ratelimit", left))


class WindowCounter(Protocol):
    """Counts hits of keys in the current fixed window."""

    async def hit(self, keys: Sequence[str]) -> tuple[list[int] | None, int]:
        """Count one hit of each of ``keys``: their counts in the current window (None when
        the store cannot be reached) and the seconds until the window ends."""
        ...

    async def purge(self) -> None:
        """Forget windows that have ended."""
        ...

    async def aclose(self) -> None: ...


class _FixedWindow:
    def __init__(self, window: int, clock: Callable[[], float] = time.time) -> None:
        self.window = window
        self.clock = clock

    def current(self) -> tuple[int, int]:
        """(window number, seconds until it ends)."""
        now = self.clock()
        number = int(now // self.window)
        return number, max(1, math.ceil((number + 1) * self.window - now))


class MemoryCounter(_FixedWindow):
    def __init__(self, window: int, clock: Callable[[], float] = time.time) -> None:
        super().__init__(window, clock)
        self._counts: dict[str, tuple[int, int]] = {}

    async def hit(self, keys: Sequence[str]) -> tuple[list[int] | None, int]:
        number, reset = self.current()
        counts = []
        for key in keys:
            seen_window, count = self._counts.get(key, (number, 0))
            count = count + 1 if seen_window == number else 1
            self._counts[key] = (number, count)
            counts.append(count)
        return counts, reset

    async def purge(self) -> None:
        number, _ = self.current()
        self._counts = {k: v for k, v in self._counts.items() if v[0] == number}

    async def aclose(self) -> None:
        return None


# How long a request waits for Redis before it is let through uncounted.
REDIS_TIMEOUT_SECONDS = 0.5


class RedisCounter(_FixedWindow):
    def __init__(self, url: str, window: int, clock: Callable[[], float] = time.time) -> None:
        from redis.asyncio import Redis

        super().__init__(window, clock)
        self.redis = Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
        )

    async def hit(self, keys: Sequence[str]) -> tuple[list[int] | None, int]:
        number, reset = self.current()
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                for key in keys:
                    stored = f"carelevel:rate:{key}:{number}"
                    pipe.set(stored, 0, ex=self.window * 2, nx=True)
                    pipe.incr(stored)
                replies = await pipe.execute()
        except Exception as error:  # fail open: see the module docstring
            logger.warning("rate limiter unavailable, not counted (%s)", type(error).__name__)
            return None, reset
        return [int(count) for count in replies[1::2]], reset

    async def purge(self) -> None:
        return None  # keys expire by themselves

    async def aclose(self) -> None:
        await self.redis.aclose()


class RateLimiter:
    """The client and tenant limits of authenticated requests."""

    def __init__(self, counter: WindowCounter, client_limit: int, tenant_limit: int) -> None:
        self.counter = counter
        self.client_limit = client_limit
        self.tenant_limit = tenant_limit

    async def hit(self, client_id: str, tenant: str) -> Quotas:
        """Count one request of ``client_id`` of ``tenant``."""
        counts, reset = await self.counter.hit((f"client:{client_id}", f"tenant:{tenant}"))
        client, tenant_count = counts or (0, 0)
        return Quotas(
            (
                _quota("client", self.client_limit, client, reset),
                _quota("tenant", self.tenant_limit, tenant_count, reset),
            )
        )


def _quota(policy: str, limit: int, count: int, reset: int) -> Quota:
    return Quota(policy, limit, max(0, limit - count), reset, count <= limit)


class FailedAuthentications:
    """Failed authentications per source address: past ``limit`` in a window, the address's
    requests with credentials not already trusted are refused until the window ends, without
    checking them (no database read, no hash). The refusal is remembered in the process, so a
    flood of random keys from one address costs a dictionary lookup per request."""

    def __init__(
        self, counter: WindowCounter, limit: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.counter = counter
        self.limit = limit
        self.clock = clock
        self._refused_until: dict[str, float] = {}

    def refused_for(self, address: str | None) -> int | None:
        """Seconds until ``address`` may try credentials again, None if it may now."""
        until = self._refused_until.get(address or "-")
        if until is None:
            return None
        left = until - self.clock()
        if left <= 0:
            del self._refused_until[address or "-"]
            return None
        return max(1, math.ceil(left))

    async def failed(self, address: str | None) -> None:
        """Count a failed authentication from ``address``."""
        counts, reset = await self.counter.hit((f"auth-failures:{address or '-'}",))
        if counts is not None and counts[0] > self.limit:
            if len(self._refused_until) >= _REFUSED_LIMIT:
                self._forget_expired()
            self._refused_until[address or "-"] = self.clock() + reset

    def _forget_expired(self) -> None:
        now = self.clock()
        self._refused_until = {a: u for a, u in self._refused_until.items() if u > now}
        while len(self._refused_until) >= _REFUSED_LIMIT:  # bounded, whatever comes
            self._refused_until.pop(next(iter(self._refused_until)))


_REFUSED_LIMIT = 100_000
