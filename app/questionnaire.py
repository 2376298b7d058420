"""The questionnaire, derived from the model the API validates answers with.

``form()`` walks ``ScreeningAnswers`` once into a tree of ``FormItem``s: every section and
question, its kind, whether it is required, its allowed values and bounds, the instrument it
belongs to and the answer that makes a follow-up question asked. Both the REST questionnaire
(``GET /v1/questionnaire``) and the FHIR Questionnaire are renderings of that tree, and the
FHIR QuestionnaireResponse is read back through it: one source of truth.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any

from pydantic import BaseModel, Field
from pydantic.fields import FieldInfo

from app.engine import DEFAULT_RULE_SET_KEY
from app.engine import instrument_content as content
from app.engine.answers import (
    OrdinalInstrument,
    ScreeningAnswers,
    Section,
    YesNoInstrument,
)
from app.engine.instrument_content import ENGLISH, SPANISH
from app.engine.instruments import SPECS, AnswerKind, InstrumentId, InstrumentSpec


class Kind(StrEnum):
    GROUP = "group"
    BOOLEAN = "boolean"
    INTEGER = "integer"
    NUMBER = "number"
    CHOICE = "choice"
    MULTIPLE_CHOICE = "multiple_choice"
    YES_NO_OR_DECLINED = "yes_no_or_declined"
    ITEMS = "items"  # an instrument's item list: scores (or yes/no) or "declined" per item


@dataclass(frozen=True, slots=True)
class AskedWhen:
    path: str  # the question whose answer decides
    equals: bool
    any_item: bool = False  # ``path`` is an item list: asked when any of its items ``equals``


@dataclass(frozen=True, slots=True)
class FormItem:
    path: str  # where the answer goes in ``answers``, dotted
    name: str  # the field name
    kind: Kind
    help: str
    required: bool
    choices: type[StrEnum] | None = None
    minimum: float | None = None
    maximum: float | None = None
    instrument: InstrumentSpec | None = None  # instrument groups and item lists
    item_values: tuple[tuple[int | bool, ...], ...] = ()  # ITEMS: the scores allowed per item
    asked_when: AskedWhen | None = None
    children: tuple[FormItem, ...] = ()
    at_least_one: bool = False  # MULTIPLE_CHOICE: "none of these" is not an answer

    def walk(self) -> typing.Iterator[FormItem]:
        yield self
        for child in self.children:
            yield from child.walk()


_INSTRUMENT_NAMES = frozenset(instrument.value for instrument in InstrumentId)


def _unwrap(annotation: Any) -> Any:
    """The inner type of ``X | None`` or ``Annotated[X, ...]`` (repeatedly)."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) == 1:
                annotation = args[0]
                continue
        return annotation


def _is_yes_no_or_declined(annotation: Any) -> bool:
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return False
    inner = {_unwrap(arg) for arg in typing.get_args(annotation) if arg is not type(None)}
    return bool in inner and any(typing.get_origin(arg) is typing.Literal for arg in inner)


def _needs_one(annotation: Any) -> bool:
    """Whether a list's annotation asks for at least one element (``min_length`` >= 1)."""
    for arg in (annotation, *typing.get_args(annotation)):
        if typing.get_origin(arg) is typing.Annotated:
            for meta in typing.get_args(arg)[1:]:
                found = getattr(meta, "min_length", None)
                nested = getattr(meta, "metadata", ())
                found = found or next((getattr(m, "min_length", 0) for m in nested), 0)
                if found:
                    return True
    return False


def _bounds(info: FieldInfo) -> tuple[float | None, float | None]:
    low = high = None
    for meta in info.metadata:
        low = getattr(meta, "ge", low)
        high = getattr(meta, "le", high)
    return low, high


def _asked_when(info: FieldInfo, section_path: str) -> AskedWhen | None:
    extra = info.json_schema_extra
    condition = extra.get("askedWhen") if isinstance(extra, dict) else None
    if not isinstance(condition, dict):
        return None
    return AskedWhen(
        f"{section_path}.{condition['field']}",
        bool(condition["equals"]),
        bool(condition.get("anyItem", False)),
    )


def _items(path: str, name: str, info: FieldInfo, spec: InstrumentSpec, parent: str) -> FormItem:
    values: tuple[tuple[int | bool, ...], ...] = (
        spec.item_values
        if spec.kind is AnswerKind.ORDINAL
        else tuple((True, False) for _ in range(spec.item_count))
    )
    return FormItem(
        path=path,
        name=name,
        kind=Kind.ITEMS,
        help=info.description or spec.name,
        required=info.is_required(),
        instrument=spec,
        item_values=values,
        asked_when=_asked_when(info, parent),
    )


