"""The example answers shipped in examples/ and the shortest way to screen them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

EXAMPLES = Path(__file__).parents[2] / "examples"

Json = dict[str, Any]


def example(name: str) -> Json:
    """The answers of ``examples/<name>.json`` (a fresh copy each time)."""
    answers: Json = json.loads((EXAMPLES / f"{name}.json").read_text())
    return answers


def level_of(determination: Json) -> str | None:
    recommended = determination["recommended_level"]
    return None if recommended is None else str(recommended["level"])


async def screen(
    client: httpx.AsyncClient,
    answers: Json | None = None,
    *,
    headers: dict[str, str] | None = None,
    **fields: Any,
) -> httpx.Response:
    """POST /v1/screenings with ``answers`` (the adult IOP example by default)."""
    body = {"answers": answers if answers is not None else example("adult-iop-suitable")}
    return await client.post("/v1/screenings", json=body | fields, headers=headers)


async def create(client: httpx.AsyncClient, answers: Json | None = None, **fields: Any) -> Json:
    """A stored screening's response body (asserting the 201)."""
    response = await screen(client, answers, **fields)
    assert response.status_code == 201, response.text
    body: Json = response.json()
    return body
