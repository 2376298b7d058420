"""Idempotency keys are kept for their retention period, then forgotten."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.kernel.db import utcnow
from app.screenings.models import IdempotencyRecord
from tests.api.screenings_support import stored_keys
from tests.support.examples import EXAMPLES


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


async def test_an_expired_key_is_forgotten_by_the_request_that_uses_it_again(
    client: httpx.AsyncClient, schema: AsyncEngine
) -> None:
    """Before any purge: the request that finds its key expired deletes it and is processed as
    new; the key then belongs to that request's screening, for another retention period."""
    answers = json.loads((EXAMPLES / "adult-iop-suitable.json").read_text())
    body = {"answers": answers}
    headers = {"Idempotency-Key": "retention-2"}
    first = await client.post("/v1/screenings", json=body, headers=headers)
    assert first.status_code == 201
    async with schema.begin() as connection:
        await connection.execute(
            update(IdempotencyRecord).values(expires_at=utcnow() - timedelta(minutes=1))
        )

    again = await client.post("/v1/screenings", json=body, headers=headers)
    replayed = await client.post("/v1/screenings", json=body, headers=headers)
    other = await client.post(
        "/v1/screenings", json=body | {"external_reference": "other"}, headers=headers
    )

    assert again.status_code == 201, again.text
    assert "idempotent-replayed" not in again.headers
    assert again.json()["id"] != first.json()["id"]
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json()["id"] == again.json()["id"]
    assert other.status_code == 422
    [key] = await stored_keys(schema)
    assert key.screening_id == again.json()["id"]
    assert key.expires_at > utcnow() + timedelta(hours=23)
