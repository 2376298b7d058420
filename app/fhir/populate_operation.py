"""The ``Questionnaire/$populate`` operation's edges: its Parameters read and checked
(``read_parameters``), the Questionnaire asked for, the output Parameters, and its
OperationDefinition. Pure functions, no I/O; the pre-population itself is app/fhir/populate.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from pydantic import ValidationError

from app.engine import DEFAULT_RULE_SET_KEY
from app.fhir.chart import CONDITION_CLINICAL, PATIENT_REFERENCE, Chart, about_patient, chart_of
from app.fhir.outcome import FhirError, Issue
from app.fhir.populate import populate, populated_link_ids
from app.fhir.questionnaire import parse_business_version
from app.fhir.response import current_canonical, refuse_deep_items, with_current_canonicals
from app.fhir.terminology import LOINC, Vocabulary

POPULATE_OPERATION: Final = "Questionnaire-populate"
_PARAMETER_NAMES: Final = frozenset({"subject", "context", "response", "questionnaire"})
_CONTEXT_NAMES: Final = frozenset({"patient", "chart"})
_ECHOABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,39}")


@dataclass(frozen=True, slots=True)
class PopulateRequest:
    """What a ``$populate`` call asks: whose chart, the chart, and the answers given."""

    subject: dict[str, Any]  # a Reference to the Patient
    chart: Chart
    answered: dict[str, Any] | None
    questionnaire: str | None  # the canonical the caller named, if any
    ignored: int  # chart resources not about the subject, dropped


def _invalid(status: int, detail: str, diagnostics: str, expression: str, code: str) -> FhirError:
    return FhirError(
        status, detail, [Issue(diagnostics=diagnostics, expression=expression, code=code)]
    )


def _parameters(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise _invalid(
            400,
            "Send a Parameters resource.",
            "resourceType must be Parameters",
            "Parameters",
            "structure",
        )
    parameters = body.get("parameter")
    if not isinstance(parameters, list) or not all(isinstance(p, dict) for p in parameters):
        raise _invalid(
            400,
            "The Parameters resource has no parameters.",
            "parameter must be a list of parameters",
            "Parameters.parameter",
            "structure",
        )
    for parameter in parameters:
        name = parameter.get("name")
        if name not in _PARAMETER_NAMES:
            shown = f" '{name}'" if isinstance(name, str) and _ECHOABLE_NAME.fullmatch(name) else ""
            raise _invalid(
                422,
                "The operation does not take that parameter.",
                f"parameter{shown} is not one of subject, context, response, questionnaire",
                "Parameters.parameter.name",
                "not-supported",
            )
    return parameters


def _one(parameters: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    found = [p for p in parameters if p.get("name") == name]
    if len(found) > 1:
        raise _invalid(
            422,
            f"The '{name}' parameter is given more than once.",
            f"{name} takes one value",
            f"Parameters.parameter.where(name='{name}')",
            "invalid",
        )
    return found[0] if found else None


def _subject(parameters: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """The subject Reference and the Patient id it names."""
    parameter = _one(parameters, "subject")
    reference = parameter.get("valueReference") if parameter else None
    target = reference.get("reference") if isinstance(reference, dict) else None
    matched = PATIENT_REFERENCE.fullmatch(target) if isinstance(target, str) else None
    if matched is None:
        raise _invalid(
            422 if parameter else 400,
            "The subject is missing or is not a Patient reference.",
            "subject takes a valueReference to a Patient (Patient/<id>)",
            "Parameters.parameter.where(name='subject')",
            "required" if not parameter else "invalid",
        )
    return {"reference": f"Patient/{matched.group(1)}"}, matched.group(1)


def _context(parameter: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(name, resource) of one SDC context parameter: parts ``name`` and ``content``."""
    parts = parameter.get("part")
    named = (
        {p.get("name"): p for p in parts if isinstance(p, dict)} if isinstance(parts, list) else {}
    )
    name = named.get("name", {}).get("valueString")
    content = named.get("content", {}).get("resource")
    expression = "Parameters.parameter.where(name='context')"
    if name not in _CONTEXT_NAMES or not isinstance(content, dict):
        raise _invalid(
            422,
            "A context parameter is not one this operation reads.",
            "context takes parts name (valueString patient or chart) and content (resource)",
            expression,
            "invalid",
        )
    wanted = "Patient" if name == "patient" else "Bundle"
    if content.get("resourceType") != wanted:
        raise _invalid(
            422,
            f"The {name} context must be a {wanted}.",
            f"context {name}: content must be a {wanted}",
            expression,
            "invalid",
        )
    if wanted == "Bundle" and content.get("type") not in ("searchset", "collection"):
        raise _invalid(
            422,
            "The chart must be a searchset or collection Bundle.",
            "context chart: Bundle.type must be searchset or collection",
            expression,
            "invalid",
        )
    return str(name), content


