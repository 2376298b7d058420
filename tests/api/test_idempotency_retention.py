"""Idempotency keys are kept for their retention period, then forgotten."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from app.db import utcnow
from app.screenings.models import IdempotencyRecord
from app.screenings.repository import ScreeningRepository
from tests.api.conftest import EXAMPLES


async def test_expired_keys_are_purged_and_can_be_used_again(
    app: FastAPI, client: httpx.AsyncClient, schema: AsyncEngine
) -> None:
    answers = json.loads((EXAMPLES / "adult-iop-suitable.json").read_text())
    headers = {"Idempotency-Key": "retention-1"}
    first = await client.post("/v1/screenings", json={"answers": answers}, headers=headers)
    assert first.status_code == 201
    kept = await client.post(
        "/v1/screenings", json={"answers": answers, "external_reference": "other"}, headers=headers
    )
    assert kept.status_code == 422  # within retention: the key still belongs to the first body

    async with schema.begin() as connection:
        await connection.execute(
            update(IdempotencyRecord).values(expires_at=utcnow() - timedelta(minutes=1))
        )
    await app.state.screening_service.purge_expired_keys()

    again = await client.post(
        "/v1/screenings", json={"answers": answers, "external_reference": "other"}, headers=headers
    )
    assert again.status_code == 201
    assert again.json()["id"] != first.json()["id"]


TENANT, CLIENT = "default", "client-1"
STUCK = (TENANT, CLIENT, "stuck")


async def test_a_request_whose_key_was_taken_over_cannot_complete_or_release_it(
    schema: AsyncEngine,
) -> None:
    now = utcnow()
    stuck_claim = now - timedelta(minutes=5)
    async with schema.begin() as connection:
        await connection.execute(
            insert(IdempotencyRecord).values(
                tenant_id=TENANT,
                client_id=CLIENT,
                key="stuck",
                fingerprint="f" * 64,
                state="in_progress",
                created_at=stuck_claim,
                expires_at=now + timedelta(hours=24),
            )
        )
    sessions = async_sessionmaker(schema, expire_on_commit=False)
    async with sessions() as session, session.begin():
        repository = ScreeningRepository(session)
        assert await repository.take_over_key(*STUCK, stuck_claim, now)  # a retry takes over
    async with sessions() as session, session.begin():
        repository = ScreeningRepository(session)
        assert not await repository.complete_key(*STUCK, stuck_claim, "late-screening")
        await repository.release_key(*STUCK, stuck_claim)  # must not drop the retry's claim
    async with sessions() as session:
        record = await ScreeningRepository(session).idempotency(*STUCK)
        assert record is not None
        assert record.state == "in_progress"
        assert record.created_at == now
    async with sessions() as session, session.begin():
        repository = ScreeningRepository(session)
        assert await repository.complete_key(*STUCK, now, "retry-screening")
