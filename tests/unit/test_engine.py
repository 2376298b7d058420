"""Specification of evaluation: stages, precedence, partial results and explanations.

Small rule sets written inline pin down the engine's semantics independently of the clinical
content of the default rule set; the default rule set has its own cases in its YAML.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from app.engine import ScreeningAnswers, compile_rule_set, determination_to_json, evaluate
from app.engine.compiler import CompiledRuleSet
from app.engine.determination import (
    Determination,
    IopVerdict,
    LevelOfCare,
    Rating,
    RuleResult,
    Status,
    Urgency,
)

BASE_ANSWERS: dict[str, Any] = {
    "respondent": {"age_group": "adult", "answered_by": "clinician"},
    "presenting_concerns": ["mental_health"],
    "instruments": {"phq9": {"items": [2, 2, 1, 2, 1, 2, 1, 1, 0]}},
    "functioning": {"work_school": "moderate"},
    "supports": {"living_situation": "stable_with_supportive_others"},
    "logistics": {"transport": "own_vehicle", "hours_per_week_available": 12},
}


def rule_set(**stages: list[dict[str, Any]]) -> dict[str, Any]:
    """A minimal valid rule-set document with the given stage rules."""
    document_stages: list[dict[str, Any]] = [
        {"stage": "safety", "rules": stages.get("safety") or [_never_override()]}
    ]
    if "information" in stages:
        document_stages.append({"stage": "information", "rules": stages["information"]})
    if "domains" in stages:
        document_stages.append({"stage": "domains", "rules": stages["domains"]})
    document_stages.append(
        {
            "stage": "placement",
            "default_level": "outpatient",
            "default_reason": "Nothing calls for more than weekly outpatient care.",
            "rules": stages.get("placement")
            or [{"id": "p.never", "description": "never", "when": "false", "level": "residential"}],
        }
    )
    if "feasibility" in stages:
        document_stages.append({"stage": "feasibility", "rules": stages["feasibility"]})
    return {"key": "test-rules", "version": "1", "title": "Test rules", "stages": document_stages}


def _never_override() -> dict[str, Any]:
    return {
        "id": "s.never",
        "description": "never fires",
        "when": "false",
        "override": {"level": "inpatient", "action": "admit"},
    }


def answers(**patch: Any) -> ScreeningAnswers:
    data = copy.deepcopy(BASE_ANSWERS)
    for key, value in patch.items():
        data[key] = value
    return ScreeningAnswers.model_validate(data)


def run(document: dict[str, Any], given: ScreeningAnswers | None = None) -> Determination:
    return evaluate(compile_rule_set(document), given or answers())


def results(determination: Determination) -> dict[str, RuleResult]:
    return {step.rule_id: step.result for step in determination.trace}


# --- safety ----------------------------------------------------------------------------------


def test_first_override_ends_the_evaluation_and_later_stages_never_run() -> None:
    document = rule_set(
        safety=[
            {
                "id": "s.first",
                "description": "first",
                "when": "phq9.total >= 10",
                "override": {"level": "emergency_evaluation", "action": "go now"},
            },
            {
                "id": "s.second",
                "description": "second",
                "when": "true",
                "override": {"level": "inpatient", "action": "admit"},
            },
        ],
        placement=[{"id": "p.any", "description": "any", "when": "true", "level": "residential"}],
    )
    result = run(document)
    assert result.recommended_level is not None
    assert result.recommended_level.level is LevelOfCare.EMERGENCY_EVALUATION
    assert result.urgency is Urgency.EMERGENT
    assert result.iop.verdict is IopVerdict.HIGHER_LEVEL_NEEDED
    assert [step.rule_id for step in result.trace] == ["s.first"]
    assert {e.level for e in result.eliminated} == set(LevelOfCare) - {
        LevelOfCare.EMERGENCY_EVALUATION
    }
    assert all("s.first" in (r.rule_id or "") for e in result.eliminated for r in e.reasons)


def test_alerts_before_an_override_are_kept_and_raise_urgency() -> None:
    document = rule_set(
        safety=[
            {
                "id": "s.alert",
                "description": "alert",
                "when": "true",
                "alert": {"urgency": "urgent", "action": "call today"},
            },
            _never_override(),
        ]
    )
    result = run(document)
    assert [a.rule_id for a in result.safety_alerts] == ["s.alert"]
    assert result.urgency is Urgency.URGENT
    assert not result.safety_alerts[0].ends_evaluation


def test_alert_requirements_make_the_result_partial() -> None:
    document = rule_set(
        safety=[
            {
                "id": "s.needs",
                "description": "needs more",
                "when": "true",
                "alert": {"action": "screen", "requires": ["C-SSRS screener"]},
            }
        ]
    )
    result = run(document)
    assert result.status is Status.PARTIAL
    assert [(m.item, m.needed_by) for m in result.missing] == [("C-SSRS screener", ("s.needs",))]


def test_undetermined_override_makes_the_result_partial_naming_the_fact() -> None:
    document = rule_set(
        safety=[
            {
                "id": "s.violence",
                "description": "violence",
                "when": "safety.recent_violence",
                "override": {"level": "emergency_evaluation", "action": "go"},
            }
        ]
    )
    result = run(document)
    assert results(result)["s.violence"] is RuleResult.UNDETERMINED
    assert result.status is Status.PARTIAL
    assert [m.item for m in result.missing] == ["safety.recent_violence"]
    assert result.recommended_level is not None  # a partial result still places the person
    assert result.iop.reasons[-1].text.startswith("Provisional")  # and says it is provisional


def test_an_undetermined_lower_override_does_not_stop_a_higher_one_from_being_complete() -> None:
    document = rule_set(
        safety=[
            {
                "id": "s.unknown-inpatient",
                "description": "unknown",
                "when": "safety.recent_violence",
                "override": {"level": "inpatient", "action": "admit"},
            },
            {
                "id": "s.emergency",
                "description": "emergency",
                "when": "true",
                "override": {"level": "emergency_evaluation", "action": "go"},
            },
        ]
    )
    result = run(document)
    assert result.recommended_level is not None
    assert result.recommended_level.level is LevelOfCare.EMERGENCY_EVALUATION
    assert result.status is Status.COMPLETE


# --- information ------------------------------------------------------------------------------


def test_insufficient_information_gives_no_level_and_lists_what_is_missing() -> None:
    document = rule_set(
        information=[
            {
                "id": "i.no-gad7",
                "description": "no anxiety measure",
                "when": "!gad7.given",
                "missing": ["GAD-7"],
            }
        ],
        placement=[{"id": "p.any", "description": "any", "when": "true", "level": "residential"}],
    )
    result = run(document)
    assert result.status is Status.INSUFFICIENT_INFORMATION
    assert result.recommended_level is None
    assert result.iop.verdict is IopVerdict.INSUFFICIENT_INFORMATION
    assert [m.item for m in result.missing] == ["GAD-7"]
    assert "p.any" not in results(result)  # never a guess: placement does not run


# --- domains and placement ---------------------------------------------------------------------


def test_highest_domain_rating_wins_and_keeps_its_evidence() -> None:
    document = rule_set(
        domains=[
            {
                "id": "d.mild",
                "description": "mild",
                "when": "true",
                "domain": "psychiatric",
                "rating": "mild",
            },
            {
                "id": "d.severe",
                "description": "severe",
                "when": "phq9.total >= 10",
                "domain": "psychiatric",
                "rating": "severe",
            },
            {
                "id": "d.severe-too",
                "description": "also severe",
                "when": "true",
                "domain": "psychiatric",
                "rating": "severe",
            },
        ]
    )
    result = run(document)
    psychiatric = next(d for d in result.domains if d.domain.value == "psychiatric")
    assert psychiatric.rating is Rating.SEVERE
    assert [e.rule_id for e in psychiatric.evidence] == ["d.severe", "d.severe-too"]
    assert all(
        d.rating is Rating.NONE and not d.evidence
        for d in result.domains
        if d.domain.value != "psychiatric"
    )


def test_highest_level_wins_no_averaging() -> None:
    document = rule_set(
        domains=[
            {
                "id": "d.func",
                "description": "impaired",
                "when": 'functioning.worst >= "moderate"',
                "domain": "functioning",
                "rating": "moderate",
            }
        ],
        placement=[
            {"id": "p.iop", "description": "iop", "when": "true", "level": "intensive_outpatient"},
            {
                "id": "p.php",
                "description": "php",
                "when": 'domains.functioning >= "moderate"',
                "level": "partial_hospitalization",
            },
            {
                "id": "p.iop2",
                "description": "iop2",
                "when": "true",
                "level": "intensive_outpatient",
            },
        ],
    )
    result = run(document)
    assert result.recommended_level is not None
    assert result.recommended_level.level is LevelOfCare.PARTIAL_HOSPITALIZATION
    assert [r.rule_id for r in result.recommended_level.decided_by] == ["p.php"]
    assert result.iop.verdict is IopVerdict.HIGHER_LEVEL_NEEDED
    ruled_out = {e.level: e for e in result.eliminated}
    assert [r.rule_id for r in ruled_out[LevelOfCare.INTENSIVE_OUTPATIENT].reasons] == ["p.php"]


def test_default_level_when_no_placement_rule_fires_explains_itself() -> None:
    result = run(rule_set())
    assert result.recommended_level is not None
    assert result.recommended_level.level is LevelOfCare.OUTPATIENT
    assert result.recommended_level.decided_by[0].rule_id is None
    assert result.iop.verdict is IopVerdict.LOWER_LEVEL_SUFFICIENT
    why_not_residential = {e.level: e for e in result.eliminated}[LevelOfCare.RESIDENTIAL]
    assert why_not_residential.reasons[0].text.startswith("Not met: ")


def test_undetermined_placement_above_the_result_is_missing_but_below_is_not() -> None:
    document = rule_set(
        placement=[
            {"id": "p.iop", "description": "iop", "when": "true", "level": "intensive_outpatient"},
            {
                "id": "p.low-unknown",
                "description": "unknown but lower",
                "when": "treatment_history.outpatient_not_effective",
                "level": "outpatient",
            },
            {
                "id": "p.high-unknown",
                "description": "unknown and higher",
                "when": "treatment_history.discharged_last_30_days",
                "level": "residential",
            },
        ]
    )
    result = run(document)
    assert [m.item for m in result.missing] == ["treatment_history.discharged_last_30_days"]
    assert result.status is Status.PARTIAL


def test_conditions_attach_to_ambulatory_levels_only() -> None:
    condition = {"code": "recovery_residence", "description": "safe housing"}
    placement = [
        {
            "id": "p.housing",
            "description": "housing",
            "when": "true",
            "level": "intensive_outpatient",
            "conditions": [condition],
        }
    ]
    ambulatory = run(rule_set(placement=placement))
    assert [c.code for c in ambulatory.conditions] == ["recovery_residence"]
    assert ambulatory.iop.verdict is IopVerdict.SUITABLE_WITH_CONDITIONS
    placement.append({"id": "p.res", "description": "res", "when": "true", "level": "residential"})
    residential = run(rule_set(placement=placement))
    assert residential.conditions == ()


# --- feasibility -------------------------------------------------------------------------------

BARRIER_RULES = [
    {
        "id": "f.transport",
        "description": "no transport",
        "when": 'logistics.transport == "none"',
        "barrier": {
            "code": "transport",
            "description": "No transport.",
            "accommodations": [
                {
                    "code": "telehealth_program",
                    "description": "Telehealth.",
                    "when": "logistics.telehealth_capable",
                },
                {"code": "transport_assistance", "description": "Transport help."},
            ],
        },
    }
]


def test_barriers_never_change_the_level_but_qualify_iop() -> None:
    document = rule_set(
        placement=[
            {"id": "p.iop", "description": "iop", "when": "true", "level": "intensive_outpatient"}
        ],
        feasibility=BARRIER_RULES,
    )
    logistics = {
        "transport": "none",
        "telehealth": {"device": True, "private_space": True, "reliable_connection": True},
    }
    result = run(document, answers(logistics=logistics))
    assert result.recommended_level is not None
    assert result.recommended_level.level is LevelOfCare.INTENSIVE_OUTPATIENT
    assert result.iop.verdict is IopVerdict.SUITABLE_WITH_CONDITIONS
    (barrier,) = result.barriers
    assert [a.code for a in barrier.accommodations] == [
        "telehealth_program",
        "transport_assistance",
    ]
    logistics["telehealth"] = {"device": False}
    no_telehealth = run(document, answers(logistics=logistics))
    assert [a.code for a in no_telehealth.barriers[0].accommodations] == ["transport_assistance"]


def test_hours_guidance_depends_on_age_group() -> None:
    document = rule_set(
        placement=[
            {"id": "p.iop", "description": "iop", "when": "true", "level": "intensive_outpatient"}
        ],
        feasibility=[
            {
                "id": "f.hours",
                "description": "too few hours",
                "when": "logistics.hours_per_week_available < placement.minimum_hours_per_week",
                "barrier": {
                    "code": "insufficient_hours",
                    "description": "Too few hours.",
                    "accommodations": [{"code": "schedule_plan", "description": "Plan time."}],
                },
            }
        ],
    )
    seven_hours = {"transport": "own_vehicle", "hours_per_week_available": 7}
    adult = run(document, answers(logistics=seven_hours))
    adolescent = run(
        document,
        answers(
            logistics=seven_hours,
            respondent={"age_group": "adolescent", "answered_by": "clinician"},
        ),
    )
    assert [b.code for b in adult.barriers] == ["insufficient_hours"]
    assert adolescent.barriers == ()
    assert adult.recommended_level is not None
    assert adolescent.recommended_level is not None
    assert adult.recommended_level.hours_per_week.minimum_per_week == 9
    assert adolescent.recommended_level.hours_per_week.minimum_per_week == 6


# --- output ------------------------------------------------------------------------------------


def test_determination_carries_scores_rule_set_identity_and_disclaimer() -> None:
    compiled: CompiledRuleSet = compile_rule_set(rule_set())
    result = evaluate(compiled, answers())
    assert result.rule_set == compiled.ref
    assert len(result.rule_set.sha256) == 64
    assert result.engine_version
    assert "not a diagnosis" in result.disclaimer
    (phq9,) = result.scores
    assert (phq9.total, phq9.band, phq9.loinc_total) == (12, "moderate", "44261-6")


@pytest.mark.parametrize("version", [None, "7"])
def test_version_label_can_be_set_by_the_caller(version: str | None) -> None:
    compiled = compile_rule_set(rule_set(), version=version)
    assert compiled.version == (version or "1")


def test_same_inputs_give_byte_identical_json() -> None:
    compiled = compile_rule_set(rule_set(feasibility=BARRIER_RULES))
    first = determination_to_json(evaluate(compiled, answers()))
    again = determination_to_json(
        evaluate(compile_rule_set(rule_set(feasibility=BARRIER_RULES)), answers())
    )
    assert first == again
