"""A stored screening as FHIR R4 resources: the level-of-care Observation, one Observation per
instrument score (US Core screening-assessment conventions: category ``survey``, LOINC totals,
``derivedFrom`` the response), and a ServiceRequest proposing a referral to the recommended
level. Built from what is stored, so the same screening always gives the same resources.

The Observations carry a generated narrative (``text``), which an EHR shows as it is: the
level, urgency, IOP verdict and summary of the recommendation (app/screenings/readable.py),
and each score's result.

References to the person, the encounter and the QuestionnaireResponse are copied from the
response the EHR sent: they point to the EHR's own resources.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.engine.determination import LEVEL_INFO, LevelOfCare
from app.fhir.terminology import (
    DATA_ABSENT_REASON,
    LOINC,
    OBSERVATION_CATEGORY,
    Vocabulary,
    humanize,
)
from app.screenings.readable import determination_narrative, narrative, score_line

SURVEY = {"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}]}
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
PRIORITY = {"emergent": "stat", "urgent": "urgent", "routine": "routine"}
# Instruments without a LOINC total: our own codes.
OWN_TOTAL_CODES = {"ciwa_ar": "ciwa-ar-total", "cows": "cows-total", "cssrs": "cssrs-tier"}


@dataclass(frozen=True, slots=True)
class Result:
    """What the resources are built from: a stored screening."""

    screening_id: str
    created_at: datetime
    rule_set: dict[str, Any]  # owner, key, version, sha256
    engine_version: str
    determination: dict[str, Any]
    context: dict[str, Any]  # from the QuestionnaireResponse; empty for REST screenings


def score_id(screening_id: str, instrument: str) -> str:
    return f"{screening_id}-{instrument.replace('_', '-')}"


def referral_id(screening_id: str) -> str:
    return f"{screening_id}-referral"


def response_reference(context: dict[str, Any]) -> dict[str, Any] | None:
    """How the result points to the QuestionnaireResponse it came from."""
    if context.get("id"):
        return {"reference": f"QuestionnaireResponse/{context['id']}"}
    if context.get("identifier"):
        return {"type": "QuestionnaireResponse", "identifier": context["identifier"]}
    return None


def _common(result: Result) -> dict[str, Any]:
    common: dict[str, Any] = {}
    for name in ("subject", "encounter"):
        if result.context.get(name):
            common[name] = result.context[name]
    common["effectiveDateTime"] = result.context.get("authored") or result.created_at.isoformat()
    common["issued"] = result.created_at.isoformat()
    derived = response_reference(result.context)
    if derived:
        common["derivedFrom"] = [derived]
    return common


def generated(div: str) -> dict[str, str]:
    """A resource's ``text``: a narrative generated entirely from its data."""
    return {"status": "generated", "div": div}


def _concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display or humanize(code)}]}


def score_observation(
    vocabulary: Vocabulary, result: Result, score: dict[str, Any]
) -> dict[str, Any]:
    """One instrument's score."""
    instrument = score["instrument"]
    if score.get("loinc_total"):
        code = {
            "coding": [{"system": LOINC, "code": score["loinc_total"]}],
            "text": f"{score['title']} total score",
        }
    else:
        own = OWN_TOTAL_CODES.get(instrument, f"{instrument.replace('_', '-')}-total")
        code = {
            "coding": [{"system": vocabulary.observations, "code": own}],
            "text": f"{score['title']} {'tier' if instrument == 'cssrs' else 'total score'}",
        }
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "id": score_id(result.screening_id, instrument),
        "text": generated(narrative([(None, score_line(score))])),
        "status": "final",
        "category": [SURVEY],
        "code": code,
        **_common(result),
    }
    notes = list(score.get("notes") or [])
    if instrument == "cssrs":
        if score.get("tier"):
            observation["valueCodeableConcept"] = _concept(
                vocabulary.code_system("cssrs-tier"), score["tier"]
            )
        else:
            observation["dataAbsentReason"] = _concept(
                DATA_ABSENT_REASON, "asked-declined", "Asked But Declined"
            )
            notes.append(
                f"Declined answers leave the tier open: at least {score['tier_at_least']}."
            )
    elif score.get("total") is not None:
        observation["valueInteger"] = score["total"]
    else:
        observation["dataAbsentReason"] = _concept(
            DATA_ABSENT_REASON, "asked-declined", "Asked But Declined"
        )
        notes.append(
            f"Items {', '.join(str(i) for i in score['declined_items'])} declined: the total lies "
            f"between {score['total_min']} and {score['total_max']}."
        )
    interpretation: list[dict[str, Any]] = []
    if score.get("positive") is not None:
        positive = score["positive"]
        interpretation.append(
            {
                "coding": [
                    {
                        "system": INTERPRETATION,
                        "code": "POS" if positive else "NEG",
                        "display": "Positive" if positive else "Negative",
                    }
                ]
            }
        )
    if score.get("band"):
        interpretation.append({"text": humanize(score["band"])})
    if interpretation:
        observation["interpretation"] = interpretation
    if notes:
        observation["note"] = [{"text": note} for note in notes]
    return observation


def _reasons(determination: dict[str, Any]) -> str:
    level = determination.get("recommended_level")
    reasons = [r["text"] for r in (level or {}).get("decided_by", [])]
    reasons += [r["text"] for r in determination["iop"]["reasons"]]
    alerts = [f"{a['action']} ({a['reason']})" for a in determination["safety_alerts"]]
    lines = [*(f"Safety: {alert}" for alert in alerts), *dict.fromkeys(reasons)]
    return " ".join(lines) or "No rule decided a level."


