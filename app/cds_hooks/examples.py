"""The example calls of the API docs and of examples/fhir/: a patient-view call whose prefetch
carries the docs' QuestionnaireResponse, and feedback overriding a card."""

from __future__ import annotations

from typing import Any

from app.fhir.examples import example_response
from app.fhir.terminology import Vocabulary


def example_hook_request(vocabulary: Vocabulary) -> dict[str, Any]:
    """A patient-view call as an EHR sends it, with both prefetch keys filled."""
    response = example_response(vocabulary)
    return {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "fhirServer": "https://ehr.example.org/fhir",
        "context": {
            "userId": "Practitioner/example",
            "patientId": "1288992",
            "encounterId": "89284",
        },
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "1288992"},
            "questionnaireResponse": {
                "resourceType": "Bundle",
                "type": "searchset",
                "total": 1,
                "entry": [
                    {
                        "fullUrl": "https://ehr.example.org/fhir/QuestionnaireResponse/"
                        + response["id"],
                        "resource": response,
                    }
                ],
            },
        },
    }


def example_feedback(vocabulary: Vocabulary) -> dict[str, Any]:
    """The clinician overrode a card: the program has a waitlist."""
    return {
        "feedback": [
            {
                "card": "ced0e2bf-903a-4748-a324-f33522477a8b",
                "outcome": "overridden",
                "overrideReason": {
                    "reason": {
                        "system": vocabulary.code_system("variance-reason"),
                        "code": "waitlist",
                    },
                    "userComment": "The IOP has a four-week waitlist; PHP has a place now.",
                },
                "outcomeTimestamp": "2026-12-01T10:00:00Z",
            }
        ]
    }
