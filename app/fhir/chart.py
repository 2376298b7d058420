"""The patient's chart, read for SDC pre-population: what it answers carelevel's Questionnaire.

Pure functions, no I/O. ``chart_of`` sorts FHIR R4 resources (Patient, Observation, Condition,
MedicationRequest, MedicationStatement, QuestionnaireResponse) into a ``Chart``;
``CHART_QUERIES`` are the searches (CDS Hooks prefetch syntax) that fetch everything
``chart_answers`` uses; ``chart_answers`` says what the chart answers, each answer with its
source resource (app/fhir/populate.py puts them in a QuestionnaireResponse). Only resources
about the patient count: the Patient itself and resources whose ``subject`` or ``patient``
names it.

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
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

from app.fhir.terminology import LOINC, Vocabulary, choice_system
from app.questionnaire import FormItem, Kind, form

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
# A reference to a Patient: relative or absolute, optionally versioned.
PATIENT_REFERENCE = re.compile(
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
    matched = PATIENT_REFERENCE.fullmatch(reference)
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


def _form_items() -> dict[str, FormItem]:
    return {item.path: item for top in form() for item in top.walk()}