def _item(path: str, name: str, info: FieldInfo, parent: str) -> FormItem:
    annotation = info.annotation
    inner = _unwrap(annotation)
    required = info.is_required()
    help_text = info.description or ""
    asked = _asked_when(info, parent)
    if isinstance(inner, type) and issubclass(inner, OrdinalInstrument | YesNoInstrument):
        items = _items(
            f"{path}.items", "items", inner.model_fields["items"], SPECS[inner.instrument_id], path
        )
        return FormItem(
            path=path,
            name=name,
            kind=Kind.GROUP,
            help=help_text or SPECS[inner.instrument_id].name,
            required=required,
            instrument=SPECS[inner.instrument_id],
            children=(items,),
        )
    if isinstance(inner, type) and issubclass(inner, Section):
        spec = SPECS[InstrumentId(name)] if name in _INSTRUMENT_NAMES else None
        children = []
        for child_name, child in inner.model_fields.items():
            child_path = f"{path}.{child_name}"
            if spec is not None and child_name == "items":  # PC-PTSD-5, CRAFFT 2.1, ASQ
                children.append(_items(child_path, child_name, child, spec, path))
            else:
                children.append(_item(child_path, child_name, child, path))
        return FormItem(
            path=path,
            name=name,
            kind=Kind.GROUP,
            help=help_text or (inner.__doc__ or "").strip(),
            required=required,
            instrument=spec,
            children=tuple(children),
        )
    if typing.get_origin(inner) is list:
        (element,) = typing.get_args(inner)
        element = _unwrap(element)
        if not (isinstance(element, type) and issubclass(element, StrEnum)):
            raise TypeError(f"{path}: lists of choices only")
        return FormItem(
            path=path,
            name=name,
            kind=Kind.MULTIPLE_CHOICE,
            help=help_text,
            required=required,
            choices=element,
            asked_when=asked,
            at_least_one=_needs_one(annotation),
        )
    if isinstance(inner, type) and issubclass(inner, StrEnum):
        return FormItem(
            path=path,
            name=name,
            kind=Kind.CHOICE,
            help=help_text,
            required=required,
            choices=inner,
            asked_when=asked,
        )
    if _is_yes_no_or_declined(annotation):
        return FormItem(
            path=path,
            name=name,
            kind=Kind.YES_NO_OR_DECLINED,
            help=help_text,
            required=required,
            asked_when=asked,
        )
    kinds = {bool: Kind.BOOLEAN, int: Kind.INTEGER, float: Kind.NUMBER}
    if inner not in kinds:  # a new kind of field: the questionnaires must learn it first
        raise TypeError(f"{path}: no questionnaire kind for {annotation!r}")
    low, high = _bounds(info)
    return FormItem(
        path=path,
        name=name,
        kind=kinds[inner],
        help=help_text,
        required=required,
        minimum=low,
        maximum=high,
        asked_when=asked,
    )


@cache
def form() -> tuple[FormItem, ...]:
    """Every section and question of ``ScreeningAnswers``, in order."""
    return tuple(
        _item(name, name, field, "") for name, field in ScreeningAnswers.model_fields.items()
    )


@cache
def form_items() -> dict[str, FormItem]:
    """Every form item by path."""
    return {item.path: item for top in form() for item in top.walk()}


# --- GET /v1/questionnaire ----------------------------------------------------------------------


_PHQ9_LICENCE = content.LICENCES[InstrumentId.PHQ9]


class AnswerOption(BaseModel):
    value: int | bool | str = Field(description="The value to send.", examples=[2])
    label: str = Field(
        description="What the person reads (in the questionnaire's language).",
        examples=["More than half the days"],
    )
    code: str | None = Field(
        default=None,
        description="The LOINC answer code, where LOINC has one.",
        examples=["LA6570-1"],
    )


class InstrumentItem(BaseModel):
    number: int = Field(description="1-based position in the `items` list.", examples=[1])
    topic: str = Field(
        description="What the item is about, in carelevel's words (never the instrument's "
        "wording): for layout, reports and instruments whose wording is not shown.",
        examples=["Little interest or pleasure"],
    )
    text: str | None = Field(
        default=None,
        description="The published wording, present where the instrument's licence lets "
        "carelevel show it (see the instrument's `licence`); absent otherwise: ask the item "
        "from your licensed copy.",
        examples=["Little interest or pleasure in doing things"],
    )
    code: str | None = Field(
        default=None,
        description="The item's LOINC code, where LOINC has one.",
        examples=["44250-9"],
    )
    options: list[AnswerOption] = Field(
        description='The answers, in order, then "declined".',
        examples=[[{"value": 0, "label": "Not at all", "code": "LA6568-5"}]],
    )


