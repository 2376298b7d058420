"""The rules of the screening answers that their generated JSON Schema leaves out, stated in the
OpenAPI document, so that answers the document admits are answers the API accepts.

Pydantic writes the types, ranges and item counts of ``ScreeningAnswers``; the validators of
``app.engine.answers`` enforce more, and each of those rules is stated here in JSON Schema:
every instrument item's own allowed values (from the instrument specs the validators check
against), the age that agrees with the age group, the C-SSRS skip logic, the PC-PTSD-5 symptom
items only after trauma exposure, prenatal care only in pregnancy. The two rules JSON Schema
cannot state (AUDIT-C equal to AUDIT items 1-3; diastolic below systolic pressure) are said in
the descriptions of the fields concerned. ``tests/unit/test_openapi_answers.py`` holds each
statement to the validator it mirrors.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from app.engine.answers import (
    AgeGroup,
    CssrsScreener,
    Medical,
    OrdinalInstrument,
    PcPtsd5,
    Respondent,
)
from app.engine.instruments import DECLINED, SPECS

Json = dict[str, Any]

DIASTOLIC_BELOW_SYSTOLIC = " Lower than `systolic_bp_mmhg` when both are given."


def _component(schemas: Json, name: str) -> Json:
    """The component of a request model (FastAPI adds ``-Input`` when a model is also a
    response's and the two schemas differ)."""
    found: Json = schemas.get(name) or schemas[f"{name}-Input"]
    return found


def _item_values(allowed: tuple[int, ...]) -> Json:
    return {"anyOf": [{"type": "integer", "enum": list(allowed)}, {"const": DECLINED}]}


def _answered_only_when(switch: str, value: object, questions: list[str], *, then: Json) -> Json:
    """``questions`` are answered (not null) only when ``switch`` is ``value``; ``then`` says
    what holds when it is."""
    return {
        "if": {"properties": {switch: {"const": value}}, "required": [switch]},
        "then": then,
        "else": {"properties": {question: {"type": "null"} for question in questions}},
    }


def _must_be_answered(questions: list[str]) -> Json:
    return {
        "required": questions,
        "properties": {question: {"not": {"type": "null"}} for question in questions},
    }


def _cssrs_skip_logic() -> list[Json]:
    follow_ups = ["method", "intent", "plan_with_intent"]
    return [
        _answered_only_when(
            "non_specific_active_thoughts", True, follow_ups, then=_must_be_answered(follow_ups)
        ),
        _answered_only_when(
            "behavior_lifetime",
            True,
            ["behavior_past_3_months"],
            then=_must_be_answered(["behavior_past_3_months"]),
        ),
    ]


def _age_agrees_with_group() -> list[Json]:
    return [
        {
            "if": {
                "properties": {"age_group": {"const": AgeGroup.ADOLESCENT.value}},
                "required": ["age_group"],
            },
            "then": {"properties": {"age_years": {"maximum": 17}}},
            "else": {"properties": {"age_years": {"minimum": 18}}},
        }
    ]


def _symptoms_only_after_exposure() -> list[Json]:
    # Only a "no" closes the symptom items: after "declined" they may still be answered.
    return [
        {
            "if": {
                "properties": {"trauma_exposure": {"const": False}},
                "required": ["trauma_exposure"],
            },
            "then": {"properties": {"items": {"type": "null"}}},
        }
    ]


def _prenatal_care_only_in_pregnancy() -> list[Json]:
    return [_answered_only_when("pregnant", True, ["receiving_prenatal_care"], then={})]


def state_answer_rules(schemas: Json) -> None:
    """Add the validators' rules to the answers' component schemas in ``schemas``."""
    for model in OrdinalInstrument.__subclasses__():
        items = _component(schemas, model.__name__)["properties"]["items"]
        items["prefixItems"] = [
            _item_values(allowed) for allowed in SPECS[model.instrument_id].item_values
        ]
    sections: list[tuple[type[BaseModel], list[Json]]] = [
        (Respondent, _age_agrees_with_group()),
        (CssrsScreener, _cssrs_skip_logic()),
        (PcPtsd5, _symptoms_only_after_exposure()),
        (Medical, _prenatal_care_only_in_pregnancy()),
    ]
    for section, rules in sections:
        stated = _component(schemas, section.__name__).setdefault("allOf", [])
        stated.extend(rule for rule in rules if rule not in stated)
    diastolic = _component(schemas, Medical.__name__)["properties"]["diastolic_bp_mmhg"]
    if not diastolic["description"].endswith(DIASTOLIC_BELOW_SYSTOLIC):
        diastolic["description"] += DIASTOLIC_BELOW_SYSTOLIC
