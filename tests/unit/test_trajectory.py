"""A person's trajectory (app/engine/trajectory.py): the thresholds on worked examples, and its
properties over generated series of screenings."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.engine.determination import LEVEL_RANK, LevelOfCare
from app.engine.trajectory import (
    BAO_2016,
    CHUNG_2017,
    KOUNALI_2022,
    LOWE_2004,
    NCQA_FUH,
    NO_THRESHOLD,
    SKIPPED,
    History,
    InstrumentTrend,
    LevelEvent,
    Score,
    ScreeningPoint,
    Treatment,
    history_of,
    trajectory,
)

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
NOT_ASKED = -1


def point(
    n: int,
    *,
    phq9: int | None = NOT_ASKED,
    gad7: int | None = NOT_ASKED,
    level: str | None = "intensive_outpatient",
    urgency: str = "routine",
    treatment: Treatment = Treatment(),
    decision: LevelEvent | None = None,
    referral: LevelEvent | None = None,
    weeks: int = 3,
) -> ScreeningPoint:
    scores = [
        Score(name, total, None, title)
        for name, title, total in (("phq9", "PHQ-9", phq9), ("gad7", "GAD-7", gad7))
        if total != NOT_ASKED  # None: asked, without a total (an item declined)
    ]
    return ScreeningPoint(
        id=f"s{n}",
        created_at=START + timedelta(weeks=weeks * n),
        level=level,
        urgency=urgency,
        status="complete" if level else "insufficient_information",
        scores=tuple(scores),
        treatment=treatment,
        decision=decision,
        referral=referral,
    )


def phq9_of(points: list[ScreeningPoint]) -> InstrumentTrend:
    (found,) = [
        t for t in trajectory(points, date(2026, 1, 5)).instruments if t.instrument == "phq9"
    ]
    return found


def test_phq9_20_14_8_is_a_meaningful_change_and_a_response_not_a_remission() -> None:
    trend = phq9_of([point(0, phq9=20), point(1, phq9=14), point(2, phq9=8)])
    assert trend.change_from_baseline is not None
    assert trend.change_from_previous is not None
    assert (trend.change_from_baseline.points, trend.change_from_baseline.meaningful) == (
        -12,
        "improvement",
    )
    assert trend.change_from_baseline.percent == -60.0
    assert (trend.change_from_previous.points, trend.change_from_previous.meaningful) == (
        -6,
        "improvement",
    )
    assert trend.response is True
    assert trend.remission is False
    assert trend.meaningful_change_points == 5
    assert KOUNALI_2022 in trend.references
    assert "20%" in trend.notes[0]


def test_the_meaningful_change_thresholds_are_5_for_the_phq9_and_4_for_the_gad7() -> None:
    found = trajectory(
        [point(0, phq9=12, gad7=12), point(1, phq9=8, gad7=8)], date(2026, 1, 5)
    ).instruments
    by_name = {trend.instrument: trend for trend in found}
    phq9_change, gad7_change = (by_name[n].change_from_baseline for n in ("phq9", "gad7"))
    assert phq9_change is not None
    assert gad7_change is not None
    assert phq9_change.meaningful == "none"  # 4 points: below the PHQ-9's 5
    assert gad7_change.meaningful == "improvement"  # 4 points: the GAD-7's threshold
    assert "by analogy" in by_name["gad7"].notes[0]


def test_response_and_remission_need_a_moderate_baseline() -> None:
    trend = phq9_of([point(0, phq9=9), point(1, phq9=2)])
    assert (trend.response, trend.remission) == (None, None)
    assert "10 or more" in trend.notes[0]


def test_declined_scores_stay_in_the_series_and_are_skipped_in_changes() -> None:
    trend = phq9_of([point(0, phq9=18), point(1, phq9=None), point(2, phq9=12)])
    assert [p.total for p in trend.series] == [18, None, 12]
    assert trend.change_from_previous is not None
    assert trend.change_from_previous.points == -6  # from 18: the declined one is skipped
    assert SKIPPED in trend.notes


def test_other_instruments_have_series_and_changes_without_thresholds() -> None:
    first = ScreeningPoint("a", START, "outpatient", "routine", "complete", (Score("audit", 17),))
    second = ScreeningPoint(
        "b", START + timedelta(weeks=4), "outpatient", "routine", "complete", (Score("audit", 9),)
    )
    (trend,) = trajectory([first, second], date(2026, 2, 1)).instruments
    assert trend.change_from_baseline is not None
    assert trend.change_from_baseline.points == -8
    assert trend.change_from_baseline.meaningful is None
    assert (trend.response, trend.remission, trend.references) == (None, None, ())
    assert trend.notes == (NO_THRESHOLD,)


def test_a_lower_recommendation_than_the_current_level_suggests_stepping_down() -> None:
    treated = Treatment("intensive_outpatient", 6, "improving")
    found = trajectory(
        [point(0, phq9=20), point(1, phq9=8, level="outpatient", treatment=treated)],
        date(2026, 1, 30),
    )
    assert found.suggestion.kind == "step_down"
    assert found.suggestion.current_level_source == "treatment_history"
    assert found.suggestion.prompts == ()  # a meaningful improvement: nothing to review
    assert [c.direction for c in found.level_changes] == ["down"]


def test_a_referral_of_an_earlier_screening_is_the_current_level_before_a_decision() -> None:
    at = START + timedelta(days=1)
    first = point(
        0,
        phq9=20,
        level="partial_hospitalization",
        decision=LevelEvent("residential", at),
        referral=LevelEvent("partial_hospitalization", at),
    )
    latest = point(1, phq9=18, level="residential")
    found = trajectory([first, latest], date(2026, 1, 30))
    assert (found.suggestion.kind, found.suggestion.current_level_source) == (
        "step_up",
        "referral",
    )


def test_no_meaningful_improvement_after_4_weeks_asks_to_review_the_plan() -> None:
    treated = Treatment("intensive_outpatient", 5, "not_improving")
    found = trajectory([point(0, phq9=16), point(1, phq9=14, treatment=treated)], date(2026, 2, 1))
    assert found.suggestion.kind == "continue"
    (prompt,) = found.suggestion.prompts
    assert "review the plan" in prompt
    assert found.suggestion.references == (BAO_2016,)


def test_no_response_after_8_weeks_asks_for_a_psychiatric_review() -> None:
    treated = Treatment("intensive_outpatient", 9, "improving")
    found = trajectory([point(0, phq9=20), point(1, phq9=14, treatment=treated)], date(2026, 2, 1))
    (prompt,) = found.suggestion.prompts
    assert "psychiatric review" in prompt


def test_weeks_at_the_level_count_from_the_decision_when_the_answers_do_not_say() -> None:
    decided = LevelEvent("intensive_outpatient", START)
    first = point(0, phq9=20, decision=decided)
    screenings = [first, point(1, phq9=16), point(2, phq9=15)]
    found = trajectory(screenings, date(2026, 2, 20))  # six weeks after the decision
    assert found.suggestion.weeks_at_current_level == 6
    assert found.suggestion.current_level_source == "decision"
    (prompt,) = found.suggestion.prompts  # 16 to 15 since the level began
    assert "no meaningful improvement" in prompt
    assert (found.baseline_from.kind, found.baseline_from.screening_id) == ("current_level", "s1")


def test_no_level_means_no_suggestion_and_completing_the_screening_now() -> None:
    found = trajectory([point(0, phq9=12, level=None)], date(2026, 1, 7))
    assert found.suggestion.kind == "none"
    assert found.rescreen.due == date(2026, 1, 5)
    assert found.rescreen.overdue
    assert "complete the screening now" in found.rescreen.explanation


@pytest.mark.parametrize(
    ("level", "urgency", "days", "cites"),
    [
        ("outpatient", "routine", 28, True),
        ("intensive_outpatient", "routine", 14, False),
        ("partial_hospitalization", "routine", 7, False),
        ("residential", "routine", 7, False),
        ("inpatient", "routine", 7, False),
        ("emergency_evaluation", "emergent", 0, False),
        ("outpatient", "urgent", 0, False),
    ],
)
def test_rescreen_due_dates_by_level_and_urgency(
    level: str, urgency: str, days: int, cites: bool
) -> None:
    found = trajectory([point(0, phq9=10, level=level, urgency=urgency)], date(2026, 1, 5))
    assert found.rescreen.due == date(2026, 1, 5) + timedelta(days=days)
    assert not found.rescreen.overdue  # screened today
    assert "carelevel's default" in found.rescreen.explanation
    assert (BAO_2016 in found.rescreen.references) is cites
    later = trajectory(
        [point(0, phq9=10, level=level, urgency=urgency)], date(2026, 1, 6) + timedelta(days=days)
    )
    assert later.rescreen.overdue


# --- the level in force and re-screening -------------------------------------------------------


def test_a_decision_on_the_latest_screening_sets_the_rescreen_date() -> None:
    chosen = LevelEvent("intensive_outpatient", START + timedelta(hours=2))
    found = trajectory([point(0, phq9=9, level="outpatient", decision=chosen)], date(2026, 1, 5))
    assert found.rescreen.due == date(2026, 1, 19)  # 14 days (IOP), not 28 (outpatient)
    assert (found.rescreen.level, found.rescreen.level_source) == (
        "intensive_outpatient",
        "decision",
    )


def test_stepping_down_from_residential_rescreens_in_7_days() -> None:
    referred = LevelEvent("residential", START + timedelta(days=1))
    found = trajectory(
        [point(0, phq9=22, level="residential", referral=referred), point(1, phq9=12)],
        date(2026, 1, 26),
    )
    assert found.suggestion.kind == "step_down"
    assert found.rescreen.due == date(2026, 1, 26) + timedelta(days=7)  # not IOP's 14
    assert found.rescreen.references == (CHUNG_2017, NCQA_FUH)
    assert "riskiest" in found.rescreen.explanation


@pytest.mark.parametrize(
    ("reported", "days"), [("inpatient", 7), ("residential", 7), ("outpatient", 28)]
)
def test_a_discharge_from_24_hour_care_in_the_last_30_days_rescreens_in_7_days(
    reported: str, days: int
) -> None:
    discharged = Treatment(reported, discharged_last_30_days=True)
    found = trajectory(
        [point(0, phq9=12, level="outpatient", treatment=discharged)], date(2026, 1, 5)
    )
    assert found.rescreen.due == date(2026, 1, 5) + timedelta(days=days)


# --- the current level ------------------------------------------------------------------------


def test_the_more_recent_of_the_latest_referral_and_decision_is_the_current_level() -> None:
    referred = point(0, phq9=20, referral=LevelEvent("partial_hospitalization", START))
    decided = point(1, phq9=18, decision=LevelEvent("outpatient", START + timedelta(weeks=3)))
    found = trajectory([referred, decided, point(2, phq9=16)], date(2026, 2, 20))
    assert (found.suggestion.current_level, found.suggestion.current_level_source) == (
        "outpatient",
        "decision",
    )
    assert found.suggestion.kind == "step_up"


def test_the_persons_own_report_wins_over_an_earlier_referral() -> None:
    referred = point(0, phq9=20, referral=LevelEvent("partial_hospitalization", START))
    reports = Treatment("outpatient", 6, "not_improving")  # never took the referral up
    found = trajectory([referred, point(1, phq9=18, treatment=reports)], date(2026, 1, 30))
    assert (found.suggestion.current_level, found.suggestion.current_level_source) == (
        "outpatient",
        "treatment_history",
    )
    assert found.suggestion.kind == "step_up"


def test_a_report_of_no_treatment_means_no_current_level() -> None:
    referred = point(0, phq9=20, referral=LevelEvent("intensive_outpatient", START))
    found = trajectory(
        [referred, point(1, phq9=18, treatment=Treatment("none"))], date(2026, 1, 30)
    )
    assert found.suggestion.kind == "none"
    assert found.suggestion.current_level is None
    assert found.suggestion.current_level_source == "treatment_history"
    assert "no current treatment" in found.suggestion.explanation


# --- prompts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("values", [[10, 16], [10, 13, 15]])
def test_a_meaningful_worsening_prompts_a_review_now_at_any_week(values: list[int]) -> None:
    early = Treatment("intensive_outpatient", 1, "worsening")
    points = [point(n, phq9=value, treatment=early) for n, value in enumerate(values)]
    found = trajectory(points, date(2026, 2, 1))
    (prompt,) = found.suggestion.prompts
    assert "worsening: review now" in prompt
    assert LOWE_2004 in found.suggestion.references


def test_a_worsening_prompts_even_without_a_current_level() -> None:
    found = trajectory([point(0, gad7=8), point(1, gad7=12)], date(2026, 2, 1))
    assert found.suggestion.kind == "none"
    (prompt,) = found.suggestion.prompts
    assert prompt.startswith("GAD-7: worsening: review now")


def test_no_review_prompt_from_a_mild_baseline() -> None:
    treated = Treatment("intensive_outpatient", 6, "improving")
    found = trajectory(
        [point(0, phq9=8, gad7=6), point(1, phq9=7, gad7=4, treatment=treated)],
        date(2026, 2, 1),
    )
    assert found.suggestion.prompts == ()


# --- the baseline -----------------------------------------------------------------------------


def test_the_baseline_is_the_first_screening_since_the_current_level_began() -> None:
    referred = point(0, phq9=22, referral=LevelEvent("intensive_outpatient", START))
    found = trajectory([referred, point(1, phq9=16), point(2, phq9=12)], date(2026, 2, 1))
    phq9 = found.instruments[0]
    assert phq9.baseline is not None
    assert (phq9.baseline.screening_id, phq9.baseline.total) == ("s1", 16)
    assert found.baseline_from.kind == "current_level"
    assert found.baseline_from.screening_id == "s1"


def test_a_baseline_older_than_the_screenings_shown() -> None:
    everything = [point(0, phq9=20), point(1, phq9=14), point(2, phq9=8)]
    found = trajectory(everything[-1:], date(2026, 2, 1), history_of(everything))
    phq9 = found.instruments[0]
    assert [p.total for p in phq9.series] == [8]
    assert phq9.change_from_baseline is not None
    assert phq9.change_from_baseline.points == -12
    assert (phq9.response, phq9.remission) == (True, False)
    assert (found.baseline_from.kind, found.baseline_from.screening_id) == (
        "first_screening",
        "s0",
    )
    alone = trajectory(everything[-1:], date(2026, 2, 1), History())
    assert alone.instruments[0].change_from_baseline is None


# --- properties -------------------------------------------------------------------------------

totals = st.one_of(st.none(), st.integers(min_value=0, max_value=27))
series = st.lists(totals, min_size=1, max_size=8)


def points_of(values: list[int | None], start: int = 0) -> list[ScreeningPoint]:
    return [point(start + n, phq9=value) for n, value in enumerate(values)]


@given(series)
def test_the_trajectory_is_deterministic(values: list[int | None]) -> None:
    points = points_of(values)
    assert trajectory(points, date(2026, 3, 1)) == trajectory(list(points), date(2026, 3, 1))


@given(series, totals)
def test_an_older_screening_never_changes_the_change_from_previous(
    values: list[int | None], older: int | None
) -> None:
    if sum(value is not None for value in values) < 2:
        return  # no change from the previous score yet
    before = phq9_of(points_of(values, start=1))
    after = phq9_of(points_of([older], start=0) + points_of(values, start=1))
    assert after.change_from_previous == before.change_from_previous


@given(series)
def test_a_response_is_a_drop_of_at_least_half(values: list[int | None]) -> None:
    trend = phq9_of(points_of(values))
    if trend.response:
        assert trend.baseline is not None
        assert trend.latest is not None
        assert trend.baseline.total is not None
        assert trend.latest.total is not None
        assert trend.latest.total <= trend.baseline.total / 2


@given(series)
def test_remission_when_read_is_a_latest_score_below_5(values: list[int | None]) -> None:
    trend = phq9_of(points_of(values))
    if trend.remission is not None:
        assert trend.latest is not None
        assert trend.remission is ((trend.latest.total or 0) < 5)


@given(series)
def test_an_increase_is_never_a_meaningful_improvement(values: list[int | None]) -> None:
    trend = phq9_of(points_of(values))
    for change in (trend.change_from_baseline, trend.change_from_previous):
        if change is not None and change.points >= 0:
            assert change.meaningful != "improvement"


levels = st.sampled_from(
    ["outpatient", "intensive_outpatient", "partial_hospitalization", "residential", "inpatient"]
)
events = st.one_of(st.none(), st.builds(LevelEvent, levels, st.just(START + timedelta(days=1))))


@given(levels, levels, events, events)
def test_the_suggestion_reads_the_level_the_determination_weighed(
    reported: str, recommended: str, referral: LevelEvent | None, decision: LevelEvent | None
) -> None:
    first = point(0, phq9=15, referral=referral, decision=decision)
    latest = point(1, phq9=12, level=recommended, treatment=Treatment(reported))
    found = trajectory([first, latest], date(2026, 2, 1)).suggestion
    assert (found.current_level, found.recommended_level) == (reported, recommended)
    ranks = [LEVEL_RANK[LevelOfCare(level)] for level in (reported, recommended)]
    expected = (
        "step_up" if ranks[1] > ranks[0] else "step_down" if ranks[1] < ranks[0] else "continue"
    )
    assert found.kind == expected


@given(series, st.integers(min_value=0, max_value=7), st.integers(min_value=1, max_value=8))
def test_the_baseline_does_not_move_with_how_many_screenings_are_shown(
    values: list[int | None], decided_at: int, shown: int
) -> None:
    points = points_of(values)
    if decided_at < len(points) - 1:  # a decision on an earlier screening starts an episode
        chosen = LevelEvent("intensive_outpatient", points[decided_at].created_at)
        points[decided_at] = dataclasses.replace(points[decided_at], decision=chosen)
    everything = trajectory(points, date(2026, 3, 1))
    page = trajectory(points[-shown:], date(2026, 3, 1), history_of(points))
    assert page.baseline_from == everything.baseline_from
    for whole, part in zip(everything.instruments, page.instruments, strict=True):
        if part.latest != whole.latest:
            continue  # the latest total is not among the screenings shown
        assert (part.baseline, part.change_from_baseline) == (
            whole.baseline,
            whole.change_from_baseline,
        )
        assert (part.response, part.remission) == (whole.response, whole.remission)


@given(series, st.integers(min_value=0, max_value=20))
def test_no_review_prompt_below_a_moderate_baseline_or_in_remission(
    values: list[int | None], weeks: int
) -> None:
    points = points_of(values)
    points[-1] = dataclasses.replace(points[-1], treatment=Treatment("intensive_outpatient", weeks))
    found = trajectory(points, date(2026, 3, 1))
    trend = phq9_of(points)
    if trend.baseline is None or trend.latest is None:
        return
    low = (trend.baseline.total or 0) < 10 or (trend.latest.total or 0) < 5
    if low:
        assert not any("no meaningful improvement" in p for p in found.suggestion.prompts)
