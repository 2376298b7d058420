"""The FHIR R4 Questionnaire, rendered from the same form tree the REST API validates with.

One Questionnaire per rule-set key (``{canonical}/Questionnaire/{key}``); its business
``version`` names the rule-set version that decides the answers (``shared.1``, or
``clinic-a.3`` for a tenant's own rule set), so a QuestionnaireResponse that cites
``url|version`` pins that version. linkIds are the answers' paths (``safety.recent_violence``;
instrument items ``instruments.phq9.items.1``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.engine.instruments import AnswerKind, InstrumentSpec
from app.fhir.terminology import (
    FREQUENCY_ANSWERS,
    FREQUENCY_SCALE_INSTRUMENTS,
    LOINC,
    MAX_VALUE,
    MIN_VALUE,
    NO,
    ORDINAL_VALUE,
    PHQ9_ITEM_CODES,
    YES,
    Vocabulary,
    choice_system,
    humanize,
)
from app.kernel.tenancy import TENANT_PATTERN
from app.questionnaire import FormItem, Kind, form
from app.screenings.schemas import RULE_SET_KEY

_KEY = re.compile(RULE_SET_KEY)
_OWNER = re.compile(TENANT_PATTERN)

DISCLAIMER = (
    "Clinical decision support, not a diagnosis: a qualified clinician reviews every "
    "recommendation."
)


@dataclass(frozen=True, slots=True)
class QuestionnaireVersion:
    """The rule-set version a Questionnaire stands for."""

    owner: str
    key: str
    version: int
    title: str
    status: str  # the rule-set version's: published, active or retired
    date: datetime | None
    sha256: str

    @property
    def business_version(self) -> str:
        return f"{self.owner}.{self.version}"


def is_questionnaire_key(value: str) -> bool:
    """Whether ``value`` can name a Questionnaire: the key of a rule set."""
    return _KEY.fullmatch(value) is not None


def parse_business_version(value: str) -> tuple[str, int] | None:
    """(owner, version) of ``shared.1``; None for anything else."""
    owner, _, number = value.rpartition(".")
    if not _OWNER.fullmatch(owner) or not number.isdigit() or len(number) > 10:
        return None
    return owner, int(number)


def _ordinal(value: float) -> list[dict[str, Any]]:
    return [{"url": ORDINAL_VALUE, "valueDecimal": value}]


def _declined(vocabulary: Vocabulary) -> dict[str, Any]:
    return {
        "valueCoding": {
            "system": vocabulary.item_responses,
            "code": "declined",
            "display": "Declined to answer",
        }
    }


def _yes_no_options(
    vocabulary: Vocabulary, *, scored: bool = False, reverse: bool = False
) -> list[dict[str, Any]]:
    """Yes, no, declined; items of a summed instrument carry their score (a reverse-scored
    item scores its no)."""
    yes: dict[str, Any] = {"valueCoding": {"system": LOINC, "code": YES, "display": "Yes"}}
    no: dict[str, Any] = {"valueCoding": {"system": LOINC, "code": NO, "display": "No"}}
    if scored:
        yes["extension"] = _ordinal(0 if reverse else 1)
        no["extension"] = _ordinal(1 if reverse else 0)
    return [yes, no, _declined(vocabulary)]


def _score_options(
    vocabulary: Vocabulary, spec: InstrumentSpec, values: tuple[int | bool, ...]
) -> list[dict[str, Any]]:
    if spec.id in FREQUENCY_SCALE_INSTRUMENTS:
        options = [
            {
                "valueCoding": {"system": LOINC, "code": code, "display": display},
                "extension": _ordinal(score),
            }
            for code, display, score in FREQUENCY_ANSWERS
            if score in values
        ]
    else:
        options = [
            {
                "valueCoding": {
                    "system": vocabulary.item_scores,
                    "code": str(score),
                    "display": str(score),
                },
                "extension": _ordinal(int(score)),
            }
            for score in values
        ]
    return [*options, _declined(vocabulary)]


def _enable_when(item: FormItem) -> dict[str, Any]:
    if item.asked_when is None:
        return {}
    decider = next(i for top in form() for i in top.walk() if i.path == item.asked_when.path)
    if decider.kind is Kind.BOOLEAN:
        answer: dict[str, Any] = {"answerBoolean": item.asked_when.equals}
    else:  # yes/no/declined: the coded yes (or no)
        answer = {"answerCoding": {"system": LOINC, "code": YES if item.asked_when.equals else NO}}
    return {"enableWhen": [{"question": item.asked_when.path, "operator": "=", **answer}]}


def _instrument_items(vocabulary: Vocabulary, items: FormItem) -> list[dict[str, Any]]:
    spec = items.instrument
    assert spec is not None
    questions = []
    for number, values in enumerate(items.item_values, start=1):
        question: dict[str, Any] = {
            "linkId": f"{items.path}.{number}",
            "prefix": str(number),
            "text": f"{spec.title} item {number}",
            "type": "choice",
            "required": True,
        }
        if spec.id.value in ("phq9", "phq2"):
            question["code"] = [{"system": LOINC, "code": PHQ9_ITEM_CODES[number - 1]}]
        question["answerOption"] = (
            _score_options(vocabulary, spec, values)
            if spec.kind is AnswerKind.ORDINAL
            else _yes_no_options(
                vocabulary, scored=True, reverse=number in spec.reverse_scored_items
            )
        )
        questions.append(question)
    return questions


def _bounds(item: FormItem, value_type: str) -> list[dict[str, Any]]:
    extensions = []
    for url, bound in ((MIN_VALUE, item.minimum), (MAX_VALUE, item.maximum)):
        if bound is not None:
            value = int(bound) if value_type == "valueInteger" else float(bound)
            extensions.append({"url": url, value_type: value})
    return extensions


def _fhir_item(vocabulary: Vocabulary, item: FormItem) -> dict[str, Any]:
    """The Questionnaire item asking ``item`` (a group: with its questions)."""
    base: dict[str, Any] = {"linkId": item.path, "text": item.help or humanize(item.name)}
    base |= _typed(vocabulary, item)
    if item.required:
        base["required"] = True
    return base | _enable_when(item)


def _typed(vocabulary: Vocabulary, item: FormItem) -> dict[str, Any]:
    """The item's type, with what goes with it: the items of a group, the bounds of a number,
    the answer options of a choice."""
    if item.kind is Kind.GROUP:
        return _group(vocabulary, item)
    if item.kind is Kind.ITEMS:  # items asked only on a condition (PC-PTSD-5): their own group
        return {"type": "group", "item": _instrument_items(vocabulary, item)}
    if item.kind is Kind.BOOLEAN:
        return {"type": "boolean"}
    if item.kind is Kind.INTEGER:
        return _bounded("integer", _bounds(item, "valueInteger"))
    if item.kind is Kind.NUMBER:
        return _bounded("decimal", _bounds(item, "valueDecimal"))
    if item.kind is Kind.YES_NO_OR_DECLINED:
        return {"type": "choice", "answerOption": _yes_no_options(vocabulary)}
    return _choice(vocabulary, item)  # CHOICE, MULTIPLE_CHOICE


def _group(vocabulary: Vocabulary, item: FormItem) -> dict[str, Any]:
    """A section, or an instrument whose items are asked in place."""
    group: dict[str, Any] = {"type": "group"}
    if item.instrument is not None and item.instrument.loinc_panel:
        group["code"] = [{"system": LOINC, "code": item.instrument.loinc_panel}]
    children: list[dict[str, Any]] = []
    for child in item.children:
        if child.kind is Kind.ITEMS and child.asked_when is None:
            children.extend(_instrument_items(vocabulary, child))
        else:
            children.append(_fhir_item(vocabulary, child))
    group["item"] = children
    return group


def _bounded(fhir_type: str, extensions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": fhir_type, "extension": extensions} if extensions else {"type": fhir_type}


def _choice(vocabulary: Vocabulary, item: FormItem) -> dict[str, Any]:
    """One answer of the item's choices, or several (then also "None of these")."""
    assert item.choices is not None
    system = choice_system(vocabulary, item.choices)
    options: list[dict[str, Any]] = [
        {"valueCoding": {"system": system, "code": m.value, "display": humanize(m.value)}}
        for m in item.choices
    ]
    if item.kind is not Kind.MULTIPLE_CHOICE:
        return {"type": "choice", "answerOption": options}
    options.append(
        {
            "valueCoding": {
                "system": vocabulary.code_system("answer-special"),
                "code": "none",
                "display": "None of these",
            }
        }
    )
    return {"type": "choice", "repeats": True, "answerOption": options}


