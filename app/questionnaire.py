"""The questionnaire an intake app renders, derived from the model the API validates with."""

from __future__ import annotations

import types
import typing
from enum import StrEnum
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
from app.engine.instruments import SPECS


class Question(BaseModel):
    path: str = Field(description="Where the answer goes in the request's `answers` object.")
    type: str = Field(
        description="boolean, integer, number, choice, multiple_choice, items or group"
    )
    help: str = Field(description="What to ask and how to answer.")
    required: bool
    allowed_values: list[str] | None = None
    minimum: float | None = None
    maximum: float | None = None
    item_count: int | None = Field(default=None, description="Instruments: number of items.")
    item_values: list[list[int | str | bool]] | None = Field(
        default=None, description="Instruments: allowed answers per item."
    )
    questions: list[Question] | None = Field(default=None, description="A group's questions.")


class Questionnaire(BaseModel):
    rule_set_key: str
    note: str
    questions: list[Question]


def _unwrap(annotation: Any) -> Any:
    """The inner type of an annotation like ``X | None`` or ``Annotated[X, ...]``."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    return annotation


def _bounds(info: FieldInfo) -> tuple[float | None, float | None]:
    low = high = None
    for meta in info.metadata:
        low = getattr(meta, "ge", low)
        high = getattr(meta, "le", high)
    return low, high


def _question(path: str, info: FieldInfo) -> Question:
    inner = _unwrap(info.annotation)
    required = info.is_required()
    help_text = info.description or ""
    if isinstance(inner, type) and issubclass(inner, OrdinalInstrument | YesNoInstrument):
        spec = SPECS[inner.instrument_id]
        values: list[list[int | str | bool]] = (
            [[*allowed, "declined"] for allowed in spec.item_values]
            if issubclass(inner, OrdinalInstrument)
            else [[True, False, "declined"]] * spec.item_count
        )
        return Question(
            path=path,
            type="items",
            help=help_text or spec.name,
            required=required,
            item_count=spec.item_count,
            item_values=values,
        )
    if isinstance(inner, type) and issubclass(inner, Section | PcPtsd5):
        return Question(
            path=path,
            type="group",
            help=help_text or (inner.__doc__ or "").strip(),
            required=required,
            questions=[
                _question(f"{path}.{name}", field) for name, field in inner.model_fields.items()
            ],
        )
    if typing.get_origin(inner) is list:
        (element,) = typing.get_args(inner)
        if isinstance(element, type) and issubclass(element, StrEnum):
            return Question(
                path=path,
                type="multiple_choice",
                help=help_text,
                required=required,
                allowed_values=[m.value for m in element],
            )
        return Question(path=path, type="items", help=help_text, required=required)
    if isinstance(inner, type) and issubclass(inner, StrEnum):
        return Question(
            path=path,
            type="choice",
            help=help_text,
            required=required,
            allowed_values=[m.value for m in inner],
        )
    low, high = _bounds(info)
    kind = {bool: "boolean", int: "integer", float: "number"}.get(inner, "text")
    if typing.get_origin(inner) in (typing.Union, types.UnionType):
        args = set(typing.get_args(inner))
        kind = "boolean_or_declined" if bool in args else "integer_or_declined"
    return Question(
        path=path, type=kind, help=help_text, required=required, minimum=low, maximum=high
    )


def build_questionnaire() -> Questionnaire:
    """Every question of ``ScreeningAnswers``, in order, with types and allowed values."""
    return Questionnaire(
        rule_set_key=DEFAULT_RULE_SET_KEY,
        note='Leave out what was not asked; answer an instrument item "declined" when the '
        "person declined it. The determination lists what is missing and never guesses.",
        questions=[_question(name, field) for name, field in ScreeningAnswers.model_fields.items()],
    )
