"""How often an API key is checked against the database: once for all the requests that carry
it together, again in the background shortly before its trust runs out, and never past it.

The authenticator here runs on a started application's database with a clock of its own, as
another process would (revocations made through the API reach it only through the database).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import OperationalError

from app.kernel.errors import Unauthorized
from app.security.authentication import Authenticator
from app.security.credentials import CredentialRepository
from app.security.jwt import JwtVerifier
from app.security.principal import Scope
from tests.support.apps import http_client, new_key

TRUST = 10.0  # seconds a checked key is trusted


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Reads:
    """The client-row reads of key checks; ``failing`` makes them fail as a lost database."""

    count: int = 0
    failing: bool = False
    gate: asyncio.Event | None = None  # when set, reads wait for it


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Reads:
    seen = Reads()
    real = CredentialRepository.by_prefix

    async def counted(self: CredentialRepository, prefix: str) -> object:
        seen.count += 1
        if seen.gate is not None:
            await seen.gate.wait()
        if seen.failing:
            raise OperationalError("SELECT", {}, ConnectionResetError())
        return await real(self, prefix)

    monkeypatch.setattr(CredentialRepository, "by_prefix", counted)
    return seen


@pytest.fixture
async def checker(app: FastAPI) -> AsyncIterator[tuple[Authenticator, Clock]]:
    clock = Clock()
    authenticator = Authenticator(app.state.sessions, JwtVerifier([], list(Scope)), TRUST, clock)
    yield authenticator, clock
    await authenticator.aclose()


async def settled(authenticator: Authenticator) -> None:
    """Wait for the checks under way (in the background) to finish."""
    for _ in range(1000):
        if not authenticator._checks:  # private: what a test has to wait for
            return
        await asyncio.sleep(0.01)
    raise AssertionError("a key check did not finish within 10 s")


async def test_requests_carrying_an_unchecked_key_together_share_one_check(
    app: FastAPI, reads: Reads
) -> None:
    key = await new_key(app, name="burst")
    reads.gate = asyncio.Event()  # every request arrives before the check answers
    async with http_client(app, key) as burst:
        pending = [asyncio.create_task(burst.get("/v1/screenings")) for _ in range(20)]
        await asyncio.sleep(0.2)
        reads.gate.set()
        responses = await asyncio.gather(*pending)
    assert [r.status_code for r in responses] == [200] * 20
    assert reads.count == 1


async def test_a_key_in_use_is_checked_again_before_its_trust_runs_out(
    app: FastAPI, reads: Reads, checker: tuple[Authenticator, Clock]
) -> None:
    authenticator, clock = checker
    key = await new_key(app, name="steady")
    first = await authenticator.authenticate(key)
    assert reads.count == 1
    clock.now += TRUST * 0.5
    assert await authenticator.authenticate(key) == first
    assert reads.count == 1, "trusted, and not yet near the end of its trust"
    clock.now += TRUST * 0.4  # 90% of the trust elapsed
    assert await authenticator.authenticate(key) == first, "answered at once"
    await settled(authenticator)
    assert reads.count == 2, "checked in the background"
    clock.now += TRUST * 0.5  # past the first trust, within the renewed one
    assert await authenticator.authenticate(key) == first
    await settled(authenticator)
    assert reads.count == 2


async def test_a_background_check_that_finds_the_key_revoked_ends_its_trust(
    app: FastAPI, client: httpx.AsyncClient, reads: Reads, checker: tuple[Authenticator, Clock]
) -> None:
    authenticator, clock = checker
    key = await new_key(app, name="revoked elsewhere")
    await authenticator.authenticate(key)
    listed = (await client.get("/v1/clients")).json()["items"]
    target = next(c for c in listed if c["name"] == "revoked elsewhere")
    assert (await client.post(f"/v1/clients/{target['id']}/revoke")).status_code == 200

    clock.now += TRUST * 0.9
    await authenticator.authenticate(key)  # still within its trust; starts the check
    await settled(authenticator)
    with pytest.raises(Unauthorized, match="revoked"):
        await authenticator.authenticate(key)


async def test_a_database_lost_during_a_background_check_leaves_the_trust_to_run_out(
    app: FastAPI, reads: Reads, checker: tuple[Authenticator, Clock]
) -> None:
    authenticator, clock = checker
    key = await new_key(app, name="outage")
    principal = await authenticator.authenticate(key)
    reads.failing = True
    clock.now += TRUST * 0.9
    assert await authenticator.authenticate(key) == principal
    await settled(authenticator)
    assert reads.count == 2
    assert await authenticator.authenticate(key) == principal, "trusted until it runs out"
    clock.now += TRUST * 0.2
    with pytest.raises(OperationalError):  # answered 503 by the error handlers
        await authenticator.authenticate(key)
    reads.failing = False
    assert await authenticator.authenticate(key) == principal


async def test_a_request_that_goes_away_does_not_cancel_the_check_others_wait_for(
    app: FastAPI, reads: Reads, checker: tuple[Authenticator, Clock]
) -> None:
    authenticator, _ = checker
    key = await new_key(app, name="impatient")
    reads.gate = asyncio.Event()
    leaving = asyncio.create_task(authenticator.authenticate(key))
    staying = asyncio.create_task(authenticator.authenticate(key))
    while reads.count < 1:  # the check waits at the gate, both requests for it
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.01)
    leaving.cancel()
    reads.gate.set()
    principal = await staying
    assert leaving.cancelled()
    assert principal.label.startswith("impatient")
    assert reads.count == 1


async def test_a_check_begun_before_a_revocation_here_does_not_restore_the_trust(
    app: FastAPI, reads: Reads
) -> None:
    authenticator = app.state.guard.authenticator
    key = await new_key(app, name="raced")
    async with app.state.sessions() as session:
        client = await CredentialRepository(session).by_prefix(key.split(".")[0])
    assert client is not None
    assert reads.count == 1
    reads.gate = asyncio.Event()
    checking = asyncio.create_task(authenticator.authenticate(key))
    while reads.count < 2:  # the check has read the row's state so far
        await asyncio.sleep(0.01)
    authenticator.forget(client.id)  # a revocation committed meanwhile
    reads.gate.set()
    await checking  # answered from the row it read
    reads.gate = None
    await authenticator.authenticate(key)
    assert reads.count == 3, "the next request checked the key again"
