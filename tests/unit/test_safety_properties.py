"""Safety properties of the shipped rule set, proved over answers generated from the
questionnaire model (``tests/strategies.py``), 1,000 examples per property.

1. Adding any single safety trigger to any valid answers gives at least the trigger's level and
   urgency (emergent; urgent for withdrawal and other assessments that must happen first).
2. More severe evidence never lowers the level or the urgency: raising any one instrument item,
   a clinician withdrawal total, a C-SSRS answer, an impairment or a safety answer, declining an
   item instead of answering its lowest value, or adding a vital-sign abnormality.
3. An open required safety question (a safety alert that requires an assessment, or a safety
   rule that could not be decided) never yields IOP ``suitable``: the verdict waits, the
   urgency is at least urgent, and the result is not complete.
4. Evaluation is deterministic: the same answers and rule set give the same bytes, whatever
   process compiled the rule set and however the answers travelled.
5. All safety overrides are evaluated and the most severe one that fires decides.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.engine import (
    ScreeningAnswers,
    compile_rule_set,
    default_rule_set,
    default_rule_set_source,
    determination_to_json,
    evaluate,
)
from app.engine.compiler import CompiledRuleSet
from app.engine.determination import (
    LEVEL_RANK,
    URGENCY_RANK,
    Determination,
    IopVerdict,
    LevelOfCare,
    RuleResult,
    Stage,
    Status,
    Urgency,
)
from app.engine.instruments import SPECS, AnswerKind, InstrumentId
from tests.strategies import DECLINED, screening_answers

PROPERTY = settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
Answers = dict[str, Any]


def determine(answers: Answers, compiled: CompiledRuleSet | None = None) -> Determination:
    return evaluate(compiled or default_rule_set(), ScreeningAnswers.model_validate(answers))


def level_rank(determination: Determination) -> int | None:
    level = determination.recommended_level
    return None if level is None else LEVEL_RANK[level.level]


def section(answers: Answers, name: str) -> dict[str, Any]:
    found: dict[str, Any] = answers.setdefault(name, {})
    return found


# --- 1. safety triggers ------------------------------------------------------------------------


@dataclass(frozen=True)
class Trigger:
    name: str
    apply: Callable[[Answers], None]
    level: LevelOfCare | None  # the least level it must give (None: an alert only)
    urgency: Urgency


def _cssrs(answers: Answers, **yes: bool | str) -> None:
    cssrs: dict[str, Any] = {
        "wish_to_be_dead": True,
        "non_specific_active_thoughts": True,
        "method": False,
        "intent": False,
        "plan_with_intent": False,
        "behavior_lifetime": False,
    }
    cssrs.update(yes)
    if cssrs["behavior_lifetime"]:
        cssrs.setdefault("behavior_past_3_months", True)
    section(answers, "instruments")["cssrs"] = cssrs


def _heavy_daily(answers: Answers, substance: str) -> None:
    withdrawal = section(answers, "withdrawal")
    withdrawal["heavy_daily_use"] = sorted({*withdrawal.get("heavy_daily_use", []), substance})


def _without(answers: Answers, *instruments: str) -> None:
    for name in instruments:
        section(answers, "instruments").pop(name, None)


def _vitals(**values: Any) -> Callable[[Answers], None]:
    def apply(answers: Answers) -> None:
        medical = section(answers, "medical")
        medical.update(values)
        systolic, diastolic = medical.get("systolic_bp_mmhg"), medical.get("diastolic_bp_mmhg")
        if systolic is not None and diastolic is not None and diastolic >= systolic:
            medical["diastolic_bp_mmhg"] = systolic - 20

    return apply


def _set(section_name: str, **values: Any) -> Callable[[Answers], None]:
    def apply(answers: Answers) -> None:
        section(answers, section_name).update(values)

    return apply


def _pregnant_with(substance: str) -> Callable[[Answers], None]:
    def apply(answers: Answers) -> None:
        section(answers, "medical")["pregnant"] = True
        section(answers, "respondent")["sex_for_scoring"] = "female"
        _heavy_daily(answers, substance)

    return apply


def _seizure_history_with_drinking(answers: Answers) -> None:
    section(answers, "withdrawal")["seizure_or_delirium_history"] = True
    _heavy_daily(answers, "alcohol")


def _heavy_drinking_unrated(answers: Answers) -> None:
    _heavy_daily(answers, "alcohol")
    _without(answers, "ciwa_ar")


def _heavy_opioids_unrated(answers: Answers) -> None:
    _heavy_daily(answers, "opioids")
    _without(answers, "cows")


def _item9_unscreened(answers: Answers) -> None:
    phq9 = section(answers, "instruments").setdefault("phq9", {"items": [0] * 9})
    phq9["items"][8] = 3
    _without(answers, "cssrs")


EMERGENT = Urgency.EMERGENT
URGENT = Urgency.URGENT
EMERGENCY = LevelOfCare.EMERGENCY_EVALUATION
INPATIENT = LevelOfCare.INPATIENT

TRIGGERS = (
    Trigger("C-SSRS intent", lambda a: _cssrs(a, intent=True), EMERGENCY, EMERGENT),
    Trigger("C-SSRS plan", lambda a: _cssrs(a, plan_with_intent=True), EMERGENCY, EMERGENT),
    Trigger(
        "C-SSRS recent attempt", lambda a: _cssrs(a, behavior_lifetime=True), EMERGENCY, EMERGENT
    ),
    Trigger(
        "homicidal intent", _set("safety", homicidal_ideation="intent_or_plan"), EMERGENCY, EMERGENT
    ),
    Trigger(
        "acute medical condition",
        _set("medical", acute_condition_needing_hospital_care=True),
        EMERGENCY,
        EMERGENT,
    ),
    Trigger(
        "complicated withdrawal now",
        _set("withdrawal", complicated_signs_now=True),
        EMERGENCY,
        EMERGENT,
    ),
    Trigger(
        "severe cognitive impairment",
        _set("safety", severe_cognitive_impairment=True),
        EMERGENCY,
        EMERGENT,
    ),
    Trigger(
        "psychosis unable to self-care",
        _set("safety", psychosis_or_mania_unable_to_self_care=True),
        INPATIENT,
        EMERGENT,
    ),
    Trigger("CIWA-Ar 19", _set("instruments", ciwa_ar={"total": 19}), INPATIENT, EMERGENT),
    Trigger("COWS 37", _set("instruments", cows={"total": 37}), INPATIENT, EMERGENT),
    Trigger(
        "withdrawal seizures and daily drinking",
        _seizure_history_with_drinking,
        INPATIENT,
        EMERGENT,
    ),
    Trigger("heart rate 35", _vitals(heart_rate_bpm=35), EMERGENCY, EMERGENT),
    Trigger("heart rate 140", _vitals(heart_rate_bpm=140), EMERGENCY, EMERGENT),
    Trigger(
        "blood pressure 75/45",
        _vitals(systolic_bp_mmhg=75, diastolic_bp_mmhg=45),
        EMERGENCY,
        EMERGENT,
    ),
    Trigger("potassium 2.3", _vitals(potassium_mmol_l=2.3), EMERGENCY, EMERGENT),
    Trigger("glucose 45", _vitals(glucose_mg_dl=45), EMERGENCY, EMERGENT),
    Trigger("temperature 34.5", _vitals(temperature_c=34.5), EMERGENCY, EMERGENT),
    Trigger("sodium 120", _vitals(sodium_mmol_l=120.0), EMERGENCY, EMERGENT),
    Trigger("potassium 6.8", _vitals(potassium_mmol_l=6.8), EMERGENCY, EMERGENT),
    Trigger("QTc 520 ms", _vitals(qtc_ms=520), EMERGENCY, EMERGENT),
    Trigger(
        "sedative withdrawal seizure",
        _set("withdrawal", heavy_daily_use=["sedatives"], sedative_signs_now=["seizure"]),
        EMERGENCY,
        EMERGENT,
    ),
    Trigger("pregnant, drinking heavily every day", _pregnant_with("alcohol"), INPATIENT, URGENT),
    Trigger(
        "pregnant, using sedatives heavily every day",
        _pregnant_with("sedatives"),
        INPATIENT,
        URGENT,
    ),
    Trigger("heavy daily drinking, no CIWA-Ar", _heavy_drinking_unrated, None, URGENT),
    Trigger("heavy daily opioids, no COWS", _heavy_opioids_unrated, None, URGENT),
    Trigger("heavy daily sedatives", lambda a: _heavy_daily(a, "sedatives"), None, URGENT),
    Trigger("PHQ-9 item 9 = 3, no C-SSRS", _item9_unscreened, None, URGENT),
    Trigger("intoxicated now", _set("safety", acutely_intoxicated=True), None, URGENT),
)


@PROPERTY
@given(data=screening_answers(), trigger=st.sampled_from(TRIGGERS))
def test_any_single_safety_trigger_gives_at_least_its_level_and_urgency(
    data: Answers, trigger: Trigger
) -> None:
    answers = copy.deepcopy(data)
    trigger.apply(answers)
    result = determine(answers)
    assert URGENCY_RANK[result.urgency] >= URGENCY_RANK[trigger.urgency], trigger.name
    if trigger.level is not None:
        assert result.recommended_level is not None, trigger.name
        assert LEVEL_RANK[result.recommended_level.level] >= LEVEL_RANK[trigger.level]
        assert result.iop.verdict is IopVerdict.HIGHER_LEVEL_NEEDED
    else:
        assert result.iop.verdict not in (IopVerdict.SUITABLE, IopVerdict.SUITABLE_WITH_CONDITIONS)


# --- 2. more severe evidence never lowers --------------------------------------------------------

Move = Callable[[Answers], tuple[Answers, Answers] | None]  # (less severe, more severe) or None


def _item_moves(answers: Answers) -> list[Move]:
    moves: list[Move] = []
    for name, instrument in answers.get("instruments", {}).items():
        spec = SPECS[InstrumentId(name)]
        items = instrument.get("items")
        if spec.kind is AnswerKind.CLINICIAN_TOTAL:
            moves.append(partial(_raise_total, name=name))
        if not items:
            continue
        for index in range(len(items)):
            moves.append(partial(_raise_item, name=name, index=index))
            moves.append(partial(_decline_item, name=name, index=index))
    return moves


def _item_values(name: str, index: int) -> tuple[Any, ...]:
    spec = SPECS[InstrumentId(name)]
    if spec.kind is AnswerKind.ORDINAL:
        return spec.item_values[index]
    # yes/no: "no" is the lower score, except for reverse-scored items
    return (True, False) if index + 1 in spec.reverse_scored_items else (False, True)


def _with_item(answers: Answers, name: str, index: int, value: Any) -> Answers:
    changed = copy.deepcopy(answers)
    instruments = changed["instruments"]
    instruments[name]["items"][index] = value
    other = {"audit": "audit_c", "audit_c": "audit"}.get(name)
    if other in instruments and index < 3:
        instruments[other]["items"][index] = value  # AUDIT-C is AUDIT items 1-3
    return changed


def _raise_item(answers: Answers, name: str, index: int) -> tuple[Answers, Answers] | None:
    values = _item_values(name, index)
    current = answers["instruments"][name]["items"][index]
    if current == DECLINED or current == values[-1]:
        return None
    higher = values[values.index(current) + 1]
    return answers, _with_item(answers, name, index, higher)


def _decline_item(answers: Answers, name: str, index: int) -> tuple[Answers, Answers]:
    lowest = _item_values(name, index)[0]
    return (
        _with_item(answers, name, index, lowest),
        _with_item(answers, name, index, DECLINED),
    )


def _raise_total(answers: Answers, name: str) -> tuple[Answers, Answers] | None:
    total = answers["instruments"][name]["total"]
    top = SPECS[InstrumentId(name)].total_range[1]
    if total >= top:
        return None
    changed = copy.deepcopy(answers)
    changed["instruments"][name]["total"] = total + 1
    return answers, changed


_CSSRS_GATES = {"non_specific_active_thoughts": ("method", "intent", "plan_with_intent")}


def _cssrs_moves(answers: Answers) -> list[Move]:
    cssrs = answers.get("instruments", {}).get("cssrs")
    if cssrs is None:
        return []
    return [partial(_cssrs_yes, name=name) for name in cssrs]


def _cssrs_yes(answers: Answers, name: str) -> tuple[Answers, Answers] | None:
    if answers["instruments"]["cssrs"][name] is not False:
        return None
    changed = copy.deepcopy(answers)
    cssrs = changed["instruments"]["cssrs"]
    cssrs[name] = True
    for follow_up in _CSSRS_GATES.get(name, ()):
        cssrs[follow_up] = False
    if name == "behavior_lifetime":
        cssrs["behavior_past_3_months"] = False
    return answers, changed


_IMPAIRMENT = ("none", "mild", "moderate", "severe", "extreme")
_SAFETY_FLAGS = (
    ("safety", "recent_violence"),
    ("safety", "psychosis_or_mania_unable_to_self_care"),
    ("safety", "severe_cognitive_impairment"),
    ("safety", "acutely_intoxicated"),
    ("safety", "dependents_at_risk"),
    ("withdrawal", "seizure_or_delirium_history"),
    ("withdrawal", "complicated_signs_now"),
    ("medical", "acute_condition_needing_hospital_care"),
)


def _flag(answers: Answers, section_name: str, name: str) -> tuple[Answers, Answers] | None:
    if answers.get(section_name, {}).get(name) is True:
        return None
    changed = copy.deepcopy(answers)
    section(changed, section_name)[name] = True
    return answers, changed


def _impairment(answers: Answers, name: str) -> tuple[Answers, Answers] | None:
    current = answers.get("functioning", {}).get(name)
    if current is None or current == _IMPAIRMENT[-1]:
        return None
    changed = copy.deepcopy(answers)
    changed["functioning"][name] = _IMPAIRMENT[_IMPAIRMENT.index(current) + 1]
    return answers, changed


# A vital sign or result moved to a clearly abnormal value, from the same side of the middle
# of its normal range (a heart rate of 35 moved to 140 is not one step more severe).
ABNORMAL = (
    ("heart_rate_bpm", 35, 70),
    ("heart_rate_bpm", 140, 70),
    ("systolic_bp_mmhg", 75, 115),
    ("systolic_bp_mmhg", 230, 115),
    ("diastolic_bp_mmhg", 40, 75),
    ("potassium_mmol_l", 2.3, 4.0),
    ("potassium_mmol_l", 6.8, 4.0),
    ("glucose_mg_dl", 45, 90),
    ("temperature_c", 34.5, 37.0),
    ("temperature_c", 39.5, 37.0),
    ("percent_healthy_body_weight", 68.0, 100.0),
    ("sodium_mmol_l", 120.0, 140.0),
    ("phosphate_mmol_l", 0.5, 1.2),
    ("qtc_ms", 520, 410),
    ("orthostatic_heart_rate_rise_bpm", 45, 0),
    ("orthostatic_systolic_drop_mmhg", 30, 0),
    ("orthostatic_diastolic_drop_mmhg", 15, 0),
)


def _abnormal(
    answers: Answers, name: str, value: Any, middle: Any
) -> tuple[Answers, Answers] | None:
    current = answers.get("medical", {}).get(name)
    if current is not None and not (value < current <= middle or middle <= current < value):
        return None
    changed = copy.deepcopy(answers)
    medical = section(changed, "medical")
    medical[name] = value
    systolic, diastolic = medical.get("systolic_bp_mmhg"), medical.get("diastolic_bp_mmhg")
    if systolic is not None and diastolic is not None and diastolic >= systolic:
        return None  # not a single change any more
    return answers, changed


def _moves(answers: Answers) -> list[Move]:
    moves = _item_moves(answers) + _cssrs_moves(answers)
    moves += [partial(_flag, section_name=s, name=n) for s, n in _SAFETY_FLAGS]
    moves += [
        partial(_impairment, name=n)
        for n in ("work_school", "self_care", "relationships", "daily_activities")
    ]
    moves += [partial(_abnormal, name=n, value=v, middle=m) for n, v, m in ABNORMAL]
    return moves


@st.composite
def more_severe_pairs(draw: st.DrawFn) -> tuple[Answers, Answers]:
    """Valid answers and the same answers with one piece of evidence more severe."""
    answers = draw(screening_answers())
    moves = _moves(answers)
    while moves:
        move = moves.pop(draw(st.integers(0, len(moves) - 1)))
        pair = move(answers)
        if pair is not None:
            return pair
    return answers, answers


@PROPERTY
@given(pair=more_severe_pairs())
def test_more_severe_evidence_never_lowers_the_level_or_the_urgency(
    pair: tuple[Answers, Answers],
) -> None:
    less, more = (determine(answers) for answers in pair)
    assert URGENCY_RANK[more.urgency] >= URGENCY_RANK[less.urgency]
    before, after = level_rank(less), level_rank(more)
    if before is not None and after is not None:
        assert after >= before


# --- 3. an open safety question withholds the verdict ---------------------------------------------


def open_safety_questions(compiled: CompiledRuleSet, result: Determination) -> list[str]:
    """Safety rules that fired requiring an assessment, or that could not be decided although
    they would end in an override or require an assessment."""
    outcome = {s.rule_id: s.result for s in result.trace if s.stage is Stage.SAFETY}
    found = []
    for rule in compiled.safety:
        state = outcome.get(rule.id)
        fired_requiring = state is RuleResult.FIRED and rule.requires
        undecided = state is RuleResult.UNDETERMINED and (rule.override_level or rule.requires)
        if fired_requiring or undecided:
            found.append(rule.id)
    return found


def _assert_open_questions_withhold(result: Determination, open_rules: list[str]) -> None:
    assert result.iop.verdict not in (IopVerdict.SUITABLE, IopVerdict.SUITABLE_WITH_CONDITIONS)
    assert URGENCY_RANK[result.urgency] >= URGENCY_RANK[Urgency.URGENT], open_rules
    overridden = any(a.ends_evaluation for a in result.safety_alerts)
    if not overridden:
        assert result.status is not Status.COMPLETE


@PROPERTY
@given(data=screening_answers())
def test_an_open_safety_question_never_yields_iop_suitable(data: Answers) -> None:
    compiled = default_rule_set()
    result = determine(data, compiled)
    open_rules = open_safety_questions(compiled, result)
    if open_rules:
        _assert_open_questions_withhold(result, open_rules)


OPENERS = (
    _item9_unscreened,
    _heavy_drinking_unrated,
    _heavy_opioids_unrated,
    lambda a: section(a, "safety").pop("acutely_intoxicated", None),
    lambda a: _cssrs(a, intent=DECLINED),
    lambda a: _cssrs(a, non_specific_active_thoughts=DECLINED),
)


@PROPERTY
@given(data=screening_answers(), opener=st.sampled_from(OPENERS))
def test_a_safety_question_left_open_on_purpose_withholds_the_verdict(
    data: Answers, opener: Callable[[Answers], None]
) -> None:
    answers = copy.deepcopy(data)
    opener(answers)
    cssrs = answers.get("instruments", {}).get("cssrs", {})
    if cssrs.get("non_specific_active_thoughts") == DECLINED:
        for follow_up in ("method", "intent", "plan_with_intent"):
            cssrs.pop(follow_up, None)
    compiled = default_rule_set()
    result = determine(answers, compiled)
    open_rules = open_safety_questions(compiled, result)
    assert open_rules
    _assert_open_questions_withhold(result, open_rules)


# --- 4. determinism ------------------------------------------------------------------------------

_FRESH = compile_rule_set(default_rule_set_source())  # compiled again: as another process would


@PROPERTY
@given(data=screening_answers())
def test_evaluation_is_deterministic(data: Answers) -> None:
    answers = ScreeningAnswers.model_validate(data)
    first = determination_to_json(evaluate(default_rule_set(), answers))
    assert determination_to_json(evaluate(default_rule_set(), answers)) == first
    assert determination_to_json(evaluate(_FRESH, answers)) == first
    travelled = ScreeningAnswers.model_validate_json(orjson.dumps(answers.model_dump()))
    assert determination_to_json(evaluate(default_rule_set(), travelled)) == first


# --- 5. the most severe override decides ----------------------------------------------------------


@PROPERTY
@given(data=screening_answers())
def test_the_most_severe_override_that_fires_decides(data: Answers) -> None:
    compiled = default_rule_set()
    result = determine(data, compiled)
    fired = {s.rule_id for s in result.trace if s.result is RuleResult.FIRED}
    override_levels = {r.id: r.override_level for r in compiled.safety if r.override_level}
    levels = [LEVEL_RANK[level] for rule_id, level in override_levels.items() if rule_id in fired]
    if not levels:
        return
    assert result.recommended_level is not None
    assert LEVEL_RANK[result.recommended_level.level] == max(levels)
    # every override was evaluated, whatever fired first
    evaluated = {s.rule_id for s in result.trace}
    assert all(rule_id in evaluated for rule_id in override_levels)