def _answered(parameters: list[dict[str, Any]], vocabulary: Vocabulary) -> dict[str, Any] | None:
    parameter = _one(parameters, "response")
    if parameter is None:
        return None
    resource = parameter.get("resource")
    expression = "Parameters.parameter.where(name='response')"
    if not isinstance(resource, dict) or resource.get("resourceType") != "QuestionnaireResponse":
        raise _invalid(
            422,
            "The response must be a QuestionnaireResponse.",
            "response takes a QuestionnaireResponse resource",
            expression,
            "invalid",
        )
    refuse_deep_items(resource, f"{expression}.resource")
    # Responses citing the former canonical base are read as citing the current one.
    current: dict[str, Any] = with_current_canonicals(resource, vocabulary)
    try:
        QuestionnaireResponse.model_validate(current)
    except ValidationError:
        raise _invalid(
            400,
            "The response is not a valid FHIR R4 QuestionnaireResponse.",
            "response: not a valid QuestionnaireResponse",
            expression,
            "structure",
        ) from None
    cited = current.get("questionnaire")
    if cited is not None and not str(cited).startswith(vocabulary.questionnaire("")):
        raise _invalid(
            422,
            "The response answers another Questionnaire.",
            "response: questionnaire must be a carelevel Questionnaire",
            expression,
            "invalid",
        )
    return current


def read_parameters(body: Any, vocabulary: Vocabulary) -> PopulateRequest:
    """The ``$populate`` request in ``body`` (FhirError 400/422 naming the parameter at fault,
    never the value sent). Chart resources not about the subject are dropped and counted."""
    parameters = _parameters(body)
    subject, patient_id = _subject(parameters)
    contexts = dict(_context(p) for p in parameters if p.get("name") == "context")
    patient = contexts.get("patient")
    if patient is not None and not about_patient(patient, patient_id):
        raise _invalid(
            422,
            "The patient context is not the subject.",
            "context patient: Patient.id must be the subject's id",
            "Parameters.parameter.where(name='context')",
            "invalid",
        )
    chart = chart_of([patient, contexts.get("chart")], patient_id)
    questionnaire = _one(parameters, "questionnaire")
    return PopulateRequest(
        subject=subject,
        chart=chart,
        answered=_answered(parameters, vocabulary),
        questionnaire=_canonical(questionnaire, vocabulary) if questionnaire else None,
        ignored=chart.ignored,
    )


def _canonical(parameter: dict[str, Any], vocabulary: Vocabulary) -> str:
    value = parameter.get("valueCanonical") or parameter.get("valueUri")
    if not isinstance(value, str) or not value:
        raise _invalid(
            422,
            "The questionnaire parameter is not a canonical URL.",
            "questionnaire takes a valueCanonical",
            "Parameters.parameter.where(name='questionnaire')",
            "invalid",
        )
    return current_canonical(value, vocabulary)


