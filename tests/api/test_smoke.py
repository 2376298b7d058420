"""The service answers a screening right after a fresh start."""

from __future__ import annotations

import json

import httpx

from tests.support.examples import EXAMPLES


async def test_fresh_service_screens_with_the_default_rule_set(client: httpx.AsyncClient) -> None:
    answers = json.loads((EXAMPLES / "adult-iop-suitable.json").read_text())
    response = await client.post("/v1/screenings", json={"answers": answers})
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == f"/v1/screenings/{body['id']}"
    assert body["rule_set"]["key"] == "iop-level-of-care"
    assert body["rule_set"]["version"] == 1
    assert body["determination"]["recommended_level"]["level"] == "intensive_outpatient"
    stored = await client.get(response.headers["location"])
    assert stored.status_code == 200
    assert stored.json()["determination"] == body["determination"]
