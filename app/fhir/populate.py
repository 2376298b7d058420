"""SDC pre-population: an in-progress QuestionnaireResponse with the answers a patient's chart
gives carelevel's Questionnaire.

Pure functions, no I/O. ``populate`` returns an ``in-progress`` QuestionnaireResponse with the
answers ``chart_answers`` finds in a ``Chart`` (app/fhir/chart.py), each item marked with
carelevel's ``answer-source`` extension (``Vocabulary.answer_source``) naming its source
resource. An answer already given (``answered``) is never replaced. ``populated_link_ids`` reads
the marker back; ``answer_source_definition`` is the extension's StructureDefinition.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from app.engine import DEFAULT_RULE_SET_KEY
from app.fhir.chart import Chart, Found, chart_answers
from app.fhir.response import given_switches, link_ids
from app.fhir.terminology import FHIR_VERSION, Vocabulary
from app.kernel.settings import LEGACY_FHIR_CANONICAL_BASE
from app.questionnaire import FormItem, Kind, form

# carelevel's extension on a QuestionnaireResponse.item taken from the chart: its
# valueReference (any resource) names the source. The core questionnaireresponse-author
# extension cannot: it names only a Device, Practitioner, PractitionerRole, Patient,
# RelatedPerson or Organization. Its URL is under the canonical base (Vocabulary.answer_source),
# where its StructureDefinition is served; the one under the former base is still read.
LEGACY_POPULATED_FROM: Final = f"{LEGACY_FHIR_CANONICAL_BASE}/StructureDefinition/answer-source"
CHART_DISPLAY: Final = "From the chart:"
_RESOURCE_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def _reference(found: Found) -> dict[str, Any]:
    """The marker's Reference: the source resource, and a description a reviewer can read."""
    kind = str(found.source.get("resourceType"))
    when = f" of {found.when.isoformat()}" if found.when is not None else ""
    reference: dict[str, Any] = {"display": f"{CHART_DISPLAY} {kind} {found.what}{when}"}
    identifier = found.source.get("id")
    if isinstance(identifier, str) and _RESOURCE_ID.fullmatch(identifier):
        reference["reference"] = f"{kind}/{identifier}"
    return reference


@dataclass
class _Answered:
    """The items of a partly answered response, by linkId, and those not in the form."""

    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    others: list[dict[str, Any]] = field(default_factory=list)


def _flatten(items: Any, questions: set[str], groups: frozenset[str], into: _Answered) -> None:
    """Collect the answered questions of ``items`` at any depth into ``into`` (our groups are
    rebuilt around them; anything else is kept as sent, for ``$evaluate`` to judge)."""
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        link_id = item.get("linkId")
        if not isinstance(link_id, str):
            into.others.append(item)
        elif link_id in groups and not item.get("answer"):
            _flatten(item.get("item"), questions, groups, into)
        elif link_id in questions and link_id not in into.items:
            into.items[link_id] = item
        else:
            into.others.append(item)


def _tree(link_ids: list[tuple[str, str | None]], items: dict[str, dict[str, Any]]) -> list[Any]:
    """The answered items nested as the Questionnaire nests them (``link_ids``: every linkId
    in questionnaire order, with its parent's)."""
    children: dict[str | None, list[dict[str, Any]]] = {}
    for link_id, parent in reversed(link_ids):
        nested = children.pop(link_id, [])
        if link_id in items:
            children.setdefault(parent, []).insert(0, items[link_id])
        elif nested:
            children.setdefault(parent, []).insert(0, {"linkId": link_id, "item": nested})
    return children.get(None, [])


def _questionnaire_link_ids() -> list[tuple[str, str | None]]:
    """(linkId, parent linkId) of every item of the Questionnaire, in its order."""
    questions, groups = link_ids()
    switches = {path: link_id for link_id, path in given_switches().items()}
    ordered: list[tuple[str, str | None]] = []

    def visit(item: FormItem, parent: str | None) -> None:
        if item.path in switches:
            ordered.append((switches[item.path], parent))
        ordered.append((item.path, parent))
        if item.kind is Kind.ITEMS:
            count = sum(1 for q in questions.values() if q.item.path == item.path)
            ordered.extend((f"{item.path}.{n}", item.path) for n in range(1, count + 1))
        for child in item.children:
            visit(child, item.path)

    for top in form():
        visit(top, None)
    known = {link_id for link_id, _ in ordered}
    assert known >= set(questions) | groups
    return ordered


