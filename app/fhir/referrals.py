"""A referral recorded from a screening to a program of the directory, as a FHIR R4
``ServiceRequest`` (``intent=order``): its id is the referral's, its ``performer`` the
program's ``HealthcareService``, its ``reasonReference`` the screening's level-of-care
Observation and, when the screening proposed a referral (``<screening id>-referral``), its
``basedOn`` that proposal. Pure: built from the stored referral and its screening.

The subject is the screening's, as the QuestionnaireResponse named it. A screening without one
but with the tenant's pseudonymous person id names the person by that identifier, in the system
``urn:carelevel:person-id:<tenant>`` (a person id means something only within its tenant);
without either, the subject is a display-only reference to the person screened.
"""

from __future__ import annotations

from typing import Any, Final

from app.engine.determination import LEVEL_INFO, LevelOfCare
from app.fhir.results import identifiers, referral_id
from app.fhir.terminology import Vocabulary, referral_coding
from app.referrals.models import Referral
from app.screenings.models import Screening

PERSON_ID_SYSTEM: Final = "urn:carelevel:person-id:"


def person_system(tenant: str) -> str:
    """The identifier system of a tenant's pseudonymous person ids."""
    return f"{PERSON_ID_SYSTEM}{tenant}"


def subject_of(screening: Screening) -> dict[str, Any]:
    """Who was referred: the screening's FHIR subject, its person id, or a description."""
    subject = (screening.fhir_context or {}).get("subject")
    if isinstance(subject, dict) and subject:
        return dict(subject)
    if screening.person_id:
        system = person_system(screening.tenant_id)
        return {"type": "Patient", "identifier": {"system": system, "value": screening.person_id}}
    return {"display": f"Person screened in carelevel screening {screening.id}"}


def referral_request(
    vocabulary: Vocabulary, referral: Referral, screening: Screening, *, proposed: bool
) -> dict[str, Any]:
    """The ServiceRequest of a recorded referral (``proposed``: the screening has the proposal
    ServiceRequest this order is based on)."""
    level = LevelOfCare(referral.level)
    name = str(referral.program.get("name") or "the program")
    request: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": referral.id,
        "identifier": identifiers(vocabulary, referral.id),
    }
    if proposed:
        request["basedOn"] = [{"reference": f"ServiceRequest/{referral_id(screening.id)}"}]
    request |= {
        "status": "active",
        "intent": "order",
        "code": {
            "coding": [vocabulary.level_coding(level), referral_coding(level)],
            "text": f"Referral to {name} ({LEVEL_INFO[level].label})",
        },
        "subject": subject_of(screening),
    }
    encounter = (screening.fhir_context or {}).get("encounter")
    if encounter:
        request["encounter"] = encounter
    request |= {
        "authoredOn": referral.created_at.isoformat(),
        "requester": {"display": referral.referred_by},
        "performer": [
            {
                "reference": f"HealthcareService/{referral.program_id}",
                "display": name,
            }
        ],
        "reasonReference": [{"reference": f"Observation/{screening.id}"}],
    }
    if referral.note:
        request["note"] = [{"text": referral.note}]
    return request
