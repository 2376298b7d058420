"""The fast lane (app/runtime/fast_lane.py) answers the hot operations exactly as the middleware
stack.

Every request here is sent twice, through the lane and with the lane switched off (every
request then crosses the stack and its router, and FastAPI's own handler binds it, as for any
other operation). Status, headers
and body must be the same, except what differs between any two requests (date, request id,
the quota left, the ids and times of stored screenings). Requests the lane must not answer go
to the stack, which is checked too.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import Receive, Scope, Send

from app.kernel.settings import Settings
from app.runtime.compression import Compression
from app.runtime.cors import Cors
from app.runtime.deadline import Deadline
from app.runtime.edge import Edge
from app.runtime.fast_lane import FastLane
from app.screenings.service import ScreeningService
from app.security.principal import Scope as ApiScope
from tests.support.apps import http_client, new_key, started_app
from tests.support.examples import example

EVALUATE, CREATE = "/v1/screenings/evaluate", "/v1/screenings"
BODY = json.dumps({"answers": example("adult-iop-suitable")}).encode()
JSON = {"content-type": "application/json"}
# What differs between any two requests, whichever way they go.
# The bodies are compared decoded: a gzipped body's length varies with the ids inside it.
VARYING_HEADERS = {"date", "x-request-id", "ratelimit", "location", "content-length"}
VARYING_FIELDS = {"id", "created_at", "instance"}


def comparable(response: httpx.Response) -> dict[str, Any]:
    body: Any = response.json() if response.content else None
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in VARYING_FIELDS}
    return {"status": response.status_code, "headers": comparable_headers(response), "body": body}


def comparable_headers(response: httpx.Response) -> list[tuple[str, str]]:
    return sorted(
        (name, value)
        for name, value in response.headers.multi_items()
        if name not in VARYING_HEADERS
    )


def lane_of(app: FastAPI) -> FastLane:
    """The lane: the edge, CORS, the deadline, compression, then the lane."""
    edge = app.middleware_stack
    assert isinstance(edge, Edge)
    assert isinstance(edge.app, Cors)
    stack = edge.app.app
    assert isinstance(stack, Deadline)
    assert isinstance(stack.app, Compression)
    assert isinstance(stack.app.app, FastLane)
    return stack.app.app


@contextlib.contextmanager
def lane_off(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every request into the middleware stack, as if there were no lane."""

    async def into_the_stack(self: FastLane, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    with monkeypatch.context() as patch:
        patch.setattr(FastLane, "__call__", into_the_stack)
        yield


@contextlib.contextmanager
def stack_calls(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The paths of the requests the lane passed to the stack while the block runs."""
    lane = lane_of(app)
    stack = lane.app
    passed: list[str] = []

    async def counted(scope: Scope, receive: Receive, send: Send) -> None:
        passed.append(scope["path"])
        await stack(scope, receive, send)

    with monkeypatch.context() as patch:
        patch.setattr(lane, "app", counted)
        yield passed


async def both_ways(
    http: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    content: bytes = BODY,
    headers: dict[str, str] | None = None,
) -> tuple[httpx.Response, httpx.Response]:
    headers = JSON if headers is None else headers
    laned = await http.post(path, content=content, headers=headers)
    with lane_off(monkeypatch):
        stacked = await http.post(path, content=content, headers=headers)
    return laned, stacked


async def test_a_plain_request_is_answered_by_the_lane_as_by_the_stack(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await client.get("/healthz")  # builds the stack
    for path, status in ((EVALUATE, 200), (CREATE, 201)):
        with stack_calls(app, monkeypatch) as passed:
            laned, stacked = await both_ways(client, monkeypatch, path)
        assert passed == [path], "only the request sent with the lane off crossed the stack"
        assert laned.status_code == stacked.status_code == status
        assert comparable(laned) == comparable(stacked), path
        assert laned.headers["ratelimit"].startswith('"client";r=')
        assert laned.headers["x-request-id"] != stacked.headers["x-request-id"]
    evaluated, again = await both_ways(client, monkeypatch, EVALUATE)
    assert evaluated.content == again.content  # byte for byte


async def test_refusals_on_the_lane_are_the_stacks(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_scope = await new_key(app, name="reader", scopes={ApiScope.SCREENINGS_READ})
    pinned = json.dumps(
        {"answers": example("adult-iop-suitable"), "rule_set": {"version": 99}}
    ).encode()
    cases: list[tuple[str, str | None, bytes, int]] = [
        ("no credentials", None, BODY, 401),
        ("an unknown key", "clk_00000000." + "A" * 43, BODY, 401),
        ("a key without the scope", no_scope, BODY, 403),
        ("a version that does not exist", "own", pinned, 422),
    ]
    for case, key, content, status in cases:
        for path in (EVALUATE, CREATE):
            sent = client.headers["authorization"].removeprefix("Bearer ") if key == "own" else key
            async with http_client(app, sent) as http:
                laned, stacked = await both_ways(http, monkeypatch, path, content)
            assert laned.status_code == status, (case, path, laned.text)
            assert comparable(laned) == comparable(stacked), (case, path)


async def test_a_rate_limited_request_is_refused_as_by_the_stack(
    schema: AsyncEngine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    limited = settings.model_copy(update={"rate_limit_requests": 2, "rate_limit_storage": "memory"})
    async with started_app(schema, limited) as app:
        refusals = []
        for lane in (True, False):
            async with http_client(app, await new_key(app, name=f"lane {lane}")) as http:
                with contextlib.ExitStack() as stack:
                    if not lane:
                        stack.enter_context(lane_off(monkeypatch))
                    statuses = [
                        (await http.post(EVALUATE, content=BODY, headers=JSON)) for _ in range(3)
                    ]
            assert [r.status_code for r in statuses] == [200, 200, 429]
            refusals.append(statuses[-1])
        laned, stacked = refusals
        # The same field, but for the seconds left in the window, which may tick between the two.
        fields = [r.headers["ratelimit"] for r in (laned, stacked)]
        # The client's part (its tenant's count went on between the two).
        counts = [re.sub(r";t=\d+", "", field.partition(",")[0]) for field in fields]
        assert counts == ['"client";r=0'] * 2, fields
        ends = [int(re.findall(r";t=(\d+)", field)[0]) for field in fields]
        assert abs(ends[0] - ends[1]) <= 1
        comparable_laned, comparable_stacked = comparable(laned), comparable(stacked)
        moving = {"retry-after", "ratelimit"}  # the window's end moves on
        for answer in (comparable_laned, comparable_stacked):
            answer["headers"] = [(n, v) for n, v in answer["headers"] if n not in moving]
            answer["body"].pop("detail")
        assert comparable_laned == comparable_stacked


async def test_a_body_the_binder_declines_goes_to_the_stack_counted_once(
    schema: AsyncEngine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    limited = settings.model_copy(
        update={"rate_limit_requests": 10, "rate_limit_storage": "memory"}
    )
    async with started_app(schema, limited) as app, http_client(app, await new_key(app)) as http:
        await http.get("/healthz")
        with stack_calls(app, monkeypatch) as passed:
            invalid = await http.post(EVALUATE, content=b'{"answers": 1}', headers=JSON)
            text = await http.post(EVALUATE, content=BODY, headers={"content-type": "text/x"})
        assert (invalid.status_code, text.status_code) == (422, 415)
        assert passed == [EVALUATE, EVALUATE]
        # authorized once each: two requests spent two of the ten
        assert text.headers["ratelimit"].startswith('"client";r=8;')
        assert invalid.json()["errors"][0]["pointer"] == "#/answers"


async def test_a_query_goes_to_the_stack_and_any_accept_is_answered_alike(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FastAPI validates ``?include=``: the lane leaves a request with a query to the stack.
    ``Accept`` needs no such care (the endpoint negotiates), so a plain JSON request costs the
    lane no more than before."""
    await client.get("/healthz")
    cases = [
        (f"{EVALUATE}?include=trace", JSON, 200, True),
        (f"{CREATE}?include=trace", JSON, 201, True),
        (EVALUATE, JSON | {"accept": "text/html"}, 200, False),
        (EVALUATE, JSON | {"accept": "text/markdown"}, 200, False),
        (EVALUATE, JSON | {"accept": "image/png"}, 406, False),
    ]
    for path, headers, status, to_the_stack in cases:
        with stack_calls(app, monkeypatch) as passed:
            laned = await client.post(path, content=BODY, headers=headers)
        assert passed == ([path.partition("?")[0]] if to_the_stack else []), path
        with lane_off(monkeypatch):
            stacked = await client.post(path, content=BODY, headers=headers)
        assert laned.status_code == stacked.status_code == status, (path, laned.text)
        if laned.headers["content-type"].startswith("application/"):
            assert comparable(laned) == comparable(stacked), path
        else:  # a page or text: byte for byte, and the same headers
            assert laned.content == stacked.content, path
            assert comparable_headers(laned) == comparable_headers(stacked), path


async def test_requests_the_lane_leaves_to_the_stack(
    schema: AsyncEngine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_cors = settings.model_copy(
        update={"cors_origins": ["https://intake.example"], "max_body_bytes": 4096}
    )
    async with started_app(schema, with_cors) as app, http_client(app, await new_key(app)) as http:
        await http.get("/healthz")

        async def chunks() -> AsyncIterator[bytes]:
            yield BODY[:100]
            yield BODY[100:]

        origin = {**JSON, "origin": "https://intake.example"}
        with stack_calls(app, monkeypatch) as passed:
            chunked = await http.post(EVALUATE, content=chunks(), headers=JSON)
            cors = await http.post(EVALUATE, content=BODY, headers=origin)
            large = await http.post(EVALUATE, content=b" " * 5000 + BODY, headers=JSON)
            other = await http.post("/v1/screenings/x/replay", content=b"{}", headers=JSON)
        # A browser's request (an Origin) takes the lane: CORS wraps it, and adds its headers.
        assert passed == [EVALUATE, EVALUATE, "/v1/screenings/x/replay"]
        assert chunked.status_code == cors.status_code == 200
        assert cors.headers["access-control-allow-origin"] == "https://intake.example"
        assert large.status_code == 413
        assert other.status_code == 404


@pytest.mark.parametrize(
    ("failure", "status"),
    [(RuntimeError("unexpected"), 500), (OSError("connection refused"), 503)],
    ids=["unexpected", "database away"],
)
async def test_an_error_in_the_endpoint_is_answered_by_the_stacks_handler(
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    failure: Exception,
    status: int,
) -> None:
    async def failing(*_args: object, **_kwargs: object) -> bytes:
        raise failure

    monkeypatch.setattr(ScreeningService, "evaluate_only", failing)
    laned, stacked = await both_ways(client, monkeypatch, EVALUATE)
    assert laned.status_code == status
    assert laned.headers["content-type"] == "application/problem+json"
    assert comparable(laned) == comparable(stacked)


async def test_a_failing_error_handler_is_answered_500_as_by_the_stack(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def failing(*_args: object, **_kwargs: object) -> bytes:
        raise LookupError("refused")

    async def broken_handler(*_args: object) -> None:
        raise RuntimeError("the handler itself failed")

    monkeypatch.setattr(ScreeningService, "evaluate_only", failing)
    monkeypatch.setitem(app.exception_handlers, LookupError, broken_handler)
    await client.get("/healthz")  # the stack is built with the handlers it had
    laned = await client.post(EVALUATE, content=BODY, headers=JSON)
    assert laned.status_code == 500
    assert laned.headers["content-type"] == "application/problem+json"
    assert laned.json()["type"].endswith("internal-error")
