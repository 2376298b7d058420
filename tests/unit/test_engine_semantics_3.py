"""Engine 3.0.0 (rule-set ``semantics: 3``): consistency rules, context answers, the answers
that did not affect a result, and how each eliminated level relates to the recommended one.

Small inline rule sets pin the semantics down independently of the shipped rule set.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from app.cli import main
from app.engine import (
    RuleSetError,
    ScreeningAnswers,
    compile_rule_set,
    default_rule_set,
    evaluate,
)
from app.engine.answered import answers_read
from app.engine.compiler import CompiledRuleSet
from app.engine.determination import (
    LEVEL_ORDER,
    Determination,
    ExplainedDetermination,
    LevelOfCare,
    RelatedEliminatedLevel,
    Relation,
    Status,
    determination_to_json,
)
from app.engine.testing import case_answers, run_tests
from app.screenings.readable import about_determination, document, markdown
from tests.strategies import screening_answers
from tests.unit.test_engine import rule_set

PROPERTY = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
Answers = dict[str, Any]

PREGNANT_MALE = {
    "id": "consistency.pregnant-and-male",
    "description": "Pregnancy is reported for a person scored as male.",
    "when": 'has(medical.pregnant) && medical.pregnant && respondent.sex_for_scoring == "male"',
    "confirm": "Confirm the pregnancy answer and the sex used for scoring with the person.",
    "references": ["Own wording; consistency check."],
}
EMERGENCY = {
    "id": "s.emergency",
    "description": "High suicide risk on the C-SSRS screener.",
    "when": 'cssrs.tier == "high"',
    "override": {"level": "emergency_evaluation", "action": "Call 988 or 911 now."},
    "references": ["Posner 2011"],
}
INPATIENT = {
    "id": "s.inpatient",
    "description": "Needs hospital care for a medical condition.",
    "when": "has(medical.acute_condition_needing_hospital_care) && "
    "medical.acute_condition_needing_hospital_care",
    "override": {"level": "inpatient", "action": "Admit."},
    "references": ["X"],
}
IOP = {
    "id": "p.iop",
    "description": "Moderate depression.",
    "when": "phq9.total >= 10",
    "level": "intensive_outpatient",
    "references": ["Kroenke 2001"],
}
BASE: Answers = {
    "respondent": {"age_group": "adult", "answered_by": "clinician", "sex_for_scoring": "male"},
    "presenting_concerns": ["mental_health"],
    "instruments": {
        "phq9": {"items": [2, 2, 1, 2, 1, 2, 1, 1, 0]},
        "cssrs": {
            "wish_to_be_dead": False,
            "non_specific_active_thoughts": False,
            "behavior_lifetime": False,
        },
    },
    "medical": {"pregnant": False, "acute_condition_needing_hospital_care": False},
    "functioning": {"work_school": "moderate"},
}


def third(**stages: list[dict[str, Any]]) -> dict[str, Any]:
    """A semantics-3 document with a consistency stage and ``respondent.answered_by`` as
    context."""
    document = rule_set(semantics=3, **stages)
    document["stages"].insert(1, {"stage": "consistency", "rules": [PREGNANT_MALE]})
    document["context"] = ["respondent.answered_by"]
    return document


THIRD = compile_rule_set(third(safety=[EMERGENCY, INPATIENT], placement=[IOP]))


def run(answers: Answers, compiled: CompiledRuleSet = THIRD) -> Determination:
    return evaluate(compiled, ScreeningAnswers.model_validate(answers))


def with_(answers: Answers, **sections: dict[str, Any]) -> Answers:
    changed = copy.deepcopy(answers)
    for name, values in sections.items():
        changed[name] = {**changed.get(name, {}), **values}
    return changed


# --- contradictions ----------------------------------------------------------------------------


def test_a_contradiction_makes_the_result_partial_and_changes_neither_level_nor_urgency() -> None:
    plain = run(BASE)
    found = run(with_(BASE, medical={"pregnant": True}))
    assert plain.status is Status.COMPLETE
    assert found.status is Status.PARTIAL
    assert isinstance(found, ExplainedDetermination)
    assert [c.rule_id for c in found.contradictions] == ["consistency.pregnant-and-male"]
    assert found.contradictions[0].references == ("Own wording; consistency check.",)
    assert [m.label for m in found.missing] == [PREGNANT_MALE["confirm"]]
    assert found.recommended_level == plain.recommended_level
    assert (found.urgency, found.iop.verdict) == (plain.urgency, plain.iop.verdict)
    assert found.iop.reasons[-1].text.startswith("Provisional")


def test_consistency_runs_also_when_an_override_fires() -> None:
    emergency = {
        **BASE["instruments"]["cssrs"],
        "behavior_lifetime": True,
        "behavior_past_3_months": True,
    }
    answers = with_(BASE, medical={"pregnant": True}, instruments={"cssrs": emergency})
    found = run(answers)
    assert found.recommended_level is not None
    assert found.recommended_level.level is LevelOfCare.EMERGENCY_EVALUATION
    assert isinstance(found, ExplainedDetermination)
    assert found.contradictions
    assert found.status is Status.PARTIAL


def test_an_undetermined_consistency_rule_is_silent() -> None:
    answers = copy.deepcopy(BASE)
    del answers["medical"]
    found = run(answers)
    assert isinstance(found, ExplainedDetermination)
    assert found.contradictions == ()
    assert found.status is Status.COMPLETE


# --- context and the answers not used ----------------------------------------------------------


def test_context_and_answers_not_used_are_listed() -> None:
    found = run(with_(BASE, engagement={"readiness_stage": "action"}))
    assert isinstance(found, ExplainedDetermination)
    assert [(c.item, c.value) for c in found.context] == [("respondent.answered_by", "clinician")]
    unused = [a.item for a in found.answers_not_used]
    assert "engagement.readiness_stage" in unused
    assert "functioning.work_school" in unused
    assert "respondent.answered_by" not in unused  # context, not "unused"
    assert "instruments.phq9" not in unused  # read by p.iop


def test_after_an_emergency_override_the_functioning_answers_were_not_used() -> None:
    emergency = {
        **BASE["instruments"]["cssrs"],
        "behavior_lifetime": True,
        "behavior_past_3_months": True,
    }
    found = run(with_(BASE, instruments={"cssrs": emergency}))
    assert isinstance(found, ExplainedDetermination)
    unused = [a.item for a in found.answers_not_used]
    assert "functioning.work_school" in unused
    assert "instruments.phq9" in unused
    assert "presenting_concerns" in unused  # nothing after the safety stage read it


def _given_paths(compiled: CompiledRuleSet, answers: Answers) -> set[str]:
    given: set[str] = set()
    for path in compiled.questions:
        node: Any = answers
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            given.add(path)
    return given


def _read_by_evaluated_rules(compiled: CompiledRuleSet, result: Determination) -> frozenset[str]:
    evaluated = {step.rule_id for step in result.trace}
    rules = [
        rule
        for stage in (
            compiled.safety,
            compiled.consistency,
            compiled.information,
            compiled.domains,
            compiled.placement,
            compiled.feasibility,
        )
        for rule in stage
        if rule.id in evaluated
    ]
    return answers_read((rule.condition for rule in rules), compiled.catalogue)


@PROPERTY
@given(data=screening_answers())
def test_every_answer_not_used_was_given_and_read_by_no_rule_evaluated(data: Answers) -> None:
    result = run(data)
    assert isinstance(result, ExplainedDetermination)
    unused = {answer.item for answer in result.answers_not_used}
    given_paths = _given_paths(THIRD, data)
    read = _read_by_evaluated_rules(THIRD, result)
    assert unused <= given_paths
    assert not unused & read
    assert not unused & set(THIRD.document.context)
    # and every answer given that no evaluated rule read is listed (the engine itself reads
    # the presenting concerns and the age group once past the safety stage)
    engine_reads = {"presenting_concerns", "respondent.age_group"} if result.domains else set()
    if result.recommended_level is None:
        engine_reads = {"presenting_concerns"}
    expected = given_paths - read - set(THIRD.document.context) - engine_reads
    assert expected <= unused


# --- eliminated levels -------------------------------------------------------------------------


def _relations(result: Determination) -> dict[LevelOfCare, Relation]:
    """Each eliminated level's relation (engine 3.0.0 eliminates only related levels)."""
    relations = {}
    for eliminated in result.eliminated:
        assert isinstance(eliminated, RelatedEliminatedLevel)
        relations[eliminated.level] = eliminated.relation
    return relations


