"""A token carrying the EHR's patient context (SMART App Launch's ``patient`` claim) reaches that
patient's results and nothing else, whatever scopes it holds: ``$populate`` and ``$evaluate``
about the patient, searches and reads of the patient's results, and what is about no one (the
Questionnaire, the terminology, the stateless evaluation). Everything else is 403.

The identity provider is an EHR's authorization server (``iss`` ``https://ehr.example/auth``)
whose tokens carry carelevel's audience and the EHR's FHIR base (``https://ehr.example/fhir``).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from app.fhir.examples import response_for
from app.fhir.terminology import Vocabulary
from app.kernel.issuers import IdentityProvider
from app.kernel.settings import LEGACY_FHIR_CANONICAL_BASE, Settings
from app.security.principal import ALL_SCOPES, PatientContext
from tests.api.access_support import Operation, assert_refused, operations
from tests.support.apps import http_client, new_key, reset, running
from tests.support.examples import example
from tests.support.tokens import RSA_KEY, public_jwk

Json = dict[str, Any]
AUTH = "https://ehr.example/auth"
EHR = "https://ehr.example/fhir"
AUDIENCE = "https://carelevel.example/api"
TENANT = "clinic-a"
PATIENT = "pat-1"
VOCABULARY = Vocabulary(LEGACY_FHIR_CANONICAL_BASE)
JWKS = {"keys": [public_jwk(RSA_KEY, "ehr-1", use="sig")]}
EHR_PROVIDER = IdentityProvider(
    name="ehr", issuer=AUTH, audience=AUDIENCE, jwks=JWKS, tenant=TENANT
)
UNBOUND_PROVIDER = IdentityProvider(
    name="staff-idp",
    issuer="https://staff.example/idp",
    audience=AUDIENCE,
    jwks=JWKS,
    tenant=TENANT,
    patient_claim=None,
)
EVALUATE = "/fhir/r4/QuestionnaireResponse/$evaluate"
FHIR = {"content-type": "application/fhir+json"}
EVERY_SCOPE = " ".join(sorted(scope.value for scope in ALL_SCOPES))


def token(issuer: str = AUTH, without: str | None = None, **claims: Any) -> str:
    """An access token of the EHR (or of ``issuer``) with ``claims``, less ``without``."""
    now = int(time.time())
    payload = {
        "iss": issuer,
        "aud": [AUDIENCE, EHR],
        "sub": "practitioner-3",
        "client_id": "carelevel-smart",
        "scope": EVERY_SCOPE,
        "iat": now,
        "exp": now + 600,
        "patient": PATIENT,
    } | claims
    payload.pop(without or "", None)
    return jwt.encode(payload, RSA_KEY, algorithm="RS256", headers={"kid": "ehr-1"})


@pytest.fixture(scope="module")
async def ehr_app(schema: AsyncEngine, settings: Settings) -> AsyncIterator[FastAPI]:
    trusting = settings.model_copy(update={"identity_providers": [EHR_PROVIDER, UNBOUND_PROVIDER]})
    async with running(trusting) as application:
        yield application


@pytest.fixture
async def app(ehr_app: FastAPI, schema: AsyncEngine) -> FastAPI:
    await reset(ehr_app, schema)
    return ehr_app


@pytest.fixture
async def patient_app(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The SMART app of the patient's launch."""
    async with http_client(app, token()) as http:
        yield http


