"""The monotonicity check finds a change towards more severe evidence that lowers the result,
whatever thresholds the rule set uses."""

from __future__ import annotations

import copy

from app.engine import compile_rule_set
from app.engine.monotonicity import monotonicity_findings
from tests.unit.test_engine import BASE_ANSWERS, rule_set


def test_more_drinking_that_lowers_the_level_is_found_at_any_threshold() -> None:
    # A deliberately wrong rule: heavy care only below 40 drinks a week (a threshold no
    # guideline uses, so only a generic step reaches it).
    compiled = compile_rule_set(
        rule_set(
            placement=[
                {
                    "id": "p.wrong",
                    "description": "Fewer than 40 drinks a week.",
                    "when": "has(withdrawal.drinks_per_week) && withdrawal.drinks_per_week < 40",
                    "level": "residential",
                    "references": ["X"],
                }
            ]
        )
    )
    answers = copy.deepcopy(BASE_ANSWERS)
    answers["withdrawal"] = {"drinks_per_week": 10}

    findings = monotonicity_findings(compiled, [("drinking", answers)])

    assert [f.change.split(":")[0] for f in findings] == ["withdrawal.drinks_per_week"]