@PROPERTY
@given(data=screening_answers())
def test_the_eliminated_relations_partition_the_other_levels(data: Answers) -> None:
    result = run(data)
    if result.recommended_level is None:
        assert result.eliminated == ()
        return
    level = result.recommended_level.level
    relations = _relations(result)
    assert set(relations) == set(LEVEL_ORDER) - {level}
    assert len(result.eliminated) == len(LEVEL_ORDER) - 1
    rank = LEVEL_ORDER.index(level)
    for other, relation in relations.items():
        if level is LevelOfCare.EMERGENCY_EVALUATION:
            assert relation is Relation.DEFERRED
        elif LEVEL_ORDER.index(other) < rank:
            assert relation is Relation.EXCEEDED
        else:
            assert relation is Relation.NOT_INDICATED


def test_relation_wording() -> None:
    iop = run(BASE)
    outpatient = iop.eliminated[0]
    assert outpatient.reasons[0].text == "Exceeded: Moderate depression."
    above = [e for e in iop.eliminated if e.level is LevelOfCare.RESIDENTIAL][0]
    assert _relations(iop)[LevelOfCare.RESIDENTIAL] is Relation.NOT_INDICATED
    assert above.reasons[0].text.startswith(("Not met", "No rule"))
    emergency = {
        **BASE["instruments"]["cssrs"],
        "behavior_lifetime": True,
        "behavior_past_3_months": True,
    }
    deferred = run(with_(BASE, instruments={"cssrs": emergency}))
    assert {r.text for e in deferred.eliminated for r in e.reasons} == {
        "Decided after the emergency evaluation: High suicide risk on the C-SSRS screener."
    }
    inpatient = run(with_(BASE, medical={"acute_condition_needing_hospital_care": True}))
    relations = _relations(inpatient)
    assert relations[LevelOfCare.EMERGENCY_EVALUATION] is Relation.NOT_INDICATED
    assert relations[LevelOfCare.RESIDENTIAL] is Relation.EXCEEDED


