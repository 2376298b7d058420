"""CORS: the CDS Hooks services answer any browser origin by default; /v1 and /fhir/r4 answer
the origins of CARELEVEL_CORS_ORIGINS only. A refused preflight is a 403 naming the setting,
never the submitted origin; a refused origin's other requests get no Allow-Origin."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from app.kernel.settings import Settings
from tests.support.apps import bearer, http_client, new_key, started_app
from tests.support.examples import example
from tests.support.problems import assert_problem

INTAKE = "https://intake.example"
STRANGER = "https://stranger.example"
EHR = "https://ehr.example"
SENT_HEADERS = (
    "authorization,content-type,if-match,if-none-match,idempotency-key,prefer,x-request-id"
)
EXPOSED = {
    "etag",
    "location",
    "content-location",
    "retry-after",
    "ratelimit",
    "ratelimit-policy",
    "x-request-id",
    "idempotent-replayed",
    "www-authenticate",
}


def preflight(origin: str, method: str = "POST", headers: str = SENT_HEADERS) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


def listed(response: httpx.Response, header: str) -> set[str]:
    return {item.strip().lower() for item in response.headers.get(header, "").split(",")}


def assert_refused(response: httpx.Response, named: str, *submitted: str) -> dict[str, Any]:
    """A 403 cors-refused problem whose detail names ``named`` (a setting, an accepted header),
    with no Allow-Origin and none of the ``submitted`` values."""
    body = assert_problem(response, 403, "cors-refused")
    assert named in body["detail"]
    assert "access-control-allow-origin" not in response.headers
    for value in submitted:
        assert value.lower() not in response.text.lower()
    return body


@pytest.fixture(scope="module")
async def intake_app(schema: AsyncEngine, settings: Settings) -> AsyncIterator[FastAPI]:
    """An application that lets INTAKE call the API and EHR call the CDS services."""
    configured = settings.model_copy(update={"cors_origins": [INTAKE], "cds_cors_origins": [EHR]})
    async with started_app(schema, configured) as application:
        yield application


@pytest.fixture
async def browser(intake_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(intake_app, None) as http:
        yield http


# The defaults


async def test_cds_services_answer_a_preflight_from_any_origin_by_default(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/cds-services", "/cds-services/carelevel-iop-screening"):
        answer = await client.options(path, headers=preflight(STRANGER, headers="authorization"))
        assert answer.status_code == 200, path
        assert answer.headers["access-control-allow-origin"] == "*"
        assert {"get", "post"} <= listed(answer, "access-control-allow-methods")
        assert "authorization" in listed(answer, "access-control-allow-headers")
        assert answer.headers["access-control-max-age"] == "7200"
        assert "access-control-allow-credentials" not in answer.headers


async def test_a_cds_answer_is_readable_from_any_origin_by_default(app: FastAPI) -> None:
    """Even a refusal: a browser-based CDS client can read why (here, no JWT)."""
    async with http_client(app, None) as anonymous:
        answer = await anonymous.get("/cds-services", headers={"Origin": STRANGER})
    assert_problem(answer, 401, "unauthorized")
    assert answer.headers["access-control-allow-origin"] == "*"
    assert {"www-authenticate", "x-request-id"} <= listed(answer, "access-control-expose-headers")


async def test_the_api_refuses_every_preflight_by_default_and_says_which_setting_to_change(
    client: httpx.AsyncClient,
) -> None:
    refused = await client.options("/v1/screenings", headers=preflight(INTAKE))
    body = assert_refused(refused, "CARELEVEL_CORS_ORIGINS", INTAKE)
    assert body["title"] == "Cross-origin request refused"
    assert_refused(
        await client.options("/v1/screenings/evaluate", headers=preflight(STRANGER)),
        "CARELEVEL_CORS_ORIGINS",
        STRANGER,
    )


async def test_fhir_refuses_a_preflight_with_an_operation_outcome(
    client: httpx.AsyncClient,
) -> None:
    refused = await client.options("/fhir/r4/metadata", headers=preflight(INTAKE, "GET"))
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/fhir+json")
    outcome = refused.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "CARELEVEL_CORS_ORIGINS" in refused.text
    assert INTAKE not in refused.text
    assert "access-control-allow-origin" not in refused.headers


async def test_without_configuration_the_api_answers_as_usual_but_allows_no_origin(
    client: httpx.AsyncClient,
) -> None:
    listing = await client.get("/v1/screenings", headers={"Origin": INTAKE})
    assert listing.status_code == 200
    assert "access-control-allow-origin" not in listing.headers
    # An OPTIONS that is no preflight (no Origin) is what it always was.
    plain = await client.options("/v1/screenings")
    assert_problem(plain, 405)


# Configured origins


async def test_a_configured_origin_gets_a_complete_preflight(browser: httpx.AsyncClient) -> None:
    for path, method in (("/v1/screenings", "POST"), ("/fhir/r4/Questionnaire", "GET")):
        answer = await browser.options(path, headers=preflight(INTAKE, method))
        assert answer.status_code == 200, path
        assert answer.headers["access-control-allow-origin"] == INTAKE
        assert "origin" in listed(answer, "vary")
        assert listed(answer, "access-control-allow-methods") == {"get", "post", "put", "delete"}
        assert set(SENT_HEADERS.split(",")) | {"accept"} <= listed(
            answer, "access-control-allow-headers"
        )
        assert answer.headers["access-control-max-age"] == "7200"
        assert "access-control-allow-credentials" not in answer.headers


async def test_a_configured_origin_reads_answers_and_the_headers_it_needs(
    intake_app: FastAPI, browser: httpx.AsyncClient
) -> None:
    key = await new_key(intake_app)
    origin = {"Origin": INTAKE} | bearer(key)
    stored = await browser.post(
        "/v1/screenings", json={"answers": example("adult-iop-suitable")}, headers=origin
    )
    assert stored.status_code == 201
    assert stored.headers["access-control-allow-origin"] == INTAKE
    assert "origin" in listed(stored, "vary")
    assert listed(stored, "access-control-expose-headers") >= EXPOSED
    metadata = await browser.get("/fhir/r4/metadata", headers={"Origin": INTAKE})
    assert metadata.status_code == 200
    assert metadata.headers["access-control-allow-origin"] == INTAKE
    refused = await browser.get("/v1/screenings", headers={"Origin": INTAKE})
    assert_problem(refused, 401)  # no key: the page can read why
    assert refused.headers["access-control-allow-origin"] == INTAKE


async def test_another_origin_gets_no_allow_origin_and_a_refused_preflight(
    intake_app: FastAPI, browser: httpx.AsyncClient
) -> None:
    key = await new_key(intake_app)
    answered = await browser.post(
        "/v1/screenings/evaluate",
        json={"answers": example("adult-iop-suitable")},
        headers={"Origin": STRANGER} | bearer(key),
    )
    assert answered.status_code == 200  # the server answers; the browser withholds it
    assert "access-control-allow-origin" not in answered.headers
    assert "origin" in listed(answered, "vary")
    assert_refused(
        await browser.options("/v1/screenings", headers=preflight(STRANGER)),
        "CARELEVEL_CORS_ORIGINS",
        STRANGER,
    )
    fhir = await browser.options("/fhir/r4/Questionnaire", headers=preflight(STRANGER, "GET"))
    assert fhir.status_code == 403
    assert fhir.json()["resourceType"] == "OperationOutcome"
    assert STRANGER not in fhir.text


async def test_a_preflight_for_a_method_or_header_not_accepted_is_refused_without_echo(
    browser: httpx.AsyncClient,
) -> None:
    method = await browser.options("/v1/screenings", headers=preflight(INTAKE, "PATCH"))
    body = assert_refused(method, "Authorization", "PATCH")
    assert "method or header" in body["detail"]
    header = await browser.options(
        "/v1/screenings", headers=preflight(INTAKE, headers="authorization,x-secret-thing")
    )
    assert_refused(header, "Idempotency-Key", "x-secret-thing")


async def test_the_cds_origins_are_configurable(browser: httpx.AsyncClient) -> None:
    allowed = await browser.options("/cds-services", headers=preflight(EHR, "GET"))
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == EHR
    assert_refused(
        await browser.options("/cds-services", headers=preflight(INTAKE, "GET")),
        "CARELEVEL_CDS_CORS_ORIGINS",
        INTAKE,
    )
    # The API's origin is the API's: it does not open the CDS services, nor the reverse.
    discovery = await browser.get("/cds-services", headers={"Origin": INTAKE})
    assert "access-control-allow-origin" not in discovery.headers
    listing = await browser.get("/v1/screenings", headers={"Origin": EHR})
    assert "access-control-allow-origin" not in listing.headers


# The layers below CORS


async def test_the_fast_lane_and_compression_keep_the_cors_headers(
    intake_app: FastAPI, browser: httpx.AsyncClient
) -> None:
    key = await new_key(intake_app)
    evaluated = await browser.post(
        "/v1/screenings/evaluate",
        params={"include": "trace"},
        json={"answers": example("adult-iop-suitable")},
        headers={"Origin": INTAKE, "Accept-Encoding": "gzip"} | bearer(key),
    )
    assert evaluated.status_code == 200
    assert evaluated.headers["content-encoding"] == "gzip"
    assert evaluated.headers["access-control-allow-origin"] == INTAKE
    assert {"accept-encoding", "origin"} <= listed(evaluated, "vary")
    too_large = await browser.post(
        "/v1/screenings/evaluate",
        content=b" " * (intake_app.state.settings.max_body_bytes + 1),
        headers={"Origin": INTAKE, "Content-Type": "application/json"} | bearer(key),
    )
    assert_problem(too_large, 413)
    assert too_large.headers["access-control-allow-origin"] == INTAKE


async def test_a_request_past_its_deadline_keeps_the_cors_headers(
    schema: AsyncEngine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    short = settings.model_copy(update={"cors_origins": [INTAKE], "request_deadline_seconds": 0.5})
    async with started_app(schema, short) as application:
        key = await new_key(application)

        async def hang(token: str) -> Any:
            await asyncio.sleep(60)

        monkeypatch.setattr(application.state.guard.authenticator, "authenticate", hang)
        async with http_client(application, key) as http:
            late = await http.get("/v1/screenings", headers={"Origin": INTAKE})
    assert_problem(late, 503, "deadline-exceeded")
    assert late.headers["access-control-allow-origin"] == INTAKE


# The settings


@pytest.mark.parametrize(
    "origin",
    [
        "intake.example",
        "https://intake.example/",
        "https://intake.example/app",
        "https://",
        "https://Intake.example",
        "https://user@intake.example",
        "ftp://intake.example",
    ],
)
def test_an_origin_is_exactly_scheme_host_and_port(origin: str) -> None:
    with pytest.raises(ValueError, match="not an origin"):
        Settings(cors_origins=[origin])
    with pytest.raises(ValueError, match="not an origin"):
        Settings(cds_cors_origins=[origin])


def test_origins_default_to_none_for_the_api_and_any_for_cds() -> None:
    defaults = Settings()
    assert defaults.cors_origins == []
    assert defaults.cds_cors_origins == ["*"]
    assert Settings(cors_origins=["http://127.0.0.1:8080", "*"]).cors_origins[0].endswith("8080")
