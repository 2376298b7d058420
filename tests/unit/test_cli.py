"""The command line: evaluate answers files and check rule sets."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from app.cli import main
from app.engine import default_rule_set
from tests.unit.test_engine import rule_set

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_evaluate_prints_an_explained_determination(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(EXAMPLES / "adult-iop-with-barriers.json")]) == 0
    out = capsys.readouterr().out
    assert "Recommended level : Intensive outpatient program (IOP)" in out
    assert "IOP               : suitable with conditions" in out
    assert "Barriers to attending" in out
    assert "transport assistance" in out
    assert "Sources of these reasons and alerts" in out
    assert "TIP 47" in out
    assert "not a diagnosis" in out


def test_evaluate_colours_urgency_only_on_a_terminal_without_no_color(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    emergency = str(EXAMPLES / "emergency-suicide-risk.json")
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert main(["evaluate", emergency]) == 0
    assert "\x1b[" not in capsys.readouterr().out  # captured: not a terminal
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["evaluate", emergency]) == 0
    out = capsys.readouterr().out
    assert "\x1b[1;31memergent\x1b[0m" in out  # red
    assert out.index("Safety alerts") < out.index("Recommended level")
    monkeypatch.setenv("NO_COLOR", "1")
    assert main(["evaluate", emergency]) == 0
    assert "\x1b[" not in capsys.readouterr().out


def test_evaluate_json_is_the_full_determination(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(EXAMPLES / "emergency-suicide-risk.json"), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["recommended_level"]["level"] == "emergency_evaluation"
    assert document["urgency"] == "emergent"
    fired = {step["rule_id"] for step in document["trace"] if step["result"] == "fired"}
    assert "safety.cssrs-high" in fired
    # nothing outvotes it: only the safety rules and the consistency checks ran
    assert {step["stage"] for step in document["trace"]} == {"safety", "consistency"}
    assert document["rule_set"]["key"] == "iop-level-of-care"


def test_evaluate_reports_invalid_answers_by_field_without_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answers = tmp_path / "bad.json"
    answers.write_text(
        json.dumps(
            {
                "respondent": {"age_group": "adult", "answered_by": "self_report"},
                "presenting_concerns": ["mental_health"],
                "instruments": {"phq9": {"items": [1, 2, 3, 1, 1, 1, 1, 1, 77]}},
            }
        )
    )
    assert main(["evaluate", str(answers)]) == 2
    err = capsys.readouterr().err
    assert "instruments.phq9.items: PHQ-9 item 9 must be one of 0, 1, 2, 3" in err
    assert "77" not in err


def test_evaluate_with_another_rule_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(rule_set()))
    assert main(["evaluate", str(EXAMPLES / "adult-iop-suitable.json"), "--rules", str(rules)]) == 0
    assert "Rule set test-rules 1" in capsys.readouterr().out


def test_rules_check_passes_on_the_default_rule_set(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "check", "app/engine/default_rules/iop-level-of-care.yaml"]) == 0
    out = capsys.readouterr().out
    assert "Rule coverage:" in out
    assert "(100%)" in out
    assert "More severe evidence never lowers a case: yes" in out
    rules = len(default_rule_set().rule_ids)
    assert f"Rules citing a source: {rules}/{rules}" in out
    assert "Questions read by a rule or shown as context: 86/86" in out
    assert out.rstrip().endswith("OK")


def test_rules_check_reports_what_lowers_a_case_and_uncited_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    legacy = Path(__file__).parent / "legacy" / "iop-level-of-care-2026.11.0.yaml"
    assert main(["rules", "check", str(legacy)]) == 0  # as judged when it was published
    out = capsys.readouterr().out
    assert (
        "case 'Severe cognitive impairment': safety.psychosis_or_mania_unable_to_self_care: "
        "yes changes emergency_evaluation (emergent) to inpatient (emergent)"
    ) in out
    assert "rule 'place.iop-step-up' has no references" in out
    assert "semantics 1" in out
    current = legacy.read_text("utf-8").replace(
        'version: "2026.11.0"', 'version: "x"\nsemantics: 2'
    )
    rules = tmp_path / "rules.yaml"
    rules.write_text(current)
    assert main(["rules", "check", str(rules)]) == 1
    assert "a safety rule fires on its evidence" in capsys.readouterr().out


def test_rules_check_names_the_broken_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = {"id": "p.typo", "description": "d", "when": "phq9.totl > 1", "level": "residential"}
    document = rule_set(placement=[typo])
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(document))
    assert main(["rules", "check", str(rules)]) == 1
    assert "rule 'p.typo'" in capsys.readouterr().out


def test_rules_check_fails_on_uncovered_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(rule_set()))
    assert main(["rules", "check", str(rules)]) == 1
    out = capsys.readouterr().out
    assert "rule 's.never' never fires" in out
    assert "no test cases" in out
