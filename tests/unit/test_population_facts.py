"""Facts of the adolescent and older-adult answers: age groups, CRAFFT 2.1 and ASQ results, the
co-occurring mental health count, and what a CRAFFT adds to the substance use evidence."""

from __future__ import annotations

from typing import Any

import pytest

from app.engine import ScreeningAnswers
from app.engine.answers import ResponseToLevel
from app.engine.facts import ORDERED_ENUMS, build_catalogue, extract_facts
from app.engine.instruments import DEFAULT_POLICIES
from app.engine.scoring import score_answers


def facts_of(answers: dict[str, Any]) -> dict[str, object]:
    validated = ScreeningAnswers.model_validate(answers)
    return extract_facts(validated, score_answers(validated))


def adult(age: int | None = None, **sections: Any) -> dict[str, Any]:
    respondent: dict[str, Any] = {"age_group": "adult", "answered_by": "clinician"}
    if age is not None:
        respondent["age_years"] = age
    return {"respondent": respondent, **sections}


def adolescent(**sections: Any) -> dict[str, Any]:
    return {"respondent": {"age_group": "adolescent", "answered_by": "self_report"}, **sections}


@pytest.mark.parametrize(
    ("answers", "young", "older"),
    [
        (adult(18), True, False),
        (adult(25), True, False),
        (adult(26), False, False),
        (adult(64), False, False),
        (adult(65), False, True),
        (adult(), None, None),  # an adult's age not given: unknown
        (adolescent(), False, False),
    ],
)
def test_young_and_older_adult(answers: dict[str, Any], young: bool, older: bool) -> None:
    facts = facts_of(answers)
    assert (facts.get("respondent.young_adult"), facts.get("respondent.older_adult")) == (
        young,
        older,
    )


def test_mental_health_count_counts_suspected_and_known() -> None:
    co = {"depressive": "known", "anxiety": "suspected", "trauma": "absent", "eating": "known"}
    assert facts_of(adult(co_occurring=co))["co_occurring.mental_health_count"] == 2
    assert "co_occurring.mental_health_count" not in facts_of(adult(co_occurring={}))


@pytest.mark.parametrize(
    ("crafft", "substance_use", "alcohol", "drugs", "car", "any_use"),
    [
        # positive with alcohol days: alcohol (and substance use)
        ({"days_alcohol": 5, "items": [False, True, True, False, False, False]}, True, True, False,
         False, True),
        # positive with cannabis days: drugs
        ({"days_cannabis": 9, "items": [False, True, True, False, False, False]}, True, False,
         True, False, True),
        # use and a yes to CAR, below the cut-off: substance use
        ({"days_other": 2, "items": [True] + [False] * 5}, True, False, False, True, True),
        # no use: CAR alone, negative
        ({"days_alcohol": 0, "days_cannabis": 0, "days_other": 0, "items": [True]}, False, False,
         False, True, False),
        # a declined item could make it positive: open
        ({"days_alcohol": 3, "items": [False, True, "declined", False, False, False]}, None,
         None, False, False, True),
    ],
)  # fmt: skip
def test_crafft_evidence(
    crafft: dict[str, Any],
    substance_use: bool | None,
    alcohol: bool | None,
    drugs: bool | None,
    car: bool,
    any_use: bool,
) -> None:
    facts = facts_of(
        adolescent(presenting_concerns=["mental_health"], instruments={"crafft": crafft})
    )
    assert facts["evidence.substance_use"] is substance_use
    assert facts["evidence.alcohol"] is alcohol
    assert facts["evidence.drugs"] is drugs
    assert (facts["crafft.car"], facts["crafft.any_use"]) == (car, any_use)


def test_asq_facts() -> None:
    asq = {"items": [False, True, False, False], "acute": True}
    facts = facts_of(adolescent(instruments={"asq": asq}))
    assert (facts["asq.given"], facts["asq.positive"], facts["asq.acute"]) == (True, True, True)
    assert facts_of(adolescent())["asq.given"] is False
    assert "asq.total" not in facts_of(adolescent(instruments={"asq": asq}))


def test_new_facts_are_in_the_catalogue_with_their_sources() -> None:
    catalogue = build_catalogue(DEFAULT_POLICIES)
    for path in (
        "respondent.young_adult",
        "respondent.older_adult",
        "co_occurring.mental_health_count",
        "crafft.positive",
        "crafft.car",
        "crafft.any_use",
        "asq.positive",
        "asq.acute",
        "medical.cognitive_screen_positive",
        "withdrawal.drinks_per_week",
        "withdrawal.most_drinks_in_a_day",
        "treatment_history.weeks_at_current_level",
        "treatment_history.response_to_current_level",
    ):
        assert path in catalogue, path
        assert catalogue[path].answer_paths, path
    assert "instruments.crafft" in catalogue["crafft.car"].derived_from
    assert "instruments.crafft" in catalogue["evidence.alcohol"].derived_from
    assert catalogue["respondent.older_adult"].derived_from[-1] == "respondent.age_years"
    assert ResponseToLevel in ORDERED_ENUMS
    response = catalogue["treatment_history.response_to_current_level"].type
    assert response.ordered
    assert response.allowed == (
        "worsening",
        "not_improving",
        "improving",
        "goals_met",
    )
