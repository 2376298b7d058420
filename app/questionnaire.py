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
from app.engine.answers import (
    OrdinalInstrument,
    PcPtsd5,
    ScreeningAnswers,
    Section,
    YesNoInstrument,
)
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
    return AskedWhen(f"{section_path}.{condition['field']}", bool(condition["equals"]))


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
            if inner is PcPtsd5 and child_name == "items":
                children.append(
                    _items(child_path, child_name, child, SPECS[InstrumentId.PC_PTSD5], path)
                )
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


class Question(BaseModel):
    path: str = Field(
        description="Where the answer goes in the request's `answers` object.",
        examples=["respondent.age_group"],
    )
    type: Kind = Field(
        description="boolean, integer, number, choice, multiple_choice, yes_no_or_declined "
        '(true, false or "declined"), items (an instrument\'s items) or group',
        examples=["choice"],
    )
    help: str = Field(
        description="What to ask and how to answer.",
        examples=["Adult (18+) or adolescent (12-17); sets the IOP hours."],
    )
    required: bool = Field(description="Required whenever its group is answered.", examples=[True])
    allowed_values: list[str] | None = Field(
        default=None,
        description="choice and multiple_choice: the values the answer may take.",
        examples=[["adult", "adolescent"]],
    )
    minimum: float | None = Field(
        default=None, description="integer and number: the lowest value allowed.", examples=[0]
    )
    maximum: float | None = Field(
        default=None, description="integer and number: the highest value allowed.", examples=[600]
    )
    item_count: int | None = Field(
        default=None, description="Instruments: number of items.", examples=[9]
    )
    item_values: list[list[int | str | bool]] | None = Field(
        default=None,
        description="Instruments: allowed answers per item.",
        examples=[[[0, 1, 2, 3, "declined"], [0, 1, 2, 3, "declined"]]],
    )
    asked_when: dict[str, Any] | None = Field(
        default=None,
        description="A follow-up: asked only when the question at `path` was answered `equals`.",
        examples=[{"path": "instruments.cssrs.non_specific_active_thoughts", "equals": True}],
    )
    questions: list[Question] | None = Field(
        default=None,
        description="A group's questions.",
        examples=[
            [
                {
                    "path": "supports.support_person_available",
                    "type": "boolean",
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
                    "type": "group",
                    "help": "Who is screened and who answered.",
                    "required": True,
                    "questions": [
                        {
                            "path": "respondent.age_group",
                            "type": "choice",
                            "help": "Adult (18+) or adolescent (12-17).",
                            "required": True,
                            "allowed_values": ["adult", "adolescent"],
                        }
                    ],
                }
            ]
        ],
    )


def _question(item: FormItem) -> Question:
    question = Question(
        path=item.path,
        type=item.kind,
        help=item.help,
        required=item.required,
        allowed_values=[m.value for m in item.choices] if item.choices else None,
        minimum=item.minimum,
        maximum=item.maximum,
        asked_when={"path": item.asked_when.path, "equals": item.asked_when.equals}
        if item.asked_when
        else None,
    )
    if item.kind is Kind.ITEMS:
        question.item_count = len(item.item_values)
        question.item_values = [[*values, "declined"] for values in item.item_values]
    if item.kind is Kind.GROUP:
        question.questions = [_question(child) for child in item.children]
    if item.kind is Kind.GROUP and item.children and item.children[0].kind is Kind.ITEMS:
        # An instrument answered item by item: shown as the item list itself, as the API's
        # answers write it (``{"phq9": {"items": [...]}}``).
        items = item.children[0]
        if len(item.children) == 1:
            question.type = Kind.ITEMS
            question.item_count = len(items.item_values)
            question.item_values = [[*values, "declined"] for values in items.item_values]
            question.questions = None
    return question


def build_questionnaire() -> Questionnaire:
    """Every question of ``ScreeningAnswers``, in order, with types and allowed values."""
    return Questionnaire(
        rule_set_key=DEFAULT_RULE_SET_KEY,
        note='Leave out what was not asked; answer an instrument item "declined" when the '
        "person declined it. The determination lists what is missing and never guesses.",
        questions=[_question(item) for item in form()],
    )
