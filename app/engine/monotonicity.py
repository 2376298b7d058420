"""More severe evidence never lowers the level or the urgency: a check of a rule set on its
own test cases.

For every test case, each single change towards more severe evidence is applied to its answers
and both are evaluated; a change that lowers the recommended level or the urgency is a finding.
The changes, each one step on an ordered scale of evidence:

- an instrument item raised to its next score (a yes/no item to the answer that scores);
- an item declined instead of answered with its lowest score (a declined item keeps the
  severity the answered items establish);
- a C-SSRS answer changed from no to yes (its follow-ups asked, answered no);
- a clinician withdrawal total across each band boundary (one below the boundary, then on it);
- a safety answer set to yes, an ordered safety answer or an impairment raised one step, a
  substance added to those used heavily every day, a sign of sedative withdrawal added;
- a vital sign or laboratory result moved to a clearly abnormal value, in the direction in
  which it is abnormal.

Pure: no I/O; the same rule set always gives the same findings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Final, get_args

from annotated_types import Le
from pydantic import BaseModel, ValidationError

from app.engine.answers import (
    DailyUseSubstance,
    HomicidalIdeation,
    Impairment,
    OverdoseHistory,
    ResponseToLevel,
    ScreeningAnswers,
    SedativeWithdrawalSign,
)
from app.engine.compiler import CompiledRuleSet
from app.engine.determination import LEVEL_RANK, URGENCY_RANK, Determination
from app.engine.evaluate import evaluate
from app.engine.instruments import DECLINED, SPECS, AnswerKind, InstrumentId

Answers = dict[str, Any]
Change = tuple[str, Answers, Answers]  # (what changed, less severe, more severe)

# A value clearly abnormal on one side of each vital sign and result the questionnaire holds,
# with the middle of its normal range: a value moves towards the abnormal one only from the
# same side of that middle (35 beats a minute is no step towards 140).
ABNORMAL_VALUES: Final = (
    ("heart_rate_bpm", 35, 75),
    ("heart_rate_bpm", 140, 75),
    ("systolic_bp_mmhg", 75, 120),
    ("systolic_bp_mmhg", 230, 120),
    ("diastolic_bp_mmhg", 40, 75),
    ("potassium_mmol_l", 2.3, 4.2),
    ("potassium_mmol_l", 6.8, 4.2),
    ("sodium_mmol_l", 120.0, 140.0),
    ("phosphate_mmol_l", 0.5, 1.2),
    ("glucose_mg_dl", 45, 95),
    ("temperature_c", 34.5, 36.9),
    ("temperature_c", 39.5, 36.9),
    ("qtc_ms", 520, 410),
    ("percent_healthy_body_weight", 68.0, 100.0),
    ("orthostatic_heart_rate_rise_bpm", 45, 0),
    ("orthostatic_systolic_drop_mmhg", 30, 0),
    ("orthostatic_diastolic_drop_mmhg", 15, 0),
)
_YES_ANSWERS: Final = (
    ("safety", "recent_violence"),
    ("safety", "psychosis_or_mania_unable_to_self_care"),
    ("safety", "severe_cognitive_impairment"),
    ("safety", "acutely_intoxicated"),
    ("safety", "dependents_at_risk"),
    ("withdrawal", "seizure_or_delirium_history"),
    ("withdrawal", "complicated_signs_now"),
    ("medical", "acute_condition_needing_hospital_care"),
    ("medical", "acute_food_refusal"),
    ("medical", "cognitive_screen_positive"),
)
_ORDERED_ANSWERS: Final = (
    ("safety", "homicidal_ideation", tuple(HomicidalIdeation)),
    ("safety", "overdose_history", tuple(OverdoseHistory)),
    *(
        ("functioning", name, tuple(Impairment))
        for name in ("work_school", "self_care", "relationships", "daily_activities")
    ),
    # More severe is towards worsening: goals met, improving, not improving, worsening.
    ("treatment_history", "response_to_current_level", tuple(reversed(ResponseToLevel))),
)
# Drinking raised by a step that doubles each time (+1, +2, +4 ... drinks a day; +7, +14,
# +28 ... a week) up to the most the question allows: whatever threshold a rule set uses, some
# step crosses it, without this check knowing the rule set's thresholds.
_RAISED_NUMBERS: Final = (
    ("withdrawal", "drinks_per_week", 7),
    ("withdrawal", "most_drinks_in_a_day", 1),
)
_ADDED: Final = (
    ("heavy_daily_use", tuple(DailyUseSubstance)),
    ("sedative_signs_now", tuple(SedativeWithdrawalSign)),
)
_CSSRS_FOLLOW_UPS: Final = {
    "non_specific_active_thoughts": ("method", "intent", "plan_with_intent"),
    "behavior_lifetime": ("behavior_past_3_months",),
}


@dataclass(frozen=True, slots=True)
class MonotonicityFinding:
    """A change towards more severe evidence that lowered the level or the urgency."""

    case: str
    change: str
    before: str
    after: str

    def __str__(self) -> str:
        return f"case '{self.case}': {self.change} changes {self.before} to {self.after}"


def monotonicity_findings(
    compiled: CompiledRuleSet, cases: Iterable[tuple[str, Answers]]
) -> tuple[MonotonicityFinding, ...]:
    """Every single change towards more severe evidence, applied to the answers of every
    (name, answers) case, that lowers the level or the urgency; at most one finding per case
    and kind of change."""
    findings: dict[tuple[str, str], MonotonicityFinding] = {}
    for name, answers in cases:
        if _validated(answers) is None:
            continue  # an invalid case is reported by the case itself
        base = _outcome(compiled, answers)
        for change, less, more in more_severe_changes(answers, compiled):
            before = base if less is answers else _outcome(compiled, less)
            after = _outcome(compiled, more)
            if before is None or after is None or not _lower(before, after):
                continue
            kind = change.split(":")[0]
            findings.setdefault(
                (name, kind), MonotonicityFinding(name, change, _show(before), _show(after))
            )
    return tuple(findings.values())


def _outcome(compiled: CompiledRuleSet, answers: Answers) -> Determination | None:
    validated = _validated(answers)
    return None if validated is None else evaluate(compiled, validated)


def _validated(answers: Answers) -> ScreeningAnswers | None:
    try:
        return ScreeningAnswers.model_validate(answers)
    except ValidationError:
        return None


def _lower(before: Determination, after: Determination) -> bool:
    if URGENCY_RANK[after.urgency] < URGENCY_RANK[before.urgency]:
        return True
    low, high = before.recommended_level, after.recommended_level
    return low is not None and high is not None and LEVEL_RANK[high.level] < LEVEL_RANK[low.level]


def _show(determination: Determination) -> str:
    level = determination.recommended_level
    return f"{level.level if level else 'no level'} ({determination.urgency})"


def more_severe_changes(answers: Answers, compiled: CompiledRuleSet) -> Iterator[Change]:
    """Each single change of ``answers`` towards more severe evidence (see the module)."""
    instruments: Mapping[str, Any] = answers.get("instruments", {})
    for name, given in instruments.items():
        yield from _instrument_changes(answers, InstrumentId(name), given, compiled)
    yield from _yes_answer_changes(answers)
    yield from _raised_answer_changes(answers)
    yield from _raised_number_changes(answers)
    yield from _added_choice_changes(answers)
    yield from _abnormal_value_changes(answers)


def _yes_answer_changes(answers: Answers) -> Iterator[Change]:
    """Each yes/no answer of ``_YES_ANSWERS`` not already yes, set to yes."""
    for section, name in _YES_ANSWERS:
        if answers.get(section, {}).get(name) is not True:
            yield f"{section}.{name}: yes", answers, _with(answers, section, name, True)


def _raised_answer_changes(answers: Answers) -> Iterator[Change]:
    """Each ordered answer given below the top of its scale, raised one step."""
    for section, name, scale in _ORDERED_ANSWERS:
        current = answers.get(section, {}).get(name)
        if current is not None and current != scale[-1]:
            raised = scale[[member.value for member in scale].index(current) + 1]
            change = f"{section}.{name}: {current} → {raised.value}"
            yield change, answers, _with(answers, section, name, raised.value)


def _raised_number_changes(answers: Answers) -> Iterator[Change]:
    """Each number answered (drinks), raised by each step of its ladder."""
    for section, name, step in _RAISED_NUMBERS:
        current = answers.get(section, {}).get(name)
        if current is None:
            continue
        for value in _ladder(current, step, _maximum(section, name)):
            change = f"{section}.{name}: {current} → {value}"
            yield change, answers, _with(answers, section, name, value)


def _ladder(current: int, step: int, maximum: int) -> Iterator[int]:
    """``current`` plus ``step``, twice ``step``, four times ... while within ``maximum``."""
    increment = step
    while current + increment <= maximum:
        yield current + increment
        increment *= 2


@cache
def _maximum(section: str, name: str) -> int:
    """The largest answer the questionnaire allows for a number question."""
    model = ScreeningAnswers.model_fields[section].annotation
    model = next(a for a in get_args(model) if isinstance(a, type) and issubclass(a, BaseModel))
    (limit,) = (m.le for m in model.model_fields[name].metadata if isinstance(m, Le))
    assert isinstance(limit, int), (section, name)  # a count of drinks
    return limit


def _added_choice_changes(answers: Answers) -> Iterator[Change]:
    """Each withdrawal choice not yet chosen (a substance used heavily every day, a sign of
    sedative withdrawal), added."""
    for name, choices in _ADDED:
        present = answers.get("withdrawal", {}).get(name) or []
        for choice in choices:
            if choice.value not in present:
                more = _with(answers, "withdrawal", name, sorted({*present, choice.value}))
                yield f"withdrawal.{name}: add {choice.value}", answers, more


def _abnormal_value_changes(answers: Answers) -> Iterator[Change]:
    """Each vital sign or result set to its clearly abnormal value: when not measured, or
    when measured on the same side of the middle of its normal range but less abnormal."""
    for name, value, middle in ABNORMAL_VALUES:
        measured = answers.get("medical", {}).get(name)
        if measured is None or value < measured <= middle or middle <= measured < value:
            yield f"medical.{name}: {value}", answers, _with(answers, "medical", name, value)


def _instrument_changes(
    answers: Answers, instrument: InstrumentId, given: Mapping[str, Any], compiled: CompiledRuleSet
) -> Iterator[Change]:
    spec = SPECS[instrument]
    key = instrument.value
    if spec.kind is AnswerKind.CLINICIAN_TOTAL:
        for band in compiled.policies[instrument].bands[1:]:
            below, on = band.minimum - 1, band.minimum
            yield (
                f"{spec.title} total: {below} → {on}",
                _with(answers, "instruments", key, {"total": below}),
                _with(answers, "instruments", key, {"total": on}),
            )
        return
    if instrument is InstrumentId.ASQ and given.get("acute") is False:
        more = _with_instrument(answers, key, lambda asq: asq.update(acute=True))
        yield f"{spec.title} acute: no → yes", answers, more
    if instrument is InstrumentId.CSSRS:
        for name, answer in given.items():
            if answer is False:
                more = _with_instrument(answers, key, _cssrs_yes(name))
                yield f"{spec.title} {name}: no → yes", answers, more
        return
    items = given.get("items") or []
    for index, answer in enumerate(items):
        scale = _item_scale(spec.id, index)
        if answer == DECLINED:
            continue
        if answer != scale[-1]:
            higher = scale[scale.index(answer) + 1]
            more = _with_item(answers, key, index, higher)
            yield f"{spec.title} item {index + 1}: {_text(answer)} → {_text(higher)}", answers, more
        lowest = _with_item(answers, key, index, scale[0])
        declined = _with_item(answers, key, index, DECLINED)
        yield (
            f"{spec.title} item {index + 1}: declined instead of {_text(scale[0])}",
            lowest,
            declined,
        )


def _item_scale(instrument: InstrumentId, index: int) -> tuple[Any, ...]:
    """An item's answers from the least to the most severe."""
    spec = SPECS[instrument]
    if spec.kind is AnswerKind.ORDINAL:
        return spec.item_values[index]
    return (True, False) if index + 1 in spec.reverse_scored_items else (False, True)


