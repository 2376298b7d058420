"""CDS Hooks 2.0 through the public API: discovery, the patient-view and order-select services,
and feedback, called as an EHR calls them, with a JWT signed for each call.

Two EHRs are trusted: ``ehr-a`` (tenant ``clinic-a``) and ``ehr-b`` (tenant ``clinic-b``);
``ehr-viewer`` (tenant ``clinic-a``) may only read. Cards are checked against what the REST
API stores for the same screening, their FHIR resources with fhir.resources (R4B).
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from fhir.resources.R4B.servicerequest import ServiceRequest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.cds_hooks.chart import ChartReader
from app.cds_hooks.examples import example_hook_request
from app.cds_hooks.schemas import CdsResponse
from app.engine.determination import LevelOfCare
from app.fhir.chart import CHART_QUERIES
from app.fhir.examples import response_for
from app.fhir.populate import populated_link_ids
from app.fhir.terminology import Vocabulary
from app.kernel.issuers import CdsClient
from app.kernel.settings import Settings
from app.programs.examples import EVENING_IOP
from app.screenings.schemas import VarianceReason
from tests.api.screenings_support import all_screenings
from tests.support.apps import http_client, new_key, reset, running
from tests.support.examples import EXAMPLES, Json
from tests.support.problems import assert_problem
from tests.support.tokens import (
    EC_384_KEY,
    EC_KEY,
    OTHER_EC_384_KEY,
    STRANGER_EC_384_KEY,
    b64json,
    public_jwk,
)
from tests.support.tokens import hs256_with_public_key as confusion_attack

BASE_URL = "http://carelevel.test"  # what http_client calls: the audience of every token
SCREENING = "carelevel-iop-screening"
REFERRAL_CHECK = "carelevel-iop-referral-check"
VOCABULARY = Vocabulary("https://carelevel.dev/fhir")
PATIENT = "1288992"

KEY_A = EC_384_KEY
KEY_B = OTHER_EC_384_KEY
STRANGER_KEY = STRANGER_EC_384_KEY
P256_KEY = EC_KEY


LOCAL_ORDERS = "https://ehr-a.example.test/order-codes"
EHR_A = CdsClient(
    name="ehr-a",
    issuer="https://ehr-a.example.test",
    jwks={"keys": [public_jwk(KEY_A, "a-1", use="sig"), public_jwk(P256_KEY, "a-p256", use="sig")]},
    tenant="clinic-a",
    # ehr-a's own order code for a partial hospitalization referral
    local_codes={f"{LOCAL_ORDERS}|BH-PHP": LevelOfCare.PARTIAL_HOSPITALIZATION},
    fhir_servers=("https://fhir.ehr-a.example.test/r4",),
)
EHR_A_FHIR = "https://fhir.ehr-a.example.test/r4"
EHR_B = CdsClient(
    name="ehr-b",
    issuer="https://ehr-b.example.test",
    jwks={"keys": [public_jwk(KEY_B, "b-1", use="sig")]},
    tenant="clinic-b",
)
VIEWER = CdsClient(
    name="ehr-viewer",
    issuer="https://ehr-viewer.example.test",
    jwks={"keys": [public_jwk(KEY_A, "a-1", use="sig")]},
    tenant="clinic-a",
    scopes=("screenings:read",),
)
KEYS = {EHR_A.issuer: (KEY_A, "a-1"), EHR_B.issuer: (KEY_B, "b-1"), VIEWER.issuer: (KEY_A, "a-1")}


def claims(path: str, issuer: str = EHR_A.issuer, **overrides: Any) -> Json:
    now = int(time.time())
    payload: Json = {
        "iss": issuer,
        "aud": BASE_URL + path,
        "exp": now + 300,
        "iat": now,
        "jti": str(uuid.uuid4()),
    }
    payload.update(overrides)
    return {name: value for name, value in payload.items() if value is not None}


def signed(path: str, issuer: str = EHR_A.issuer, **overrides: Any) -> str:
    """The JWT an EHR signs to call ``path``, as CDS Hooks 2.0 has it."""
    key, kid = KEYS.get(issuer, (KEY_A, "a-1"))
    return jwt.encode(
        claims(path, issuer, **overrides), key, "ES384", headers={"kid": kid, "typ": "JWT"}
    )


def hs256_with_public_key(path: str) -> str:
    return confusion_attack(KEY_A, {"typ": "JWT", "kid": "a-1"}, claims(path))


@pytest.fixture(scope="module")
async def trusting_app(schema: AsyncEngine, settings: Settings) -> AsyncIterator[FastAPI]:
    """The application trusting the three EHRs, started once for this module."""
    trusting = {
        "cds_clients": [EHR_A, EHR_B, VIEWER],
        "public_url": BASE_URL,
        "fhir_canonical_base": VOCABULARY.base,
    }
    async with running(settings.model_copy(update=trusting)) as application:
        yield application


@pytest.fixture
async def app(trusting_app: FastAPI, schema: AsyncEngine) -> FastAPI:
    """The trusting application, reset for this test (replaces conftest's ``app``)."""
    await reset(trusting_app, schema)
    return trusting_app


@pytest.fixture
async def ehr(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An unauthenticated client: each call below signs its own token."""
    async with http_client(app, None) as http:
        yield http


@pytest.fixture
async def clinic_a(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An API client of clinic-a, to read through REST what the EHR's calls stored."""
    async with http_client(app, await new_key(app, tenant="clinic-a")) as http:
        yield http


def answers(name: str) -> Json:
    loaded: Json = json.loads((EXAMPLES / f"{name}.json").read_text())
    return loaded


def questionnaire_response(name: str = "adult-iop-suitable", **changes: Any) -> Json:
    """A completed response to our Questionnaire about PATIENT, with ``answers`` sections
    replaced by ``changes``."""
    given = answers(name)
    for section, values in changes.items():
        given[section] = given.get(section, {}) | values
    return response_for(VOCABULARY, given, subject=f"Patient/{PATIENT}")


def hook_request(prefetched: Any = None, hook: str = "patient-view", **context: Any) -> Json:
    body: Json = {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/dr-lee", "patientId": PATIENT} | context,
        "prefetch": {"questionnaireResponse": prefetched},
    }
    return body


def searchset(*responses: Json) -> Json:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": response} for response in responses],
    }


async def call(
    ehr: httpx.AsyncClient,
    body: Json,
    service: str = SCREENING,
    issuer: str = EHR_A.issuer,
    token: str | None = None,
) -> httpx.Response:
    path = f"/cds-services/{service}"
    bearer = token if token is not None else signed(path, issuer)
    return await ehr.post(path, json=body, headers={"Authorization": f"Bearer {bearer}"})


async def the_card(ehr: httpx.AsyncClient, body: Json, **how: Any) -> Json:
    response = await call(ehr, body, **how)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    [card] = response.json()["cards"]
    return dict(card)


async def send_feedback(
    ehr: httpx.AsyncClient, *items: Json, service: str = SCREENING, issuer: str = EHR_A.issuer
) -> httpx.Response:
    path = f"/cds-services/{service}/feedback"
    return await ehr.post(
        path,
        json={"feedback": list(items)},
        headers={"Authorization": f"Bearer {signed(path, issuer)}"},
    )


def accepted(card: Json, at: str = "2026-12-01T10:00:00Z") -> Json:
    return {
        "card": card["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
        "outcomeTimestamp": at,
    }


def overridden(card: Json, reason: str, comment: str | None, at: str) -> Json:
    override: Json = {
        "reason": {"system": VOCABULARY.code_system("variance-reason"), "code": reason}
    }
    if comment is not None:
        override["userComment"] = comment
    return {
        "card": card["uuid"],
        "outcome": "overridden",
        "overrideReason": override,
        "outcomeTimestamp": at,
    }


def screening_id_of(card: Json) -> str:
    """The screening a card's link opens (its signed view: /v1/screenings/{id}/view?…)."""
    [link] = card["links"]
    url = httpx.URL(link["url"])
    assert str(url).startswith(f"{BASE_URL}/v1/screenings/"), url
    _, v1, screenings, screening_id, view = url.path.split("/")
    assert (v1, screenings, view) == ("v1", "screenings", "view"), url
    return screening_id


# --- discovery -------------------------------------------------------------------------------


async def test_discovery_names_both_services_and_the_prefetch_they_need(
    ehr: httpx.AsyncClient,
) -> None:
    response = await ehr.get(
        "/cds-services", headers={"Authorization": f"Bearer {signed('/cds-services')}"}
    )

    assert response.status_code == 200, response.text
    services = {s["id"]: s for s in response.json()["services"]}
    assert {(i, s["hook"]) for i, s in services.items()} == {
        (SCREENING, "patient-view"),
        (REFERRAL_CHECK, "order-select"),
    }
    for service in services.values():
        assert service["title"]
        assert service["description"]
        # The patient's answered responses, by the parameters EHRs support: carelevel picks
        # the latest one to its Questionnaire, whatever version or canonical base it cites.
        assert service["prefetch"]["questionnaireResponse"] == (
            "QuestionnaireResponse?patient={{context.patientId}}&status=completed,amended"
        )
        assert "Decision support" in service["usageRequirements"]


# --- trust: one signed JWT per call, addressed to the endpoint --------------------------------

PATH = f"/cds-services/{SCREENING}"
REFUSED_TOKENS: dict[str, Callable[[], str]] = {
    "addressed to another service": lambda: signed(f"/cds-services/{REFERRAL_CHECK}"),
    "addressed to another server": lambda: signed(PATH, aud=f"https://elsewhere.test{PATH}"),
    "expired": lambda: signed(PATH, exp=int(time.time()) - 600, iat=int(time.time()) - 900),
    "without jti": lambda: signed(PATH, jti=None),
    "without iat": lambda: signed(PATH, iat=None),
    "from an unknown issuer": lambda: signed(PATH, issuer="https://stranger.example.test"),
    "signed with another key": lambda: jwt.encode(
        claims(PATH), STRANGER_KEY, "ES384", headers={"kid": "a-1", "typ": "JWT"}
    ),
    "with an unknown kid": lambda: jwt.encode(
        claims(PATH), KEY_A, "ES384", headers={"kid": "a-9", "typ": "JWT"}
    ),
    "typed as an access token": lambda: jwt.encode(
        claims(PATH), KEY_A, "ES384", headers={"kid": "a-1", "typ": "at+jwt"}
    ),
    "with an algorithm the client may not use": lambda: jwt.encode(
        claims(PATH), P256_KEY, "ES256", headers={"kid": "a-p256", "typ": "JWT"}
    ),
    "unsigned": lambda: (
        f"{b64json({'alg': 'none', 'typ': 'JWT', 'kid': 'a-1'})}.{b64json(claims(PATH))}."
    ),
    "HMAC keyed with the public key": lambda: hs256_with_public_key(PATH),
    "not a JWT": lambda: "clk_0123abcd.not-a-jwt",
}


@pytest.mark.parametrize("name", list(REFUSED_TOKENS))
async def test_a_call_without_an_acceptable_token_is_refused_and_stores_nothing(
    ehr: httpx.AsyncClient, clinic_a: httpx.AsyncClient, name: str
) -> None:
    response = await call(ehr, hook_request(questionnaire_response()), token=REFUSED_TOKENS[name]())

    assert_problem(response, 401, "unauthorized")
    assert await all_screenings(clinic_a) == []


async def test_api_credentials_are_not_cds_credentials_and_back(
    app: FastAPI, ehr: httpx.AsyncClient, clinic_a: httpx.AsyncClient
) -> None:
    assert_problem(await ehr.get("/cds-services"), 401, "unauthorized")
    # An API key (here one with every scope) does not call CDS services...
    async with http_client(app, await new_key(app)) as api_client:
        assert_problem(await api_client.get("/cds-services"), 401, "unauthorized")
        response = await api_client.post(PATH, json=hook_request(questionnaire_response()))
        assert_problem(response, 401, "unauthorized")
    # ...and a CDS client's token is no access token for the rest of the API.
    listing = await ehr.get(
        "/v1/screenings", headers={"Authorization": f"Bearer {signed('/v1/screenings')}"}
    )
    assert_problem(listing, 401, "unauthorized")
    assert await all_screenings(clinic_a) == []


async def test_a_token_is_used_once(ehr: httpx.AsyncClient, clinic_a: httpx.AsyncClient) -> None:
    token = signed(PATH)
    body = hook_request(questionnaire_response())
    assert (await call(ehr, body, token=token)).status_code == 200
    replayed = await call(ehr, body, token=token)
    assert_problem(replayed, 401, "unauthorized")
    assert "already used" in replayed.json()["detail"]
    assert len(await all_screenings(clinic_a)) == 1


async def test_a_client_granted_reading_only_cannot_screen(
    ehr: httpx.AsyncClient, clinic_a: httpx.AsyncClient
) -> None:
    response = await call(ehr, hook_request(questionnaire_response()), issuer=VIEWER.issuer)
    assert_problem(response, 403, "forbidden")
    assert await all_screenings(clinic_a) == []


# --- patient-view -----------------------------------------------------------------------------


async def test_the_card_reports_the_stored_screening_with_its_reasons(
    ehr: httpx.AsyncClient, clinic_a: httpx.AsyncClient
) -> None:
    card = await the_card(ehr, hook_request(questionnaire_response()))

    screening = (await clinic_a.get(f"/v1/screenings/{screening_id_of(card)}")).json()
    determination = screening["determination"]
    level = determination["recommended_level"]
    assert level["level"] == "intensive_outpatient"
    assert card["indicator"] == "info"
    assert card["summary"] == f"IOP screening recommends {level['label']} (routine)"
    assert len(card["summary"]) < 140
    for reason in level["decided_by"]:
        assert reason["text"] in card["detail"]
    assert determination["disclaimer"] in card["detail"]
    rule_set = screening["rule_set"]
    version = f"`{rule_set['owner']}/{rule_set['key']}` version {rule_set['version']}"
    assert version in card["detail"]
    assert card["detail"].startswith(screening["summary"])
    assert "**Safety alerts**" not in card["detail"]  # none: no empty title either
    assert card["source"]["label"] == "carelevel level-of-care screening"
    # Not the API (a clinician's browser has no key for it): the view's part on what decided.
    assert card["source"]["url"] == f"{card['links'][0]['url']}#about"
    assert {r["code"] for r in card["overrideReasons"]} == {r.value for r in VarianceReason}
    # The suggestion: a draft referral to the recommended level, for this patient.
    [suggestion] = card["suggestions"]
    assert suggestion["isRecommended"] is True
    [action] = suggestion["actions"]
    assert action["type"] == "create"
    referral = action["resource"]
    ServiceRequest.model_validate(referral)
    assert "id" not in referral
    # Created in the EHR, so it points at nothing only carelevel holds; the reason says which
    # screening.
    assert "reasonReference" not in referral
    assert screening_id_of(card) in referral["reasonCode"][0]["text"]
    assert referral["subject"] == {"reference": f"Patient/{PATIENT}"}
    assert referral["code"]["coding"][0] == VOCABULARY.level_coding(LevelOfCare(level["level"]))
    assert card["selectionBehavior"] == "at-most-one"


async def test_no_link_of_a_card_needs_an_api_key(app: FastAPI, ehr: httpx.AsyncClient) -> None:
    invitation = await the_card(ehr, hook_request(None))
    screening = await the_card(ehr, hook_request(questionnaire_response()))

    [smart] = invitation["links"]
    assert (smart["type"], smart["url"]) == ("smart", f"{BASE_URL}/smart/launch")
    [view] = screening["links"]
    assert view["type"] == "absolute"
    # A clinician's browser, with no credentials at all, opens what the card points at.
    async with http_client(app, None) as browser:
        for url in (view["url"], screening["source"]["url"]):
            opened = await browser.get(url)
            assert opened.status_code == 200, url
            assert opened.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(
    ("reference", "fhir_server"),
    [
        (f"https://ehr.example/fhir/Patient/{PATIENT}", "https://ehr.example/fhir"),
        (f"https://EHR.example/fhir/Patient/{PATIENT}/_history/3", "https://ehr.example/fhir/"),
        (f"{EHR_A_FHIR}/Patient/{PATIENT}", None),
        (f"{EHR_A_FHIR}/Patient/{PATIENT}", "https://ehr.example/fhir"),
        (f"Patient/{PATIENT}/_history/2", "https://ehr.example/fhir"),
    ],
    ids=[
        "absolute",
        "a version on another-cased host",
        "no fhirServer: a server the client lists",
        "a server the client lists",
        "versioned",
    ],
)
async def test_a_response_naming_the_patient_by_absolute_reference_is_evaluated(
    ehr: httpx.AsyncClient, reference: str, fhir_server: str | None
) -> None:
    response = questionnaire_response()
    response["subject"] = {"reference": reference}
    body = hook_request(response)
    if fhir_server is not None:
        body["fhirServer"] = fhir_server

    card = await the_card(ehr, body)

    assert card["summary"].startswith("IOP screening recommends Intensive outpatient")


@pytest.mark.parametrize(
    "reference",
    [
        f"https://other-ehr.example/fhir/Patient/{PATIENT}",
        "https://ehr.example/fhir/Patient/someone-else",
        f"https://ehr.example/fhir/Patient/{PATIENT}x",
        f"https://ehr.example/fhir/Group/{PATIENT}",
        f"ftp://ehr.example/fhir/Patient/{PATIENT}",
    ],
    ids=["another server", "another patient", "a longer id", "not a Patient", "not http"],
)
async def test_a_response_about_someone_else_by_absolute_reference_is_refused(
    ehr: httpx.AsyncClient, clinic_a: httpx.AsyncClient, reference: str
) -> None:
    response = questionnaire_response()
    response["subject"] = {"reference": reference}
    body = hook_request(response) | {"fhirServer": "https://ehr.example/fhir"}

    refused = await call(ehr, body)

    assert_problem(refused, 400, "bad-request")
    assert reference not in refused.text
    assert await all_screenings(clinic_a) == []


async def test_without_fhir_server_an_absolute_reference_to_an_unlisted_host_is_refused(
    ehr: httpx.AsyncClient, clinic_a: httpx.AsyncClient
) -> None:
    response = questionnaire_response()
    response["subject"] = {"reference": f"https://any-host.example/fhir/Patient/{PATIENT}"}

    refused = await call(ehr, hook_request(response))

    assert_problem(refused, 400, "bad-request")
    assert await all_screenings(clinic_a) == []


async def test_an_authorization_without_the_patient_is_accepted(ehr: httpx.AsyncClient) -> None:
    # CDS Hooks 2.0: with patient/ scopes the client SHOULD name the patient; it may not.
    body = hook_request(questionnaire_response()) | {
        "fhirServer": "https://ehr.example/fhir",
        "fhirAuthorization": {
            "access_token": "opaque-token",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/Patient.read patient/Observation.read",
            "subject": "carelevel",
        },
    }
    card = await the_card(ehr, body)
    assert card["summary"].startswith("IOP screening recommends Intensive outpatient")


@pytest.mark.parametrize(
    ("name", "changes", "indicator", "summary"),
    [
        ("emergency-suicide-risk", {}, "critical", "Safety: "),
        ("adult-iop-suitable", {"supports": {"living_situation": "unsafe"}}, "warning",
         "IOP screening recommends Residential"),
        # too little to place anyone, with safety questions left open: urgent
        ("insufficient-information", {}, "warning", "IOP screening: too little information"),
        ("adult-iop-suitable", {"instruments": {"phq9": {"items": [2, 2, 1, 2, 1, 2, 1, 1, 3]}}},
         "warning", "IOP screening: safety assessment needed before placement (urgent)"),
        ("adult-iop-suitable", {}, "info", "IOP screening recommends Intensive outpatient"),
    ],
)  # fmt: skip
async def test_the_indicator_rises_with_what_is_needed(
    ehr: httpx.AsyncClient, name: str, changes: Json, indicator: str, summary: str
) -> None:
    card = await the_card(ehr, hook_request(questionnaire_response(name, **changes)))
    assert card["indicator"] == indicator
    assert card["summary"].startswith(summary), card["summary"]


async def test_an_emergency_card_puts_the_safety_alerts_first(
    ehr: httpx.AsyncClient, clinic_a: httpx.AsyncClient
) -> None:
    card = await the_card(ehr, hook_request(questionnaire_response("emergency-suicide-risk")))
    screening = (await clinic_a.get(f"/v1/screenings/{screening_id_of(card)}")).json()
    alerts = screening["determination"]["safety_alerts"]
    assert alerts
    detail = card["detail"]
    for alert in alerts:
        assert alert["action"] in detail
    assert detail.index("**Safety alerts**") < detail.index("**Why**")


async def test_the_latest_response_of_a_searchset_is_the_one_evaluated(
    ehr: httpx.AsyncClient, clinic_a: httpx.AsyncClient
) -> None:
    older = questionnaire_response("emergency-suicide-risk")
    older["authored"] = "2026-10-01T09:00:00Z"
    newer = questionnaire_response()
    card = await the_card(ehr, hook_request(searchset(older, newer)))
    assert card["indicator"] == "info"
    assert len(await all_screenings(clinic_a)) == 1


async def test_opening_the_chart_again_shows_the_same_screening(
    ehr: httpx.AsyncClient, clinic_a: httpx.AsyncClient
) -> None:
    response = questionnaire_response()
    first = await the_card(ehr, hook_request(response))
    again = await the_card(ehr, hook_request(copy.deepcopy(response)))

    assert screening_id_of(first) == screening_id_of(again)
    assert first["uuid"] != again["uuid"]
    assert len(await all_screenings(clinic_a)) == 1


async def test_the_chart_opened_several_times_at_once_stores_one_screening(
    ehr: httpx.AsyncClient, clinic_a: httpx.AsyncClient
) -> None:
    response = questionnaire_response()
    cards = await asyncio.gather(
        *(the_card(ehr, hook_request(copy.deepcopy(response))) for _ in range(5))
    )

    assert len({screening_id_of(card) for card in cards}) == 1
    assert len(await all_screenings(clinic_a)) == 1


async def test_a_response_evaluated_through_fhir_first_opens_that_screening(
    ehr: httpx.AsyncClient, clinic_a: httpx.AsyncClient
) -> None:
    response = questionnaire_response()  # sent before the EHR's server stored it: no id
    evaluated = await clinic_a.post(
        "/fhir/r4/QuestionnaireResponse/$evaluate",
        content=json.dumps(response),
        headers={"content-type": "application/fhir+json"},
    )
    assert evaluated.status_code == 200, evaluated.text
    screening_id = evaluated.json()["entry"][0]["resource"]["id"]
    # As the EHR's FHIR server returns it: with the id, meta and narrative it added.
    as_stored = copy.deepcopy(response) | {
        "id": "qr-77",
        "meta": {"versionId": "1", "lastUpdated": "2026-11-26T14:06:00Z"},
        "text": {
            "status": "generated",
            "div": '<div xmlns="http://www.w3.org/1999/xhtml">QR</div>',
        },
    }
    card = await the_card(ehr, hook_request(searchset(as_stored)))
    assert screening_id_of(card) == screening_id
    # Another response, even with the same answers, is another screening.
    changed = copy.deepcopy(response)
    changed["authored"] = "2026-11-27T09:00:00Z"
    other = await the_card(ehr, hook_request(changed))
    assert screening_id_of(other) != screening_id
    assert len(await all_screenings(clinic_a)) == 2


@pytest.mark.parametrize("prefetched", [None, searchset()], ids=["null", "empty searchset"])
async def test_without_a_response_on_file_the_card_invites_a_screening(
    ehr: httpx.AsyncClient, clinic_a: httpx.AsyncClient, prefetched: Any
) -> None:
    card = await the_card(ehr, hook_request(prefetched))

    assert card["indicator"] == "info"
    assert card["summary"].startswith("No IOP level-of-care screening on file")
    # carelevel's SMART app, which the EHR launches with its own sign-in: no API key.
    assert card["links"] == [
        {"label": "Screen in carelevel", "url": f"{BASE_URL}/smart/launch", "type": "smart"}
    ]
    assert "suggestions" not in card
    assert await all_screenings(clinic_a) == []
    # Feedback on it is acknowledged; there is nothing to decide on.
    acknowledged = await send_feedback(
        ehr, overridden(card, "patient_preference", None, "2026-12-01T10:00:00Z")
    )
    assert acknowledged.status_code == 200, acknowledged.text
    assert acknowledged.json() == {"recorded": 0}


async def test_without_the_prefetch_the_call_is_a_412(
    ehr: httpx.AsyncClient, clinic_a: httpx.AsyncClient
) -> None:
    body = hook_request()
    del body["prefetch"]
    response = await call(ehr, body)
    assert_problem(response, 412, "prefetch-missing")
    assert "questionnaireResponse" in response.json()["detail"]
    assert await all_screenings(clinic_a) == []


def _about_someone_else() -> Json:
    return hook_request(questionnaire_response(), patientId="another-patient")


def _in_progress() -> Json:
    response = questionnaire_response()
    response["status"] = "in-progress"
    return hook_request(response)


def _not_a_response() -> Json:
    return hook_request({"resourceType": "Patient", "id": PATIENT})


CALLS_REFUSED = [
    ("about another patient", _about_someone_else, SCREENING, 400),
    ("for another hook", lambda: hook_request(questionnaire_response(), hook="order-select",
                                              selections=["ServiceRequest/1"],
                                              draftOrders=searchset()), SCREENING, 400),
    ("a hook carelevel does not answer", lambda: hook_request(hook="encounter-start"),
     SCREENING, 400),
    ("to an unknown service", lambda: hook_request(questionnaire_response()), "no-such-service",
     404),
    ("without the patient in context", lambda: {**hook_request(questionnaire_response()),
                                                "context": {"userId": "Practitioner/dr-lee"}},
     SCREENING, 422),
    ("with an in-progress response", _in_progress, SCREENING, 422),
    ("with another resource prefetched", _not_a_response, SCREENING, 400),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "body", "service", "status"), CALLS_REFUSED, ids=[c[0] for c in CALLS_REFUSED]
)
async def test_calls_carelevel_cannot_answer_are_problems_and_store_nothing(
    ehr: httpx.AsyncClient,
    clinic_a: httpx.AsyncClient,
    name: str,
    body: Any,
    service: str,
    status: int,
) -> None:
    response = await call(ehr, body(), service=service)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert await all_screenings(clinic_a) == []


async def test_each_tenant_sees_only_its_own_screenings(
    app: FastAPI, ehr: httpx.AsyncClient, clinic_a: httpx.AsyncClient
) -> None:
    card = await the_card(ehr, hook_request(questionnaire_response()), issuer=EHR_B.issuer)
    screening_id = screening_id_of(card)
    assert_problem(await clinic_a.get(f"/v1/screenings/{screening_id}"), 404, "not-found")
    async with http_client(app, await new_key(app, tenant="clinic-b")) as clinic_b:
        assert (await clinic_b.get(f"/v1/screenings/{screening_id}")).status_code == 200
        trail = await clinic_b.get("/v1/audit-events", params={"resource_id": screening_id})
    # Newest first: clinic-b's read, then the EHR's call that created it.
    [read, created] = trail.json()["items"]
    assert (read["action"], created["action"]) == ("screening.read", "screening.create")
    assert (created["client_id"], created["subject"]) == ("cds:ehr-b", EHR_B.issuer)
    # Feedback from another EHR on clinic-b's card does not reach it.
    refused = await send_feedback(ehr, accepted(card))
    assert_problem(refused, 404, "not-found")


# --- the program directory: suggested programs -------------------------------------------------


def program(name: str, **changes: Any) -> Json:
    """The documented evening IOP under another name, with ``changes``."""
    return EVENING_IOP | {"name": name} | changes


async def programs_of_clinic_a(clinic_a: httpx.AsyncClient, *bodies: Json) -> list[str]:
    ids = []
    for body in bodies:
        created = await clinic_a.post("/v1/programs", json=body)
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    return ids


def program_suggestions(card: Json) -> list[Json]:
    """The card's suggestions after the referral to the level, checked as the EHR reads them."""
    CdsResponse.model_validate({"cards": [card]})  # still a valid card
    proposal, *programs = card["suggestions"]
    assert proposal["label"].startswith("Propose a referral to ")
    assert card["selectionBehavior"] == "at-most-one"
    return [dict(suggestion) for suggestion in programs]


async def test_the_card_suggests_the_programs_that_fit_best_first(
    ehr: httpx.AsyncClient, clinic_a: httpx.AsyncClient
) -> None:
    waiting, closed, open_places, day = await programs_of_clinic_a(
        clinic_a,
        program("Waitlisted IOP", capacity={"open_places": 0, "waitlist_weeks": 4}),
        program("Closed IOP", accepting_referrals=False),
        program("Riverside IOP"),
        program("Day program", level="partial_hospitalization"),
    )
    card = await the_card(ehr, hook_request(questionnaire_response()))

    suggested = program_suggestions(card)
    # Open places before a wait; the program taking no referrals, and the one at another
    # level, are not offered.
    performers = [s["actions"][0]["resource"]["performer"] for s in suggested]
    assert performers == [
        [{"reference": f"{BASE_URL}/fhir/r4/HealthcareService/{open_places}", "display": name}]
        for open_places, name in ((open_places, "Riverside IOP"), (waiting, "Waitlisted IOP"))
    ]
    assert [s["label"].split(".")[0] for s in suggested] == [
        "Refer to Riverside IOP",
        "Refer to Waitlisted IOP",
    ]
    [proposed] = card["suggestions"][0]["actions"]
    for suggestion in suggested:
        assert len(suggestion["label"]) <= 140
        assert suggestion.get("isRecommended") is not True  # the level is what is recommended
        [action] = suggestion["actions"]
        resource = action["resource"]
        ServiceRequest.model_validate(resource)
        # The proposal, sent to the program: same patient, level, reason and status.
        assert {k: v for k, v in resource.items() if k not in ("performer", "code")} == {
            k: v for k, v in proposed["resource"].items() if k != "code"
        }
        assert resource["code"]["coding"] == proposed["resource"]["code"]["coding"]
        assert resource["performer"][0]["display"] in resource["code"]["text"]
    assert len({s["uuid"] for s in card["suggestions"]}) == 3
    assert "No program in the directory fits" not in card["detail"]
    # The EHR may read the performer it is given.
    hs = await clinic_a.get(f"/fhir/r4/HealthcareService/{open_places}")
    assert hs.json()["name"] == "Riverside IOP"
    assert closed not in json.dumps(card)
    assert day not in json.dumps(card)


async def test_at_most_three_programs_are_suggested(
    ehr: httpx.AsyncClient, clinic_a: httpx.AsyncClient
) -> None:
    await programs_of_clinic_a(clinic_a, *(program(f"IOP {n}") for n in range(4)))
    card = await the_card(ehr, hook_request(questionnaire_response()))

    assert [s["label"].split(".")[0] for s in program_suggestions(card)] == [
        "Refer to IOP 0",
        "Refer to IOP 1",
        "Refer to IOP 2",
    ]


async def test_when_no_program_at_the_level_fits_the_detail_says_why(
    ehr: httpx.AsyncClient, clinic_a: httpx.AsyncClient
) -> None:
    await programs_of_clinic_a(
        clinic_a,
        program("Closed *IOP*", accepting_referrals=False),
        program("Teen IOP", accepting_referrals=False, populations=["adolescent"]),
    )
    card = await the_card(ehr, hook_request(questionnaire_response()))

    assert program_suggestions(card) == []
    lines = [line for line in card["detail"].splitlines() if "No program" in line]
    assert lines == [
        # The tenant's name shown as written, not as markdown.
        "No program in the directory fits: the closest, Closed \\*IOP\\*: The program takes "
        "no new referrals at present."
    ]


@pytest.mark.parametrize(
    ("name", "directory"),
    [
        # the directory holds no program at the level: nothing to say about it
        ("adult-iop-suitable", [program("Day program", level="partial_hospitalization")]),
        # emergency evaluation comes first: no program, and no line on programs
        ("emergency-suicide-risk", [program("Riverside IOP"), program("Riverside PHP")]),
    ],
)
async def test_the_directory_adds_nothing_when_it_has_no_program_to_offer(
    ehr: httpx.AsyncClient, clinic_a: httpx.AsyncClient, name: str, directory: list[Json]
) -> None:
    await programs_of_clinic_a(clinic_a, *directory)
    card = await the_card(ehr, hook_request(questionnaire_response(name)))

    assert not any(s["label"].startswith("Refer to") for s in card.get("suggestions") or [])
    assert "No program in the directory" not in card["detail"]


async def test_another_tenants_programs_are_never_suggested(
    ehr: httpx.AsyncClient, clinic_a: httpx.AsyncClient
) -> None:
    await programs_of_clinic_a(clinic_a, program("Riverside IOP"))
    card = await the_card(ehr, hook_request(questionnaire_response()), issuer=EHR_B.issuer)

    assert program_suggestions(card) == []
    assert "No program in the directory" not in card["detail"]


# --- feedback ---------------------------------------------------------------------------------


async def test_feedback_is_the_clinicians_decision_on_the_screening(
    ehr: httpx.AsyncClient, clinic_a: httpx.AsyncClient
) -> None:
    card = await the_card(ehr, hook_request(questionnaire_response()))
    screening_path = f"/v1/screenings/{screening_id_of(card)}"

    first = await send_feedback(ehr, accepted(card))
    assert first.status_code == 200, first.text
    assert first.json() == {"recorded": 1}
    decision = (await clinic_a.get(screening_path)).json()["latest_decision"]
    assert decision["outcome"] == "accepted"
    assert decision["source"] == "cds-hooks"
    assert decision["final_level"] == decision["recommended_level"] == "intensive_outpatient"
    assert decision["decided_by"] == "ehr-a (CDS client)"

    # The same feedback again (a retry) records nothing.
    assert (await send_feedback(ehr, accepted(card))).json() == {"recorded": 0}

    later = overridden(
        card, "waitlist", "The IOP has a four-week waitlist.", "2026-12-01T11:00:00Z"
    )
    assert (await send_feedback(ehr, later)).json() == {"recorded": 1}
    decision = (await clinic_a.get(screening_path)).json()["latest_decision"]
    assert decision["outcome"] == "overridden"
    assert decision["final_level"] is None
    assert decision["variance_reasons"] == ["waitlist"]
    assert decision["comment"] == "The IOP has a four-week waitlist."


async def test_an_override_reason_of_another_code_system_is_kept_as_other(
    ehr: httpx.AsyncClient, clinic_a: httpx.AsyncClient
) -> None:
    card = await the_card(ehr, hook_request(questionnaire_response()))
    item = overridden(card, "x", None, "2026-12-01T10:00:00Z")
    item["overrideReason"]["reason"] = {
        "system": "https://ehr.example.test/reasons",
        "code": "bed-unavailable",
        "display": "No bed available",
    }
    assert (await send_feedback(ehr, item)).json() == {"recorded": 1}
    decision = (await clinic_a.get(f"/v1/screenings/{screening_id_of(card)}")).json()[
        "latest_decision"
    ]
    assert decision["variance_reasons"] == ["other"]
    assert decision["comment"] == "No bed available"


async def test_feedback_on_a_card_carelevel_did_not_show_is_refused(
    ehr: httpx.AsyncClient, clinic_a: httpx.AsyncClient
) -> None:
    card = await the_card(ehr, hook_request(questionnaire_response()))
    unknown = accepted(card) | {"card": str(uuid.uuid4())}
    # In one request with a good item: all or nothing.
    assert_problem(await send_feedback(ehr, accepted(card), unknown), 404, "not-found")
    other_service = await send_feedback(ehr, accepted(card), service=REFERRAL_CHECK)
    assert_problem(other_service, 404, "not-found")
    screening = (await clinic_a.get(f"/v1/screenings/{screening_id_of(card)}")).json()
    assert screening["latest_decision"] is None


async def test_feedback_the_specification_forbids_is_a_422(ehr: httpx.AsyncClient) -> None:
    card = await the_card(ehr, hook_request(questionnaire_response()))
    without_suggestions = accepted(card)
    del without_suggestions["acceptedSuggestions"]
    response = await send_feedback(ehr, without_suggestions)
    assert_problem(response, 422, "validation-error")


async def test_feedback_may_be_addressed_to_the_service(ehr: httpx.AsyncClient) -> None:
    card = await the_card(ehr, hook_request(questionnaire_response()))
    path = f"/cds-services/{SCREENING}/feedback"
    response = await ehr.post(
        path,
        json={"feedback": [accepted(card)]},
        headers={"Authorization": f"Bearer {signed(PATH)}"},
    )
    assert response.status_code == 200, response.text


# --- order-select -----------------------------------------------------------------------------


def order(coding: Json | None) -> Json:
    referral: Json = {
        "resourceType": "ServiceRequest",
        "id": "draft-1",
        "status": "draft",
        "intent": "proposal",
        "subject": {"reference": f"Patient/{PATIENT}"},
    }
    if coding is not None:
        referral["code"] = {"coding": [coding]}
    return {
        "hook": "order-select",
        "hookInstance": str(uuid.uuid4()),
        "context": {
            "userId": "Practitioner/dr-lee",
            "patientId": PATIENT,
            "selections": ["ServiceRequest/draft-1"],
            "draftOrders": searchset(referral),
        },
        "prefetch": {"questionnaireResponse": questionnaire_response()},
    }


@pytest.mark.parametrize(
    ("coding", "named"),
    [
        (VOCABULARY.level_coding(LevelOfCare.RESIDENTIAL), "Residential"),
        ({"system": "urn:oid:2.16.840.1.113883.6.285", "code": "H0035"}, "Partial hospitalization"),
        ({"system": LOCAL_ORDERS, "code": "BH-PHP"}, "Partial hospitalization"),
    ],
    ids=["our code", "HCPCS", "a local code the EHR maps"],
)
async def test_a_referral_to_another_level_than_recommended_gets_a_warning(
    ehr: httpx.AsyncClient, coding: Json, named: str
) -> None:
    card = await the_card(ehr, order(coding), service=REFERRAL_CHECK)
    assert card["indicator"] == "warning"
    assert card["detail"].startswith(f"**The selected referral is to {named}")
    assert "Intensive outpatient" in card["detail"].split("\n")[0]


@pytest.mark.parametrize(
    "coding",
    [
        {"system": "urn:oid:2.16.840.1.113883.6.285", "code": "S9480"},
        {"system": "http://snomed.info/sct", "code": "306206005"},
        None,
    ],
    ids=["the recommended level", "a code carelevel does not map", "no code"],
)
async def test_a_referral_that_agrees_or_cannot_be_compared_shows_nothing(
    ehr: httpx.AsyncClient, coding: Json | None
) -> None:
    response = await call(ehr, order(coding), service=REFERRAL_CHECK)
    assert response.status_code == 200, response.text
    assert response.json() == {"cards": []}


async def test_local_codes_are_the_calling_ehrs_own(ehr: httpx.AsyncClient) -> None:
    # ehr-b maps no local codes: ehr-a's code means nothing in its calls.
    body = order({"system": LOCAL_ORDERS, "code": "BH-PHP"})
    response = await call(ehr, body, service=REFERRAL_CHECK, issuer=EHR_B.issuer)
    assert response.status_code == 200, response.text
    assert response.json() == {"cards": []}


@pytest.mark.parametrize(
    "local_codes",
    [{"no-bar": "residential"}, {"|code": "residential"}, {"system|": "residential"},
     {"system|code": "not-a-level"}],
    ids=["no bar", "no system", "no code", "not a level"],
)  # fmt: skip
def test_a_local_code_mapping_must_name_a_coding_and_a_level(local_codes: Json) -> None:
    with pytest.raises(ValueError, match="local_codes"):
        CdsClient.model_validate(EHR_A.model_dump() | {"local_codes": local_codes})


async def test_the_example_call_of_the_docs_gets_its_card(ehr: httpx.AsyncClient) -> None:
    body = json.loads((EXAMPLES / "fhir" / "patient-view-request.json").read_text())
    assert body == example_hook_request(VOCABULARY)  # `make docs` regenerates the file
    card = await the_card(ehr, body)
    assert card["summary"].startswith("IOP screening recommends Intensive outpatient program")


# --- what the EHR's prefetch may hold ---------------------------------------------------------


async def test_a_prefetch_the_ehr_could_not_fetch_is_a_412(
    ehr: httpx.AsyncClient, clinic_a: httpx.AsyncClient
) -> None:
    failed = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "timeout"}],
    }
    assert_problem(await call(ehr, hook_request(failed)), 412, "prefetch-missing")
    assert await all_screenings(clinic_a) == []


