"""Every request is answered within its deadline (503 with Retry-After) whatever it waits for,
and a body that arrives too slowly is refused (408) instead of holding the request."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from app.kernel.settings import Settings
from tests.support.apps import http_client, new_key, started_app
from tests.support.examples import example
from tests.support.problems import assert_problem

DEADLINE = 0.5
BODY_TIMEOUT = 0.3


@pytest.fixture
async def app(schema: AsyncEngine, settings: Settings) -> AsyncIterator[FastAPI]:
    short = settings.model_copy(
        update={"request_deadline_seconds": DEADLINE, "request_body_timeout_seconds": BODY_TIMEOUT}
    )
    async with started_app(schema, short) as application:
        yield application


def authentication_that_hangs(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Make every credential check wait (as for an identity provider that stopped answering);
    the event is set once a request was stopped while it waited."""
    stopped = asyncio.Event()

    async def hang(token: str) -> Any:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            stopped.set()
            raise

    monkeypatch.setattr(app.state.guard.authenticator, "authenticate", hang)
    return stopped


async def test_a_request_that_outlasts_its_deadline_gets_503_with_retry_after(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = await new_key(app)
    stopped = authentication_that_hangs(app, monkeypatch)
    async with http_client(app, key) as http:
        began = time.monotonic()
        response = await http.get("/v1/screenings")
        elapsed = time.monotonic() - began
    body = assert_problem(response, 503, "deadline-exceeded")
    assert response.headers["retry-after"] == "5"
    assert response.headers["x-request-id"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert f"{DEADLINE:g} s" in body["detail"]
    assert elapsed < 30  # the hanging check would have taken 60 s
    await asyncio.wait_for(stopped.wait(), 5)  # and the work under way was stopped


async def test_the_hot_operations_and_fhir_keep_the_deadline_in_their_own_form(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = await new_key(app)
    authentication_that_hangs(app, monkeypatch)
    async with http_client(app, key) as http:
        evaluated = await http.post(
            "/v1/screenings/evaluate", json={"answers": example("adult-iop-suitable")}
        )
        fhir = await http.get("/fhir/r4/Questionnaire")
    assert_problem(evaluated, 503, "deadline-exceeded")
    assert fhir.status_code == 503
    assert fhir.headers["content-type"].startswith("application/fhir+json")
    assert fhir.json()["resourceType"] == "OperationOutcome"
    assert fhir.headers["retry-after"] == "5"


async def test_a_request_within_its_deadline_is_untouched(app: FastAPI) -> None:
    async with http_client(app, await new_key(app)) as http:
        response = await http.post(
            "/v1/screenings/evaluate", json={"answers": example("adult-iop-suitable")}
        )
    assert response.status_code == 200, response.text


async def trickled(body: bytes, pause: float) -> AsyncIterator[bytes]:
    """``body`` in two halves with ``pause`` seconds between them (a slow client)."""
    yield body[: len(body) // 2]
    await asyncio.sleep(pause)
    yield body[len(body) // 2 :]


def slow_body() -> bytes:
    return json.dumps({"answers": example("adult-iop-suitable")}).encode()


@pytest.mark.parametrize(
    "headers_of",
    [
        # a declared length: the hot operation's fast lane reads the body
        lambda body: {"content-type": "application/json", "content-length": str(len(body))},
        # chunked: FastAPI's handler reads it
        lambda body: {"content-type": "application/json"},
    ],
    ids=["declared-length", "chunked"],
)
async def test_a_body_that_arrives_too_slowly_gets_408_and_the_connection_closed(
    app: FastAPI, headers_of: Callable[[bytes], dict[str, str]]
) -> None:
    body = slow_body()
    async with http_client(app, await new_key(app)) as http:
        response = await http.post(
            "/v1/screenings",
            content=trickled(body, BODY_TIMEOUT * 3),
            headers=headers_of(body) | {"Idempotency-Key": "slow-body-1"},
        )
        listed = await http.get("/v1/screenings")
    assert_problem(response, 408, "request-timeout")
    assert response.headers["connection"] == "close"
    assert listed.json()["items"] == []  # nothing was stored


async def test_a_body_sent_in_time_in_pieces_is_accepted(app: FastAPI) -> None:
    body = slow_body()
    async with http_client(app, await new_key(app)) as http:
        response = await http.post(
            "/v1/screenings/evaluate",
            content=trickled(body, BODY_TIMEOUT / 10),
            headers={"content-type": "application/json", "content-length": str(len(body))},
        )
    assert response.status_code == 200, response.text


def test_the_body_timeout_cannot_exceed_the_deadline() -> None:
    with pytest.raises(ValueError, match="CARELEVEL_REQUEST_BODY_TIMEOUT_SECONDS"):
        Settings(request_deadline_seconds=5, request_body_timeout_seconds=10)


async def test_a_request_stopped_after_it_stored_is_retried_safely_with_its_key(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = app.state.screening_service
    original = service.create

    async def store_then_hang(*args: Any, **kwargs: Any) -> Any:
        stored = await original(*args, **kwargs)
        await asyncio.sleep(60)
        return stored

    body = {"answers": example("adult-iop-suitable")}
    key = {"Idempotency-Key": "deadline-1"}
    async with http_client(app, await new_key(app)) as http:
        monkeypatch.setattr(service, "create", store_then_hang)
        stopped = await http.post("/v1/screenings", json=body, headers=key)
        monkeypatch.setattr(service, "create", original)
        retried = await http.post("/v1/screenings", json=body, headers=key)
        listed = await http.get("/v1/screenings")
    assert_problem(stopped, 503, "deadline-exceeded")
    assert retried.status_code == 201, retried.text
    assert retried.headers["idempotent-replayed"] == "true"
    assert [item["id"] for item in listed.json()["items"]] == [retried.json()["id"]]
