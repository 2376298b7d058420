"""carelevel's FHIR vocabulary: canonical URLs, its own code systems and value sets, and the
standard codes (LOINC) its resources carry.

Our code systems reuse the API's own values as codes (``intensive_outpatient``), so a level
reads the same in JSON and in FHIR. They are generated from the engine's enumerations, and each
is served as a CodeSystem resource (and the level and IOP-verdict ones as ValueSets too) at the
canonical URL's path under ``/fhir/r4``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any, Final

from app import __version__
from app.engine.determination import (
    LEVEL_INFO,
    IopVerdict,
    LevelOfCare,
    Status,
    Urgency,
)
from app.engine.instruments import ASQ_RESULTS, CssrsTier
from app.engine.programs import (
    CoOccurringCapability,
    Modality,
    Population,
    ProgramService,
    Specialty,
)
from app.questionnaire import form_items
from app.screenings.schemas import VarianceReason

FHIR_VERSION: Final = "4.0.1"
FHIR_JSON: Final = "application/fhir+json"
LOINC: Final = "http://loinc.org"
SNOMED: Final = "http://snomed.info/sct"
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
DATA_ABSENT_REASON: Final = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
ORDINAL_VALUE: Final = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
MIN_VALUE: Final = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE: Final = "http://hl7.org/fhir/StructureDefinition/maxValue"
UCUM: Final = "http://unitsofmeasure.org"

# LOINC answers yes and no (instrument answers: app/engine/instrument_content.py).
YES, NO = "LA33-6", "LA32-8"
TRANSLATION: Final = "http://hl7.org/fhir/StructureDefinition/translation"
OPTION_EXCLUSIVE: Final = "http://hl7.org/fhir/StructureDefinition/questionnaire-optionExclusive"
LOINC_NOTICE: Final = (
    "This material contains content from LOINC (http://loinc.org). LOINC is copyright © "
    "1995-2026, Regenstrief Institute, Inc. and the Logical Observation Identifiers Names and "
    "Codes (LOINC) Committee and is available at no cost under the license at "
    "http://loinc.org/license."
)


def kebab(name: str) -> str:
    """``ConditionStatus`` → ``condition-status``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def humanize(code: str) -> str:
    return code.replace("_", " ").capitalize()


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """Where carelevel's FHIR identifiers live (``base`` is the canonical URL prefix)."""

    base: str

    def code_system(self, name: str) -> str:
        return f"{self.base}/CodeSystem/{name}"

    def value_set(self, name: str) -> str:
        return f"{self.base}/ValueSet/{name}"

    def questionnaire(self, key: str) -> str:
        return f"{self.base}/Questionnaire/{key}"

    @property
    def levels(self) -> str:
        return self.code_system("level-of-care")

    @property
    def verdicts(self) -> str:
        return self.code_system("iop-verdict")

    @property
    def observations(self) -> str:
        """Codes of what carelevel observes (the recommendation, and its components)."""
        return self.code_system("observation")

    @property
    def item_responses(self) -> str:
        return self.code_system("item-response")

    @property
    def item_scores(self) -> str:
        return self.code_system("item-score")

    @property
    def screening_identifier(self) -> str:
        return f"{self.base}/NamingSystem/screening-id"

    @property
    def result_identifier(self) -> str:
        """The system of every result resource's identifier (its carelevel id), which an EHR
        files it under and finds it by again."""
        return f"{self.base}/NamingSystem/result-id"

    @property
    def answer_source(self) -> str:
        """The extension marking an answer taken from the chart (app/fhir/populate.py)."""
        return f"{self.base}/StructureDefinition/answer-source"

    def level_coding(self, level: LevelOfCare) -> dict[str, str]:
        return {"system": self.levels, "code": level.value, "display": LEVEL_INFO[level].label}

    def program_coding(self, value: StrEnum) -> dict[str, str]:
        """A program's population, specialty, service, … in its code system."""
        system = self.code_system(PROGRAM_SYSTEMS[type(value)][0])
        return {"system": system, "code": value.value, "display": program_display(value.value)}


