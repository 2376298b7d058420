"""Answers that contradict each other reach every reader of a result: the summary says to
confirm them first, the CDS card lists them, and the level Observation an EHR files notes each
with what to confirm. The answers are used as given; nothing resolves the contradiction."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from app.cds_hooks.cards import detail
from app.engine import ScreeningAnswers, default_rule_set, determination_to_json, evaluate
from app.fhir.results import Result, level_observation
from app.fhir.terminology import Vocabulary
from app.screenings.readable import summary

EXAMPLES = Path(__file__).parents[2] / "examples"
VOCABULARY = Vocabulary("https://carelevel.dev/fhir")
RULE_SET = {"owner": "_shared", "key": "iop-level-of-care", "version": 3, "sha256": "ab" * 32}


def decided(answers: dict[str, Any]) -> dict[str, Any]:
    compiled = default_rule_set()
    found = evaluate(compiled, ScreeningAnswers.model_validate(answers))
    decoded: dict[str, Any] = orjson.loads(determination_to_json(found))
    return decoded


def contradicting() -> dict[str, Any]:
    """The IOP example, with pregnancy reported for a person scored as male."""
    answers = json.loads((EXAMPLES / "adult-iop-suitable.json").read_text())
    changed: dict[str, Any] = copy.deepcopy(answers)
    changed["respondent"]["sex_for_scoring"] = "male"
    changed.setdefault("medical", {})["pregnant"] = True
    return changed


def result(determination: dict[str, Any]) -> Result:
    return Result(
        screening_id="7d7c1b0e-52a8-4f0e-8f5f-3f1f8c9b2a61",
        created_at=datetime(2026, 12, 7, 9, 30, tzinfo=UTC),
        rule_set=RULE_SET,
        engine_version=determination["engine_version"],
        determination=determination,
        context={},
    )


def test_the_summary_asks_to_confirm_contradicting_answers_first() -> None:
    determination = decided(contradicting())
    rule_ids = [found["rule_id"] for found in determination["contradictions"]]
    assert rule_ids == ["consistency.pregnant-and-male"]
    assert determination["status"] == "partial"
    assert "Next: confirm the answers that disagree (1 contradiction)" in summary(determination)


def test_without_a_contradiction_the_summary_says_nothing_of_them() -> None:
    answers = json.loads((EXAMPLES / "adult-iop-suitable.json").read_text())
    determination = decided(answers)
    assert determination["contradictions"] == []
    assert "disagree" not in summary(determination)


def test_the_cds_card_lists_what_to_confirm() -> None:
    determination = decided(contradicting())
    (found,) = determination["contradictions"]
    text = detail(result(determination))
    assert "Contradictions to confirm" in text
    assert found["confirm"] in text


def test_the_level_observation_notes_each_contradiction() -> None:
    determination = decided(contradicting())
    (found,) = determination["contradictions"]
    notes = [note["text"] for note in level_observation(VOCABULARY, result(determination))["note"]]
    assert f"Answers disagree: {found['description']} Confirm: {found['confirm']}" in notes
    assert level_observation(VOCABULARY, result(determination))["status"] == "preliminary"


def test_an_earlier_engine_determination_has_no_contradiction_notes() -> None:
    determination = decided(contradicting())
    del determination["contradictions"]  # as engine 2.0.0 wrote determinations
    notes = [note["text"] for note in level_observation(VOCABULARY, result(determination))["note"]]
    assert not any(note.startswith("Answers disagree") for note in notes)
    assert "disagree" not in summary(determination)