class Licence(BaseModel):
    holder: str = Field(description="Who holds the rights.", examples=["Pfizer Inc."])
    verdict: str = Field(
        description="free, free_with_attribution, permission_required or unclear (treated as "
        "permission required).",
        examples=["free_with_attribution"],
    )
    wording_shown: bool = Field(
        description="Whether carelevel shows the item wording (else topics only).",
        examples=[True],
    )
    terms: str = Field(
        description="The holder's terms, summarised.", examples=[_PHQ9_LICENCE.terms]
    )
    terms_url: str = Field(
        description="Where the holder states them.", examples=[_PHQ9_LICENCE.terms_url]
    )
    attribution: str | None = Field(
        default=None,
        description="Print this line wherever the wording is shown.",
        examples=[_PHQ9_LICENCE.attribution],
    )
    citation: str = Field(
        description="The publication that validated the instrument.",
        examples=[_PHQ9_LICENCE.citation],
    )


class Instrument(BaseModel):
    id: str = Field(
        description="The key of the instrument in `answers.instruments`.", examples=["phq9"]
    )
    title: str = Field(description="Its short title.", examples=["PHQ-9"])
    name: str = Field(
        description="Its full name and time frame.",
        examples=["Patient Health Questionnaire-9 (depression, past 2 weeks)"],
    )
    instructions: str | None = Field(
        default=None,
        description="The instruction read before the items, where the licence allows.",
        examples=[
            "Over the last 2 weeks, how often have you been bothered by any of the "
            "following problems?"
        ],
    )
    languages: list[str] = Field(
        description="The languages the instrument's shown text is available in.",
        examples=[["en", "es"]],
    )
    loinc_panel: str | None = Field(
        default=None, description="The LOINC panel code.", examples=["44249-1"]
    )
    loinc_total: str | None = Field(
        default=None, description="The LOINC code of the total score.", examples=["44261-6"]
    )
    loinc_answer_list: str | None = Field(
        default=None,
        description="The LOINC answer list its items share, where there is one.",
        examples=["LL358-3"],
    )
    licence: Licence = Field(
        description="Who holds the instrument and on what terms its wording is shown.",
        examples=[
            {
                "holder": _PHQ9_LICENCE.holder,
                "verdict": _PHQ9_LICENCE.verdict.value,
                "wording_shown": True,
                "terms": _PHQ9_LICENCE.terms,
                "terms_url": _PHQ9_LICENCE.terms_url,
                "attribution": _PHQ9_LICENCE.attribution,
                "citation": _PHQ9_LICENCE.citation,
            }
        ],
    )


