"""Properties of the shipped default rule set, over generated answers.

The central promise: a safety override can never be outvoted. Whatever else the answers say,
when a safety override fires, it decides the level and nothing after it runs.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.engine import (
    ScreeningAnswers,
    default_rule_set,
    determination_to_json,
    evaluate,
    run_tests,
)
from app.engine.determination import (
    LEVEL_RANK,
    URGENCY_RANK,
    IopVerdict,
    LevelOfCare,
    RuleResult,
    Stage,
    Status,
    Urgency,
)
from app.engine.facts import extract_facts
from app.engine.scoring import score_answers
from tests.strategies import screening_answers

EXAMPLES = Path(__file__).parents[2] / "examples"
PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def test_default_rule_set_cases_pass_with_full_rule_coverage() -> None:
    report = run_tests(default_rule_set())
    failures = {case.name: case.failures for case in report.cases if not case.passed}
    assert failures == {}
    assert report.never_fired == ()
    assert len(report.cases) >= 40


@PROPERTY_SETTINGS
@given(data=screening_answers())
def test_a_fired_safety_override_is_never_outvoted(data: dict[str, Any]) -> None:
    compiled = default_rule_set()
    answers = ScreeningAnswers.model_validate(data)
    facts = extract_facts(answers, score_answers(answers, compiled.policies))
    first_override = next(
        (
            rule
            for rule in compiled.safety
            if rule.override_level is not None and rule.condition.evaluate(facts) is True
        ),
        None,
    )
    result = evaluate(compiled, answers)
    if first_override is None:
        return
    assert result.recommended_level is not None
    assert result.recommended_level.level is first_override.override_level
    assert URGENCY_RANK[result.urgency] >= URGENCY_RANK[first_override.urgency]
    assert result.iop.verdict is IopVerdict.HIGHER_LEVEL_NEEDED
    assert {step.stage for step in result.trace} == {Stage.SAFETY}
    assert result.trace[-1].rule_id == first_override.id


HIGH_RISK_CSSRS = {
    "wish_to_be_dead": True,
    "non_specific_active_thoughts": True,
    "method": True,
    "intent": True,
    "plan_with_intent": True,
    "behavior_lifetime": False,
}


@PROPERTY_SETTINGS
@given(data=screening_answers(), trigger=st.sampled_from(["cssrs", "homicide", "medical"]))
def test_emergency_triggers_win_whatever_else_is_answered(
    data: dict[str, Any], trigger: str
) -> None:
    data = copy.deepcopy(data)
    if trigger == "cssrs":
        data["instruments"]["cssrs"] = HIGH_RISK_CSSRS
    elif trigger == "homicide":
        data.setdefault("safety", {})["homicidal_ideation"] = "intent_or_plan"
    else:
        data.setdefault("medical", {})["acute_condition_needing_hospital_care"] = True
    result = evaluate(default_rule_set(), ScreeningAnswers.model_validate(data))
    assert result.recommended_level is not None
    assert result.recommended_level.level is LevelOfCare.EMERGENCY_EVALUATION
    assert result.urgency is Urgency.EMERGENT


@PROPERTY_SETTINGS
@given(data=screening_answers(), ciwa=st.integers(19, 67))
def test_severe_alcohol_withdrawal_always_needs_at_least_inpatient(
    data: dict[str, Any], ciwa: int
) -> None:
    data = copy.deepcopy(data)
    data["instruments"]["ciwa_ar"] = {"total": ciwa}
    result = evaluate(default_rule_set(), ScreeningAnswers.model_validate(data))
    assert result.recommended_level is not None
    assert LEVEL_RANK[result.recommended_level.level] >= LEVEL_RANK[LevelOfCare.INPATIENT]
    assert result.urgency is Urgency.EMERGENT


@PROPERTY_SETTINGS
@given(data=screening_answers())
def test_every_determination_is_consistent_and_reproducible(data: dict[str, Any]) -> None:
    compiled = default_rule_set()
    answers = ScreeningAnswers.model_validate(data)
    result = evaluate(compiled, answers)
    assert determination_to_json(result) == determination_to_json(evaluate(compiled, answers))
    assert (result.status is Status.COMPLETE) == (not result.missing)
    if result.status is Status.INSUFFICIENT_INFORMATION:
        assert result.recommended_level is None
        assert result.iop.verdict is IopVerdict.INSUFFICIENT_INFORMATION
        return
    assert result.recommended_level is not None
    level_rank = LEVEL_RANK[result.recommended_level.level]
    fired = {s.rule_id for s in result.trace if s.result is RuleResult.FIRED}
    for rule in compiled.placement:  # highest need wins: no fired rule asks for more
        if rule.id in fired:
            assert rule.rank <= level_rank
    assert result.recommended_level.decided_by
    assert len(result.eliminated) == len(LevelOfCare) - 1
    assert all(e.reasons for e in result.eliminated)
    if result.iop.verdict is IopVerdict.SUITABLE_WITH_CONDITIONS:
        assert result.barriers or result.conditions
    assert result.iop.reasons


@pytest.mark.parametrize(
    ("example", "level", "verdict", "status"),
    [
        ("adult-iop-suitable", "intensive_outpatient", "suitable", "complete"),
        ("emergency-suicide-risk", "emergency_evaluation", "higher_level_needed", "complete"),
        ("adolescent-step-down", "intensive_outpatient", "suitable_with_conditions", "complete"),
        ("adult-iop-with-barriers", "intensive_outpatient", "suitable_with_conditions", "complete"),
        ("insufficient-information", None, "insufficient_information", "insufficient_information"),
    ],
)
def test_examples_give_the_documented_results(
    example: str, level: str | None, verdict: str, status: str
) -> None:
    answers = ScreeningAnswers.model_validate(
        json.loads((EXAMPLES / f"{example}.json").read_text())
    )
    result = evaluate(default_rule_set(), answers)
    got_level = result.recommended_level.level.value if result.recommended_level else None
    assert (got_level, result.iop.verdict.value, result.status.value) == (level, verdict, status)
