"""Every response carries a request id and security headers; CORS is off unless configured."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit.models import AuditEvent
from app.kernel.settings import Settings
from app.screenings.service import ScreeningService
from tests.support.apps import bearer, empty_tables, http_client, new_key, running
from tests.support.examples import example
from tests.support.problems import assert_problem

API_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}


def assert_api_headers(response: httpx.Response) -> None:
    for name, value in API_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.status_code)
    assert uuid.UUID(response.headers["x-request-id"])
    assert "strict-transport-security" not in response.headers  # plain HTTP


async def test_security_headers_on_success_and_on_every_kind_of_error(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("unexpected")

    responses = [
        await client.get("/v1/screenings"),
        await client.get("/v1/screenings/0b3f2f7e-0000-4000-8000-000000000000"),
        await client.get("/v1/no-such-route"),
        await client.post("/v1/screenings", json={"answers": {}}),
        await client.post(
            "/v1/screenings/evaluate",
            content=b"{" + b" " * (70 * 1024) + b"}",
            headers={"content-type": "application/json"},
        ),
        await client.get("/healthz"),
    ]
    async with http_client(app, None) as anonymous:
        responses.append(await anonymous.get("/v1/screenings"))
    monkeypatch.setattr(ScreeningService, "page", broken)
    responses.append(await client.get("/v1/screenings"))

    assert [r.status_code for r in responses] == [200, 404, 404, 422, 413, 200, 401, 500]
    for response in responses:
        assert_api_headers(response)
    assert responses[-1].headers["content-type"] == "application/problem+json"


async def test_the_docs_pages_load_only_their_own_assets_and_are_never_framed(
    client: httpx.AsyncClient,
) -> None:
    pages = ("/docs", "/redoc", "/openapi.json", "/docs/assets/swagger-ui/swagger-ui-bundle.js")
    for path in pages:
        response = await client.get(path)
        assert response.status_code == 200
        policy = dict(
            directive.strip().split(" ", 1)
            for directive in response.headers["content-security-policy"].split(";")
        )
        # Scripts, styles, fonts and fetches come from the service itself: no CDN, so the
        # pages work offline and nothing third-party runs beside a pasted credential.
        assert policy["default-src"] == "'self'"
        for directive in ("script-src", "style-src", "connect-src", "img-src"):
            assert policy[directive].split()[0] == "'self'"
            assert "http" not in policy[directive]
        assert policy["frame-ancestors"] == "'none'"
        assert response.headers["x-frame-options"] == "DENY"
    assert "cache-control" not in (await client.get("/docs")).headers


async def test_a_callers_request_id_is_kept_and_recorded(
    client: httpx.AsyncClient, schema: AsyncEngine
) -> None:
    response = await client.get("/v1/screenings", headers={"X-Request-ID": "intake-42.a:b_c"})
    assert response.headers["x-request-id"] == "intake-42.a:b_c"
    async with schema.connect() as connection:
        recorded = (await connection.execute(select(AuditEvent.request_id))).scalars().all()
    assert recorded == ["intake-42.a:b_c"]

    missing = await client.get(
        "/v1/screenings/0b3f2f7e-0000-4000-8000-000000000000", headers={"X-Request-ID": "trace-7"}
    )
    assert assert_problem(missing, 404)["instance"] == "urn:carelevel:request:trace-7"


@pytest.mark.parametrize("value", ["", "has space", "x" * 129, "semi;colon", "ünï"])
async def test_an_implausible_request_id_is_replaced(client: httpx.AsyncClient, value: str) -> None:
    response = await client.get("/v1/screenings", headers={b"X-Request-ID": value.encode()})
    assert response.status_code == 200
    assert uuid.UUID(response.headers["x-request-id"])


async def test_hsts_is_sent_over_https(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://carelevel.test") as tls:
        response = await tls.get("/healthz")
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")


async def test_cors_is_off_by_default(client: httpx.AsyncClient) -> None:
    preflight = await client.options(
        "/v1/screenings",
        headers={"Origin": "https://intake.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    simple = await client.get("/v1/screenings", headers={"Origin": "https://intake.example"})
    assert "access-control-allow-origin" not in simple.headers


async def test_cors_allows_the_configured_origins_only(
    schema: AsyncEngine, settings: Settings
) -> None:
    await empty_tables(schema)
    async with (
        running(
            settings.model_copy(update={"cors_origins": ["https://intake.example"]})
        ) as application,
        http_client(application, None) as browser,
    ):
        key = await new_key(application)
        allowed = await browser.options(
            "/v1/screenings",
            headers={
                "Origin": "https://intake.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
            },
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://intake.example"
        assert "idempotency-key" in allowed.headers["access-control-allow-headers"].lower()
        refused = await browser.options(
            "/v1/screenings",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in refused.headers
        actual = await browser.post(
            "/v1/screenings/evaluate",
            json={"answers": example("adult-iop-suitable")},
            headers={"Origin": "https://intake.example"} | bearer(key),
        )
        assert actual.status_code == 200
        assert actual.headers["access-control-allow-origin"] == "https://intake.example"
        assert "x-request-id" in actual.headers["access-control-expose-headers"].lower()


def test_origins_must_be_origins() -> None:
    with pytest.raises(ValueError, match="not an origin"):
        Settings(cors_origins=["intake.example"])


async def test_a_trailing_slash_is_not_found_never_redirected_to_the_callers_host(
    client: httpx.AsyncClient,
) -> None:
    """No redirect is built from the Host header the caller sends."""
    for path in ("/v1/screenings/", "/v1/questionnaire/", "/fhir/r4/metadata/"):
        response = await client.get(path, headers={"Host": "evil.example"})
        assert response.status_code == 404, path
        assert "location" not in response.headers
