"""The compiler rejects unsound rule sets, naming the rule and the problem."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from app.engine import RuleSetError, compile_rule_set, document_sha256, parse_document
from app.engine.instruments import InstrumentId
from app.engine.testing import deep_merge, run_tests
from tests.unit.test_engine import rule_set


def problems_of(document: dict[str, Any] | str) -> list[str]:
    with pytest.raises(RuleSetError) as caught:
        compile_rule_set(document)
    return [str(problem) for problem in caught.value.problems]


def with_placement_when(when: str) -> dict[str, Any]:
    return rule_set(
        placement=[{"id": "p.rule", "description": "d", "when": when, "level": "residential"}]
    )


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("phq9.total >=", "rule 'p.rule'"),
        ("phq9.totl >= 10", "phq9.total"),  # unknown fact, with a suggestion
        ('phq9.total >= "ten"', "phq9.total"),  # type mismatch
        ('cssrs.tier == "hihg"', "hihg"),  # not an allowed value
        ("phq9.total", "true or false"),  # not a condition
        ('logistics.transport < "none"', "logistics.transport"),  # unordered values
    ],
)
def test_condition_errors_name_the_rule_and_the_problem(when: str, expected: str) -> None:
    (problem,) = problems_of(with_placement_when(when))
    assert problem.startswith("rule 'p.rule'")
    assert expected in problem
    assert "stages.1.rules.0.when" in problem


def test_stage_facts_are_not_readable_before_their_stage() -> None:
    document = rule_set(
        domains=[
            {
                "id": "d.reads-placement",
                "description": "d",
                "when": 'placement.level == "outpatient"',
                "domain": "psychiatric",
                "rating": "mild",
            }
        ]
    )
    (problem,) = problems_of(document)
    assert "d.reads-placement" in problem
    assert "placement.level" in problem


def test_every_problem_is_reported_at_once() -> None:
    document = rule_set(
        placement=[
            {"id": "p.a", "description": "d", "when": "nope.fact", "level": "residential"},
            {"id": "p.a", "description": "d", "when": "true &&", "level": "residential"},
        ]
    )
    found = problems_of(document)
    assert len(found) == 3
    assert any("duplicate rule id" in p for p in found)


def test_invalid_outcome_levels_name_the_rule() -> None:
    document = with_placement_when("true")
    document["stages"][1]["rules"][0]["level"] = "spa_retreat"
    (problem,) = problems_of(document)
    assert problem.startswith("rule 'p.rule'")
    assert "level" in problem


def test_safety_override_must_send_to_emergency_or_inpatient() -> None:
    document = rule_set(
        safety=[
            {
                "id": "s.weak",
                "description": "d",
                "when": "true",
                "override": {"level": "intensive_outpatient", "action": "a"},
            }
        ]
    )
    (problem,) = problems_of(document)
    assert "s.weak" in problem
    assert "emergency_evaluation or inpatient" in problem


def test_a_safety_rule_has_exactly_one_outcome() -> None:
    document = rule_set(safety=[{"id": "s.none", "description": "d", "when": "true"}])
    (problem,) = problems_of(document)
    assert "s.none" in problem
    assert "exactly one" in problem


def test_stages_out_of_order_are_rejected() -> None:
    document = rule_set()
    document["stages"].reverse()
    found = problems_of(document)
    assert any("out of order" in p for p in found)


def test_required_stages() -> None:
    document = rule_set()
    document["stages"] = document["stages"][:1]
    assert any("'placement' stage is required" in p for p in problems_of(document))


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (
            {
                "bands": [
                    {"label": "low", "min": 0, "max": 9},
                    {"label": "hi", "min": 11, "max": 27},
                ]
            },
            "should start at 10",
        ),
        ({"bands": [{"label": "low", "min": 0, "max": 20}]}, "must end at the maximum score 27"),
        ({"positive_at": 30}, "score range 0-27"),
        ({"positive_at": {"male": 4, "female": 3, "unknown": 3}}, "only AUDIT-C"),
    ],
)
def test_cut_off_tables_must_fit_the_instrument(policy: dict[str, Any], expected: str) -> None:
    document = rule_set()
    document["instruments"] = {"phq9": policy}
    (problem,) = problems_of(document)
    assert expected in problem


def test_audit_c_unknown_sex_must_use_the_conservative_cut_off() -> None:
    document = rule_set()
    document["instruments"] = {"audit_c": {"positive_at": {"male": 4, "female": 3, "unknown": 4}}}
    (problem,) = problems_of(document)
    assert "conservative" in problem


def test_a_clinic_may_adjust_cut_offs_and_facts_follow_the_new_bands() -> None:
    document = rule_set(
        placement=[
            {
                "id": "p.rule",
                "description": "d",
                "when": 'phq9.band == "high"',
                "level": "intensive_outpatient",
            }
        ]
    )
    document["instruments"] = {
        "phq9": {
            "positive_at": 12,
            "bands": [
                {"label": "low", "min": 0, "max": 11},
                {"label": "high", "min": 12, "max": 27},
            ],
        }
    }
    compiled = compile_rule_set(document)
    assert compiled.policies[next(iter(compiled.policies))] is not None
    assert "phq9.band" in compiled.catalogue


def test_yaml_errors_and_non_mapping_documents() -> None:
    assert "not valid YAML" in problems_of("key: [unclosed")[0]
    assert "mapping" in problems_of("- just\n- a list\n")[0]


def test_sha256_identifies_content_not_formatting() -> None:
    as_dict = rule_set()
    reformatted = parse_document(__import__("json").dumps(as_dict, indent=4))
    assert document_sha256(parse_document(as_dict)) == document_sha256(reformatted)
    changed = copy.deepcopy(as_dict)
    changed["title"] = "Another title"
    assert document_sha256(parse_document(changed)) != document_sha256(reformatted)


def test_test_case_references_are_checked() -> None:
    document = rule_set()
    document["tests"] = [
        {
            "name": "refers to nothing",
            "extends": "missing-fixture",
            "answers": {},
            "expect": {"fired": ["no.such.rule"], "barriers": ["teleport"]},
        }
    ]
    found = problems_of(document)
    assert any("unknown fixture 'missing-fixture'" in p for p in found)
    assert any("unknown rule 'no.such.rule'" in p for p in found)
    assert any("unknown barrier 'teleport'" in p for p in found)


def test_runner_reports_failures_and_coverage() -> None:
    document = rule_set(
        placement=[
            {
                "id": "p.iop",
                "description": "d",
                "when": "phq9.total >= 10",
                "level": "intensive_outpatient",
            },
            {"id": "p.res", "description": "d", "when": "false", "level": "residential"},
        ]
    )
    document["fixtures"] = {
        "base": {
            "respondent": {"age_group": "adult", "answered_by": "clinician"},
            "presenting_concerns": ["mental_health"],
        }
    }
    document["tests"] = [
        {
            "name": "moderate depression",
            "extends": "base",
            "answers": {"instruments": {"phq9": {"items": [2, 2, 1, 2, 1, 2, 1, 1, 0]}}},
            "expect": {"level": "intensive_outpatient", "fired": ["p.iop"]},
        },
        {
            "name": "wrong expectation",
            "extends": "base",
            "answers": {},
            "expect": {"level": "residential"},
        },
        {"name": "invalid answers", "answers": {"respondent": {}}, "expect": {}},
    ]
    report = run_tests(compile_rule_set(document))
    assert [case.passed for case in report.cases] == [True, False, False]
    assert report.cases[1].failures == ("level: expected residential, got outpatient",)
    assert "answers are invalid" in report.cases[2].failures[0]
    assert report.never_fired == ("s.never", "p.res")
    assert report.coverage == pytest.approx(1 / 3)
    assert not report.passed


def test_deep_merge_merges_mappings_replaces_lists_and_removes_nulls() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    merged = deep_merge(base, {"a": {"c": [3], "e": 2}, "d": None})
    assert merged == {"a": {"b": 1, "c": [3], "e": 2}}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}


def test_yaml_alias_bombs_and_deep_nesting_are_refused() -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for n in range(1, 7):
        refs = ", ".join([f"*a{n - 1}"] * 9)
        lines.append(f"a{n}: &a{n} [{refs}]")
    assert "expand the document" in problems_of("\n".join(lines))[0]
    deep = "x: " + "[" * 40 + "]" * 40
    assert "levels deep" in problems_of(deep)[0]


# --- semantics 2: what the compiler and the checks enforce -------------------------------------


def test_a_document_without_semantics_is_semantics_1_and_keeps_its_hash() -> None:
    legacy = rule_set(semantics=1)
    without_key = {k: v for k, v in legacy.items() if k != "semantics"}
    assert compile_rule_set(without_key).semantics == 1
    assert document_sha256(parse_document(legacy)) == document_sha256(parse_document(without_key))
    assert "semantics" not in parse_document(legacy).model_dump(mode="json")
    current = parse_document(rule_set())
    assert current.model_dump(mode="json")["semantics"] == 2
    assert document_sha256(current) != document_sha256(parse_document(legacy))


@pytest.mark.parametrize("value", [0, 4, True, "2", 2.0])
def test_semantics_takes_only_the_known_numbers(value: object) -> None:
    document = {**rule_set(), "semantics": value}
    assert any(problem.startswith("semantics") for problem in problems_of(document))


def test_a_safety_rule_may_not_read_the_presenting_concerns() -> None:
    rule = {
        "id": "s.gated",
        "description": "d",
        "when": '"eating_disorder" in presenting_concerns && medical.heart_rate_bpm < 40',
        "override": {"level": "inpatient", "action": "admit"},
    }
    (problem,) = problems_of(rule_set(safety=[rule]))
    assert problem.startswith("rule 's.gated' (stages.0.rules.0.when)")
    assert "evidence" in problem
    compile_rule_set(rule_set(semantics=1, safety=[rule]))  # documents of semantics 1 still load
    on_evidence = {**rule, "when": "evidence.eating_disorder && medical.heart_rate_bpm < 40"}
    compile_rule_set(rule_set(safety=[on_evidence]))


def test_adolescent_cut_offs_use_the_instrument_band_labels_in_order() -> None:
    document = rule_set()
    document["instruments"] = {
        "audit": {
            "adolescent": {
                "positive_at": 5,
                "bands": [
                    {"label": "possible_dependence", "min": 0, "max": 6},
                    {"label": "low_risk", "min": 7, "max": 40},
                ],
            }
        }
    }
    (problem,) = problems_of(document)
    assert "instruments.audit.adolescent.bands" in problem
    assert "low_risk, hazardous, harmful, possible_dependence" in problem
    document["instruments"]["audit"]["adolescent"]["bands"] = [
        {"label": "low_risk", "min": 0, "max": 4},
        {"label": "possible_dependence", "min": 5, "max": 40},
    ]
    compiled = compile_rule_set(document)
    assert compiled.policies[InstrumentId.AUDIT].adolescent is not None
    document["instruments"]["audit"]["adolescent"]["positive_at"] = 41
    assert "cut-off must lie within" in problems_of(document)[0]


def _with_cases(document: dict[str, Any], *cases: dict[str, Any]) -> dict[str, Any]:
    document["fixtures"] = {
        "base": {
            "respondent": {"age_group": "adult", "answered_by": "clinician"},
            "presenting_concerns": ["mental_health"],
            "instruments": {"phq9": {"items": [2, 2, 1, 2, 1, 2, 1, 1, 0]}},
        }
    }
    document["tests"] = list(cases)
    return document


def test_the_checks_report_a_rule_set_where_more_severe_evidence_lowers_the_level() -> None:
    # PHQ-9 14 places IOP, but a rule written for the exact band drops out when the total
    # rises into the next band: a clinic's fork that breaks monotonicity on its own cases.
    placement = [
        {
            "id": "p.moderate-only",
            "description": "moderate depression",
            "when": 'phq9.band == "moderate"',
            "level": "intensive_outpatient",
            "references": ["Kroenke 2001"],
        }
    ]
    case = {
        "name": "moderate",
        "extends": "base",
        "answers": {"instruments": {"phq9": {"items": [2, 2, 2, 2, 2, 2, 1, 1, 0]}}},
        "expect": {"level": "intensive_outpatient"},
    }
    report = run_tests(compile_rule_set(_with_cases(rule_set(placement=placement), case)))
    assert all(c.passed for c in report.cases)
    changes = {finding.change for finding in report.monotonicity}
    assert "PHQ-9 item 1: 2 → 3" in changes  # 15: moderately severe, and the rule drops out
    assert "PHQ-9 item 9: 0 → 1" in changes
    finding = next(f for f in report.monotonicity if f.change == "PHQ-9 item 1: 2 → 3")
    assert (finding.before, finding.after) == (
        "intensive_outpatient (routine)",
        "outpatient (routine)",
    )
    assert not report.passed


def test_the_checks_report_rules_without_references() -> None:
    case = {"name": "base", "extends": "base", "answers": {}, "expect": {}}
    placement = [
        {
            "id": "p.cited",
            "description": "d",
            "when": "true",
            "level": "outpatient",
            "references": ["X"],
        }
    ]
    safety = [{"id": "s.alert", "description": "d", "when": "true", "alert": {"action": "call"}}]
    report = run_tests(
        compile_rule_set(_with_cases(rule_set(safety=safety, placement=placement), case))
    )
    assert report.uncited == ("s.alert",)
    assert not report.passed
    legacy = run_tests(
        compile_rule_set(
            _with_cases(rule_set(semantics=1, safety=safety, placement=placement), case)
        )
    )
    assert legacy.uncited == ("s.alert",)
    assert legacy.passed  # reported, but documents of semantics 1 are judged as they were
