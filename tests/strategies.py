"""Hypothesis strategies that generate valid questionnaire answers (as JSON-ready dicts).

Answers are drawn from the questionnaire model itself (``app.questionnaire.form()``, the same
tree the REST and FHIR questionnaires render), so a question added to ``ScreeningAnswers`` is
generated the day it exists: every section and question may be left out, instrument items may
be declined, follow-up questions are asked only when their gate answer allows, and numbers are
mostly plausible with the whole allowed range reachable.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from hypothesis import strategies as st

from app.engine.answers import ScreeningAnswers
from app.questionnaire import FormItem, Kind, form

DECLINED = "declined"

# Where most real answers lie; the rest of each question's allowed range is drawn less often.
PLAUSIBLE: dict[str, tuple[float, float]] = {
    "respondent.age_years": (12, 80),
    "medical.heart_rate_bpm": (50, 105),
    "medical.systolic_bp_mmhg": (95, 150),
    "medical.diastolic_bp_mmhg": (55, 95),
    "medical.potassium_mmol_l": (3.3, 5.2),
    "medical.sodium_mmol_l": (133, 146),
    "medical.phosphate_mmol_l": (0.75, 1.5),
    "medical.glucose_mg_dl": (65, 180),
    "medical.temperature_c": (35.8, 37.8),
    "medical.qtc_ms": (380, 470),
    "medical.percent_healthy_body_weight": (70, 130),
    "medical.orthostatic_heart_rate_rise_bpm": (0, 35),
    "medical.orthostatic_systolic_drop_mmhg": (0, 25),
    "medical.orthostatic_diastolic_drop_mmhg": (0, 15),
    "logistics.travel_minutes_one_way": (0, 120),
    "logistics.hours_per_week_available": (0, 40),
}


def _number(item: FormItem) -> st.SearchStrategy[Any]:
    low = item.minimum if item.minimum is not None else 0
    high = item.maximum if item.maximum is not None else 1000
    plausible = PLAUSIBLE.get(item.path, (low, high))
    if item.kind is Kind.INTEGER:
        return st.one_of(
            st.integers(int(plausible[0]), int(plausible[1])),
            st.integers(int(low), int(high)),
        )
    rounded = st.floats(plausible[0], plausible[1]).map(lambda value: round(value, 1))
    return st.one_of(rounded, st.floats(low, high).map(lambda value: round(value, 1)))


def _items(item: FormItem, declined: bool) -> st.SearchStrategy[list[Any]]:
    def one(values: tuple[int | bool, ...]) -> st.SearchStrategy[Any]:
        answers = st.sampled_from(values)
        if not declined:
            return answers
        return st.one_of(answers, answers, answers, answers, st.just(DECLINED))

    return st.tuples(*(one(values) for values in item.item_values)).map(list)


@cache  # a strategy is built once per question: building them costs more than drawing
def _value(item: FormItem, declined: bool) -> st.SearchStrategy[Any]:
    if item.kind is Kind.ITEMS:
        return _items(item, declined)
    if item.kind is Kind.BOOLEAN:
        return st.booleans()
    if item.kind is Kind.YES_NO_OR_DECLINED:
        return st.sampled_from([True, False, DECLINED]) if declined else st.booleans()
    if item.kind is Kind.CHOICE:
        assert item.choices is not None
        return st.sampled_from([member.value for member in item.choices])
    if item.kind is Kind.MULTIPLE_CHOICE:
        assert item.choices is not None
        values = [member.value for member in item.choices]
        return st.lists(st.sampled_from(values), unique=True, max_size=len(values))
    return _number(item)


_ASKED = st.integers(0, 9)  # below 2: a question or section not asked


@cache
def _group(group: FormItem, declined: bool) -> st.SearchStrategy[dict[str, Any]]:
    return _answered_group(group, declined)


@st.composite
def _answered_group(draw: st.DrawFn, group: FormItem, declined: bool) -> dict[str, Any]:
    """A group with a random subset of its questions answered (required ones always)."""
    answered: dict[str, Any] = {}
    for child in group.children:
        gate = child.asked_when
        if gate is not None:
            if answered.get(gate.path.rsplit(".", 1)[1]) is not gate.equals:
                continue  # a follow-up is asked only when its gate answer allows
            answered[child.name] = draw(_value(child, declined))
            continue
        if not child.required and draw(_ASKED) < 2:
            continue  # not asked
        if child.kind is Kind.GROUP:
            answered[child.name] = draw(_group(child, declined))
        else:
            answered[child.name] = draw(_value(child, declined))
    return answered


def _make_consistent(answers: dict[str, Any]) -> dict[str, Any]:
    """Repair the few cross-question rules the form tree does not state."""
    answers["presenting_concerns"] = answers.get("presenting_concerns") or ["mental_health"]
    respondent = answers["respondent"]
    age = respondent.get("age_years")
    if age is not None:
        respondent["age_group"] = "adolescent" if age < 18 else "adult"
    instruments = answers.get("instruments", {})
    if "audit" in instruments and "audit_c" in instruments:
        instruments["audit_c"] = {"items": instruments["audit"]["items"][:3]}
    medical = answers.get("medical", {})
    systolic, diastolic = medical.get("systolic_bp_mmhg"), medical.get("diastolic_bp_mmhg")
    if systolic is not None and diastolic is not None and diastolic >= systolic:
        medical["diastolic_bp_mmhg"] = max(20, systolic - 30)
        if medical["diastolic_bp_mmhg"] >= systolic:
            del medical["diastolic_bp_mmhg"]
    return answers


@st.composite
def screening_answers(draw: st.DrawFn, declined: bool = True) -> dict[str, Any]:
    """Valid answers: every section and question of the questionnaire model may appear."""
    answers: dict[str, Any] = {}
    for top in form():
        if not top.required and draw(_ASKED) < 2:
            continue  # a section not asked at all
        if top.kind is Kind.GROUP:
            answers[top.name] = draw(_group(top, declined))
        else:
            answers[top.name] = draw(_value(top, declined))
    answers = _make_consistent(answers)
    ScreeningAnswers.model_validate(answers)  # generated answers are always valid
    return answers