def _text(answer: Any) -> str:
    if isinstance(answer, bool):
        return "yes" if answer else "no"
    return str(answer)


def _cssrs_yes(name: str) -> Callable[[dict[str, Any]], None]:
    def change(cssrs: dict[str, Any]) -> None:
        cssrs[name] = True
        for follow_up in _CSSRS_FOLLOW_UPS.get(name, ()):
            cssrs.setdefault(follow_up, False)

    return change


# Each change copies only the dictionaries on the path to what it changes, never the rest:
# the answers of a case are shared, read-only, by all of its changes.


def _with(answers: Answers, section: str, name: str, value: Any) -> Answers:
    return {**answers, section: {**answers.get(section, {}), name: value}}


def _with_instrument(
    answers: Answers, key: str, change: Callable[[dict[str, Any]], None]
) -> Answers:
    instruments = dict(answers["instruments"])
    instruments[key] = changed = dict(instruments[key])
    change(changed)
    return {**answers, "instruments": instruments}


def _with_item(answers: Answers, key: str, index: int, value: Any) -> Answers:
    instruments = dict(answers["instruments"])
    partner = {"audit": "audit_c", "audit_c": "audit"}.get(key)
    for name in (key, partner) if partner in instruments and index < 3 else (key,):
        items = list(instruments[name]["items"])  # AUDIT-C is AUDIT items 1-3
        items[index] = value
        instruments[name] = {**instruments[name], "items": items}
    return {**answers, "instruments": instruments}


def uncited_rules(compiled: CompiledRuleSet) -> tuple[str, ...]:
    """The rules that cite no source in ``references``."""
    return tuple(rule_id for rule_id, cited in compiled.references.items() if not cited)
