"""Specification of evaluation: stages, precedence, partial results and explanations.

Small rule sets written inline pin down the engine's semantics independently of the clinical
content of the default rule set; the default rule set has its own cases in its YAML. They use
the current semantics; the tests named ``..._semantics_1`` pin down how documents written
before it still evaluate (tests/unit/test_legacy_replay.py proves it on the real one).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from app.engine import ScreeningAnswers, compile_rule_set, determination_to_json, evaluate
from app.engine.compiler import CompiledRuleSet
from app.engine.determination import (
    ENGINE_VERSIONS,
    CitedReason,
    CitedSafetyAlert,
    Determination,
    IopVerdict,
    LevelOfCare,
    Rating,
    Reason,
    RuleResult,
    SafetyAlert,
    Status,
    Urgency,
)
from app.engine.facts import EVERY_FACT, extract_facts
from app.engine.scoring import score_answers

BASE_ANSWERS: dict[str, Any] = {
    "respondent": {"age_group": "adult", "answered_by": "clinician"},
    "presenting_concerns": ["mental_health"],
    "instruments": {"phq9": {"items": [2, 2, 1, 2, 1, 2, 1, 1, 0]}},
    "functioning": {"work_school": "moderate"},
    "supports": {"living_situation": "stable_with_supportive_others"},
    "logistics": {"transport": "own_vehicle", "hours_per_week_available": 12},
}


def rule_set(semantics: int = 2, **stages: list[dict[str, Any]]) -> dict[str, Any]:
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
    return {
        "key": "test-rules",
        "version": "1",
        "semantics": semantics,
        "title": "Test rules",
        "stages": document_stages,
    }


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

OVERRIDES = [
    {
        "id": "s.inpatient-first",
        "description": "listed first, less severe",
        "when": "phq9.total >= 10",
        "override": {"level": "inpatient", "action": "admit"},
        "references": ["Source A"],
    },
    {
        "id": "s.emergency-second",
        "description": "listed second, more severe",
        "when": "true",
        "override": {"level": "emergency_evaluation", "action": "go now"},
        "references": ["Source B"],
    },
    {
        "id": "s.emergency-third",
        "description": "also emergency",
        "when": "phq9.total >= 1",
        "override": {"level": "emergency_evaluation", "action": "go now"},
    },
]


def test_the_most_severe_override_decides_whatever_the_file_order() -> None:
    document = rule_set(
        safety=OVERRIDES,
        placement=[{"id": "p.any", "description": "any", "when": "true", "level": "residential"}],
    )
    result = run(document)
    assert result.recommended_level is not None
    assert result.recommended_level.level is LevelOfCare.EMERGENCY_EVALUATION
    assert result.urgency is Urgency.EMERGENT
    assert result.iop.verdict is IopVerdict.HIGHER_LEVEL_NEEDED
    # every override is evaluated and reported; the two at the most severe level decide
    assert [step.rule_id for step in result.trace] == [rule["id"] for rule in OVERRIDES]
    assert [a.rule_id for a in result.safety_alerts] == [rule["id"] for rule in OVERRIDES]
    assert all(a.ends_evaluation for a in result.safety_alerts)
    assert [r.rule_id for r in result.recommended_level.decided_by] == [
        "s.emergency-second",
        "s.emergency-third",
    ]
    assert "p.any" not in results(result)  # no later stage runs
    ruled_out = {e.level: e.reasons for e in result.eliminated}
    assert [r.rule_id for r in ruled_out[LevelOfCare.INPATIENT]] == [
        "s.emergency-second",
        "s.emergency-third",
    ]


def test_the_first_override_in_file_order_decides_under_semantics_1() -> None:
    result = run(rule_set(semantics=1, safety=OVERRIDES))
    assert result.recommended_level is not None
    assert result.recommended_level.level is LevelOfCare.INPATIENT
    assert [step.rule_id for step in result.trace] == ["s.inpatient-first"]
    assert result.engine_version == ENGINE_VERSIONS[1]
    assert type(result.recommended_level.decided_by[0]) is Reason  # no references then


def test_reasons_and_alerts_carry_their_rules_references() -> None:
    result = run(rule_set(safety=OVERRIDES))
    assert result.engine_version == ENGINE_VERSIONS[2]
    assert result.recommended_level is not None
    decided = result.recommended_level.decided_by[0]
    assert isinstance(decided, CitedReason)
    assert decided.references == ("Source B",)
    alert = result.safety_alerts[0]
    assert isinstance(alert, CitedSafetyAlert)
    assert alert.references == ("Source A",)
    default = run(rule_set()).iop.reasons[0]  # the engine's own reasons: same shape, no sources
    assert default.rule_id is None
    assert isinstance(default, CitedReason)
    assert default.references == ()
    document = determination_to_json(result).decode()
    assert '"references":["Source B"]' in document
    legacy = determination_to_json(run(rule_set(semantics=1, safety=OVERRIDES))).decode()
    assert "references" not in legacy
    assert type(run(rule_set(semantics=1, safety=OVERRIDES)).safety_alerts[0]) is SafetyAlert


def test_alerts_are_all_kept_and_raise_urgency() -> None:
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


REQUIRES_SCREEN = {
    "id": "s.needs",
    "description": "needs more",
    "when": "true",
    "alert": {"action": "screen today", "requires": ["C-SSRS screener"]},
}
IOP_ALWAYS = [
    {"id": "p.iop", "description": "iop", "when": "true", "level": "intensive_outpatient"}
]


def test_a_required_assessment_withholds_the_iop_verdict() -> None:
    result = run(rule_set(safety=[REQUIRES_SCREEN], placement=IOP_ALWAYS))
    assert result.status is Status.PARTIAL
    assert result.urgency is Urgency.URGENT
    assert [(m.item, m.needed_by) for m in result.missing] == [("C-SSRS screener", ("s.needs",))]
    assert result.recommended_level is not None  # placed, provisionally
    assert result.recommended_level.level is LevelOfCare.INTENSIVE_OUTPATIENT
    assert result.iop.verdict is IopVerdict.PENDING_SAFETY_ASSESSMENT
    pending, provisional = result.iop.reasons
    assert pending.rule_id == "s.needs"
    assert "C-SSRS screener" in pending.text
    assert "screen today" in pending.text
    assert provisional.text.startswith("Provisional")


def test_a_required_assessment_never_claims_a_lower_level_is_enough() -> None:
    result = run(rule_set(safety=[REQUIRES_SCREEN]))  # placed at outpatient
    assert result.iop.verdict is IopVerdict.PENDING_SAFETY_ASSESSMENT


def test_a_level_above_iop_stays_higher_level_needed_while_an_assessment_is_open() -> None:
    placement = [
        {"id": "p.php", "description": "php", "when": "true", "level": "partial_hospitalization"}
    ]
    result = run(rule_set(safety=[REQUIRES_SCREEN], placement=placement))
    assert result.iop.verdict is IopVerdict.HIGHER_LEVEL_NEEDED  # more evidence never lowers
    assert result.status is Status.PARTIAL


def test_a_required_assessment_only_makes_the_result_partial_under_semantics_1() -> None:
    result = run(rule_set(semantics=1, safety=[REQUIRES_SCREEN], placement=IOP_ALWAYS))
    assert result.status is Status.PARTIAL
    assert result.iop.verdict is IopVerdict.SUITABLE


VIOLENCE_OVERRIDE = {
    "id": "s.violence",
    "description": "violence",
    "when": "safety.recent_violence",
    "override": {"level": "emergency_evaluation", "action": "go"},
}


def test_an_undecided_safety_override_is_an_open_question() -> None:
    result = run(rule_set(safety=[VIOLENCE_OVERRIDE], placement=IOP_ALWAYS))
    assert results(result)["s.violence"] is RuleResult.UNDETERMINED
    assert result.status is Status.PARTIAL
    assert result.urgency is Urgency.URGENT
    assert [m.item for m in result.missing] == ["safety.recent_violence"]
    assert result.iop.verdict is IopVerdict.PENDING_SAFETY_ASSESSMENT
    assert "safety.recent_violence" in result.iop.reasons[0].text


def test_an_undecided_alert_that_would_require_an_assessment_is_an_open_question() -> None:
    alert = {**REQUIRES_SCREEN, "when": "safety.acutely_intoxicated"}
    result = run(rule_set(safety=[alert], placement=IOP_ALWAYS))
    assert result.iop.verdict is IopVerdict.PENDING_SAFETY_ASSESSMENT
    assert result.urgency is Urgency.URGENT


def test_an_undecided_alert_without_requirements_only_makes_the_result_partial() -> None:
    alert = {
        "id": "s.report",
        "description": "report",
        "when": "safety.dependents_at_risk",
        "alert": {"action": "report today"},
    }
    result = run(rule_set(safety=[alert], placement=IOP_ALWAYS))
    assert result.status is Status.PARTIAL
    assert result.urgency is Urgency.ROUTINE
    assert result.iop.verdict is IopVerdict.SUITABLE


def test_an_undecided_override_is_provisional_only_under_semantics_1() -> None:
    result = run(rule_set(semantics=1, safety=[VIOLENCE_OVERRIDE]))
    assert result.status is Status.PARTIAL
    assert result.urgency is Urgency.ROUTINE
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


def test_an_undetermined_higher_override_is_reported_when_a_lower_one_fires() -> None:
    document = rule_set(
        safety=[
            {
                "id": "s.inpatient",
                "description": "fires",
                "when": "true",
                "override": {"level": "inpatient", "action": "admit"},
            },
            VIOLENCE_OVERRIDE,
        ]
    )
    result = run(document)
    assert result.recommended_level is not None
    assert result.recommended_level.level is LevelOfCare.INPATIENT
    assert result.status is Status.PARTIAL
    assert [m.item for m in result.missing] == ["safety.recent_violence"]


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


# --- facts the safety rules read -------------------------------------------------------------


def facts_of(data: dict[str, Any], document: dict[str, Any] | None = None) -> dict[str, object]:
    compiled = compile_rule_set(document or rule_set())
    given = ScreeningAnswers.model_validate(data)
    return extract_facts(
        given, score_answers(given, compiled.policies), EVERY_FACT, compiled.policies
    )


def test_a_declined_item_keeps_the_band_the_answered_items_establish() -> None:
    data = copy.deepcopy(BASE_ANSWERS)
    data["instruments"]["phq9"]["items"] = [2, 2, "declined", 2, 1, 2, 2, 2, 0]  # 13 to 16
    facts = facts_of(data)
    assert facts["phq9.band"] is None  # moderate or moderately severe: unknown
    assert facts["phq9.band_at_least"] == "moderate"  # but at least moderate
    assert facts["phq9.total_at_least"] == 13


@pytest.mark.parametrize(
    ("patch", "evidence"),
    [
        ({}, {}),
        ({"presenting_concerns": ["eating_disorder"]}, {"eating_disorder": True}),
        ({"co_occurring": {"eating": "suspected"}}, {"eating_disorder": True}),
        (
            {"instruments": {"scoff": {"items": [True, True, False, False, False]}}},
            {"eating_disorder": True},
        ),
        (
            {"instruments": {"audit_c": {"items": [2, 1, 1]}}},  # 4: positive for anyone
            {"alcohol": True, "substance_use": True},
        ),
        (
            {"instruments": {"audit_c": {"items": [1, 1, "declined"]}}},  # 2 to 6: undecided
            {"alcohol": None, "substance_use": None},
        ),
        (
            {"withdrawal": {"heavy_daily_use": ["opioids", "sedatives"]}},
            {"opioids": True, "sedatives": True, "drugs": True, "substance_use": True},
        ),
        (
            {"co_occurring": {"substance_use": {"cannabis": "known"}}},
            {"drugs": True, "substance_use": True},
        ),
        ({"instruments": {"cows": {"total": 6}}}, {"opioids": True, "substance_use": True}),
        ({"presenting_concerns": ["substance_use"]}, {"substance_use": True}),
    ],
)
def test_evidence_facts_count_every_signal_whatever_the_concern(
    patch: dict[str, Any], evidence: dict[str, bool | None]
) -> None:
    data = copy.deepcopy(BASE_ANSWERS)
    for key, value in patch.items():
        if key == "instruments":
            data["instruments"].update(value)
        else:
            data[key] = value
    facts = facts_of(data)
    expected = {
        "alcohol": False,
        "sedatives": False,
        "opioids": False,
        "drugs": False,
        "substance_use": False,
        "eating_disorder": False,
    } | evidence
    assert {name: facts[f"evidence.{name}"] for name in expected} == expected


def test_adolescents_are_scored_with_the_adolescent_cut_offs() -> None:
    document = rule_set()
    document["instruments"] = {
        "audit_c": {
            "positive_at": {"male": 4, "female": 3, "unknown": 3},
            "adolescent": {"positive_at": 3},
        }
    }
    compiled = compile_rule_set(document)
    data = copy.deepcopy(BASE_ANSWERS)
    data["respondent"] = {
        "age_group": "adolescent",
        "answered_by": "clinician",
        "sex_for_scoring": "male",
    }
    data["instruments"]["audit_c"] = {"items": [1, 1, 1]}  # 3
    adolescent = evaluate(compiled, ScreeningAnswers.model_validate(data))
    score = next(s for s in adolescent.scores if s.instrument.value == "audit_c")
    assert (score.positive, score.cut_off) == (True, 3)
    assert "Scored with the rule set's adolescent cut-offs." in score.notes
    data["respondent"]["age_group"] = "adult"
    adult = evaluate(compiled, ScreeningAnswers.model_validate(data))
    score = next(s for s in adult.scores if s.instrument.value == "audit_c")
    assert (score.positive, score.cut_off) == (False, 4)


def test_the_age_in_years_must_agree_with_the_age_group() -> None:
    data = copy.deepcopy(BASE_ANSWERS)
    data["respondent"] = {"age_group": "adult", "answered_by": "clinician", "age_years": 16}
    with pytest.raises(ValidationError, match="age_years must agree"):
        ScreeningAnswers.model_validate(data)
    data["respondent"]["age_years"] = 18
    ScreeningAnswers.model_validate(data)