@pytest.fixture
async def staff(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An API client of the same tenant, bound to no one."""
    async with http_client(app, await new_key(app, tenant=TENANT)) as http:
        yield http


def questionnaire_response(subject: str | None) -> Json:
    return response_for(VOCABULARY, example("adult-iop-suitable"), subject=subject)


async def evaluate(http: httpx.AsyncClient, body: Json) -> httpx.Response:
    return await http.post(EVALUATE, content=json.dumps(body), headers=FHIR)


async def stored(http: httpx.AsyncClient, subject: str) -> str:
    """The id of a screening about ``subject``, evaluated by ``http``."""
    answered = await evaluate(http, questionnaire_response(subject))
    assert answered.status_code == 200, answered.text
    return str(answered.headers["location"].rsplit("/", 1)[1])


def populate_body(subject: str) -> Json:
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": "subject", "valueReference": {"reference": subject}}],
    }


def issues(response: httpx.Response, status: int) -> list[Json]:
    """The issues of an OperationOutcome answered with ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/fhir+json"
    body: Json = response.json()
    assert body["resourceType"] == "OperationOutcome"
    found: list[Json] = body["issue"]
    return found


def assert_bound_refusal(response: httpx.Response, why: str) -> None:
    problem = assert_refused(response, 403, "forbidden")
    assert "bound to one patient" in problem["detail"], problem
    assert why in problem["detail"], problem


# --- what the patient's token may do ------------------------------------------------------


async def test_the_patients_token_evaluates_searches_and_reads_the_patients_results(
    patient_app: httpx.AsyncClient,
) -> None:
    screening = await stored(patient_app, f"Patient/{PATIENT}")
    for subject in (f"Patient/{PATIENT}", PATIENT):
        found = await patient_app.get("/fhir/r4/Observation", params={"subject": subject})
        assert found.status_code == 200, found.text
        assert screening in [entry["resource"]["id"] for entry in found.json()["entry"]]
    read = await patient_app.get(f"/fhir/r4/Observation/{screening}")
    assert read.status_code == 200, read.text
    referrals = await patient_app.get("/fhir/r4/ServiceRequest", params={"patient": PATIENT})
    assert referrals.status_code == 200, referrals.text
    populated = await patient_app.post(
        "/fhir/r4/Questionnaire/$populate",
        content=json.dumps(populate_body(f"Patient/{PATIENT}")),
        headers=FHIR,
    )
    assert populated.status_code == 200, populated.text


async def test_an_absolute_reference_counts_only_on_the_tokens_own_servers(
    patient_app: httpx.AsyncClient,
) -> None:
    for base in (EHR, AUTH):  # the token's audience and its issuer
        await stored(patient_app, f"{base}/Patient/{PATIENT}/_history/2")
    elsewhere = await evaluate(
        patient_app, questionnaire_response(f"https://other.example/fhir/Patient/{PATIENT}")
    )
    assert_bound_refusal(elsewhere, "another patient")


async def test_what_is_about_no_one_stays_open(patient_app: httpx.AsyncClient) -> None:
    for path in ("/fhir/r4/Questionnaire", "/fhir/r4/CodeSystem", "/v1/questionnaire"):
        response = await patient_app.get(path)
        assert response.status_code == 200, (path, response.text)
    evaluated = await patient_app.post(
        "/v1/screenings/evaluate", json={"answers": example("adult-iop-suitable")}
    )
    assert evaluated.status_code == 200, evaluated.text


# --- what it may not -----------------------------------------------------------------------


async def test_another_patients_evaluation_is_403_and_stores_nothing(
    patient_app: httpx.AsyncClient, staff: httpx.AsyncClient
) -> None:
    for subject in ("Patient/pat-2", None, "Group/pat-1"):
        response = await evaluate(patient_app, questionnaire_response(subject))
        assert response.status_code == 403, (subject, response.text)
        issues(response, 403)
    wrapped = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "questionnaire-response", "resource": questionnaire_response("Patient/pat-2")}
        ],
    }
    assert_bound_refusal(await evaluate(patient_app, wrapped), "another patient")
    not_json = await patient_app.post(EVALUATE, content=b"{not json", headers=FHIR)
    assert_bound_refusal(not_json, "name that patient")
    listed = await staff.get("/v1/screenings")
    assert listed.status_code == 200, listed.text
    assert listed.json()["items"] == []


async def test_another_patients_populate_is_403(patient_app: httpx.AsyncClient) -> None:
    response = await patient_app.post(
        "/fhir/r4/Questionnaire/iop-level-of-care/$populate",
        content=json.dumps(populate_body(f"{EHR}/Patient/pat-2")),
        headers=FHIR,
    )
    assert_bound_refusal(response, "another patient")


