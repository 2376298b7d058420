"""The shipped default rule set: its own cases, its examples, and consistency over generated
answers. The safety properties it must keep are in test_safety_properties.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from app.engine import (
    ScreeningAnswers,
    default_rule_set,
    determination_to_json,
    evaluate,
    run_tests,
)
from app.engine.determination import (
    CURRENT_SEMANTICS,
    LEVEL_RANK,
    IopVerdict,
    LevelOfCare,
    Rating,
    RuleResult,
    Status,
)
from tests.strategies import screening_answers

EXAMPLES = Path(__file__).parents[2] / "examples"
PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def test_default_rule_set_passes_its_own_checks() -> None:
    compiled = default_rule_set()
    report = run_tests(compiled)
    failures = {case.name: case.failures for case in report.cases if not case.passed}
    assert failures == {}
    assert report.never_fired == ()
    assert report.monotonicity == ()
    assert report.uncited == ()
    assert report.passed
    assert len(report.cases) >= 190
    assert compiled.semantics == CURRENT_SEMANTICS


def test_default_rule_set_reads_every_question() -> None:
    """Every question the questionnaire asks is read by a rule or shown as context."""
    assert default_rule_set().unread_questions == ()


def test_default_rule_set_checks_contradictions_and_shows_context() -> None:
    compiled = default_rule_set()
    assert compiled.consistency
    assert all(rule.id.startswith("consistency.") for rule in compiled.consistency)
    assert compiled.document.context == ["respondent.answered_by"]


@PROPERTY_SETTINGS
@given(data=screening_answers())
def test_every_determination_is_consistent_and_explained(data: dict[str, Any]) -> None:
    compiled = default_rule_set()
    answers = ScreeningAnswers.model_validate(data)
    result = evaluate(compiled, answers)
    assert determination_to_json(result) == determination_to_json(evaluate(compiled, answers))
    assert (result.status is Status.COMPLETE) == (not result.missing)
    assert result.iop.reasons
    assert all(getattr(reason, "references", None) is not None for reason in result.iop.reasons)
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
    if result.iop.verdict is IopVerdict.SUITABLE:  # plain "suitable" never beside a severe need
        assert all(d.rating in (Rating.NONE, Rating.MILD, Rating.MODERATE) for d in result.domains)
    if result.iop.verdict is IopVerdict.PENDING_SAFETY_ASSESSMENT:
        assert result.status is Status.PARTIAL
        assert level_rank <= LEVEL_RANK[LevelOfCare.INTENSIVE_OUTPATIENT]


def test_an_acute_asq_is_the_emergency_alone() -> None:
    """An acute ASQ positive sends to emergency evaluation without also asking for the brief
    assessment meant for a non-acute positive (both would be read as the plan)."""
    data = json.loads((EXAMPLES / "adolescent-crafft-asq.json").read_text())
    data["instruments"]["asq"] = {"items": [True, False, True, False], "acute": True}
    result = evaluate(default_rule_set(), ScreeningAnswers.model_validate(data))
    fired = {s.rule_id for s in result.trace if s.result is RuleResult.FIRED}
    assert result.recommended_level is not None
    assert result.recommended_level.level is LevelOfCare.EMERGENCY_EVALUATION
    assert "safety.asq-positive" not in fired


@pytest.mark.parametrize(
    ("example", "level", "verdict", "status"),
    [
        # Substance use with suspected depression: from 2026.12.1 the program must be
        # co-occurring capable, a condition on an otherwise suitable IOP.
        ("adult-iop-suitable", "intensive_outpatient", "suitable_with_conditions", "complete"),
        ("emergency-suicide-risk", "emergency_evaluation", "higher_level_needed", "complete"),
        ("adolescent-step-down", "intensive_outpatient", "suitable_with_conditions", "complete"),
        ("adult-iop-with-barriers", "intensive_outpatient", "suitable_with_conditions", "complete"),
        ("insufficient-information", None, "insufficient_information", "insufficient_information"),
        ("adolescent-crafft-asq", "intensive_outpatient", "pending_safety_assessment", "partial"),
        ("older-adult-alcohol", "intensive_outpatient", "suitable_with_conditions", "complete"),
        ("iop-step-up", "partial_hospitalization", "higher_level_needed", "complete"),
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
