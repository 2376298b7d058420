"""The guides stay true to the code: the rule-authoring guide's catalogue, every setting in
the README and .env.example, every code system the EHR guide names."""

from __future__ import annotations

import re
from pathlib import Path

from app.engine.catalogue import BEGIN_MARKER, END_MARKER, render_catalogue
from app.engine.facts import build_catalogue
from app.engine.instruments import DEFAULT_POLICIES
from app.fhir.terminology import code_systems
from app.kernel.settings import Settings

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


def test_every_setting_is_documented_with_its_variable() -> None:
    readme = (ROOT / "README.md").read_text()
    example = (ROOT / ".env.example").read_text()
    for name in Settings.model_fields:
        variable = f"CARELEVEL_{name.upper()}"
        assert f"| `{variable}` |" in readme, variable
        assert f"# {variable}=" in example, variable


def test_the_code_systems_the_ehr_guide_names_exist() -> None:
    guide = (ROOT / "docs" / "ehr-integration.md").read_text()
    table = guide[guide.index("## Code systems and value sets") : guide.index("## CDS Hooks")]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    named = {name for row in rows for name in re.findall(r"`([a-z-]+)`", row.split("|")[1])}
    assert len(named) >= 10, named
    assert named <= set(code_systems()), named - set(code_systems())