# SNOMED CT referrals (procedure hierarchy) beside our level code on the ServiceRequest. Each id
# was checked against the VSAC expansions of the eCQM value sets "Referral for Adult Depression"
# (2.16.840.1.113883.3.526.3.1571) and "Referral" (…101.12.1046). SNOMED has no concept for an
# intensive outpatient, partial hospitalization or residential program that could be confirmed:
# those levels get the broader "Referral to mental health team", a coarser coding of the same
# request (FHIR allows codings of different granularity in one CodeableConcept), and the level
# Observation's value keeps our code alone.
_MENTAL_HEALTH_TEAM: Final = ("390866009", "Referral to mental health team (procedure)")
SNOMED_REFERRALS: Final[dict[LevelOfCare, tuple[str, str]]] = dict.fromkeys(
    LevelOfCare, _MENTAL_HEALTH_TEAM
) | {LevelOfCare.EMERGENCY_EVALUATION: ("183866009", "Referral to emergency clinic (procedure)")}
SNOMED_NOTICE: Final = (
    "This material includes SNOMED Clinical Terms® (SNOMED CT®), used by permission of SNOMED "
    "International. All rights reserved. SNOMED CT® was originally created by the College of "
    "American Pathologists. Use of SNOMED CT requires an Affiliate Licence (free of charge in "
    "SNOMED International member countries)."
)


def referral_coding(level: LevelOfCare) -> dict[str, str]:
    """The SNOMED CT referral procedure for a level of care."""
    code, display = SNOMED_REFERRALS[level]
    return {"system": SNOMED, "code": code, "display": display}


@dataclass(frozen=True, slots=True)
class CodeSystemSpec:
    id: str
    title: str
    description: str
    concepts: tuple[tuple[str, str, str | None], ...]  # (code, display, definition)
    value_set: bool = False


def _enumeration(enum: type[StrEnum], description: str) -> CodeSystemSpec:
    return CodeSystemSpec(
        id=kebab(enum.__name__),
        title=humanize(kebab(enum.__name__).replace("-", "_")),
        description=description,
        concepts=tuple((m.value, humanize(m.value), None) for m in enum),
    )


_OBSERVATION_CODES = (
    (
        "level-of-care-recommendation",
        "Recommended level of care (screening)",
        "The level of care a carelevel rule set recommends from a screening's answers; "
        "clinical decision support, not a diagnosis.",
    ),
    ("iop-verdict", "Intensive outpatient program suitability", None),
    ("urgency", "Urgency of clinical follow-up", None),
    ("determination-status", "Completeness of the screening's determination", None),
    ("ciwa-ar-total", "CIWA-Ar total (clinician-rated alcohol withdrawal)", None),
    ("cows-total", "COWS total (clinician-rated opioid withdrawal)", None),
    ("cssrs-tier", "C-SSRS screener triage tier", None),
    ("asq-result", "ASQ suicide-risk screen result", None),
)


# What a program of the directory says of itself (app/engine/programs.py), as the
# HealthcareService codes it (app/fhir/healthcare_service.py): one code system each, by id.
PROGRAM_SYSTEMS: Final[dict[type[StrEnum], tuple[str, str, str]]] = {
    Population: ("program-population", "Program population", "Who a treatment program admits."),
    Specialty: ("program-specialty", "Program specialty", "What a treatment program treats."),
    CoOccurringCapability: (
        "co-occurring-capability",
        "Co-occurring capability",
        "How a treatment program treats co-occurring substance use and mental health "
        "conditions: none, capable (screens for and treats both), enhanced (psychiatric staff, "
        "integrated treatment of serious conditions).",
    ),
    ProgramService: (
        "program-service",
        "Program service",
        "Services a treatment program provides that a screening's conditions may ask for.",
    ),
    Modality: ("program-modality", "Program modality", "How a treatment program holds sessions."),
}
# Displays that humanize() would spell badly.
PROGRAM_DISPLAYS: Final = {
    "moud": "Medication for opioid use disorder (MOUD)",
    "moud_in_pregnancy": "MOUD in pregnancy",
    "family_based_treatment": "Family-based treatment",
    "older_adult": "Older adult (65 and over)",
}


def program_display(code: str) -> str:
    return PROGRAM_DISPLAYS.get(code) or humanize(code)


def _program_system(enum: type[StrEnum]) -> CodeSystemSpec:
    identifier, title, description = PROGRAM_SYSTEMS[enum]
    concepts = tuple((m.value, program_display(m.value), None) for m in enum)
    return CodeSystemSpec(identifier, title, description, concepts)


