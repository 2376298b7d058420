"""SDC pre-population: the answers a patient's chart gives carelevel's Questionnaire.

Pure functions, no I/O. ``chart_of`` sorts FHIR R4 resources (Patient, Observation, Condition,
MedicationRequest, MedicationStatement, QuestionnaireResponse) into a ``Chart``;
``CHART_QUERIES`` are the searches (CDS Hooks prefetch syntax) that fetch everything ``populate``
uses; ``populate`` returns an ``in-progress`` QuestionnaireResponse with the answers the chart
gives, each item marked with carelevel's ``answer-source`` extension (POPULATED_FROM) naming its
source resource. An answer already given (``answered``) is never replaced. Only resources about
the patient count: the Patient itself and resources whose ``subject`` or ``patient`` names it.

What the chart answers, and from what:

- ``respondent.age_years`` and ``respondent.age_group``: Patient.birthDate (a full date), as of
  the ``as_of`` date passed in;
- ``respondent.sex_for_scoring``: the US Core birth-sex extension, else Patient.gender (male,
  female, unknown; ``other`` is left to the clinician);
- ``medical.pregnant``: LOINC 82810-3 pregnancy status (LA15173-0 pregnant, LA26683-5 not
  pregnant; SNOMED 77386006 / 60001007), within 30 days;
- vital signs within 24 hours: heart rate 8867-4, systolic 8480-6 and diastolic 8462-4 blood
  pressure (alone or as components of the 85354-9 panel), body temperature 8310-5;
- laboratory results within 7 days: potassium 2823-3 / 6298-4, sodium 2951-2 / 2947-0, glucose
  2345-7, phosphate 2777-1 (mg/dL, divided by 3.1 as the question asks);
- ``co_occurring.*``: active Conditions coded in ICD-10(-CM) (confirmed: known; provisional or
  differential: suspected), and active buprenorphine or methadone (suspected opioid use problem).

Only final, amended or corrected Observations count, dated within their window and not after
``as_of``; entered-in-error, refuted, inactive or resolved resources are ignored, as are values
outside the question's bounds or in units not listed here. A chart never says a problem is
absent, so ``absent`` is never filled. Codes that could not be verified (a LOINC total for
CIWA-Ar or COWS, QTc, RxNorm ingredient codes, SNOMED diagnoses) are left out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from pydantic import ValidationError

from app.engine import DEFAULT_RULE_SET_KEY
from app.fhir.outcome import FhirError, Issue
from app.fhir.questionnaire import parse_business_version
from app.fhir.response import (
    current_canonical,
    given_switches,
    link_ids,
    refuse_deep_items,
    with_current_canonicals,
)
from app.fhir.terminology import LOINC, Vocabulary, choice_system
from app.questionnaire import FormItem, Kind, form

# carelevel's extension on a QuestionnaireResponse.item taken from the chart: its
# valueReference (any resource) names the source. The core questionnaireresponse-author
# extension cannot: it names only a Device, Practitioner, PractitionerRole, Patient,
# RelatedPerson or Organization. The URL is an identifier, the same on every deployment (the
# SMART app and EHR rules match it), so it stays under the original canonical base.
POPULATED_FROM: Final = "https://carelevel.dev/fhir/StructureDefinition/answer-source"
CHART_DISPLAY: Final = "From the chart:"
US_CORE_BIRTH_SEX: Final = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex"
SNOMED: Final = "http://snomed.info/sct"
ICD10_SYSTEMS: Final = frozenset(
    {"http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-10"}
)
CONDITION_CLINICAL: Final = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION: Final = "http://terminology.hl7.org/CodeSystem/condition-ver-status"

VITALS_WINDOW: Final = timedelta(hours=24)
LABS_WINDOW: Final = timedelta(days=7)
PREGNANCY_WINDOW: Final = timedelta(days=30)

PREGNANCY_STATUS = "82810-3"
_PREGNANT = {"LA15173-0": True, "LA26683-5": False, "77386006": True, "60001007": False}
_FINAL_OBSERVATION = frozenset({"final", "amended", "corrected"})
_RESOURCE_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
# A reference to a Patient: relative or absolute, optionally versioned.
_PATIENT_REFERENCE = re.compile(
    r"(?:.*/)?Patient/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?"
)


def _same(value: float) -> float:
    return value


@dataclass(frozen=True, slots=True)
class Measure:
    """A question a measured value answers: its LOINC codes, the units it accepts (each with
    the conversion to the question's unit) and how old the value may be."""

    link_id: str
    codes: frozenset[str]
    units: Mapping[str, Callable[[float], float]]
    window: timedelta


_PER_MINUTE = {"/min": _same, "{beats}/min": _same, "beats/min": _same, "bpm": _same}
_MMHG = {"mm[hg]": _same, "mmhg": _same}
_MMOL_L = {"mmol/l": _same, "meq/l": _same}

MEASURES: Final = (
    Measure("medical.heart_rate_bpm", frozenset({"8867-4"}), _PER_MINUTE, VITALS_WINDOW),
    Measure("medical.systolic_bp_mmhg", frozenset({"8480-6"}), _MMHG, VITALS_WINDOW),
    Measure("medical.diastolic_bp_mmhg", frozenset({"8462-4"}), _MMHG, VITALS_WINDOW),
    Measure(
        "medical.temperature_c",
        frozenset({"8310-5"}),
        {"cel": _same, "[degf]": lambda f: (f - 32) * 5 / 9},
        VITALS_WINDOW,
    ),
    Measure("medical.potassium_mmol_l", frozenset({"2823-3", "6298-4"}), _MMOL_L, LABS_WINDOW),
    Measure("medical.sodium_mmol_l", frozenset({"2951-2", "2947-0"}), _MMOL_L, LABS_WINDOW),
    Measure(
        "medical.glucose_mg_dl",
        frozenset({"2345-7"}),
        {"mg/dl": _same, "mmol/l": lambda mmol: mmol * 18.0},
        LABS_WINDOW,
    ),
    Measure(
        "medical.phosphate_mmol_l",
        frozenset({"2777-1"}),
        {"mg/dl": lambda mg: mg / 3.1},
        LABS_WINDOW,
    ),
)

# ICD-10 categories (three characters, or a code prefix) per co-occurring question. In-remission
# codes of a substance use disorder (F1x.11, F1x.21) are not a current problem and are skipped.
DIAGNOSES: Final[Mapping[str, tuple[str, ...]]] = {
    "co_occurring.depressive": ("F32", "F33", "F34.1"),
    "co_occurring.anxiety": ("F40", "F41"),
    "co_occurring.trauma": ("F43",),
    "co_occurring.bipolar": ("F31",),
    "co_occurring.psychotic": ("F20", "F21", "F22", "F23", "F24", "F25", "F28", "F29"),
    "co_occurring.eating": ("F50",),
    "co_occurring.cognitive": ("F01", "F02", "F03", *(f"F{n}" for n in range(70, 80)), "F84"),
    "co_occurring.substance_use.alcohol": ("F10",),
    "co_occurring.substance_use.opioids": ("F11",),
    "co_occurring.substance_use.cannabis": ("F12",),
    "co_occurring.substance_use.sedatives": ("F13",),
    "co_occurring.substance_use.stimulants": ("F14", "F15"),
    "co_occurring.substance_use.other": ("F16", "F18", "F19"),
}
_IN_REMISSION = re.compile(r"F1[0-9]\.[12]1")

# Medication classes by ingredient name, matched in the medication's text and displays (EHRs
# code clinical drugs, not ingredients, so names are what reliably carries the ingredient).
MOUD_AGONISTS: Final = ("buprenorphine", "methadone")
MOUD_ANTAGONISTS: Final = ("naltrexone",)
BENZODIAZEPINES: Final = (
    "alprazolam",
    "chlordiazepoxide",
    "clobazam",
    "clonazepam",
    "clorazepate",
    "diazepam",
    "estazolam",
    "flurazepam",
    "lorazepam",
    "midazolam",
    "oxazepam",
    "quazepam",
    "temazepam",
    "triazolam",
)
_ACTIVE_MEDICATION = frozenset({"active"})

CHART_QUERIES: Final[dict[str, str]] = {
    "patient": "Patient/{{context.patientId}}",
    "observations": "Observation?patient={{context.patientId}}&code="
    + ",".join(
        f"{LOINC}|{code}"
        for code in (
            PREGNANCY_STATUS,
            "85354-9",
            *sorted(code for measure in MEASURES for code in measure.codes),
        )
    )
    + "&_sort=-date&_count=100",
    "conditions": "Condition?patient={{context.patientId}}"
    "&clinical-status=active,recurrence,relapse",
    "medicationRequests": "MedicationRequest?patient={{context.patientId}}&status=active",
    "medicationStatements": "MedicationStatement?patient={{context.patientId}}&status=active",
}


@dataclass(frozen=True, slots=True)
class Chart:
    """The chart resources ``populate`` reads, by type (anything else is dropped)."""

    patient: dict[str, Any] | None = None
    observations: tuple[dict[str, Any], ...] = ()
    conditions: tuple[dict[str, Any], ...] = ()
    medications: tuple[dict[str, Any], ...] = ()  # MedicationRequest and MedicationStatement
    responses: tuple[dict[str, Any], ...] = ()  # QuestionnaireResponse: kept, not yet used
    ignored: int = 0  # resources not about the patient, dropped

    def medication_names(self) -> tuple[str, ...]:
        """The names (lower case) of the medications in use: for the CDS service's cards."""
        return tuple(_medication_name(m) for m in self.medications if _active_medication(m))

    def on_moud(self) -> bool:
        names = self.medication_names()
        return any(i in n for n in names for i in (*MOUD_AGONISTS, *MOUD_ANTAGONISTS))

    def on_benzodiazepine(self) -> bool:
        return any(i in n for n in self.medication_names() for i in BENZODIAZEPINES)


def _resources(resources: Iterable[Any]) -> Iterator[dict[str, Any]]:
    """Resources, with the entries of any Bundle among them (searchset or collection)."""
    for resource in resources:
        if not isinstance(resource, dict):
            continue
        if resource.get("resourceType") == "Bundle":
            entries = resource.get("entry")
            inner = [e.get("resource") for e in entries or [] if isinstance(e, dict)]
            yield from _resources(inner)
        else:
            yield resource


def names_patient(reference: Any, patient_id: str) -> bool:
    """Whether a Reference.reference names the Patient ``patient_id`` (``Patient/{id}``, an
    absolute or versioned form of it, or the bare id)."""
    if not isinstance(reference, str):
        return False
    matched = _PATIENT_REFERENCE.fullmatch(reference)
    return reference == patient_id or (matched is not None and matched.group(1) == patient_id)


def about_patient(resource: dict[str, Any], patient_id: str) -> bool:
    """Whether a chart resource is about the patient: the Patient with that id, or a resource
    whose ``subject`` (else ``patient``) names it. One naming no one is not: never one
    person's data in another's screening."""
    if resource.get("resourceType") == "Patient":
        return resource.get("id") == patient_id
    holder = resource.get("subject") or resource.get("patient")
    return isinstance(holder, dict) and names_patient(holder.get("reference"), patient_id)


def chart_of(resources: Iterable[Any], patient_id: str) -> Chart:
    """The Chart of the patient ``patient_id`` in ``resources``: Bundles are opened; other
    types and non-objects dropped; resources not about the patient dropped and counted."""
    by_type: dict[str, list[dict[str, Any]]] = {}
    ignored = 0
    for resource in _resources(resources):
        if not about_patient(resource, patient_id):
            ignored += 1
            continue
        by_type.setdefault(str(resource.get("resourceType")), []).append(resource)
    patients = by_type.get("Patient", [])
    return Chart(
        patient=patients[0] if patients else None,
        observations=tuple(by_type.get("Observation", [])),
        conditions=tuple(by_type.get("Condition", [])),
        medications=tuple(
            by_type.get("MedicationRequest", []) + by_type.get("MedicationStatement", [])
        ),
        responses=tuple(by_type.get("QuestionnaireResponse", [])),
        ignored=ignored,
    )


# --- what the chart says --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Found:
    """One answer the chart gives: the FHIR answer and where it came from."""

    link_id: str
    answer: dict[str, Any]
    source: dict[str, Any]  # the resource
    what: str  # e.g. "LOINC 8867-4"
    when: datetime | date | None = None


def _reference(found: Found) -> dict[str, Any]:
    """The marker's Reference: the source resource, and a description a reviewer can read."""
    kind = str(found.source.get("resourceType"))
    when = f" of {found.when.isoformat()}" if found.when is not None else ""
    reference: dict[str, Any] = {"display": f"{CHART_DISPLAY} {kind} {found.what}{when}"}
    identifier = found.source.get("id")
    if isinstance(identifier, str) and _RESOURCE_ID.fullmatch(identifier):
        reference["reference"] = f"{kind}/{identifier}"
    return reference


def _parse_time(value: Any) -> datetime | None:
    """A FHIR dateTime/instant with a time zone; dates and zone-less times are too vague."""
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _observed_at(observation: dict[str, Any]) -> datetime | None:
    period = observation.get("effectivePeriod")
    candidates = (
        observation.get("effectiveDateTime"),
        observation.get("effectiveInstant"),
        period.get("end") or period.get("start") if isinstance(period, dict) else None,
        observation.get("issued"),
    )
    return next((t for t in map(_parse_time, candidates) if t is not None), None)


def _codes(concept: Any, systems: frozenset[str]) -> list[str]:
    if not isinstance(concept, dict):
        return []
    codings = concept.get("coding")
    return [
        c["code"]
        for c in codings or []
        if isinstance(c, dict) and c.get("system") in systems and isinstance(c.get("code"), str)
    ]


def _loinc(concept: Any) -> list[str]:
    return _codes(concept, frozenset({LOINC}))


def _usable(observation: dict[str, Any], as_of: datetime, window: timedelta) -> datetime | None:
    """When a usable observation was made: final (or amended) and within ``window`` of
    ``as_of``; None for anything else."""
    if observation.get("status") not in _FINAL_OBSERVATION:
        return None
    when = _observed_at(observation)
    if when is None or when > as_of or as_of - when > window:
        return None
    return when


def _quantities(observation: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(LOINC code, valueQuantity) of the observation and of each of its components."""
    for part in (observation, *(observation.get("component") or [])):
        if not isinstance(part, dict) or not isinstance(part.get("valueQuantity"), dict):
            continue
        for code in _loinc(part.get("code")):
            yield code, part["valueQuantity"]


def _number(
    quantity: dict[str, Any], units: Mapping[str, Callable[[float], float]]
) -> float | None:
    value = quantity.get("value")
    unit = quantity.get("code") or quantity.get("unit")
    if isinstance(value, bool) or not isinstance(value, int | float) or not isinstance(unit, str):
        return None
    convert = units.get(unit.lower())
    return convert(float(value)) if convert is not None else None


def _answer_number(item: FormItem, value: float) -> dict[str, Any] | None:
    """The answer for ``value`` (rounded as the question's type asks), None out of bounds."""
    rounded: int | float = round(value) if item.kind is Kind.INTEGER else round(value, 1)
    if item.minimum is not None and rounded < item.minimum:
        return None
    if item.maximum is not None and rounded > item.maximum:
        return None
    if item.kind is Kind.INTEGER:
        return {"valueInteger": int(rounded)}
    return {"valueDecimal": float(rounded)}


def _measured(chart: Chart, measure: Measure, as_of: datetime) -> Found | None:
    """The most recent usable value of ``measure``."""
    item = _form_items()[measure.link_id]
    best: Found | None = None
    for observation in chart.observations:
        when = _usable(observation, as_of, measure.window)
        if when is None or (best is not None and best.when is not None and when <= best.when):
            continue
        for code, quantity in _quantities(observation):
            value = _number(quantity, measure.units) if code in measure.codes else None
            answer = _answer_number(item, value) if value is not None else None
            if answer is not None:
                best = Found(measure.link_id, answer, observation, f"LOINC {code}", when)
                break
    return best


def _pregnancy(chart: Chart, as_of: datetime) -> Found | None:
    best: Found | None = None
    for observation in chart.observations:
        if PREGNANCY_STATUS not in _loinc(observation.get("code")):
            continue
        when = _usable(observation, as_of, PREGNANCY_WINDOW)
        if when is None or (best is not None and best.when is not None and when <= best.when):
            continue
        value = observation.get("valueCodeableConcept")
        said = [_PREGNANT[c] for c in _codes(value, frozenset({LOINC, SNOMED})) if c in _PREGNANT]
        if said and len(set(said)) == 1:  # codings that disagree answer nothing
            what = f"LOINC {PREGNANCY_STATUS}"
            best = Found("medical.pregnant", {"valueBoolean": said[0]}, observation, what, when)
    return best


def _birth_date(patient: dict[str, Any]) -> date | None:
    value = patient.get("birthDate")
    if not isinstance(value, str) or len(value) != 10:  # a year or a month is too vague
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _age(patient: dict[str, Any], as_of: date) -> int | None:
    born = _birth_date(patient)
    if born is None or born > as_of:
        return None
    return as_of.year - born.year - ((as_of.month, as_of.day) < (born.month, born.day))


def _respondent(vocabulary: Vocabulary, patient: dict[str, Any], as_of: date) -> list[Found]:
    found: list[Found] = []
    age = _age(patient, as_of)
    if age is not None and 12 <= age <= 120:
        answer = {"valueInteger": age}
        found.append(Found("respondent.age_years", answer, patient, "birthDate"))
        group = "adult" if age >= 18 else "adolescent"
        answer = _coded(vocabulary, "respondent.age_group", group)
        found.append(Found("respondent.age_group", answer, patient, "birthDate"))
    sex = _sex(patient)
    if sex is not None:
        answer = _coded(vocabulary, "respondent.sex_for_scoring", sex[0])
        found.append(Found("respondent.sex_for_scoring", answer, patient, sex[1]))
    return found


_BIRTH_SEX = {"F": "female", "M": "male", "UNK": "unknown"}


def _sex(patient: dict[str, Any]) -> tuple[str, str] | None:
    """(sex for scoring, the element it came from): US Core birth sex, else gender."""
    for extension in patient.get("extension") or []:
        if isinstance(extension, dict) and extension.get("url") == US_CORE_BIRTH_SEX:
            code = _BIRTH_SEX.get(str(extension.get("valueCode")))
            if code is not None:
                return code, "birth sex"
    gender = patient.get("gender")
    if gender in ("female", "male", "unknown"):
        return str(gender), "gender"
    return None


def _coded(vocabulary: Vocabulary, link_id: str, code: str) -> dict[str, Any]:
    choices = _form_items()[link_id].choices
    assert choices is not None
    return {"valueCoding": {"system": choice_system(vocabulary, choices), "code": code}}


def _concept_of(condition: dict[str, Any], systems: str) -> list[str]:
    return _codes(condition.get(systems), frozenset({CONDITION_CLINICAL, CONDITION_VERIFICATION}))


def _condition_certainty(condition: dict[str, Any]) -> str | None:
    """known (confirmed or unstated), suspected (provisional, differential, unconfirmed) or
    None (not active, refuted, entered in error, resolved)."""
    clinical = _concept_of(condition, "clinicalStatus")
    if not clinical or clinical[0] not in ("active", "recurrence", "relapse"):
        return None
    if condition.get("abatementDateTime") or condition.get("abatementPeriod"):
        return None
    verification = _concept_of(condition, "verificationStatus")
    if not verification or verification[0] == "confirmed":
        return "known"
    if verification[0] in ("provisional", "differential", "unconfirmed"):
        return "suspected"
    return None


def _diagnosis_question(code: str) -> str | None:
    if _IN_REMISSION.match(code):
        return None
    return next(
        (link_id for link_id, prefixes in DIAGNOSES.items() if code.startswith(prefixes)), None
    )


def _diagnoses(vocabulary: Vocabulary, chart: Chart) -> dict[str, Found]:
    """The co-occurring questions active Conditions answer (known beats suspected)."""
    found: dict[str, Found] = {}
    for condition in chart.conditions:
        certainty = _condition_certainty(condition)
        if certainty is None:
            continue
        for code in _codes(condition.get("code"), ICD10_SYSTEMS):
            link_id = _diagnosis_question(code)
            if link_id is None or (link_id in found and certainty == "suspected"):
                continue
            answer = _coded(vocabulary, link_id, certainty)
            found[link_id] = Found(link_id, answer, condition, f"ICD-10 {code}")
    return found


def _medication_name(medication: dict[str, Any]) -> str:
    parts: list[str] = []
    concept = medication.get("medicationCodeableConcept")
    if isinstance(concept, dict):
        parts.append(str(concept.get("text") or ""))
        parts.extend(str(c.get("display") or "") for c in concept.get("coding") or [] if c)
    reference = medication.get("medicationReference")
    if isinstance(reference, dict):
        parts.append(str(reference.get("display") or ""))
    return " ".join(parts).lower()


def _active_medication(medication: dict[str, Any]) -> bool:
    return medication.get("status") in _ACTIVE_MEDICATION


def _opioid_treatment(vocabulary: Vocabulary, chart: Chart) -> Found | None:
    """An opioid agonist for opioid use disorder suggests an opioid use problem; both are also
    prescribed for pain, so only ``suspected`` (naltrexone treats alcohol use too: not used)."""
    link_id = "co_occurring.substance_use.opioids"
    for medication in chart.medications:
        name = _medication_name(medication)
        ingredient = next((i for i in MOUD_AGONISTS if i in name), None)
        if _active_medication(medication) and ingredient is not None:
            answer = _coded(vocabulary, link_id, "suspected")
            return Found(link_id, answer, medication, ingredient)
    return None


def chart_answers(vocabulary: Vocabulary, chart: Chart, as_of: datetime) -> dict[str, Found]:
    """Every answer the chart gives, by linkId."""
    found: list[Found] = []
    if isinstance(chart.patient, dict):
        found.extend(_respondent(vocabulary, chart.patient, as_of.date()))
    for measure in MEASURES:
        measured = _measured(chart, measure, as_of)
        if measured is not None:
            found.append(measured)
    pregnancy = _pregnancy(chart, as_of)
    if pregnancy is not None:
        found.append(pregnancy)
    diagnoses = _diagnoses(vocabulary, chart)
    opioids = _opioid_treatment(vocabulary, chart)
    if opioids is not None and opioids.link_id not in diagnoses:
        diagnoses[opioids.link_id] = opioids
    found.extend(diagnoses.values())
    return {answer.link_id: answer for answer in found}


# --- the QuestionnaireResponse ----------------------------------------------------------------


def _form_items() -> dict[str, FormItem]:
    return {item.path: item for top in form() for item in top.walk()}


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
            "extension": [{"url": POPULATED_FROM, "valueReference": _reference(found)}],
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


def _is_chart_marker(extension: Any) -> bool:
    """Whether ``extension`` is the marker ``populate`` puts on an answer from the chart."""
    return isinstance(extension, dict) and extension.get("url") == POPULATED_FROM


def populated_link_ids(response: dict[str, Any]) -> list[str]:
    """The linkIds of ``response`` whose answers carry the chart marker."""
    marked: list[str] = []

    def visit(items: Any) -> None:
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            extensions = item.get("extension") or []
            if any(_is_chart_marker(e) for e in extensions):
                marked.append(str(item.get("linkId")))
            visit(item.get("item"))

    visit(response.get("item"))
    return marked


# --- the $populate operation's Parameters ---------------------------------------------------

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
    matched = _PATIENT_REFERENCE.fullmatch(target) if isinstance(target, str) else None
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
        f"as context gives (each marked with the extension {POPULATED_FROM} naming its "
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


def populate_result(response: dict[str, Any], ignored: int) -> dict[str, Any]:
    """The operation's output Parameters: the response, and what a reviewer should know."""
    count = len(populated_link_ids(response))
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
    return populate_result(response, 0)