def build_questionnaire(vocabulary: Vocabulary, version: QuestionnaireVersion) -> dict[str, Any]:
    """The Questionnaire for ``version``: every question of the answers model."""
    status = "retired" if version.status == "retired" else "active"
    resource: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "id": version.key,
        "meta": {"versionId": version.business_version},
        "url": vocabulary.questionnaire(version.key),
        "version": version.business_version,
        "name": "".join(part.capitalize() for part in version.key.split("-")),
        "title": version.title,
        "status": status,
        "subjectType": ["Patient"],
        "publisher": "carelevel",
        "description": (
            f"Level-of-care screening decided by rule set {version.owner}/{version.key} "
            f"version {version.version} (sha256 {version.sha256}). Leave out what was not "
            "asked; an instrument item left unanswered counts as declined. " + DISCLAIMER
        ),
        "copyright": "PHQ-9, PHQ-2 and GAD-7: Pfizer, no permission required. AUDIT and "
        "AUDIT-C: WHO. DAST-10: H. Skinner (confirm terms before commercial use). C-SSRS: "
        "Columbia Lighthouse Project. PC-PTSD-5: US VA National Center for PTSD.",
        "item": [_fhir_item(vocabulary, item) for item in form()],
    }
    if version.date is not None:
        resource["date"] = version.date.isoformat()
    return resource