@pytest.mark.parametrize(
    "query",
    [
        {"subject": "Patient/pat-2"},
        {"subject": f"Patient/{PATIENT},Patient/pat-2"},
        {"patient": f"https://other.example/fhir/Patient/{PATIENT}"},
        {"code": "level-of-care-recommendation"},
        {},
    ],
    ids=repr,
)
async def test_searching_for_another_or_no_patient_is_403(
    patient_app: httpx.AsyncClient, query: dict[str, str]
) -> None:
    for resource in ("Observation", "ServiceRequest"):
        response = await patient_app.get(f"/fhir/r4/{resource}", params=query)
        issues(response, 403)
        assert_bound_refusal(response, "patient")


async def test_another_patients_result_is_not_found(
    patient_app: httpx.AsyncClient, staff: httpx.AsyncClient
) -> None:
    others = await stored(staff, "Patient/pat-2")
    for path in (f"/fhir/r4/Observation/{others}", f"/fhir/r4/ServiceRequest/{others}-referral"):
        issues(await patient_app.get(path), 404)
    assert (await staff.get(f"/fhir/r4/Observation/{others}")).status_code == 200


OPEN_TO_THE_PATIENT = {
    ("POST", "/fhir/r4/QuestionnaireResponse/$evaluate"),
    ("POST", "/fhir/r4/Questionnaire/$populate"),
    ("POST", "/fhir/r4/Questionnaire/{questionnaire_id}/$populate"),
    ("GET", "/fhir/r4/Observation"),
    ("GET", "/fhir/r4/Observation/{observation_id}"),
    ("GET", "/fhir/r4/ServiceRequest"),
    ("GET", "/fhir/r4/ServiceRequest/{service_request_id}"),
    ("POST", "/v1/screenings/evaluate"),
}


def closed_to_the_patient(app: FastAPI) -> list[Operation]:
    """Every operation but the patient's own and those about no one (no scope needed)."""
    return [
        op
        for op in operations(app)
        if op.scopes and (op.method, op.template) not in OPEN_TO_THE_PATIENT
    ]


async def test_every_other_operation_is_403_naming_the_patient_binding(
    app: FastAPI, patient_app: httpx.AsyncClient, staff: httpx.AsyncClient
) -> None:
    screening = await stored(staff, f"Patient/{PATIENT}")  # the patient's, even
    closed = closed_to_the_patient(app)
    assert ("GET", "/v1/screenings/{screening_id}") in {(o.method, o.template) for o in closed}
    for op in closed:
        response = await patient_app.request(
            op.method,
            op.path(screening_id=screening),
            content=b"{}" if op.method in ("POST", "PUT", "PATCH") else None,
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 403, (str(op), response.text)
        assert_bound_refusal(response, "not open to it")


# --- which tokens are bound ------------------------------------------------------------------


async def test_a_token_without_the_claim_or_from_a_provider_without_one_is_not_bound(
    app: FastAPI,
) -> None:
    for unbound in (token(without="patient"), token(issuer=UNBOUND_PROVIDER.issuer)):
        async with http_client(app, unbound) as http:
            listed = await http.get("/v1/screenings")
            assert listed.status_code == 200, listed.text


@pytest.mark.parametrize("claim", ["not an id!", None, 12, ""], ids=repr)
async def test_a_patient_claim_that_is_not_an_id_is_401(app: FastAPI, claim: object) -> None:
    async with http_client(app, token(patient=claim)) as http:
        refused = assert_refused(await http.get("/fhir/r4/Questionnaire"), 401, "unauthorized")
    assert "patient claim is invalid" in refused["detail"], refused


def test_a_patient_is_named_relatively_or_on_the_tokens_bases() -> None:
    patient = PatientContext(id="123", bases=(EHR,))
    assert patient.names("Patient/123")
    assert patient.names(f"{EHR}/Patient/123")
    assert patient.names("Patient/123/_history/4")
    assert not patient.names("Patient/1234")
    assert not patient.names("https://other.example/fhir/Patient/123")
    assert not patient.names(f"{EHR}/Group/123")
    assert not patient.names("123")