async def test_the_latest_answered_response_to_our_questionnaire_is_chosen(
    ehr: httpx.AsyncClient, clinic_a: httpx.AsyncClient
) -> None:
    chosen = questionnaire_response()
    chosen["authored"] = "2026-11-26T10:00:00-05:00"  # 15:00 UTC: the latest answered one
    # as $populate drafts write it: a versioned canonical
    chosen["questionnaire"] = f"{VOCABULARY.questionnaire('iop-level-of-care')}|shared.1"
    earlier = questionnaire_response("emergency-suicide-risk")
    earlier["authored"] = "2026-11-26T14:30:00Z"
    unfinished = questionnaire_response("emergency-suicide-risk")
    unfinished["status"], unfinished["authored"] = "in-progress", "2026-11-27T09:00:00Z"
    other_form = questionnaire_response("emergency-suicide-risk")
    other_form["questionnaire"] = "https://forms.example/Questionnaire/phq9"
    other_form["authored"] = "2026-11-28T09:00:00Z"

    card = await the_card(ehr, hook_request(searchset(earlier, chosen, unfinished, other_form)))

    assert card["indicator"] == "info"
    assert len(await all_screenings(clinic_a)) == 1
    only_others = await the_card(ehr, hook_request(searchset(unfinished, other_form)))
    assert only_others["summary"].startswith("No IOP level-of-care screening on file")


