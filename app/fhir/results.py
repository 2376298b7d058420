"""A stored screening as FHIR R4 resources: the level-of-care Observation, one Observation per
instrument score (US Core Observation Screening Assessment: category ``survey``, LOINC totals,
``derivedFrom`` the response), and a ServiceRequest proposing a referral to the recommended
level. Built from what is stored, so the same screening always gives the same resources.

``$evaluate`` answers with them as a ``transaction`` Bundle the EHR can POST to its own FHIR
server as it is (``transaction_bundle``): ``urn:uuid`` fullUrls derived from the screening,
conditional creates on carelevel's identifier so that filing twice creates nothing new, and a
Provenance naming carelevel, the QuestionnaireResponse and the rule-set version that decided.

The Observations carry a generated narrative (``text``), which an EHR shows as it is: the
level, urgency, IOP verdict and summary of the recommendation (app/screenings/readable.py),
and each score's result.

References to the person, the encounter and the QuestionnaireResponse are copied from the
response the EHR sent: they point to the EHR's own resources.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from uuid import NAMESPACE_URL, uuid5

from app.engine.determination import LEVEL_INFO, LevelOfCare
from app.fhir.outcome import FhirError, Issue
from app.fhir.terminology import (
    DATA_ABSENT_REASON,
    LOINC,
    OBSERVATION_CATEGORY,
    Vocabulary,
    humanize,
    referral_coding,
)
from app.screenings.readable import determination_narrative, narrative, score_line

SURVEY = {"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}]}
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
PRIORITY = {"emergent": "stat", "urgent": "urgent", "routine": "routine"}
# Instruments without a LOINC total: our own codes.
OWN_TOTAL_CODES = {
    "ciwa_ar": "ciwa-ar-total",
    "cows": "cows-total",
    "cssrs": "cssrs-tier",
    "asq": "asq-result",
}
# Instruments whose result is a category (a code of this code system), not a total.
CATEGORY_SYSTEMS = {"cssrs": "cssrs-tier", "asq": "asq-result"}
US_CORE: Final = "http://hl7.org/fhir/us/core/StructureDefinition"
SCREENING_ASSESSMENT: Final = f"{US_CORE}/us-core-observation-screening-assessment"
US_CORE_SERVICE_REQUEST: Final = f"{US_CORE}/us-core-servicerequest"
US_CORE_PROVENANCE: Final = f"{US_CORE}/us-core-provenance"
PARTICIPANT_TYPE: Final = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
DATA_OPERATION: Final = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"


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


def identifiers(vocabulary: Vocabulary, resource_id: str) -> list[dict[str, str]]:
    """A result resource's identifier in carelevel's system: its id here."""
    return [{"system": vocabulary.result_identifier, "value": resource_id}]


def observation_meta(result: Result) -> dict[str, Any]:
    """US Core Observation Screening Assessment where the Observation conforms: it requires a
    subject, so an Observation without one claims no profile."""
    return {"meta": {"profile": [SCREENING_ASSESSMENT]}} if result.context.get("subject") else {}


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
            "text": f"{score['title']} {_RESULT_NAMES.get(instrument, 'total score')}",
        }
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "id": score_id(result.screening_id, instrument),
        **observation_meta(result),
        "text": generated(narrative([(None, score_line(score))])),
        "identifier": identifiers(vocabulary, score_id(result.screening_id, instrument)),
        "status": "final",
        "category": [SURVEY],
        "code": code,
        **_common(result),
    }
    notes = list(score.get("notes") or [])
    if instrument in CATEGORY_SYSTEMS:
        _category_value(vocabulary, observation, score, notes)
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


_RESULT_NAMES = {"cssrs": "tier", "asq": "result"}


def _category_value(
    vocabulary: Vocabulary, observation: dict[str, Any], score: dict[str, Any], notes: list[str]
) -> None:
    """A C-SSRS tier or ASQ result as the value, or why it is open."""
    instrument = score["instrument"]
    category = score.get("tier") if instrument == "cssrs" else score.get("band")
    if category:
        system = vocabulary.code_system(CATEGORY_SYSTEMS[instrument])
        observation["valueCodeableConcept"] = _concept(system, category)
        return
    observation["dataAbsentReason"] = _concept(
        DATA_ABSENT_REASON, "asked-declined", "Asked But Declined"
    )
    if instrument == "cssrs":
        notes.append(f"Declined answers leave the tier open: at least {score['tier_at_least']}.")


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
        **observation_meta(result),
        "text": generated(determination_narrative(determination)),
        "identifier": [
            {"system": vocabulary.screening_identifier, "value": result.screening_id},
            *identifiers(vocabulary, result.screening_id),
        ],
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
    notes = [_reasons(determination), *_contradictions(determination), *_barriers(determination)]
    if determination["missing"]:
        missing = "; ".join(m["label"] for m in determination["missing"])
        notes.append(f"Missing information that could change this: {missing}.")
    observation["note"] = [{"text": text} for text in (*notes, determination["disclaimer"])]
    return observation


def _contradictions(determination: dict[str, Any]) -> list[str]:
    """One sentence per pair of answers that disagree (engine 3.0.0 and later), with what to
    confirm: the determination used the answers as given."""
    return [
        f"Answers disagree: {found['description']} Confirm: {found['confirm']}"
        for found in determination.get("contradictions", ())
    ]


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
    recommended = LevelOfCare(level["level"])
    label = LEVEL_INFO[recommended].label
    request: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": referral_id(result.screening_id),
        "meta": {"profile": [US_CORE_SERVICE_REQUEST]},
        "identifier": identifiers(vocabulary, referral_id(result.screening_id)),
        "status": "draft",
        "intent": "proposal",
        "priority": PRIORITY[result.determination["urgency"]],
        "code": {
            "coding": [vocabulary.level_coding(recommended), referral_coding(recommended)],
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


def full_url(vocabulary: Vocabulary, resource_type: str, resource_id: str) -> str:
    """The ``urn:uuid`` of a result resource in the transaction: the same for the same
    screening every time, so a replayed ``$evaluate`` gives the same Bundle."""
    name = f"{vocabulary.base}/{resource_type}/{resource_id}"
    return f"urn:uuid:{uuid5(NAMESPACE_URL, name)}"


def rule_set_canonical(vocabulary: Vocabulary, rule_set: dict[str, Any]) -> str:
    """The rule-set version that decided, as the canonical of its Questionnaire version."""
    return f"{vocabulary.questionnaire(rule_set['key'])}|{rule_set['owner']}.{rule_set['version']}"


DEVICE_ID: Final = "carelevel"
PUBLISHER_ID: Final = "carelevel-publisher"


def carelevel_device(result: Result) -> dict[str, Any]:
    """carelevel as the software that made the results (contained in the Provenance: it is
    no resource on the EHR's server): the engine's version and the rule-set version that
    decided, with its sha256, as its versions."""
    rule_set = result.rule_set
    versions = [
        ("engine", result.engine_version),
        ("rule set", f"{rule_set['owner']}/{rule_set['key']} version {rule_set['version']}"),
        ("rule set sha256", rule_set["sha256"]),
    ]
    return {
        "resourceType": "Device",
        "id": DEVICE_ID,
        "manufacturer": "carelevel",
        "deviceName": [{"name": "carelevel", "type": "user-friendly-name"}],
        "version": [{"type": {"text": kind}, "value": value} for kind, value in versions],
    }


def provenance(vocabulary: Vocabulary, result: Result, targets: list[str]) -> dict[str, Any]:
    """Who made the results (carelevel, a contained Device, on behalf of carelevel as the
    publisher of its rule sets: US Core's provenance-1 asks for ``onBehalfOf`` when ``who``
    is a Device, and carelevel does not know the EHR's organization), from what (the
    QuestionnaireResponse) and under which rule-set version (``policy``)."""
    publisher = {"resourceType": "Organization", "id": PUBLISHER_ID, "active": True}
    record: dict[str, Any] = {
        "resourceType": "Provenance",
        "meta": {"profile": [US_CORE_PROVENANCE]},
        "contained": [carelevel_device(result), publisher | {"name": "carelevel"}],
        "target": [{"reference": target} for target in targets],
        "recorded": result.created_at.isoformat(),
        "policy": [rule_set_canonical(vocabulary, result.rule_set)],
        "activity": {"coding": [{"system": DATA_OPERATION, "code": "CREATE", "display": "create"}]},
        "agent": [
            {
                "type": {
                    "coding": [
                        {"system": PARTICIPANT_TYPE, "code": "assembler", "display": "Assembler"}
                    ]
                },
                "who": {"reference": f"#{DEVICE_ID}", "display": "carelevel"},
                "onBehalfOf": {"reference": f"#{PUBLISHER_ID}", "display": "carelevel"},
            }
        ],
    }
    source = response_reference(result.context)
    if source:
        record["entity"] = [{"role": "source", "what": source}]
    return record


def _linked(resource: dict[str, Any], addresses: dict[str, str]) -> dict[str, Any]:
    """``resource`` with its references to other results pointing at their ``urn:uuid``; the
    references to the EHR's own resources stay as the EHR gave them."""
    linked = dict(resource)
    for name in ("hasMember", "reasonReference"):
        if name in linked:
            linked[name] = [{"reference": addresses[r["reference"]]} for r in linked[name]]
    return linked


def _local(resource: dict[str, Any]) -> str:
    """How the results refer to one another (``Observation/<id>``)."""
    return f"{resource['resourceType']}/{resource['id']}"


def _create(resource: dict[str, Any], address: str, if_none_exist: str) -> dict[str, Any]:
    return {
        "fullUrl": address,
        "resource": resource,
        "request": {
            "method": "POST",
            "url": resource["resourceType"],
            "ifNoneExist": if_none_exist,
        },
    }


def transaction_bundle(vocabulary: Vocabulary, result: Result) -> dict[str, Any]:
    """The result as a ``transaction`` Bundle to POST to the EHR's FHIR base: each resource a
    conditional create on its carelevel identifier (a server ignores the ``id`` of a created
    resource), then a Provenance of them all, created unless one already targets the
    recommendation."""
    found = resources(vocabulary, result)
    addresses = {_local(r): full_url(vocabulary, r["resourceType"], r["id"]) for r in found}
    system = vocabulary.result_identifier
    entries = [
        _create(_linked(r, addresses), addresses[_local(r)], f"identifier={system}|{r['id']}")
        for r in found
    ]
    recommendation = f"target:Observation.identifier={system}|{result.screening_id}"
    entries.append(
        _create(
            provenance(vocabulary, result, list(addresses.values())),
            full_url(vocabulary, "Provenance", result.screening_id),
            recommendation,
        )
    )
    return {
        "resourceType": "Bundle",
        "identifier": {"system": vocabulary.screening_identifier, "value": result.screening_id},
        "type": "transaction",
        "timestamp": result.created_at.isoformat(),
        "entry": entries,
    }


def require_subject(context: dict[str, Any]) -> None:
    """US Core results need the person they are about: refuse a response without ``subject``
    (422) when the caller asks for them."""
    if not context.get("subject"):
        raise FhirError(
            422,
            "US Core results need the QuestionnaireResponse's subject.",
            [
                Issue(
                    diagnostics="subject is required for US Core results",
                    expression="QuestionnaireResponse.subject",
                    code="required",
                )
            ],
        )