def test_engine_3_describes_levels_accurately() -> None:
    level = run(BASE).recommended_level
    assert level is not None
    assert "compare ASAM level 2.1" in level.aligned_with
    residential = run(
        BASE, compile_rule_set(third(placement=[{**IOP, "level": "residential"}]))
    ).recommended_level
    assert residential is not None
    assert residential.aligned_with.startswith("Residential treatment; ASAM levels 3.1 to 3.7")


# --- earlier semantics -------------------------------------------------------------------------


def test_semantics_2_output_keeps_its_shape() -> None:
    second = compile_rule_set(rule_set(semantics=2, placement=[IOP]))
    found = orjson.loads(determination_to_json(run(BASE, second)))
    assert not {"contradictions", "context", "answers_not_used"} & set(found)
    assert all("relation" not in e for e in found["eliminated"])
    assert found["engine_version"] == "2.0.0"
    assert "ASAM 2.1 (level number" in found["recommended_level"]["aligned_with"]


def _problems(document: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(RuleSetError) as caught:
        compile_rule_set(document)
    return [(p.location, p.message) for p in caught.value.problems]


def test_semantics_2_documents_may_not_use_what_semantics_3_adds() -> None:
    document = third(placement=[IOP])
    document["semantics"] = 2
    document["tests"] = [
        {"name": "c", "answers": BASE, "expect": {"contradictions": [PREGNANT_MALE["id"]]}}
    ]
    locations = [location for location, _ in _problems(document)]
    assert locations == ["context", "stages.1", "tests.0.expect.contradictions"]


def test_context_must_name_answers_no_rule_reads() -> None:
    document = third(placement=[IOP])
    document["context"] = ["respondent.answered_by", "phq9.total", "instruments.phq9"]
    document["context"].append("respondent.answered_by")
    problems = dict(_problems(document))
    assert "not an answer path" in problems["context.1"]
    assert "read by a rule" in problems["context.2"]
    assert "twice" in problems["context.3"]


def test_a_consistency_rule_is_located_and_expected_by_test_cases() -> None:
    broken = third(placement=[IOP])
    broken["stages"][1]["rules"] = [{**PREGNANT_MALE, "when": "medical.pregnantt"}]
    ((location, _),) = _problems(broken)
    assert location == "stages.1.rules.0.when"
    document = third(placement=[IOP])
    document["tests"] = [
        {
            "name": "contradicted",
            "answers": with_(BASE, medical={"pregnant": True}),
            "expect": {"contradictions": [PREGNANT_MALE["id"]], "status": "partial"},
        },
        {"name": "plain", "answers": BASE, "expect": {"contradictions": []}},
    ]
    report = run_tests(compile_rule_set(document))
    assert all(case.passed for case in report.cases), report.cases
    document["tests"][1]["expect"]["contradictions"] = [PREGNANT_MALE["id"]]
    assert not run_tests(compile_rule_set(document)).cases[1].passed


def test_unread_questions_are_reported_not_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    compiled = compile_rule_set(third(placement=[IOP]))
    assert "engagement.readiness_stage" in compiled.unread_questions
    assert "instruments.phq9" not in compiled.unread_questions
    assert "respondent.answered_by" not in compiled.unread_questions
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(third(placement=[IOP])))
    main(["rules", "check", str(rules)])
    out = capsys.readouterr().out
    read = len(compiled.questions) - len(compiled.unread_questions)
    assert f"Questions read by a rule or shown as context: {read}/{len(compiled.questions)}" in out
    assert "  ! engagement.readiness_stage is read by no rule and not listed as context" in out