def populate_operation_definition(vocabulary: Vocabulary) -> dict[str, Any]:
    """The OperationDefinition of carelevel's ``Questionnaire/$populate`` (SDC's, narrowed to
    the chart given in the request)."""
    return {
        "resourceType": "OperationDefinition",
        "id": POPULATE_OPERATION,
        "url": f"{vocabulary.base}/OperationDefinition/{POPULATE_OPERATION}",
        "name": "PopulateQuestionnaire",
        "title": "Pre-populate the Questionnaire from the chart",
        "status": "active",
        "kind": "operation",
        "description": "An in-progress QuestionnaireResponse with the answers the chart sent "
        f"as context gives (each marked with the extension {vocabulary.answer_source} naming its "
        "source); answers in the response parameter are kept. A clinician reviews every "
        "pre-filled answer. Nothing is stored.",
        "base": "http://hl7.org/fhir/uv/sdc/OperationDefinition/Questionnaire-populate",
        "code": "populate",
        "resource": ["Questionnaire"],
        "system": False,
        "type": True,
        "instance": True,
        "parameter": [
            {"name": "questionnaire", "use": "in", "min": 0, "max": "1", "type": "canonical"},
            {"name": "subject", "use": "in", "min": 1, "max": "1", "type": "Reference"},
            {
                "name": "context",
                "use": "in",
                "min": 0,
                "max": "2",
                "documentation": "name 'patient' (content: Patient) and 'chart' (content: a "
                "searchset or collection Bundle of Observation, Condition, MedicationRequest, "
                "MedicationStatement and QuestionnaireResponse resources).",
                "part": [
                    {"name": "name", "use": "in", "min": 1, "max": "1", "type": "string"},
                    {"name": "content", "use": "in", "min": 1, "max": "1", "type": "Resource"},
                ],
            },
            {
                "name": "response",
                "use": "in",
                "min": 0,
                "max": "1",
                "type": "QuestionnaireResponse",
                "documentation": "Answers already given: kept, never replaced by the chart.",
            },
            {
                "name": "response",
                "use": "out",
                "min": 1,
                "max": "1",
                "type": "QuestionnaireResponse",
            },
            {"name": "issues", "use": "out", "min": 0, "max": "1", "type": "OperationOutcome"},
        ],
    }


def populate_result(
    response: dict[str, Any], ignored: int, vocabulary: Vocabulary
) -> dict[str, Any]:
    """The operation's output Parameters: the response, and what a reviewer should know."""
    count = len(populated_link_ids(response, vocabulary))
    issues = [
        {
            "severity": "information",
            "code": "informational",
            "diagnostics": f"{count} answers were pre-filled from the chart; review each "
            "before completing the response.",
        }
    ]
    if ignored:
        issues.append(
            {
                "severity": "warning",
                "code": "business-rule",
                "diagnostics": f"{ignored} chart resources not about the subject were ignored.",
            }
        )
    outcome = {"resourceType": "OperationOutcome", "issue": issues}
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "response", "resource": response},
            {"name": "issues", "resource": outcome},
        ],
    }


def requested_questionnaire(
    asked: PopulateRequest, instance: str | None, vocabulary: Vocabulary
) -> tuple[str, tuple[str, int] | None]:
    """(key, pinned version) of the Questionnaire to populate: the ``questionnaire``
    parameter, else the one the ``response`` cites, else the instance's (or the default)."""
    cited = asked.questionnaire or (asked.answered or {}).get("questionnaire")
    if not isinstance(cited, str):
        return instance or DEFAULT_RULE_SET_KEY, None
    url, _, version = cited.partition("|")
    key = url.removeprefix(vocabulary.questionnaire(""))
    pin = parse_business_version(version) if version else None
    mismatch = instance is not None and key != instance
    if not url.startswith(vocabulary.questionnaire("")) or mismatch or (version and pin is None):
        raise _invalid(
            422,
            "The Questionnaire named is not this one, or not a carelevel Questionnaire.",
            "questionnaire (or the response's) must cite this carelevel Questionnaire "
            "(optionally |<version>)",
            "Parameters.parameter.where(name='questionnaire')",
            "not-found",
        )
    return key, pin


def example_result(vocabulary: Vocabulary) -> dict[str, Any]:
    """The API docs' example of the operation's output: a small chart, populated."""
    as_of = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
    chart = chart_of(
        [
            {
                "resourceType": "Patient",
                "id": "1288992",
                "birthDate": "1984-06-02",
                "gender": "male",
            },
            {
                "resourceType": "Observation",
                "id": "hr-20261126",
                "status": "final",
                "subject": {"reference": "Patient/1288992"},
                "code": {"coding": [{"system": LOINC, "code": "8867-4"}]},
                "effectiveDateTime": "2026-11-26T13:40:00Z",
                "valueQuantity": {"value": 104, "unit": "/min", "code": "/min"},
            },
            {
                "resourceType": "Condition",
                "id": "dx-aud",
                "subject": {"reference": "Patient/1288992"},
                "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": "active"}]},
                "code": {
                    "coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F10.20"}]
                },
            },
        ],
        "1288992",
    )
    canonical = f"{vocabulary.questionnaire(DEFAULT_RULE_SET_KEY)}|shared.1"
    response = populate(vocabulary, chart, as_of=as_of, questionnaire=canonical)
    return populate_result(response, 0, vocabulary)