@cache
def code_systems() -> dict[str, CodeSystemSpec]:
    """Every code system carelevel defines, by id."""
    specs = [
        CodeSystemSpec(
            id="level-of-care",
            title="Level of care",
            description="Levels of care a carelevel screening can recommend, in ascending "
            "intensity. The 'aligned with' level numbers are nomenclature only.",
            concepts=tuple(
                (level.value, LEVEL_INFO[level].label, LEVEL_INFO[level].aligned_with)
                for level in LevelOfCare
            ),
            value_set=True,
        ),
        CodeSystemSpec(
            id="iop-verdict",
            title="IOP verdict",
            description="Whether an intensive outpatient program (IOP) fits the person screened.",
            concepts=tuple((v.value, humanize(v.value), None) for v in IopVerdict),
            value_set=True,
        ),
        CodeSystemSpec(
            id="urgency",
            title="Urgency",
            description="How soon a clinician must act on a screening, separate from the level.",
            concepts=tuple((u.value, humanize(u.value), None) for u in Urgency),
        ),
        CodeSystemSpec(
            id="determination-status",
            title="Determination status",
            description="Complete, partial (information that could change the result is "
            "missing) or insufficient information (no level recommended).",
            concepts=tuple((s.value, humanize(s.value), None) for s in Status),
        ),
        CodeSystemSpec(
            id="observation",
            title="carelevel observations",
            description="What carelevel reports about a screening.",
            concepts=_OBSERVATION_CODES,
        ),
        CodeSystemSpec(
            id="cssrs-tier",
            title="C-SSRS triage tier",
            description="The triage tier of the C-SSRS screener, as scored by carelevel.",
            concepts=tuple((t.value, humanize(t.value), None) for t in CssrsTier),
        ),
        CodeSystemSpec(
            id="asq-result",
            title="ASQ result",
            description="The result of the NIMH Ask Suicide-Screening Questions: negative, "
            "non-acute positive or acute positive (item 5 yes).",
            concepts=tuple((r, humanize(r), None) for r in ASQ_RESULTS),
        ),
        CodeSystemSpec(
            id="item-response",
            title="Item responses",
            description="Answers to an instrument item other than a score.",
            concepts=(("declined", "Declined to answer", "The person declined this item."),),
        ),
        CodeSystemSpec(
            id="item-score",
            title="Item scores",
            description="The score of an instrument item answered on a numeric scale.",
            concepts=tuple((str(n), str(n), None) for n in range(5)),
        ),
        CodeSystemSpec(
            id="answer-special",
            title="Special answers",
            description="Answers to a multiple-choice question that are not one of its options.",
            concepts=(("none", "None of these", "None of the options applies."),),
        ),
        CodeSystemSpec(
            id="variance-reason",
            title="Variance reasons",
            description="Why a clinician's level of care differs from the recommendation.",
            concepts=tuple((r.value, humanize(r.value), None) for r in VarianceReason),
        ),
    ]
    specs += [_program_system(enum) for enum in PROGRAM_SYSTEMS]
    seen: set[type[StrEnum]] = set()
    for item in form_items().values():
        if item.choices is not None and item.choices not in seen:
            seen.add(item.choices)
            specs.append(
                _enumeration(item.choices, f"Answers to '{item.path}' and questions like it.")
            )
    return {spec.id: spec for spec in specs}


def choice_system(vocabulary: Vocabulary, enum: type[StrEnum]) -> str:
    return vocabulary.code_system(kebab(enum.__name__))


def code_system_resource(vocabulary: Vocabulary, spec: CodeSystemSpec) -> dict[str, Any]:
    """A CodeSystem resource (complete content)."""
    return {
        "resourceType": "CodeSystem",
        "id": spec.id,
        "url": vocabulary.code_system(spec.id),
        "version": __version__,
        "name": "".join(part.capitalize() for part in spec.id.split("-")),
        "title": spec.title,
        "status": "active",
        "experimental": False,
        "publisher": "carelevel",
        "description": spec.description,
        "caseSensitive": True,
        "content": "complete",
        "count": len(spec.concepts),
        "concept": [
            {"code": code, "display": display} | ({"definition": definition} if definition else {})
            for code, display, definition in spec.concepts
        ],
    }


def value_set_resource(vocabulary: Vocabulary, spec: CodeSystemSpec) -> dict[str, Any]:
    """A ValueSet of every code of a code system."""
    return {
        "resourceType": "ValueSet",
        "id": spec.id,
        "url": vocabulary.value_set(spec.id),
        "version": __version__,
        "name": "".join(part.capitalize() for part in spec.id.split("-")),
        "title": spec.title,
        "status": "active",
        "experimental": False,
        "publisher": "carelevel",
        "description": spec.description,
        "compose": {"include": [{"system": vocabulary.code_system(spec.id)}]},
    }
