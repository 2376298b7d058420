"""The rule-authoring guide stays true to the code."""

from __future__ import annotations

import re
from pathlib import Path

from app.engine.catalogue import BEGIN_MARKER, END_MARKER, render_catalogue
from app.engine.facts import build_catalogue
from app.engine.instruments import DEFAULT_POLICIES

ROOT = Path(__file__).parents[2]


def test_fact_catalogue_in_the_guide_is_the_generated_one() -> None:
    guide = (ROOT / "docs" / "rule-sets.md").read_text()
    start, end = guide.index(BEGIN_MARKER), guide.index(END_MARKER) + len(END_MARKER)
    assert guide[start:end] == render_catalogue(), (
        "docs/rule-sets.md is out of date: run `make docs` (carelevel rules facts)"
    )


def test_catalogue_lists_every_fact_once() -> None:
    rendered = render_catalogue()
    documented = re.findall(r"^\| `([^`]+)` \|", rendered, flags=re.MULTILINE)
    assert sorted(documented) == sorted(build_catalogue(DEFAULT_POLICIES))


def test_every_questionnaire_question_is_a_fact() -> None:
    catalogue = build_catalogue(DEFAULT_POLICIES)
    for path in (
        "logistics.telehealth.device",
        "co_occurring.substance_use.opioids",
        "treatment_history.previous_iop",
        "engagement.readiness_stage",
        "medical.percent_healthy_body_weight",
    ):
        assert path in catalogue
