"""The SMART app's server side: CARELEVEL_SMART_APPS and its checks, the configuration the
pages read, the pages' Content-Security-Policy and the refusal of a launch from an EHR that is
not configured (tests/browser/test_smart_launch.py drives the app itself)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.fhir.chart import CHART_QUERIES
from app.fhir.terminology import Vocabulary
from app.kernel.settings import LEGACY_FHIR_CANONICAL_BASE, Settings
from app.kernel.smart_apps import DEFAULT_SCOPE, SmartApp
from tests.support.apps import http_client, started_app

EHR = "https://ehr.example/fhir/r4"
AUTH = "https://login.ehr.example"
OTHER_EHR = "http://localhost:9090/fhir"


def settings_with(**app: Any) -> Settings:
    return Settings(environment="test", smart_apps=[{"iss": EHR, "client_id": "cl-1", **app}])


@pytest.fixture
async def smart_app(schema: AsyncEngine, settings: Settings) -> AsyncIterator[FastAPI]:
    apps = [
        SmartApp(iss=EHR + "/", client_id="cl-1", authorization_origins=(AUTH,)),
        SmartApp(iss=OTHER_EHR, client_id="cl-2"),
    ]
    async with started_app(schema, settings.model_copy(update={"smart_apps": apps})) as app:
        yield app


@pytest.fixture
async def anonymous(smart_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(smart_app, None) as http:
        yield http


# --- settings ---------------------------------------------------------------------------------


def test_an_ehr_needs_only_its_fhir_base_and_client_id() -> None:
    configured = settings_with().smart_apps[0]
    assert configured.scope == DEFAULT_SCOPE
    assert configured.origins == ("https://ehr.example",)
    assert "screenings:write" in configured.scope.split()


@pytest.mark.parametrize(
    ("app", "complaint"),
    [
        ({"iss": "http://ehr.example/fhir"}, "https:// URL"),
        ({"iss": "https://ehr.example/fhir?tenant=1"}, "no credentials, query or fragment"),
        ({"iss": "https://user:pw@ehr.example/fhir"}, "no credentials, query or fragment"),
        ({"client_id": "has space"}, "client_id"),
        ({"scope": "launch patient/*.rs"}, "screenings:write and screenings:read"),
        ({"scope": "launch  screenings:write screenings:read"}, "single spaces"),
        ({"authorization_origins": ["https://login.example/oauth"]}, "must be origins"),
        ({"redirect_uri": "https://elsewhere.example"}, "Extra inputs"),
    ],
)
def test_a_misconfigured_ehr_is_refused_at_start(app: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        settings_with(**app)


def test_an_ehr_is_configured_once() -> None:
    twice = [{"iss": EHR, "client_id": "a"}, {"iss": EHR + "/", "client_id": "b"}]
    with pytest.raises(ValidationError, match="each iss may be configured once"):
        Settings(environment="test", smart_apps=twice)


# --- configuration and pages ------------------------------------------------------------------


async def test_the_pages_read_each_ehr_the_chart_searches_and_the_populated_mark(
    anonymous: httpx.AsyncClient,
) -> None:
    response = await anonymous.get("/smart/config")
    assert response.status_code == 200
    assert response.json() == {
        "apps": [
            {
                "iss": EHR,
                "client_id": "cl-1",
                "scope": DEFAULT_SCOPE,
                "origins": ["https://ehr.example", AUTH],
            },
            {
                "iss": OTHER_EHR,
                "client_id": "cl-2",
                "scope": DEFAULT_SCOPE,
                "origins": ["http://localhost:9090"],
            },
        ],
        "redirect_path": "/smart/app",
        "chart_queries": CHART_QUERIES,
        "populated_from": Vocabulary(LEGACY_FHIR_CANONICAL_BASE).answer_source,
    }


@pytest.mark.parametrize("path", ["/smart/app", f"/smart/launch?iss={EHR}&launch=abc-123"])
async def test_the_pages_load_their_own_scripts_and_talk_to_the_configured_ehrs_only(
    anonymous: httpx.AsyncClient, path: str
) -> None:
    response = await anonymous.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        f"connect-src 'self' https://ehr.example {AUTH} http://localhost:9090; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert '<script type="module" src="/smart/assets/' in response.text
    assert "<script>" not in response.text  # nothing inline


async def test_a_standalone_launch_starts_with_the_first_ehr(anonymous: httpx.AsyncClient) -> None:
    assert (await anonymous.get("/smart/launch")).status_code == 200


async def test_the_scripts_are_served_by_carelevel(anonymous: httpx.AsyncClient) -> None:
    for name in ("launch.js", "app.js", "form.js", "smart.js", "smart.css"):
        response = await anonymous.get(f"/smart/assets/{name}")
        assert response.status_code == 200, name


@pytest.mark.parametrize(
    ("query", "complaint"),
    [
        ("iss=https://attacker.example/fhir&launch=abc", "not configured for"),
        ("iss=https://ehr.example/fhir/r5&launch=abc", "not configured for"),
        ("launch=abc", "must name the EHR"),
        (f"iss={EHR}&launch=a%0Ab", "not one"),
        (f"iss={EHR}&launch=" + "x" * 1001, "not one"),
        # The server and the page must read the same EHR and context: once each.
        (f"iss=https://attacker.example/fhir&iss={EHR}&launch=abc", "more than once"),
        (f"iss={EHR}&iss={EHR}&launch=abc", "more than once"),
        (f"iss={EHR}&launch=abc&launch=def", "more than once"),
    ],
)
async def test_a_launch_the_app_cannot_trust_is_refused_without_echoing_it(
    anonymous: httpx.AsyncClient, query: str, complaint: str
) -> None:
    response = await anonymous.get(f"/smart/launch?{query}")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert complaint in response.text
    assert "attacker" not in response.text
    assert "r5" not in response.text
    assert "<script" not in response.text  # the error page starts no sign-in


async def test_with_no_ehr_configured_no_launch_starts(client: httpx.AsyncClient) -> None:
    response = await client.get("/smart/launch")
    assert response.status_code == 400
    assert "No EHR is configured" in response.text
    assert (await client.get("/smart/config")).json()["apps"] == []