async def test_a_search_with_more_pages_than_sent_is_not_none_on_file(
    ehr: httpx.AsyncClient,
) -> None:
    other_form = questionnaire_response()
    other_form["questionnaire"] = "https://forms.example/Questionnaire/phq9"
    first_page = searchset(other_form)
    first_page["link"] = [{"relation": "next", "url": "https://fhir.ehr-a.example.test/r4/p2"}]

    card = await the_card(ehr, hook_request(first_page))

    assert card["summary"].startswith("IOP screening on file could not be checked")
    assert "No completed QuestionnaireResponse" not in card["detail"]


@pytest.mark.parametrize(
    "code",
    ["H0015", ["H0015"], {"coding": "H0015"}, {"coding": ["H0015", 7]},
     {"coding": [{"system": ["x"], "code": ["H0015"]}]}],
    ids=["a string", "a list", "coding a string", "codings not objects", "values not strings"],
)  # fmt: skip
async def test_a_drafted_order_of_unexpected_shape_shows_nothing(
    ehr: httpx.AsyncClient, code: Any
) -> None:
    body = order(None)
    body["context"]["draftOrders"]["entry"][0]["resource"]["code"] = code
    response = await call(ehr, body, service=REFERRAL_CHECK)
    assert response.status_code == 200, response.text
    assert response.json() == {"cards": []}