def level_observation(vocabulary: Vocabulary, result: Result) -> dict[str, Any]:
    """The recommendation: level (or why there is none), IOP verdict, urgency, reasons."""
    determination = result.determination
    rule_set = result.rule_set
    status = determination["status"]
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "id": result.screening_id,
        "text": generated(determination_narrative(determination)),
        "identifier": [{"system": vocabulary.screening_identifier, "value": result.screening_id}],
        "status": "final" if status == "complete" else "preliminary",
        "category": [SURVEY],
        "code": {
            "coding": [
                {
                    "system": vocabulary.observations,
                    "code": "level-of-care-recommendation",
                    "display": "Recommended level of care (screening)",
                }
            ],
            "text": "Recommended level of care (screening)",
        },
        **_common(result),
    }
    level = determination.get("recommended_level")
    if level:
        observation["valueCodeableConcept"] = {
            "coding": [vocabulary.level_coding(LevelOfCare(level["level"]))],
            "text": level["label"],
        }
    else:
        observation["dataAbsentReason"] = {
            **_concept(DATA_ABSENT_REASON, "unknown", "Unknown"),
            "text": "Too little information to recommend a level of care.",
        }
    observation["method"] = {
        "text": f"carelevel rule set {rule_set['owner']}/{rule_set['key']} version "
        f"{rule_set['version']} (sha256 {rule_set['sha256']}), engine {result.engine_version}"
    }
    members = [
        {"reference": f"Observation/{score_id(result.screening_id, s['instrument'])}"}
        for s in determination["scores"]
    ]
    if members:
        observation["hasMember"] = members
    observation["component"] = [
        {
            "code": _concept(
                vocabulary.observations, "iop-verdict", "Intensive outpatient program suitability"
            ),
            "valueCodeableConcept": _concept(vocabulary.verdicts, determination["iop"]["verdict"]),
        },
        {
            "code": _concept(vocabulary.observations, "urgency", "Urgency of clinical follow-up"),
            "valueCodeableConcept": _concept(
                vocabulary.code_system("urgency"), determination["urgency"]
            ),
        },
        {
            "code": _concept(
                vocabulary.observations,
                "determination-status",
                "Completeness of the screening's determination",
            ),
            "valueCodeableConcept": _concept(
                vocabulary.code_system("determination-status"), status
            ),
        },
    ]
    notes = [_reasons(determination), *_barriers(determination)]
    if determination["missing"]:
        missing = "; ".join(m["label"] for m in determination["missing"])
        notes.append(f"Missing information that could change this: {missing}.")
    observation["note"] = [{"text": text} for text in (*notes, determination["disclaimer"])]
    return observation


def _barriers(determination: dict[str, Any]) -> list[str]:
    """One sentence per barrier to attending IOP, with the ways to lift it."""
    sentences = []
    for barrier in determination["barriers"]:
        ways = " ".join(a["description"] for a in barrier["accommodations"])
        sentences.append(f"Barrier: {barrier['description']} {ways or 'No accommodation applies.'}")
    return sentences


def referral(vocabulary: Vocabulary, result: Result) -> dict[str, Any] | None:
    """A ServiceRequest proposing the recommended level (None without a level, or without a
    subject to refer: a ServiceRequest needs one)."""
    level = result.determination.get("recommended_level")
    subject = result.context.get("subject")
    if not level or not subject:
        return None
    label = LEVEL_INFO[LevelOfCare(level["level"])].label
    request: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": referral_id(result.screening_id),
        "status": "draft",
        "intent": "proposal",
        "priority": PRIORITY[result.determination["urgency"]],
        "code": {
            "coding": [vocabulary.level_coding(LevelOfCare(level["level"]))],
            "text": f"Referral to {label}",
        },
        "subject": subject,
        "authoredOn": result.created_at.isoformat(),
        "reasonReference": [{"reference": f"Observation/{result.screening_id}"}],
        "note": [{"text": result.determination["disclaimer"]}],
    }
    if result.context.get("encounter"):
        request["encounter"] = result.context["encounter"]
    derived = response_reference(result.context)
    if derived:
        request["supportingInfo"] = [derived]
    return request


def resources(vocabulary: Vocabulary, result: Result) -> list[dict[str, Any]]:
    """Every resource of a result: the recommendation, the scores, the referral."""
    found = [level_observation(vocabulary, result)]
    found += [score_observation(vocabulary, result, s) for s in result.determination["scores"]]
    proposed = referral(vocabulary, result)
    if proposed:
        found.append(proposed)
    return found


def result_bundle(vocabulary: Vocabulary, result: Result, base_url: str) -> dict[str, Any]:
    """The result as a ``collection`` Bundle, each entry at its address on this server."""
    return {
        "resourceType": "Bundle",
        "identifier": {"system": vocabulary.screening_identifier, "value": result.screening_id},
        "type": "collection",
        "timestamp": result.created_at.isoformat(),
        "entry": [
            {
                "fullUrl": f"{base_url}/fhir/r4/{resource['resourceType']}/{resource['id']}",
                "resource": resource,
            }
            for resource in resources(vocabulary, result)
        ],
    }
