"""Hypothesis strategies that generate valid questionnaire answers (as JSON-ready dicts)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from hypothesis import strategies as st

from app.engine.answers import (
    AgeGroup,
    CareLevelHistory,
    Concern,
    ConditionStatus,
    DailyUseSubstance,
    HomicidalIdeation,
    Impairment,
    Informant,
    LivingSituation,
    Obligation,
    PreviousIop,
    Readiness,
    TimeOfDay,
    Transport,
    Willingness,
)
from app.engine.instruments import ScoringSex

DECLINED = "declined"


def _enum(enum: type[StrEnum]) -> st.SearchStrategy[str]:
    return st.sampled_from([member.value for member in enum])


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


def _ordinal_items(count: int, values: list[int], declined: bool) -> st.SearchStrategy[list[Any]]:
    item = st.sampled_from([*values, DECLINED]) if declined else st.sampled_from(values)
    return st.lists(item, min_size=count, max_size=count)


def _yes_no_items(count: int, declined: bool) -> st.SearchStrategy[list[Any]]:
    item = st.sampled_from([True, False, DECLINED]) if declined else st.booleans()
    return st.lists(item, min_size=count, max_size=count)


@st.composite
def cssrs(draw: st.DrawFn, declined: bool = False) -> dict[str, Any]:
    answer = st.sampled_from([True, False, DECLINED]) if declined else st.booleans()
    result: dict[str, Any] = {
        "wish_to_be_dead": draw(answer),
        "non_specific_active_thoughts": draw(answer),
        "behavior_lifetime": draw(answer),
    }
    if result["non_specific_active_thoughts"] is True:
        for name in ("method", "intent", "plan_with_intent"):
            result[name] = draw(answer)
    if result["behavior_lifetime"] is True:
        result["behavior_past_3_months"] = draw(answer)
    return result


@st.composite
def instruments(draw: st.DrawFn, declined: bool = False) -> dict[str, Any]:
    zero_three, zero_four = [0, 1, 2, 3], [0, 1, 2, 3, 4]
    chosen: dict[str, Any] = {}
    if draw(st.booleans()):
        chosen["phq9"] = {"items": draw(_ordinal_items(9, zero_three, declined))}
    if draw(st.booleans()):
        chosen["gad7"] = {"items": draw(_ordinal_items(7, zero_three, declined))}
    if draw(st.booleans()):
        chosen["phq2"] = {"items": draw(_ordinal_items(2, zero_three, declined))}
    if draw(st.booleans()):
        audit = draw(_ordinal_items(8, zero_four, declined)) + draw(
            _ordinal_items(2, [0, 2, 4], declined)
        )
        chosen["audit"] = {"items": audit}
    elif draw(st.booleans()):
        chosen["audit_c"] = {"items": draw(_ordinal_items(3, zero_four, declined))}
    if draw(st.booleans()):
        chosen["dast10"] = {"items": draw(_yes_no_items(10, declined))}
    if draw(st.booleans()):
        chosen["scoff"] = {"items": draw(_yes_no_items(5, declined))}
    if draw(st.booleans()):
        chosen["cssrs"] = draw(cssrs(declined))
    if draw(st.booleans()):
        exposed = draw(st.booleans())
        chosen["pc_ptsd5"] = {"trauma_exposure": exposed}
        if exposed:
            chosen["pc_ptsd5"]["items"] = draw(_yes_no_items(5, declined))
    if draw(st.booleans()):
        chosen["ciwa_ar"] = {"total": draw(st.integers(0, 67))}
    if draw(st.booleans()):
        chosen["cows"] = {"total": draw(st.integers(0, 48))}
    return chosen


def _section(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """A section with a random subset of its fields answered."""
    return st.fixed_dictionaries({}, optional=fields)


_CONDITION = _enum(ConditionStatus)
_CONDITIONS = (
    "depressive",
    "anxiety",
    "trauma",
    "bipolar",
    "psychotic",
    "eating",
    "cognitive",
    "chronic_medical",
)
_SUBSTANCES = ("alcohol", "opioids", "stimulants", "cannabis", "sedatives", "other")


@st.composite
def medical(draw: st.DrawFn) -> dict[str, Any]:
    section = draw(
        _section(
            {
                "acute_condition_needing_hospital_care": st.booleans(),
                "pregnant": st.booleans(),
                "heart_rate_bpm": st.integers(30, 140),
                "potassium_mmol_l": st.floats(2.0, 6.0),
                "glucose_mg_dl": st.integers(40, 300),
                "temperature_c": st.floats(34.0, 40.0),
                "percent_healthy_body_weight": st.floats(60, 140),
            }
        )
    )
    if section.get("pregnant") is True and draw(st.booleans()):
        section["receiving_prenatal_care"] = draw(st.booleans())
    if draw(st.booleans()):
        systolic = draw(st.integers(70, 180))
        section["systolic_bp_mmhg"] = systolic
        section["diastolic_bp_mmhg"] = draw(st.integers(30, systolic - 1))
    return section


@st.composite
def screening_answers(draw: st.DrawFn, declined: bool = True) -> dict[str, Any]:
    """Valid answers with random sections present and random fields answered."""
    answers: dict[str, Any] = {
        "respondent": {
            "age_group": draw(_enum(AgeGroup)),
            "answered_by": draw(_enum(Informant)),
            "sex_for_scoring": draw(_enum(ScoringSex)),
        },
        "presenting_concerns": draw(st.lists(_enum(Concern), min_size=1, max_size=3)),
        "instruments": draw(instruments(declined)),
    }
    sections: dict[str, st.SearchStrategy[Any]] = {
        "safety": _section(
            {
                "homicidal_ideation": _enum(HomicidalIdeation),
                "recent_violence": st.booleans(),
                "psychosis_or_mania_unable_to_self_care": st.booleans(),
                "severe_cognitive_impairment": st.booleans(),
                "acutely_intoxicated": st.booleans(),
                "dependents_at_risk": st.booleans(),
            }
        ),
        "withdrawal": _section(
            {
                "seizure_or_delirium_history": st.booleans(),
                "heavy_daily_use": st.lists(_enum(DailyUseSubstance), max_size=3),
                "complicated_signs_now": st.booleans(),
            }
        ),
        "medical": medical(),
        "functioning": _section(
            {
                name: _enum(Impairment)
                for name in ("work_school", "self_care", "relationships", "daily_activities")
            }
        ),
        "co_occurring": _section(
            {
                **dict.fromkeys(_CONDITIONS, _CONDITION),
                "substance_use": _section(dict.fromkeys(_SUBSTANCES, _CONDITION)),
            }
        ),
        "treatment_history": _section(
            {
                "current_or_recent_level": _enum(CareLevelHistory),
                "discharged_last_30_days": st.booleans(),
                "outpatient_not_effective": st.booleans(),
                "previous_iop": _enum(PreviousIop),
            }
        ),
        "engagement": _section(
            {"readiness_stage": _enum(Readiness), "willing_to_attend": _enum(Willingness)}
        ),
        "supports": _section(
            {
                "living_situation": _enum(LivingSituation),
                "support_person_available": st.booleans(),
                "family_willing_to_participate": st.booleans(),
            }
        ),
        "logistics": _section(
            {
                "transport": _enum(Transport),
                "travel_minutes_one_way": st.integers(0, 180),
                "telehealth": _section(
                    {
                        "device": st.booleans(),
                        "private_space": st.booleans(),
                        "reliable_connection": st.booleans(),
                    }
                ),
                "hours_per_week_available": st.integers(0, 40),
                "times_available": st.lists(_enum(TimeOfDay), max_size=3),
                "obligations": st.lists(_enum(Obligation), max_size=3),
            }
        ),
    }
    for name, strategy in sections.items():
        if draw(st.integers(0, 9)) < 8:  # most sections present, as in a real intake
            answers[name] = draw(strategy)
    return answers