async def test_a_token_living_longer_than_five_minutes_is_refused(
    ehr: httpx.AsyncClient,
) -> None:
    now = int(time.time())
    long_lived = signed(PATH, iat=now, exp=now + 3600)
    assert_problem(await call(ehr, hook_request(None), token=long_lived), 401, "unauthorized")
    far_future = signed(PATH, iat=now, exp=253402300799)  # 9999-12-31
    assert_problem(await call(ehr, hook_request(None), token=far_future), 401, "unauthorized")


def test_cds_clients_need_the_public_address_they_sign_for() -> None:
    # Taken from the Host header, a token signed for another server would pass the aud check.
    with pytest.raises(ValueError, match="CARELEVEL_PUBLIC_URL"):
        Settings(cds_clients=[EHR_A])
    assert Settings(cds_clients=[EHR_A], public_url=BASE_URL).public_url == BASE_URL


# --- the chart: prefetched, or read from the EHR's FHIR server --------------------------------

TOKEN = "ehr-a-token-for-carelevel"


def recent(**after: float) -> str:
    return (datetime.now(UTC) - timedelta(**after)).isoformat()


def chart_patient() -> Json:
    return {"resourceType": "Patient", "id": PATIENT, "birthDate": "1980-05-17"}


def heart_rate(subject: str = PATIENT, identifier: str = "hr-1") -> Json:
    return {
        "resourceType": "Observation",
        "id": identifier,
        "status": "final",
        "subject": {"reference": f"Patient/{subject}"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "effectiveDateTime": recent(hours=1),
        "valueQuantity": {"value": 104, "unit": "/min", "code": "/min"},
    }


def granted(body: Json, server: str = EHR_A_FHIR, **authorization: Any) -> Json:
    """``body`` with a FHIR server and a token for it, without the latest-response prefetch."""
    body = copy.deepcopy(body)
    body["prefetch"].pop("questionnaireResponse", None)
    body["fhirServer"] = server
    body["fhirAuthorization"] = {
        "access_token": TOKEN,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/Patient.read patient/Observation.read patient/QuestionnaireResponse.read",
        "subject": "carelevel",
    } | authorization
    return body


class FakeEhr:
    """The EHR's FHIR server: answers searches by resource type from ``resources``, and
    records what carelevel asked (``how``: "down", "slow", "huge" or "redirect")."""

    def __init__(self) -> None:
        self.resources: dict[str, list[Json]] = {}
        self.requests: list[httpx.Request] = []
        self.how = "up"
        self.failing: set[str] = set()  # resource types it answers 500 for

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.how == "down":
            raise httpx.ConnectError("connection refused", request=request)
        if self.how == "slow":
            await asyncio.sleep(5)
        if self.how == "redirect":
            return httpx.Response(302, headers={"Location": "https://elsewhere.test/steal"})
        path = request.url.path.removeprefix("/r4/")
        kind, _, identifier = path.partition("/")
        if kind in self.failing:
            return httpx.Response(500)
        if identifier:
            found = [r for r in self.resources.get(kind, []) if r.get("id") == identifier]
            return streamed(found[0]) if found else httpx.Response(404)
        bundle = searchset(*self.resources.get(kind, []))
        if self.how == "huge":
            bundle["padding"] = "x" * (3 * 1024 * 1024)
        return streamed(bundle)


def streamed(resource: Json) -> httpx.Response:
    """A 200 answer whose body arrives in pieces, as over a network."""
    body = json.dumps(resource).encode()

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    return httpx.Response(200, headers={"Content-Type": "application/fhir+json"}, content=pieces())


@pytest.fixture
def fake_ehr(app: FastAPI) -> Iterator[FakeEhr]:
    """ehr-a's FHIR server, in place of the network for the chart reader."""
    fake = FakeEhr()
    service = app.state.cds_hooks
    original = service.chart_reader
    service.chart_reader = ChartReader(seconds=1.0, transport=httpx.MockTransport(fake))
    yield fake
    service.chart_reader = original


async def test_discovery_asks_for_the_chart_that_pre_fills_a_screening(
    ehr: httpx.AsyncClient,
) -> None:
    response = await ehr.get(
        "/cds-services", headers={"Authorization": f"Bearer {signed('/cds-services')}"}
    )
    prefetch = {service["id"]: service["prefetch"] for service in response.json()["services"]}
    assert CHART_QUERIES.items() <= prefetch[SCREENING].items()
    # The referral check does not pre-fill a screening: it asks for the responses only.
    assert list(prefetch[REFERRAL_CHECK]) == ["questionnaireResponse"]


async def test_the_invitation_says_what_the_prefetched_chart_answers(
    ehr: httpx.AsyncClient, clinic_a: httpx.AsyncClient
) -> None:
    body = hook_request(None)
    someone_else = heart_rate(subject="another-patient", identifier="hr-other")
    body["prefetch"] |= {
        "patient": chart_patient(),
        "observations": searchset(heart_rate(), someone_else),
    }

    card = await the_card(ehr, body)

    assert card["summary"].startswith("No IOP level-of-care screening on file")
    assert "The chart already answers" in card["detail"]
    assert "Heart rate bpm" in card["detail"]
    assert "104" not in card["detail"]  # what it answers, never the answers
    [suggestion] = card["suggestions"]
    [action] = suggestion["actions"]
    draft = action["resource"]
    assert (action["type"], draft["resourceType"], draft["status"]) == (
        "create",
        "QuestionnaireResponse",
        "in-progress",
    )
    assert draft["subject"] == {"reference": f"Patient/{PATIENT}"}
    assert set(populated_link_ids(draft, VOCABULARY)) >= {
        "respondent.age_years",
        "medical.heart_rate_bpm",
    }
    # Only the patient's own Observation is a source.
    assert "hr-other" not in json.dumps(draft)
    assert await all_screenings(clinic_a) == []


async def test_without_the_prefetch_carelevel_reads_the_ehrs_fhir_server(
    ehr: httpx.AsyncClient, clinic_a: httpx.AsyncClient, fake_ehr: FakeEhr
) -> None:
    fake_ehr.resources["QuestionnaireResponse"] = [questionnaire_response()]

    card = await the_card(ehr, granted(hook_request(None)))

    assert card["summary"].startswith("IOP screening recommends Intensive outpatient")
    assert len(await all_screenings(clinic_a)) == 1
    [asked] = [r for r in fake_ehr.requests if r.url.path == "/r4/QuestionnaireResponse"]
    assert asked.url.host == "fhir.ehr-a.example.test"
    assert dict(asked.url.params) == {"patient": PATIENT, "status": "completed,amended"}
    assert asked.headers["Authorization"] == f"Bearer {TOKEN}"


async def test_the_chart_the_prefetch_lacks_is_read_for_the_invitation(
    ehr: httpx.AsyncClient, fake_ehr: FakeEhr
) -> None:
    fake_ehr.resources |= {"Patient": [chart_patient()], "Observation": [heart_rate()]}
    body = granted(hook_request(None))
    body["prefetch"]["questionnaireResponse"] = None  # the EHR searched: nothing on file

    card = await the_card(ehr, body)

    assert "The chart already answers" in card["detail"]
    draft = card["suggestions"][0]["actions"][0]["resource"]
    assert "medical.heart_rate_bpm" in populated_link_ids(draft, VOCABULARY)
    asked = {request.url.path for request in fake_ehr.requests}
    assert asked == {
        f"/r4/Patient/{PATIENT}",
        "/r4/Observation",
        "/r4/Condition",
        "/r4/MedicationRequest",
        "/r4/MedicationStatement",
    }


@pytest.mark.parametrize("how", ["down", "slow", "huge", "redirect"])
async def test_a_fhir_server_that_fails_means_asking_the_person(
    ehr: httpx.AsyncClient,
    clinic_a: httpx.AsyncClient,
    fake_ehr: FakeEhr,
    caplog: pytest.LogCaptureFixture,
    how: str,
) -> None:
    fake_ehr.how = how
    fake_ehr.resources["QuestionnaireResponse"] = [questionnaire_response()]
    started = time.monotonic()

    card = await the_card(ehr, granted(hook_request(None)))

    assert time.monotonic() - started < 4
    # A screening may be on file: never "none", and the clinician is told what to do.
    assert card["summary"].startswith("IOP screening on file could not be checked")
    assert card["indicator"] == "warning"
    assert "No completed QuestionnaireResponse" not in card["detail"]
    assert "may be on file" in card["detail"]
    assert "Look for one in the chart" in card["detail"]
    assert "could not read the chart" in card["detail"]
    assert "suggestions" not in card
    assert all(r.url.host == "fhir.ehr-a.example.test" for r in fake_ehr.requests)
    assert TOKEN not in caplog.text
    assert PATIENT not in caplog.text
    assert await all_screenings(clinic_a) == []


async def test_when_only_the_responses_cannot_be_read_the_chart_still_helps(
    ehr: httpx.AsyncClient, fake_ehr: FakeEhr
) -> None:
    fake_ehr.failing = {"QuestionnaireResponse"}
    fake_ehr.resources |= {"Patient": [chart_patient()], "Observation": [heart_rate()]}

    card = await the_card(ehr, granted(hook_request(None)))

    assert card["summary"].startswith("IOP screening on file could not be checked")
    assert "No completed QuestionnaireResponse" not in card["detail"]
    assert "could not read the chart" not in card["detail"]
    assert "The chart already answers" in card["detail"]


async def test_all_chart_reads_of_a_call_share_one_budget(
    ehr: httpx.AsyncClient, fake_ehr: FakeEhr
) -> None:
    fake_ehr.how = "slow"  # every answer takes longer than the reader's 1 s
    started = time.monotonic()

    card = await the_card(ehr, granted(hook_request(None)))

    assert time.monotonic() - started < 1.8  # one budget, not one per read
    assert card["summary"].startswith("IOP screening on file could not be checked")
    asked = {request.url.path for request in fake_ehr.requests}
    assert {"/r4/QuestionnaireResponse", "/r4/Observation", f"/r4/Patient/{PATIENT}"} <= asked


async def test_the_referral_check_does_not_read_the_chart(
    ehr: httpx.AsyncClient, fake_ehr: FakeEhr
) -> None:
    fake_ehr.resources |= {"Patient": [chart_patient()], "Observation": [heart_rate()]}
    body = granted(order(VOCABULARY.level_coding(LevelOfCare.RESIDENTIAL)))

    card = await the_card(ehr, body, service=REFERRAL_CHECK)

    assert card["summary"].startswith("No IOP level-of-care screening on file")
    assert "suggestions" not in card
    assert [request.url.path for request in fake_ehr.requests] == ["/r4/QuestionnaireResponse"]


@pytest.mark.parametrize(
    ("server", "authorization", "issuer"),
    [
        ("https://fhir.elsewhere.test/r4", {}, EHR_A.issuer),
        (EHR_A_FHIR, {"patient": "another-patient"}, EHR_A.issuer),
        (EHR_A_FHIR, {}, EHR_B.issuer),
    ],
    ids=["a server the client does not list", "a token for another patient", "another client"],
)
async def test_carelevel_queries_only_servers_its_configuration_allows(
    ehr: httpx.AsyncClient,
    fake_ehr: FakeEhr,
    server: str,
    authorization: Json,
    issuer: str,
) -> None:
    response = await call(ehr, granted(hook_request(None), server, **authorization), issuer=issuer)

    assert_problem(response, 412, "prefetch-missing")
    assert fake_ehr.requests == []


@pytest.mark.parametrize(
    "servers",
    [("http://fhir.example.test/r4",), ("https://user:secret@fhir.example.test/r4",),
     ("https://fhir.example.test/r4?x=1",), ("not a url",)],
    ids=["http", "credentials", "a query", "not a URL"],
)  # fmt: skip
def test_fhir_servers_are_https_bases(servers: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="fhir_servers"):
        CdsClient.model_validate(EHR_A.model_dump() | {"fhir_servers": servers})
    loopback = CdsClient.model_validate(
        EHR_A.model_dump() | {"fhir_servers": ("http://127.0.0.1:8080/fhir",)}
    )
    assert loopback.fhir_servers == ("http://127.0.0.1:8080/fhir",)


# --- bodies carrying the chart ----------------------------------------------------------------

CHART_LIMIT = 2 * 1024 * 1024  # the default CARELEVEL_MAX_CHART_BODY_BYTES
BODY_LIMIT = 64 * 1024  # the default CARELEVEL_MAX_BODY_BYTES


def a_long_chart() -> Json:
    """Hundreds of the patient's Observations: well over the general body limit."""
    return searchset(*(heart_rate(identifier=f"hr-{n}") for n in range(400)))


def exceeds(limit: int) -> str:
    return f"The request body exceeds the limit of {limit} bytes."


async def test_a_call_carrying_the_chart_may_exceed_the_general_body_limit(
    ehr: httpx.AsyncClient,
) -> None:
    body = hook_request(questionnaire_response())
    body["prefetch"] |= {"patient": chart_patient(), "observations": a_long_chart()}
    assert len(json.dumps(body)) > BODY_LIMIT

    card = await the_card(ehr, body)

    assert card["summary"].startswith("IOP screening recommends Intensive outpatient")
    over = hook_request(questionnaire_response())
    over["prefetch"]["padding"] = "x" * CHART_LIMIT
    refused = await call(ehr, over)
    assert refused.status_code == 413, refused.text
    assert refused.json()["detail"] == exceeds(CHART_LIMIT)


async def test_feedback_keeps_the_general_body_limit(ehr: httpx.AsyncClient) -> None:
    path = f"/cds-services/{SCREENING}/feedback"
    response = await ehr.post(
        path,
        content=b'{"feedback": "' + b"x" * BODY_LIMIT + b'"}',
        headers={"Authorization": f"Bearer {signed(path)}", "Content-Type": "application/json"},
    )
    assert response.status_code == 413, response.text
    assert response.json()["detail"] == exceeds(BODY_LIMIT)


@pytest.mark.parametrize(
    "url",
    ["/fhir/r4/Questionnaire/$populate", "/fhir/r4/Questionnaire/iop-level-of-care/$populate"],
)
async def test_populate_takes_a_chart_over_the_general_body_limit(
    clinic_a: httpx.AsyncClient, url: str
) -> None:
    chart = {"resourceType": "Bundle", "type": "collection", "entry": a_long_chart()["entry"]}
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "subject", "valueReference": {"reference": f"Patient/{PATIENT}"}},
            {
                "name": "context",
                "part": [
                    {"name": "name", "valueString": "chart"},
                    {"name": "content", "resource": chart},
                ],
            },
        ],
    }
    body = json.dumps(parameters).encode()
    assert len(body) > BODY_LIMIT
    fhir_json = {"Content-Type": "application/fhir+json"}

    response = await clinic_a.post(url, content=body, headers=fhir_json)

    assert response.status_code == 200, response.text
    over = await clinic_a.post(url, content=b" " * (CHART_LIMIT + 1), headers=fhir_json)
    assert over.status_code == 413
    assert over.json()["issue"][0]["diagnostics"] == exceeds(CHART_LIMIT)


def test_the_openapi_document_states_each_routes_body_limit(app: FastAPI) -> None:
    document = app.openapi()

    def too_large(path: str) -> str:
        content = document["paths"][path]["post"]["responses"]["413"]["content"]
        [example] = next(iter(content.values()))["examples"].values()
        if "$ref" in example:
            example = document["components"]["examples"][example["$ref"].rsplit("/", 1)[-1]]
        value = example["value"]
        return str(value.get("detail") or value["issue"][0]["diagnostics"])

    assert too_large("/cds-services/{service_id}") == exceeds(CHART_LIMIT)
    assert too_large("/fhir/r4/Questionnaire/$populate") == exceeds(CHART_LIMIT)
    assert too_large("/fhir/r4/Questionnaire/{questionnaire_id}/$populate") == exceeds(CHART_LIMIT)
    assert too_large("/cds-services/{service_id}/feedback") == exceeds(BODY_LIMIT)
    assert too_large("/fhir/r4/QuestionnaireResponse/$evaluate") == exceeds(BODY_LIMIT)
