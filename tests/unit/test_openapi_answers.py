"""The OpenAPI document states the answers' rules: for each rule a validator of the answers
model enforces, the documented schema admits exactly what the model accepts (on the cases at
the rule's edge), so that a client that validates against the document is not refused."""

from __future__ import annotations

import copy
from typing import Any, get_args

import jsonschema_rs
import pytest
from pydantic import BaseModel, ValidationError

from app.engine.answers import Instruments, OrdinalInstrument, ScreeningAnswers
from app.engine.instruments import SPECS
from app.runtime.openapi_answers import state_answer_rules
from app.screenings.schemas import DecisionRequest

Json = dict[str, Any]
BASE: Json = {
    "respondent": {"age_group": "adult", "answered_by": "self_report"},
    "presenting_concerns": ["substance_use"],
}


def documented(model: type[BaseModel]) -> Any:
    """A validator of ``model``'s schema as the OpenAPI document states it."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas = schema.pop("$defs", {}) | {model.__name__: schema}
    if model is ScreeningAnswers:
        state_answer_rules(schemas)
    root = {"$ref": f"#/components/schemas/{model.__name__}"}
    return jsonschema_rs.Draft202012Validator(root | {"components": {"schemas": schemas}})


ANSWERS = documented(ScreeningAnswers)


def accepted(model: type[BaseModel], value: Json) -> bool:
    try:
        model.model_validate(value)
    except ValidationError:
        return False
    return True


def assert_agree(value: Json, expected: bool) -> None:
    """The model and the documented schema both accept ``value``, or both refuse it."""
    assert accepted(ScreeningAnswers, value) is expected, value
    assert ANSWERS.is_valid(value) is expected, value


def answers(**sections: Json) -> Json:
    value = copy.deepcopy(BASE)
    for name, section in sections.items():
        value.setdefault(name, {}).update(section)
    return value


@pytest.mark.parametrize("model", OrdinalInstrument.__subclasses__(), ids=lambda m: m.__name__)
def test_each_item_of_each_instrument_admits_its_own_values(model: type[OrdinalInstrument]) -> None:
    spec = SPECS[model.instrument_id]
    (name,) = (n for n, f in Instruments.model_fields.items() if model in get_args(f.annotation))
    for position, allowed in enumerate(spec.item_values):
        for value in (*range(-1, max(allowed) + 2), "declined", True):
            items: list[Any] = [allowed[0]] * spec.item_count
            items[position] = value
            expected = value == "declined" or (type(value) is int and value in allowed)
            assert_agree(answers(instruments={name: {"items": items}}), expected)


@pytest.mark.parametrize(
    ("age_group", "age_years", "expected"),
    [
        ("adolescent", 12, True),
        ("adolescent", 17, True),
        ("adolescent", 18, False),
        ("adult", 17, False),
        ("adult", 18, True),
    ],
)
def test_the_age_agrees_with_the_age_group(age_group: str, age_years: int, expected: bool) -> None:
    assert_agree(answers(respondent={"age_group": age_group, "age_years": age_years}), expected)


CSSRS_NO: Json = {
    "wish_to_be_dead": True,
    "non_specific_active_thoughts": False,
    "behavior_lifetime": False,
}
FOLLOW_UPS: Json = {"method": False, "intent": "declined", "plan_with_intent": False}


@pytest.mark.parametrize(
    ("cssrs", "expected"),
    [
        ({}, True),
        (FOLLOW_UPS, False),  # asked only after thoughts of killing oneself
        ({"non_specific_active_thoughts": "declined", "method": True}, False),
        ({"non_specific_active_thoughts": True}, False),  # then every follow-up is answered
        ({"non_specific_active_thoughts": True, **FOLLOW_UPS}, True),
        ({"non_specific_active_thoughts": True, **FOLLOW_UPS, "intent": None}, False),
        ({"behavior_lifetime": True}, False),
        ({"behavior_lifetime": True, "behavior_past_3_months": False}, True),
        ({"behavior_past_3_months": False}, False),
    ],
)
def test_the_c_ssrs_skip_logic(cssrs: Json, expected: bool) -> None:
    assert_agree(answers(instruments={"cssrs": CSSRS_NO | cssrs}), expected)


@pytest.mark.parametrize(
    ("exposure", "items", "expected"),
    [
        (False, None, True),
        (False, [True] * 5, False),
        ("declined", [True] * 5, True),  # only a "no" closes the symptom items
        (True, [True, False, True, False, "declined"], True),
        (True, None, True),
    ],
)
def test_pc_ptsd_5_symptoms_only_after_exposure(
    exposure: bool | str, items: list[Any] | None, expected: bool
) -> None:
    screen = {"trauma_exposure": exposure, "items": items}
    assert_agree(answers(instruments={"pc_ptsd5": screen}), expected)


@pytest.mark.parametrize(
    ("medical", "expected"),
    [
        ({"pregnant": True, "receiving_prenatal_care": False}, True),
        ({"pregnant": False, "receiving_prenatal_care": False}, False),
        ({"receiving_prenatal_care": True}, False),
        ({"pregnant": False}, True),
    ],
)
def test_prenatal_care_only_in_pregnancy(medical: Json, expected: bool) -> None:
    assert_agree(answers(medical=medical), expected)


def test_the_rules_no_schema_can_state_are_described() -> None:
    # Both refused by the model; the document can only say so.
    audit = {"items": [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]}
    assert not accepted(
        ScreeningAnswers, answers(instruments={"audit": audit, "audit_c": {"items": [2, 1, 1]}})
    )
    assert not accepted(
        ScreeningAnswers, answers(medical={"systolic_bp_mmhg": 80, "diastolic_bp_mmhg": 80})
    )
    schemas = ScreeningAnswers.model_json_schema(ref_template="#/components/schemas/{model}")[
        "$defs"
    ]
    state_answer_rules(schemas)
    assert "must match" in schemas["Instruments"]["properties"]["audit_c"]["description"]
    assert (
        "Lower than `systolic_bp_mmhg`"
        in schemas["Medical"]["properties"]["diastolic_bp_mmhg"]["description"]
    )


@pytest.mark.parametrize(
    ("decision", "expected"),
    [
        ({"variance_reasons": ["other"], "comment": "Family preference."}, True),
        ({"variance_reasons": ["other"]}, False),
        ({"variance_reasons": ["waitlist", "other"], "comment": " \t\x1c\u3000"}, False),
        ({"variance_reasons": ["waitlist"]}, True),
        ({}, True),
    ],
)
def test_a_decision_for_another_reason_states_its_comment(decision: Json, expected: bool) -> None:
    value = {"final_level": "outpatient", "decided_by": "clinician-042"} | decision
    assert accepted(DecisionRequest, value) is expected
    assert documented(DecisionRequest).is_valid(value) is expected
