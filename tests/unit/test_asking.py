"""What to ask next: every missing item as questions of the questionnaire not yet answered,
safety first; an item no question supplies is an assessment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings

from app.engine import ScreeningAnswers, default_rule_set, evaluate
from app.engine.asking import answered_paths, questions_to_ask, to_json
from app.engine.determination import STAGE_ORDER, Stage, Status
from app.questionnaire import form_items
from tests.strategies import screening_answers

EXAMPLES = Path(__file__).parents[2] / "examples"
KNOWN = frozenset(form_items())


def _asks(answers: dict[str, Any]) -> list[dict[str, Any]]:
    compiled = default_rule_set()
    determination = evaluate(compiled, ScreeningAnswers.model_validate(answers))
    asks = questions_to_ask(determination.missing, compiled, answered_paths(answers), KNOWN)
    assert {ask.item for ask in asks} == {m.item for m in determination.missing}
    return to_json(asks)


def test_an_early_intake_asks_the_safety_questions_first() -> None:
    answers = json.loads((EXAMPLES / "insufficient-information.json").read_text())
    asks = _asks(answers)
    stages = [ask["stage"] for ask in asks]
    assert stages == sorted(stages, key=lambda s: STAGE_ORDER.index(Stage(s)))
    assert stages[0] == "safety"
    first = asks[0]["questions"][0]
    assert first == {
        "path": "safety.homicidal_ideation",
        "pointer": "/safety/homicidal_ideation",
        "link_id": "safety.homicidal_ideation",
    }
    # A rule's own words ("a suicide-risk screen…") become the instruments that supply it.
    screen = next(ask for ask in asks if ask["needed_by"] == ["info.no-suicide-screen"])
    assert [q["path"] for q in screen["questions"]] == [
        "instruments.cssrs",
        "instruments.asq",
        "instruments.phq9",
    ]
    assert all(ask["kind"] == "question" for ask in asks)


def test_an_assessment_only_a_clinician_can_do_is_not_a_question() -> None:
    answers = json.loads((EXAMPLES / "adult-iop-suitable.json").read_text())
    answers["instruments"]["phq9"]["items"][8] = 2  # thoughts of self-harm, yet a negative C-SSRS
    (ask,) = _asks(answers)
    assert (ask["kind"], ask["stage"], ask["questions"]) == ("assessment", "safety", [])


def test_a_complete_screening_asks_nothing() -> None:
    answers = json.loads((EXAMPLES / "adult-iop-suitable.json").read_text())
    assert _asks(answers) == []


def test_answered_paths_cover_sections_and_questions() -> None:
    paths = answered_paths({"safety": {"recent_violence": False, "x": None}, "a": [1]})
    assert paths == {"safety", "safety.recent_violence", "a"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(screening_answers())
def test_every_question_is_in_the_questionnaire_and_unanswered(answers: dict[str, Any]) -> None:
    asks = _asks(answers)
    answered = answered_paths(answers)
    for ask in asks:
        for question in ask["questions"]:
            assert question["path"] in KNOWN
            assert question["path"] not in answered
    stages = [STAGE_ORDER.index(Stage(ask["stage"])) for ask in asks]
    assert stages == sorted(stages)
    determination = evaluate(default_rule_set(), ScreeningAnswers.model_validate(answers))
    assert (determination.status is Status.COMPLETE) == (asks == [])


def test_an_intake_without_a_concern_is_insufficient_and_asks_for_it() -> None:
    """No presenting concern yet: nobody is placed, the safety questions come first and the
    concern is among the questions to ask."""
    answers: dict[str, Any] = {"respondent": {"age_group": "adult", "answered_by": "self_report"}}
    determination = evaluate(default_rule_set(), ScreeningAnswers.model_validate(answers))
    assert determination.status is Status.INSUFFICIENT_INFORMATION
    assert determination.recommended_level is None
    assert determination.iop.reasons[-1].text.startswith("What the person is asking for help")
    asks = _asks(answers)
    assert asks[0]["stage"] == "safety"
    paths = [q["path"] for ask in asks for q in ask["questions"]]
    assert "presenting_concerns" in paths


def test_safety_evidence_decides_before_the_concern_is_known() -> None:
    answers: dict[str, Any] = {
        "respondent": {"age_group": "adult", "answered_by": "clinician"},
        "safety": {"homicidal_ideation": "intent_or_plan"},
    }
    determination = evaluate(default_rule_set(), ScreeningAnswers.model_validate(answers))
    assert determination.urgency.value == "emergent"
    assert determination.recommended_level is not None
    assert determination.recommended_level.level.value == "emergency_evaluation"


def test_evidence_only_the_concern_could_give_makes_the_concern_a_safety_question() -> None:
    """An adolescent with a slow heart rate and no concern asked yet: whether an eating disorder
    is in play decides the override, so the concern is asked first, as a safety question, and
    the urgency is not routine meanwhile."""
    answers: dict[str, Any] = {
        "respondent": {"age_group": "adolescent", "answered_by": "clinician"},
        "medical": {"heart_rate_bpm": 45},
    }
    determination = evaluate(default_rule_set(), ScreeningAnswers.model_validate(answers))
    assert determination.urgency.value != "routine"
    concern = next(
        ask for ask in _asks(answers) if ask["questions"][:1] == [_path("presenting_concerns")]
    )
    assert concern["stage"] == "safety"


def test_what_a_safety_rule_requires_in_words_is_an_assessment() -> None:
    answers = json.loads((EXAMPLES / "adult-iop-suitable.json").read_text())
    answers["medical"]["heart_rate_bpm"] = 35
    asks = _asks(answers)
    review = next(ask for ask in asks if ask["item"].startswith("A same-day medical review"))
    assert (review["kind"], review["questions"]) == ("assessment", [])


def _path(path: str) -> dict[str, str]:
    return {"path": path, "pointer": "/" + path.replace(".", "/"), "link_id": path}