def test_the_readable_view_shows_the_new_sections() -> None:
    found = orjson.loads(
        determination_to_json(
            run(with_(BASE, medical={"pregnant": True}, engagement={"readiness_stage": "action"}))
        )
    )
    text = markdown(document(found, about_determination(found)))
    for heading in (
        "## Contradictions to confirm",
        "## Context",
        "## Answers given that did not affect this result",
        "## Less intensive levels the need exceeds",
        "## More intensive levels not indicated",
    ):
        assert heading in text
    assert "Confirm: Confirm the pregnancy answer" in text


def test_an_evidence_fact_reads_the_answers_that_choose_its_cut_offs() -> None:
    # The age group picks AUDIT-C's adolescent cut-off, so it decided this result: it is not
    # an answer that "did not affect" it.
    document = rule_set(
        3,
        safety=[
            {
                "id": "s.alcohol",
                "description": "Alcohol evidence.",
                "when": "evidence.alcohol",
                "override": {"level": "inpatient", "action": "Admit."},
                "references": ["X"],
            }
        ],
    )
    document["instruments"] = {
        "audit_c": {"adolescent": {"positive_at": {"female": 2, "male": 2, "unknown": 2}}}
    }
    compiled = compile_rule_set(document)
    answers = {
        **BASE,
        "respondent": {"age_group": "adolescent", "answered_by": "clinician"},
        "instruments": {"audit_c": {"items": [1, 1, 0]}},
    }
    found = run(answers, compiled)
    assert isinstance(found, ExplainedDetermination)
    assert found.recommended_level is not None
    assert found.recommended_level.level is LevelOfCare.INPATIENT
    unused = {a.item for a in found.answers_not_used}
    assert "respondent.age_group" not in unused
    assert "respondent.answered_by" in unused


def _answer_at(answers: Answers, path: str) -> Any:
    node: Any = answers
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _put_answer(answers: Answers, path: str, value: Any) -> None:
    *sections, name = path.split(".")
    node = answers
    for part in sections:
        node = node.setdefault(part, {})
    if value is None:
        node.pop(name, None)
    else:
        node[name] = copy.deepcopy(value)


def _outcome(result: Determination) -> tuple[Any, ...]:
    level = result.recommended_level.level if result.recommended_level else None
    return (
        level,
        result.urgency,
        result.status,
        result.iop.verdict,
        [(d.domain, d.rating) for d in result.domains],
        [b.code for b in result.barriers],
    )


@functools.cache
def _shipped_cases() -> tuple[str, ...]:
    compiled = default_rule_set()
    return tuple(json.dumps(case_answers(compiled, case)) for case in compiled.document.tests)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), other=screening_answers())
def test_changing_an_answer_not_used_never_changes_the_result(
    data: st.DataObject, other: Answers
) -> None:
    # The strongest form of the guarantee, over the shipped rule set's cases: give every
    # answer listed as not used the value another screening gave it (or leave it out).
    compiled = default_rule_set()
    original: Answers = json.loads(data.draw(st.sampled_from(_shipped_cases())))
    before = evaluate(compiled, ScreeningAnswers.model_validate(original))
    assert isinstance(before, ExplainedDetermination)
    changed = copy.deepcopy(original)
    for answer in before.answers_not_used:
        _put_answer(changed, answer.item, _answer_at(other, answer.item))
    try:
        after_answers = ScreeningAnswers.model_validate(changed)
    except ValidationError:
        assume(False)  # the two screenings' answers do not fit together
    assert _outcome(evaluate(compiled, after_answers)) == _outcome(before)
