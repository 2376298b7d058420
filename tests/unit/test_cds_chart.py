"""The pure decisions of the CDS services about the chart and drafted orders: which references
name the patient in context, which chart resources are the patient's, which responses are to
carelevel's Questionnaire, how prefetch templates are filled, and which level of care an order's
codes mean; and how the chart reader bounds what a FHIR server answers."""

from __future__ import annotations

import gzip
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.cds_hooks.chart import ChartReader, filled
from app.cds_hooks.orders import HCPCS_SYSTEMS, SNOMED, code_map, ordered_level
from app.cds_hooks.prefetch import (
    answers_ours,
    chart_resources,
    names_patient,
    needs,
    trusted_bases,
)
from app.engine.determination import LevelOfCare
from app.fhir import terminology
from app.fhir.terminology import Vocabulary

SERVER = "https://ehr.example/fhir"
LISTED = "https://fhir.ehr.example/r4"  # a FHIR server the CDS client's configuration lists


@pytest.mark.parametrize(
    ("reference", "server"),
    [
        ("123", SERVER),
        ("Patient/123", SERVER),
        ("Patient/123/_history/4", SERVER),
        ("https://ehr.example/fhir/Patient/123", SERVER),
        ("https://ehr.example/fhir/Patient/123", "https://EHR.example/fhir/"),
        ("https://ehr.example:443/fhir/Patient/123/_history/1", "https://ehr.example:443/fhir"),
        ("https://fhir.ehr.example/r4/Patient/123", None),  # a listed server
        ("https://fhir.ehr.example/r4/Patient/123", SERVER),
    ],
)
def test_references_naming_the_patient(reference: str, server: str | None) -> None:
    assert names_patient(reference, "123", trusted_bases(server, [LISTED]))


@pytest.mark.parametrize("server", [None, SERVER])
def test_an_absolute_reference_to_another_server_is_another_person(server: str | None) -> None:
    # Without fhirServer in the call, only the servers the client lists are trusted.
    assert not names_patient(
        "https://any.example/fhir/Patient/123", "123", trusted_bases(server, [LISTED])
    )
    assert not names_patient("https://any.example/fhir/Patient/123", "123", trusted_bases(None, []))


@pytest.mark.parametrize(
    "reference",
    [
        None,
        7,
        "",
        "Patient/1234",
        "Patient/12",
        "Group/123",
        "Patient/123/extra",
        "https://other.example/fhir/Patient/123",
        "https://ehr.example/fhir/other/Patient/123",
        "https://ehr.example/fhir/Patient/124",
        "ftp://ehr.example/fhir/Patient/123",
        "https://ehr.example/fhir/Patient/123?x=1",
        "/Patient/123",
        "urn:uuid:Patient/123",
    ],
)
def test_references_not_naming_the_patient(reference: Any) -> None:
    assert not names_patient(reference, "123", trusted_bases(SERVER, [LISTED]))


def test_only_the_patients_own_chart_resources_are_kept() -> None:
    mine = {"resourceType": "Observation", "subject": {"reference": "Patient/123"}}
    absolute = {"resourceType": "Condition", "subject": {"reference": f"{SERVER}/Patient/123"}}
    by_patient = {"resourceType": "MedicationStatement", "patient": {"reference": "Patient/123"}}
    theirs = {"resourceType": "Observation", "subject": {"reference": "Patient/999"}}
    nobody = {"resourceType": "Observation"}
    values = {
        "patient": {"resourceType": "Patient", "id": "123"},
        "other": {"resourceType": "Patient", "id": "999"},
        "observations": {
            "resourceType": "Bundle",
            "entry": [{"resource": mine}, {"resource": theirs}, {"resource": nobody}, "x", {}],
        },
        "conditions": {"resourceType": "Bundle", "entry": [{"resource": absolute}]},
        "medications": by_patient,
        "failed": None,
    }

    kept = chart_resources(values, "123", trusted_bases(SERVER, []))

    assert kept == [values["patient"], mine, absolute, by_patient]
    assert absolute not in chart_resources(values, "123", trusted_bases(None, [LISTED]))


def test_a_response_to_carelevels_questionnaire_is_recognised_whatever_its_version() -> None:
    vocabulary = Vocabulary("https://carelevel.example/fhir/r4")
    ours = vocabulary.questionnaire("iop-level-of-care")
    former = "https://carelevel.dev/fhir/Questionnaire/iop-level-of-care"

    def response(questionnaire: object, status: str = "completed") -> dict[str, Any]:
        return {
            "resourceType": "QuestionnaireResponse",
            "status": status,
            "questionnaire": questionnaire,
        }

    for cited in (ours, f"{ours}|shared.1", former, f"{former}|shared.1"):
        assert answers_ours(response(cited), vocabulary), cited
        assert answers_ours(response(cited, "amended"), vocabulary), cited
    assert not answers_ours(response(ours, "in-progress"), vocabulary)
    assert not answers_ours(response("https://forms.example/Questionnaire/phq9"), vocabulary)
    assert not answers_ours(response(f"{ours}-other|1"), vocabulary)
    assert not answers_ours(response(None), vocabulary)
    assert not answers_ours({"resourceType": "Observation", "status": "completed"}, vocabulary)