def populate(
    vocabulary: Vocabulary,
    chart: Chart,
    *,
    as_of: datetime,
    answered: dict[str, Any] | None = None,
    questionnaire: str | None = None,
) -> dict[str, Any]:
    """An ``in-progress`` QuestionnaireResponse: ``answered``'s answers, kept as given, and
    the chart's answers to every other question it can answer, each marked with its source.

    ``as_of`` (timezone-aware) dates the age and the look-back windows; ``questionnaire`` is
    the canonical to cite (default: the shared rule set's Questionnaire, or ``answered``'s).
    """
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    order = _questionnaire_link_ids()
    groups = link_ids()[1]
    given = _Answered()
    base = dict(answered) if isinstance(answered, dict) else {}
    questions = {link_id for link_id, _ in order} - groups
    _flatten(base.get("item"), questions, groups, given)
    items = dict(given.items)
    for link_id, found in chart_answers(vocabulary, chart, as_of).items():
        if link_id in items and items[link_id].get("answer"):
            continue  # never override an answer already given
        items[link_id] = {
            "extension": [{"url": vocabulary.answer_source, "valueReference": _reference(found)}],
            "linkId": link_id,
            "answer": [found.answer],
        }
    response: dict[str, Any] = {"resourceType": "QuestionnaireResponse", **base}
    response["questionnaire"] = (
        questionnaire or base.get("questionnaire") or vocabulary.questionnaire(DEFAULT_RULE_SET_KEY)
    )
    response["status"] = "in-progress"
    if "subject" not in response and isinstance(chart.patient, dict):
        patient_id = chart.patient.get("id")
        if isinstance(patient_id, str) and _RESOURCE_ID.fullmatch(patient_id):
            response["subject"] = {"reference": f"Patient/{patient_id}"}
    response["authored"] = response.get("authored") or as_of.isoformat()
    response["item"] = _tree(order, items) + given.others
    if not response["item"]:
        del response["item"]
    return response


def populated_link_ids(response: dict[str, Any], vocabulary: Vocabulary) -> list[str]:
    """The linkIds of ``response`` whose answers carry the chart marker (its URL under the
    canonical base, or under the former one)."""
    markers = {vocabulary.answer_source, LEGACY_POPULATED_FROM}
    marked: list[str] = []

    def visit(items: Any) -> None:
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            extensions = item.get("extension") or []
            if any(isinstance(e, dict) and e.get("url") in markers for e in extensions):
                marked.append(str(item.get("linkId")))
            visit(item.get("item"))

    visit(response.get("item"))
    return marked


def answer_source_definition(vocabulary: Vocabulary) -> dict[str, Any]:
    """The StructureDefinition of the marker: an R4 extension on QuestionnaireResponse.item
    whose valueReference names the chart resource the answer was taken from."""
    url = vocabulary.answer_source
    return {
        "resourceType": "StructureDefinition",
        "id": "answer-source",
        "url": url,
        "name": "AnswerSource",
        "title": "Answer taken from the chart",
        "status": "active",
        "publisher": "carelevel",
        "description": "Marks an item of a QuestionnaireResponse whose answer carelevel's "
        "$populate took from the patient's chart, and names the chart resource it was taken "
        "from (an Observation, Condition, MedicationRequest, MedicationStatement or the "
        "Patient), with a description a reviewer can read. A clinician reviews every answer "
        "so marked before the response is completed.",
        "purpose": "The core questionnaireresponse-author extension may reference only a "
        "Device, Practitioner, PractitionerRole, Patient, RelatedPerson or Organization, and no "
        "R4 core or SDC extension records the resource an answer came from.",
        "fhirVersion": FHIR_VERSION,
        "kind": "complex-type",
        "abstract": False,
        "context": [{"type": "element", "expression": "QuestionnaireResponse.item"}],
        "type": "Extension",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Extension",
        "derivation": "constraint",
        "differential": {
            "element": [
                {
                    "id": "Extension",
                    "path": "Extension",
                    "short": "The chart resource this answer was taken from",
                    "definition": "The resource of the patient's chart that gave the item's "
                    "answer; its display says what was read and when it was recorded.",
                    "max": "1",
                },
                {"id": "Extension.extension", "path": "Extension.extension", "max": "0"},
                {"id": "Extension.url", "path": "Extension.url", "fixedUri": url},
                {
                    "id": "Extension.value[x]",
                    "path": "Extension.value[x]",
                    "min": 1,
                    "type": [
                        {
                            "code": "Reference",
                            "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Resource"],
                        }
                    ],
                },
            ]
        },
    }
