"""The FHIR R4 Questionnaire, rendered from the same form tree the REST API validates with.

One Questionnaire per rule-set key (``{canonical}/Questionnaire/{key}``); its business
``version`` names the rule-set version that decides the answers (``shared.1``, or
``clinic-a.3`` for a tenant's own rule set), so a QuestionnaireResponse that cites
``url|version`` pins that version. linkIds are the answers' paths (``safety.recent_violence``;
instrument items ``instruments.phq9.items.1``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any

from app.engine.instrument_content import (
    CONTENT,
    ENGLISH,
    SPANISH,
    ItemContent,
    Text,
    item_content,
)
from app.engine.instruments import CRAFFT_PART_A, SPECS, AnswerKind, InstrumentId
from app.fhir.terminology import (
    LOINC,
    LOINC_NOTICE,
    MAX_VALUE,
    MIN_VALUE,
    NO,
    OPTION_EXCLUSIVE,
    ORDINAL_VALUE,
    TRANSLATION,
    YES,
    Vocabulary,
    choice_system,
    humanize,
)
from app.kernel.tenancy import TENANT_PATTERN
from app.questionnaire import DECLINED_LABEL, FormItem, Kind, form, form_items, named_content
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


def translated(english: str, text: Text | None) -> dict[str, Any]:
    """``english``, with the FHIR translation extension for every other language ``text`` has:
    the fields to merge into an element whose ``text`` (or ``display``) this is."""
    if not text:
        return {}
    extensions = [
        {
            "url": TRANSLATION,
            "extension": [
                {"url": "lang", "valueCode": language},
                {"url": "content", "valueString": value},
            ],
        }
        for language, value in text.items()
        if language != ENGLISH
    ]
    return {"extension": extensions} if extensions else {}


def _coding(system: str, code: str, display: Text) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code, "display": display[ENGLISH]}
    translations = translated(display[ENGLISH], display)
    if translations:
        coding["_display"] = translations
    return coding


def _declined(vocabulary: Vocabulary) -> dict[str, Any]:
    return {"valueCoding": _coding(vocabulary.item_responses, "declined", DECLINED_LABEL)}


def _yes_no_options(
    vocabulary: Vocabulary, *, scored: bool = False, reverse: bool = False
) -> list[dict[str, Any]]:
    """Yes, no, declined; items of a summed instrument carry their score (a reverse-scored
    item scores its no)."""
    yes: dict[str, Any] = {"valueCoding": _coding(LOINC, YES, {ENGLISH: "Yes", SPANISH: "Sí"})}
    no: dict[str, Any] = {"valueCoding": _coding(LOINC, NO, {ENGLISH: "No", SPANISH: "No"})}
    if scored:
        yes["extension"] = _ordinal(0 if reverse else 1)
        no["extension"] = _ordinal(1 if reverse else 0)
    return [yes, no, _declined(vocabulary)]


def _score_options(vocabulary: Vocabulary, described: ItemContent) -> list[dict[str, Any]]:
    """An ordinal item's answers: their LOINC codes and labels, each with its score."""
    options = []
    for option in described.options:
        coding = (
            _coding(LOINC, option.loinc, option.label)
            if option.loinc
            else _coding(vocabulary.item_scores, str(option.value), option.label)
        )
        options.append({"valueCoding": coding, "extension": _ordinal(int(option.value))})
    return [*options, _declined(vocabulary)]


def _enable_when(item: FormItem) -> dict[str, Any]:
    if item.asked_when is None:
        return {}
    if item.asked_when.any_item:  # ASQ item 5: after a yes to any of the items of a list
        decider = form_items()[item.asked_when.path]
        yes = {"system": LOINC, "code": YES if item.asked_when.equals else NO}
        return _enabled_by_any(
            {"question": f"{decider.path}.{number}", "operator": "=", "answerCoding": yes}
            for number in range(1, len(decider.item_values) + 1)
        )
    decider = next(i for top in form() for i in top.walk() if i.path == item.asked_when.path)
    if decider.kind is Kind.BOOLEAN:
        answer: dict[str, Any] = {"answerBoolean": item.asked_when.equals}
    else:  # yes/no/declined: the coded yes (or no)
        answer = {"answerCoding": {"system": LOINC, "code": YES if item.asked_when.equals else NO}}
    return {"enableWhen": [{"question": item.asked_when.path, "operator": "=", **answer}]}


