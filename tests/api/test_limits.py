"""Oversized bodies are refused before they are parsed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx


async def test_body_over_the_cap_is_413_problem(client: httpx.AsyncClient) -> None:
    body = b'{"answers": "' + b"x" * (70 * 1024) + b'"}'
    response = await client.post(
        "/v1/screenings/evaluate", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("request-too-large")


async def test_chunked_body_over_the_cap_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(80):
            yield b"x" * 1024

    response = await client.post(
        "/v1/screenings", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    listed = await client.get("/v1/screenings")
    assert listed.json()["items"] == []