class Question(BaseModel):
    path: str = Field(
        description="Where the answer goes in the request's `answers` object (dotted).",
        examples=["respondent.age_group"],
    )
    pointer: str = Field(
        description="The same place as a JSON pointer into `answers`; the FHIR Questionnaire's "
        "linkId is `path`.",
        examples=["/respondent/age_group"],
    )
    type: Kind = Field(
        description="boolean, integer, number, choice, multiple_choice, yes_no_or_declined "
        '(true, false or "declined"), items (an instrument\'s items) or group',
        examples=["choice"],
    )
    text: str = Field(description="A short label for the question.", examples=["Age group"])
    help: str = Field(
        description="What to ask and how to answer.",
        examples=["Adult (18+) or adolescent (12-17); sets the IOP hours."],
    )
    required: bool = Field(
        description="Required whenever its group is given. Every instrument is optional: its "
        "items are required only when the instrument was given.",
        examples=[True],
    )
    allowed_values: list[str] | None = Field(
        default=None,
        description="choice and multiple_choice: the values the answer may take.",
        examples=[["adult", "adolescent"]],
    )
    options: list[AnswerOption] | None = Field(
        default=None,
        description="choice, multiple_choice and yes_no_or_declined: every answer with its "
        "label (and LOINC code where there is one). A multiple choice answered 'none of these' "
        "is an empty list.",
        examples=[[{"value": "adult", "label": "Adult"}]],
    )
    min_items: int | None = Field(
        default=None,
        description="multiple_choice: the fewest answers allowed when the question is answered "
        "(1: 'none of these', an empty list, is not an answer; leave the question out until "
        "it is asked).",
        examples=[1],
    )
    minimum: float | None = Field(
        default=None, description="integer and number: the lowest value allowed.", examples=[0]
    )
    maximum: float | None = Field(
        default=None, description="integer and number: the highest value allowed.", examples=[600]
    )
    instrument: Instrument | None = Field(
        default=None,
        description="An instrument's title, codes, instructions and licence.",
        examples=[
            {
                "id": "phq9",
                "title": "PHQ-9",
                "name": "Patient Health Questionnaire-9 (depression, past 2 weeks)",
                "languages": ["en", "es"],
                "loinc_panel": "44249-1",
                "licence": {"holder": _PHQ9_LICENCE.holder, "verdict": "free_with_attribution"},
            }
        ],
    )
    item_count: int | None = Field(
        default=None, description="Instruments: number of items.", examples=[9]
    )
    item_values: list[list[int | str | bool]] | None = Field(
        default=None,
        description="Instruments: allowed answers per item.",
        examples=[[[0, 1, 2, 3, "declined"], [0, 1, 2, 3, "declined"]]],
    )
    items: list[InstrumentItem] | None = Field(
        default=None,
        description="Instruments: each item with its topic, wording and answers.",
        examples=[
            [
                {
                    "number": 1,
                    "topic": "Little interest or pleasure",
                    "text": "Little interest or pleasure in doing things",
                    "code": "44250-9",
                    "options": [{"value": 0, "label": "Not at all", "code": "LA6568-5"}],
                }
            ]
        ],
    )
    asked_when: dict[str, Any] | None = Field(
        default=None,
        description="A follow-up: asked only when the question at `path` was answered `equals` "
        "(with `any_item`: when any item of the item list at `path` was).",
        examples=[{"path": "instruments.cssrs.non_specific_active_thoughts", "equals": True}],
    )
    questions: list[Question] | None = Field(
        default=None,
        description="A group's questions.",
        examples=[
            [
                {
                    "path": "supports.support_person_available",
                    "pointer": "/supports/support_person_available",
                    "type": "boolean",
                    "text": "Support person available",
                    "help": "At least one person who supports recovery and can be reached.",
                    "required": False,
                }
            ]
        ],
    )


class Questionnaire(BaseModel):
    rule_set_key: str = Field(
        description="The rule set whose questions these are.", examples=["iop-level-of-care"]
    )
    language: str = Field(
        description="The language of labels and wording (BCP 47); instruments without a "
        "translation stay in English.",
        examples=["en"],
    )
    note: str = Field(
        description="How to answer: what to leave out, and how to record a declined item.",
        examples=[
            'Leave out what was not asked; answer an instrument item "declined" when the '
            "person declined it."
        ],
    )
    questions: list[Question] = Field(
        description="Every section of `answers`, in order, each with its questions.",
        examples=[
            [
                {
                    "path": "respondent",
                    "pointer": "/respondent",
                    "type": "group",
                    "text": "Respondent",
                    "help": "Who is screened and who answered.",
                    "required": True,
                    "questions": [
                        {
                            "path": "respondent.age_group",
                            "pointer": "/respondent/age_group",
                            "type": "choice",
                            "text": "Age group",
                            "help": "Adult (18+) or adolescent (12-17).",
                            "required": True,
                            "allowed_values": ["adult", "adolescent"],
                            "options": [
                                {"value": "adult", "label": "Adult"},
                                {"value": "adolescent", "label": "Adolescent"},
                            ],
                        }
                    ],
                }
            ]
        ],
    )


DECLINED_LABEL: dict[str, str] = {ENGLISH: "Declined to answer", SPANISH: "Prefirió no contestar"}
_YES_NO_LABELS = {
    ENGLISH: ("Yes", "No"),
    SPANISH: ("Sí", "No"),
}


def label(name: str) -> str:
    """A short label from a field or choice name: ``age_group`` → ``Age group``."""
    return name.replace("_", " ").capitalize()


def pointer(path: str) -> str:
    """The JSON pointer into ``answers`` of a dotted path."""
    return "/" + path.replace(".", "/")


def _licence(licence: content.Licence) -> Licence:
    return Licence(
        holder=licence.holder,
        verdict=licence.verdict.value,
        wording_shown=licence.shows_wording,
        terms=licence.terms,
        terms_url=licence.terms_url,
        attribution=licence.attribution,
        citation=licence.citation,
    )