def _enabled_by_any(conditions: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {"enableWhen": list(conditions), "enableBehavior": "any"}


def _crafft_part_b(number: int) -> dict[str, Any]:
    """CRAFFT 2.1 Part B beyond CAR is skipped only when Part A reports no use: asked when any
    Part A answer is above 0 or left unanswered (every one answered 0 skips it)."""
    if number == 1:
        return {}
    questions = [f"instruments.crafft.{name}" for name in CRAFFT_PART_A]
    return _enabled_by_any(
        [
            *({"question": q, "operator": ">", "answerInteger": 0} for q in questions),
            *({"question": q, "operator": "exists", "answerBoolean": False} for q in questions),
        ]
    )


def given_link_id(instrument_path: str) -> str:
    """The linkId of the question saying whether an instrument was given."""
    return f"{instrument_path}.given"


def _given_switch(item: FormItem) -> dict[str, Any]:
    """Whether the instrument ``item`` was given: its items are asked (and required) only then,
    so a form completes without the instruments the person was never given."""
    assert item.instrument is not None
    return {
        "linkId": given_link_id(item.path),
        "text": f"{item.instrument.title} was given",
        "type": "boolean",
    }


def _instrument_text(described: ItemContent) -> dict[str, Any]:
    """An item's wording where its licence lets carelevel show it, else its topic (marked)."""
    if described.wording is None:
        return {
            "text": f"{described.topic} (topic only: ask the item as your licensed copy words it)"
        }
    english = described.wording[ENGLISH]
    translations = translated(english, described.wording)
    return {"text": english} | ({"_text": translations} if translations else {})


def _instrument_items(vocabulary: Vocabulary, items: FormItem) -> list[dict[str, Any]]:
    spec = items.instrument
    assert spec is not None
    questions = []
    for number in range(1, len(items.item_values) + 1):
        described = item_content(spec.id, number)
        question: dict[str, Any] = {"linkId": f"{items.path}.{number}", "prefix": str(number)}
        question |= _instrument_text(described)
        question |= {"type": "choice", "required": True}
        if described.loinc:
            question["code"] = [
                {"system": LOINC, "code": described.loinc, "display": described.topic}
            ]
        question["answerOption"] = (
            _score_options(vocabulary, described)
            if spec.kind is AnswerKind.ORDINAL
            else _yes_no_options(
                vocabulary,
                scored=spec.kind is AnswerKind.YES_NO,  # the ASQ's items are not summed
                reverse=number in spec.reverse_scored_items,
            )
        )
        if spec.id is InstrumentId.CRAFFT:
            question |= _crafft_part_b(number)
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
    described = named_content(item)
    if described is not None:  # a named question of an instrument (C-SSRS, PC-PTSD-5)
        base |= _instrument_text(described)
        if described.loinc:
            base["code"] = [{"system": LOINC, "code": described.loinc, "display": described.topic}]
    base |= _typed(vocabulary, item)
    # A group is required through its required questions: renderers (LHC-Forms) would
    # otherwise ask for a value of the group itself.
    if item.required and item.kind is not Kind.GROUP:
        base["required"] = True
    if item.instrument is not None and item.kind is Kind.GROUP and _is_instrument(item):
        base["enableWhen"] = [
            {"question": given_link_id(item.path), "operator": "=", "answerBoolean": True}
        ]
        return base
    return base | _enable_when(item)


def _is_instrument(item: FormItem) -> bool:
    """Whether ``item`` is one of the optional instruments (a group of ``instruments``)."""
    return item.path.startswith("instruments.") and item.path.count(".") == 1


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
            continue
        if _is_instrument(child):
            children.append(_given_switch(child))
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
    if item.at_least_one:  # "none of these" is not an answer to it
        return {"type": "choice", "repeats": True, "answerOption": options}
    options.append(
        {
            "valueCoding": {
                "system": vocabulary.code_system("answer-special"),
                "code": "none",
                "display": "None of these",
            },
            # Chosen alone: a form clears the other answers when it is picked.
            "extension": [{"url": OPTION_EXCLUSIVE, "valueBoolean": True}],
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
        "copyright": instrument_copyright(),
        "item": [_fhir_item(vocabulary, item) for item in form()],
    }
    if version.date is not None:
        resource["date"] = version.date.isoformat()
    resource["text"] = _narrative(resource)
    return resource


def instrument_copyright() -> str:
    """Every instrument's holder and terms, and the attribution to print with its wording."""
    lines = []
    for instrument, described in CONTENT.items():
        licence = described.licence
        shown = "wording shown" if licence.shows_wording else "topics only, wording not shown"
        line = f"{SPECS[instrument].title}: {licence.holder} ({licence.verdict.value}; {shown})."
        if licence.attribution and licence.shows_wording:
            line += f" {licence.attribution}"
        lines.append(line)
    return " ".join(lines) + " " + LOINC_NOTICE


def _narrative(resource: dict[str, Any]) -> dict[str, Any]:
    """A generated narrative: what the Questionnaire is and how many questions it asks."""
    questions = sum(1 for top in form() for item in top.walk() if item.kind is not Kind.GROUP)
    sections = "".join(f"<li>{escape(item['text'])}</li>" for item in resource["item"])
    div = (
        f'<div xmlns="http://www.w3.org/1999/xhtml"><h1>{escape(resource["title"])}</h1>'
        f"<p>Version {escape(resource['version'])}: {questions} questions in "
        f"{len(resource['item'])} sections; every instrument is optional.</p>"
        f"<ul>{sections}</ul><p>{escape(DISCLAIMER)}</p></div>"
    )
    return {"status": "generated", "div": div}