def test_a_key_is_needed_when_absent_or_not_fetched() -> None:
    values: dict[str, object] = {"a": None, "b": {"resourceType": "OperationOutcome"}, "c": {}}
    assert [key for key in "abcd" if needs(values, key)] == ["b", "d"]


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Patient/{{context.patientId}}", "Patient/123"),
        ("Observation?patient={{context.patientId}}&code=x|1", "Observation?patient=123&code=x|1"),
        ("Encounter/{{context.encounterId}}", None),  # no value in context
        ("Practitioner/{{context.userId}}", None),  # not an id: never put in a URL
        ("Patient/{{userPractitionerId}}", None),  # a token carelevel does not fill
    ],
)
def test_prefetch_templates_are_filled_with_plain_ids_only(
    template: str, expected: str | None
) -> None:
    context = {"patientId": "123", "userId": "Practitioner/1"}
    assert filled(template, context) == expected


# --- what a FHIR server answers ---------------------------------------------------------------

BOMB_BYTES = 64 * 1024 * 1024  # zeros: gzip makes them about 64 KiB


def _gzip_bomb() -> bytes:
    return gzip.compress(b"\0" * BOMB_BYTES, compresslevel=9)


async def _in_chunks(body: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def test_a_compressed_answer_is_refused_without_being_expanded() -> None:
    bomb = _gzip_bomb()
    asked: list[httpx.Request] = []

    def server(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        headers = {"Content-Type": "application/fhir+json", "Content-Encoding": "gzip"}
        return httpx.Response(200, headers=headers, content=_in_chunks(bomb))

    reader = ChartReader(seconds=5.0, transport=httpx.MockTransport(server))
    tracemalloc.start()
    try:
        fetched = await reader.read(
            SERVER, "token", {"patient": "Patient/{{context.patientId}}"}, {"patientId": "123"}
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await reader.aclose()

    assert fetched.failed == ["patient"]
    assert fetched.values == {}
    # The bomb is never expanded: far less than its 64 MiB is ever held.
    assert peak < 8 * 1024 * 1024
    [request] = asked
    assert request.headers["Accept-Encoding"] == "identity"


async def test_an_answer_is_bounded_as_it_arrives() -> None:
    body = b'{"resourceType": "Bundle", "padding": "' + b"x" * (3 * 1024 * 1024) + b'"}'

    def server(request: httpx.Request) -> httpx.Response:  # no Content-Length: streamed
        return httpx.Response(200, content=_in_chunks(body))

    reader = ChartReader(seconds=5.0, transport=httpx.MockTransport(server))
    try:
        fetched = await reader.read(SERVER, "token", {"all": "Observation"}, {})
    finally:
        await reader.aclose()

    assert fetched.failed == ["all"]


def _order(*codings: Any) -> dict[str, Any]:
    return {"resourceType": "ServiceRequest", "code": {"coding": list(codings)}}


def test_the_tenants_local_codes_map_and_win_over_standard_ones() -> None:
    local = {
        "https://ehr.example/orders|PHP-1": LevelOfCare.PARTIAL_HOSPITALIZATION,
        f"{HCPCS_SYSTEMS[0]}|H0015": LevelOfCare.RESIDENTIAL,
    }
    codes = code_map(local)

    local_order = _order({"system": "https://ehr.example/orders", "code": "PHP-1"})
    assert ordered_level(local_order, codes) is LevelOfCare.PARTIAL_HOSPITALIZATION
    remapped = _order({"system": HCPCS_SYSTEMS[0], "code": "H0015"})
    assert ordered_level(remapped, codes) is LevelOfCare.RESIDENTIAL
    assert ordered_level(remapped, code_map({})) is LevelOfCare.INTENSIVE_OUTPATIENT
    # The same code in another system is another code.
    elsewhere = _order({"system": "https://other.example/orders", "code": "PHP-1"})
    assert ordered_level(elsewhere, codes) is None


def test_the_first_coding_that_means_a_level_decides() -> None:
    order = _order(
        {"system": "https://ehr.example/orders", "code": "unknown"},
        {"code": "H0035"},  # no system: means nothing
        {"system": "https://carelevel.dev/fhir/CodeSystem/level-of-care", "code": "residential"},
        {"system": HCPCS_SYSTEMS[1], "code": "H0035"},
    )
    assert ordered_level(order, code_map({})) is LevelOfCare.RESIDENTIAL


def test_a_snomed_referral_means_a_level_only_when_it_names_one_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    referrals = {
        LevelOfCare.INTENSIVE_OUTPATIENT: ("390866009", "Referral to mental health team"),
        LevelOfCare.RESIDENTIAL: ("390866009", "Referral to mental health team"),
        LevelOfCare.EMERGENCY_EVALUATION: ("183866009", "Referral to emergency clinic"),
    }
    monkeypatch.setattr(terminology, "SNOMED_REFERRALS", referrals, raising=False)
    codes = code_map({})

    emergency = _order({"system": SNOMED, "code": "183866009"})
    assert ordered_level(emergency, codes) is LevelOfCare.EMERGENCY_EVALUATION
    shared = _order({"system": SNOMED, "code": "390866009"})
    assert ordered_level(shared, codes) is None
    # A tenant may still say what the shared concept means in its EHR.
    local = code_map({f"{SNOMED}|390866009": LevelOfCare.INTENSIVE_OUTPATIENT})
    assert ordered_level(shared, local) is LevelOfCare.INTENSIVE_OUTPATIENT