def _instrument(spec: InstrumentSpec, language: str) -> Instrument:
    text = content.CONTENT[spec.id]
    return Instrument(
        id=spec.id.value,
        title=spec.title,
        name=spec.name,
        instructions=content.in_language(text.stem, language) if text.stem else None,
        languages=list(text.languages),
        loinc_panel=spec.loinc_panel,
        loinc_total=spec.loinc_total,
        loinc_answer_list=text.answer_list,
        licence=_licence(text.licence),
    )


def _declined(language: str) -> AnswerOption:
    return AnswerOption(value="declined", label=content.in_language(DECLINED_LABEL, language))


def _options(item: content.ItemContent, language: str) -> list[AnswerOption]:
    return [
        AnswerOption(
            value=option.value,
            label=content.in_language(option.label, language),
            code=option.loinc,
        )
        for option in item.options
    ] + [_declined(language)]


def _instrument_items(item: FormItem, language: str) -> list[InstrumentItem]:
    assert item.instrument is not None
    return [
        InstrumentItem(
            number=number,
            topic=described.topic,
            text=content.in_language(described.wording, language) if described.wording else None,
            code=described.loinc,
            options=_options(described, language),
        )
        for number in range(1, len(item.item_values) + 1)
        for described in (content.item_content(item.instrument.id, number),)
    ]


def _yes_no_options(language: str) -> list[AnswerOption]:
    yes, no = _YES_NO_LABELS.get(language, _YES_NO_LABELS[ENGLISH])
    return [
        AnswerOption(value=True, label=yes, code="LA33-6"),
        AnswerOption(value=False, label=no, code="LA32-8"),
        _declined(language),
    ]


def named_content(item: FormItem) -> content.ItemContent | None:
    """The instrument content of a named instrument question (C-SSRS, PC-PTSD-5 exposure)."""
    parent = item.path.rpartition(".")[0]
    owner = parent.rpartition(".")[2]
    if owner not in _INSTRUMENT_NAMES:
        return None
    return content.CONTENT[InstrumentId(owner)].named(item.name)


def _text(item: FormItem, language: str) -> str:
    if item.instrument is not None and item.kind is Kind.GROUP:
        return item.instrument.title
    described = named_content(item)
    if described is not None:
        return (
            content.in_language(described.wording, language)
            if described.wording
            else described.topic
        )
    return label(item.name)


def _asked_when_json(asked_when: AskedWhen | None) -> dict[str, Any] | None:
    if asked_when is None:
        return None
    condition: dict[str, Any] = {"path": asked_when.path, "equals": asked_when.equals}
    return condition | ({"any_item": True} if asked_when.any_item else {})


def _question(item: FormItem, language: str) -> Question:
    question = Question(
        path=item.path,
        pointer=pointer(item.path),
        type=item.kind,
        text=_text(item, language),
        help=item.help,
        required=item.required,
        allowed_values=[m.value for m in item.choices] if item.choices else None,
        options=[AnswerOption(value=m.value, label=label(m.value)) for m in item.choices]
        if item.choices
        else None,
        min_items=1 if item.at_least_one else None,
        minimum=item.minimum,
        maximum=item.maximum,
        asked_when=_asked_when_json(item.asked_when),
    )
    if item.kind is Kind.YES_NO_OR_DECLINED:
        question.options = _yes_no_options(language)
    if item.kind is Kind.ITEMS:
        question.item_count = len(item.item_values)
        question.item_values = [[*values, "declined"] for values in item.item_values]
        question.items = _instrument_items(item, language)
    if item.kind is Kind.GROUP:
        question.questions = [_question(child, language) for child in item.children]
        if item.instrument is not None:
            question.instrument = _instrument(item.instrument, language)
    if item.kind is Kind.GROUP and item.children and item.children[0].kind is Kind.ITEMS:
        # An instrument answered item by item: shown as the item list itself, as the API's
        # answers write it (``{"phq9": {"items": [...]}}``).
        items = item.children[0]
        if len(item.children) == 1:
            question.type = Kind.ITEMS
            question.item_count = len(items.item_values)
            question.item_values = [[*values, "declined"] for values in items.item_values]
            question.items = _instrument_items(items, language)
            question.questions = None
    return question


@cache
def build_questionnaire(language: str = ENGLISH) -> Questionnaire:
    """Every question of ``ScreeningAnswers``, in order, with labels, types and allowed values,
    in ``language`` where there is a translation (built once per language)."""
    return Questionnaire(
        rule_set_key=DEFAULT_RULE_SET_KEY,
        language=language,
        note="Leave out what was not asked, and every instrument that was not given; answer an "
        'instrument item "declined" when the person declined it. The determination lists what '
        "is missing, as question paths, and never guesses.",
        questions=[_question(item, language) for item in form()],
    )
