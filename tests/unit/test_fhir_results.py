"""The pure parts of the results an EHR files: deterministic addresses, the Provenance, the
SNOMED CT referral codes and the US Core subject rule."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.engine.determination import LevelOfCare
from app.fhir.outcome import FhirError
from app.fhir.results import (
    US_CORE_PROVENANCE,
    Result,
    full_url,
    provenance,
    require_subject,
    rule_set_canonical,
)
from app.fhir.terminology import SNOMED, Vocabulary, referral_coding

VOCABULARY = Vocabulary("https://carelevel.dev/fhir")
SCREENING = "7d7c1b0e-52a8-4f0e-8f5f-3f1f8c9b2a61"
RULE_SET = {"owner": "clinic-a", "key": "iop-level-of-care", "version": 3, "sha256": "ab" * 32}


def result(context: dict[str, object]) -> Result:
    return Result(
        screening_id=SCREENING,
        created_at=datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
        rule_set=RULE_SET,
        engine_version="2.0.0",
        determination={},
        context=context,
    )


def test_addresses_are_the_same_every_time_and_differ_per_resource() -> None:
    first = full_url(VOCABULARY, "Observation", SCREENING)
    assert first == full_url(VOCABULARY, "Observation", SCREENING)
    assert first.startswith("urn:uuid:")
    others = {
        full_url(VOCABULARY, "Observation", f"{SCREENING}-phq9"),
        full_url(VOCABULARY, "ServiceRequest", SCREENING),
        full_url(Vocabulary("https://other.example/fhir"), "Observation", SCREENING),
    }
    assert first not in others
    assert len(others) == 3


def test_the_provenance_names_carelevel_the_response_and_the_rule_set_version() -> None:
    record = provenance(VOCABULARY, result({"id": "qr-1"}), ["urn:uuid:a", "urn:uuid:b"])
    assert record["meta"]["profile"] == [US_CORE_PROVENANCE]
    assert record["target"] == [{"reference": "urn:uuid:a"}, {"reference": "urn:uuid:b"}]
    assert record["recorded"] == "2026-03-02T09:30:00+00:00"
    assert record["policy"] == [
        "https://carelevel.dev/fhir/Questionnaire/iop-level-of-care|clinic-a.3"
    ]
    assert record["policy"] == [rule_set_canonical(VOCABULARY, RULE_SET)]
    (device, publisher) = record["contained"]
    assert record["agent"][0]["who"]["reference"] == f"#{device['id']}"
    assert record["agent"][0]["onBehalfOf"]["reference"] == f"#{publisher['id']}"
    assert {v["type"]["text"]: v["value"] for v in device["version"]} == {
        "engine": "2.0.0",
        "rule set": "clinic-a/iop-level-of-care version 3",
        "rule set sha256": "ab" * 32,
    }
    assert publisher["resourceType"] == "Organization"
    assert record["entity"] == [
        {"role": "source", "what": {"reference": "QuestionnaireResponse/qr-1"}}
    ]
    assert "entity" not in provenance(VOCABULARY, result({}), ["urn:uuid:a"])


@pytest.mark.parametrize("level", list(LevelOfCare))
def test_every_level_has_a_snomed_referral(level: LevelOfCare) -> None:
    coding = referral_coding(level)
    assert coding["system"] == SNOMED
    expected = "183866009" if level is LevelOfCare.EMERGENCY_EVALUATION else "390866009"
    assert coding["code"] == expected
    assert coding["display"].endswith("(procedure)")


def test_us_core_results_need_a_subject() -> None:
    require_subject({"subject": {"reference": "Patient/1"}})
    with pytest.raises(FhirError) as refused:
        require_subject({"id": "qr-1"})
    assert refused.value.status == 422
