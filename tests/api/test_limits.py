"""Oversized bodies are refused before they are parsed, and before anything else is done for
them: authentication, the rate limit, the operation itself."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.support.apps import http_client

LIMIT = 64 * 1024  # the default CARELEVEL_MAX_BODY_BYTES
RULE_SET_LIMIT = 1024 * 1024  # the default CARELEVEL_MAX_RULE_SET_BODY_BYTES
JSON = {"content-type": "application/json"}


def too_large(limit: int) -> dict[str, object]:
    return {
        "type": "https://carelevel.dev/problems/request-too-large",
        "title": "The request body is too large",
        "status": 413,
        "detail": f"The request body exceeds the limit of {limit} bytes.",
    }


def assert_refused(response: httpx.Response, limit: int = LIMIT) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["connection"] == "close"
    assert "ratelimit" not in response.headers  # not counted: refused before authorization
    assert response.json() == too_large(limit)


async def chunks(size: int) -> AsyncIterator[bytes]:
    for _ in range(size // 1024):
        yield b"x" * 1024


async def test_body_over_the_cap_is_413_problem(client: httpx.AsyncClient) -> None:
    body = b'{"answers": "' + b"x" * (70 * 1024) + b'"}'
    response = await client.post("/v1/screenings/evaluate", content=body, headers=JSON)
    assert_refused(response)


async def test_chunked_body_over_the_cap_is_413(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/screenings", content=chunks(80 * 1024), headers=JSON)
    assert_refused(response)
    listed = await client.get("/v1/screenings")
    assert listed.json()["items"] == []


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "chunked"])
async def test_an_oversized_body_is_refused_before_credentials_are_checked(
    app: FastAPI, declared: bool
) -> None:
    async with http_client(app, None) as anonymous:
        content = b"x" * (70 * 1024) if declared else chunks(70 * 1024)
        response = await anonymous.post("/v1/screenings", content=content, headers=JSON)
    assert_refused(response)


async def test_refused_before_the_operation_runs(client: httpx.AsyncClient) -> None:
    created = await client.post("/v1/clients", json={"name": "kept", "scopes": ["audit:read"]})
    assert created.status_code == 201, created.text
    kept = f"/v1/clients/{created.json()['id']}"
    assert_refused(await client.post(kept + "/revoke", content=b"x" * (70 * 1024), headers=JSON))
    assert (await client.get(kept)).json()["revoked_at"] is None


async def test_rule_set_documents_have_their_own_limit(client: httpx.AsyncClient) -> None:
    drafts = "/v1/rule-sets/shared/iop-level-of-care/versions"
    yaml = {"content-type": "application/yaml"}
    # Over the general limit, within the rule sets': parsed (and found wanting), not refused.
    within = await client.post(drafts, content=b"# " + b"x" * (200 * 1024), headers=yaml)
    assert within.status_code not in (413, 500), within.text
    over = await client.post(drafts, content=b"# " + b"x" * RULE_SET_LIMIT, headers=yaml)
    assert_refused(over, RULE_SET_LIMIT)


async def test_under_fhir_the_refusal_is_an_operation_outcome(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/fhir/r4/QuestionnaireResponse/$evaluate",
        content=b"x" * (70 * 1024),
        headers={"content-type": "application/fhir+json"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/fhir+json"
    assert response.headers["connection"] == "close"
    assert response.json() == {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "too-costly",
                "diagnostics": f"The request body exceeds the limit of {LIMIT} bytes.",
            }
        ],
    }
