"""A person's screenings over time (measurement-based care), pure.

Given one person's screenings, oldest first, as plain data, and the day it is today, this says
how each instrument's score moved (from the first score and from the one before), whether the
PHQ-9 and GAD-7 changes are meaningful, responses or remissions, how the recommended level
moved, what the latest recommendation means for the level the person is at now, and when to
screen again. No clock and no I/O: the same input gives the same output.

The level suggestion never contradicts the determination: it compares the level the latest
determination recommends (which already weighs the treatment history's step-up and step-down
rules) with the level the person is at, and says nothing else about placement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final, Literal

from app.engine.determination import LEVEL_RANK, LevelOfCare

LOWE_2004: Final = (
    "Löwe B, Unützer J, Callahan CM, Perkins AJ, Kroenke K 2004, Monitoring depression "
    "treatment outcomes with the Patient Health Questionnaire-9, Med Care"
)
SUCCESS_2020: Final = (
    "2020, Defining success in measurement-based care for depression, Psychiatr Serv, "
    "doi:10.1176/appi.ps.201900295"
)
TOUSSAINT_2020: Final = (
    "Toussaint A et al. 2020, Sensitivity to change and minimal clinically important "
    "difference of the 7-item Generalized Anxiety Disorder Questionnaire (GAD-7), J Affect "
    "Disord"
)
KOUNALI_2022: Final = (
    "Kounali D et al. 2022, How much change is enough? Evidence from a longitudinal study on "
    "depression in UK primary care, Psychol Med"
)
BAO_2016: Final = (
    "Bao Y et al. 2016, Unpacking collaborative care for depression: examining two essential "
    "tasks for implementation, Psychiatr Serv"
)

# Response and remission are read only from a baseline at least this high (moderate).
RESPONSE_BASELINE: Final = 10
RESPONSE_DROP: Final = 0.5  # a response: the score at most half of its baseline
REMISSION_BELOW: Final = 5
REVIEW_WEEKS: Final = 4  # follow-up within 4 weeks of starting (Bao 2016)
PSYCHIATRIC_REVIEW_WEEKS: Final = 8  # psychiatric review at weeks 8-12 without response

Direction = Literal["improvement", "worsening", "none"]
LevelDirection = Literal["up", "down", "same", "unknown"]
SuggestionKind = Literal["step_up", "step_down", "continue", "none"]


@dataclass(frozen=True, slots=True)
class Policy:
    """What carelevel reads into one instrument's changes."""

    meaningful_change: int
    response_and_remission: str  # how response and remission are defined, in words
    references: tuple[str, ...]


_RESPONSE_WORDS = (
    f"Response: the score at least 50% below its baseline; remission: the latest score below "
    f"{REMISSION_BELOW}. Both are read only when the baseline is {RESPONSE_BASELINE} or more "
    f"(moderate)."
)
POLICIES: Final[dict[str, Policy]] = {
    "phq9": Policy(
        5,
        f"A change of 5 points or more is meaningful (Löwe 2004). {_RESPONSE_WORDS} Kounali "
        "2022 suggests about a 20% drop as an alternative measure of change (a note, not a "
        "rule applied here).",
        (LOWE_2004, SUCCESS_2020, KOUNALI_2022),
    ),
    "gad7": Policy(
        4,
        f"A change of 4 points or more is meaningful (Toussaint 2020). {_RESPONSE_WORDS} "
        "Response and remission are applied by analogy with the PHQ-9. Kounali 2022 suggests "
        "about a 27% drop as an alternative measure of change (a note, not a rule applied "
        "here).",
        (TOUSSAINT_2020, SUCCESS_2020, KOUNALI_2022),
    ),
}
NO_THRESHOLD: Final = "No threshold for meaningful change is applied to this instrument."
SKIPPED: Final = (
    "Screenings without a total (items declined or left out) are shown in the series and "
    "skipped in the changes."
)


# --- input ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Score:
    instrument: str
    total: int | None
    severity: str | None = None
    title: str | None = None


@dataclass(frozen=True, slots=True)
class LevelEvent:
    """A level chosen for the person (a clinician's decision, a referral) and when."""

    level: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Treatment:
    """The treatment history answers of a screening."""

    current_or_recent_level: str | None = None
    weeks_at_current_level: int | None = None
    response_to_current_level: str | None = None


@dataclass(frozen=True, slots=True)
class ScreeningPoint:
    """One stored screening of the person, as the trajectory reads it."""

    id: str
    created_at: datetime
    level: str | None
    urgency: str
    status: str
    scores: tuple[Score, ...] = ()
    treatment: Treatment = Treatment()
    decision: LevelEvent | None = None  # the latest decision's final level, if any
    referral: LevelEvent | None = None  # the latest referral's level, if any


# --- output -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    screening_id: str
    date: date
    total: int | None
    severity: str | None


@dataclass(frozen=True, slots=True)
class Change:
    points: int
    percent: float | None  # of the earlier score; None when that was 0
    meaningful: Direction | None  # None: no threshold for this instrument


@dataclass(frozen=True, slots=True)
class InstrumentTrend:
    instrument: str
    title: str
    series: tuple[SeriesPoint, ...]
    baseline: SeriesPoint | None
    latest: SeriesPoint | None
    change_from_baseline: Change | None
    change_from_previous: Change | None
    meaningful_change_points: int | None
    response: bool | None
    remission: bool | None
    notes: tuple[str, ...]
    references: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LevelChange:
    from_screening_id: str
    to_screening_id: str
    from_level: str | None
    to_level: str | None
    direction: LevelDirection


@dataclass(frozen=True, slots=True)
class Suggestion:
    kind: SuggestionKind
    current_level: str | None
    current_level_source: Literal["referral", "decision", "treatment_history"] | None
    recommended_level: str | None
    weeks_at_current_level: int | None
    prompts: tuple[str, ...]
    explanation: str
    references: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Rescreen:
    due: date
    overdue: bool
    explanation: str
    references: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Trajectory:
    instruments: tuple[InstrumentTrend, ...]
    level_changes: tuple[LevelChange, ...]
    suggestion: Suggestion
    rescreen: Rescreen


# --- instruments ------------------------------------------------------------------------------


def _change(earlier: int, later: int, policy: Policy | None) -> Change:
    points = later - earlier
    percent = None if earlier == 0 else round(100 * points / earlier, 1)
    if policy is None:
        return Change(points, percent, None)
    meaningful: Direction = "none"
    if abs(points) >= policy.meaningful_change:
        meaningful = "improvement" if points < 0 else "worsening"
    return Change(points, percent, meaningful)


def _response_and_remission(
    baseline: int, latest: int, policy: Policy | None
) -> tuple[bool | None, bool | None]:
    """Response and remission, or None each when they are not read (see ``Policy``)."""
    if policy is None or baseline < RESPONSE_BASELINE:
        return None, None
    return latest <= baseline * RESPONSE_DROP, latest < REMISSION_BELOW


def instrument_trend(instrument: str, title: str, series: Sequence[SeriesPoint]) -> InstrumentTrend:
    """One instrument's series (oldest first) and what its changes mean."""
    policy = POLICIES.get(instrument)
    scored = [(point, point.total) for point in series if point.total is not None]
    from_baseline = from_previous = None
    response = remission = None
    if len(scored) >= 2:
        (_, first), (_, previous), (_, last) = scored[0], scored[-2], scored[-1]
        from_baseline = _change(first, last, policy)
        from_previous = _change(previous, last, policy)
        response, remission = _response_and_remission(first, last, policy)
    notes = [policy.response_and_remission if policy else NO_THRESHOLD]
    if len(scored) < len(series):
        notes.append(SKIPPED)
    return InstrumentTrend(
        instrument=instrument,
        title=title,
        series=tuple(series),
        baseline=scored[0][0] if scored else None,
        latest=scored[-1][0] if scored else None,
        change_from_baseline=from_baseline,
        change_from_previous=from_previous,
        meaningful_change_points=policy.meaningful_change if policy else None,
        response=response,
        remission=remission,
        notes=tuple(notes),
        references=policy.references if policy else (),
    )


def instrument_trends(screenings: Sequence[ScreeningPoint]) -> tuple[InstrumentTrend, ...]:
    """Every instrument any screening scored, in the order they first appear."""
    series: dict[str, list[SeriesPoint]] = {}
    titles: dict[str, str] = {}
    for screening in screenings:
        for score in screening.scores:
            point = SeriesPoint(
                screening.id, screening.created_at.date(), score.total, score.severity
            )
            series.setdefault(score.instrument, []).append(point)
            titles.setdefault(score.instrument, score.title or score.instrument)
    return tuple(instrument_trend(name, titles[name], points) for name, points in series.items())


# --- levels -----------------------------------------------------------------------------------


def _rank(level: str | None) -> int | None:
    if level is None or level not in LevelOfCare.__members__.values():
        return None
    return LEVEL_RANK[LevelOfCare(level)]


def _direction(before: str | None, after: str | None) -> LevelDirection:
    first, second = _rank(before), _rank(after)
    if first is None or second is None:
        return "unknown"
    return "up" if second > first else "down" if second < first else "same"


def level_changes(screenings: Sequence[ScreeningPoint]) -> tuple[LevelChange, ...]:
    return tuple(
        LevelChange(a.id, b.id, a.level, b.level, _direction(a.level, b.level))
        for a, b in zip(screenings, screenings[1:], strict=False)
    )


@dataclass(frozen=True, slots=True)
class _Current:
    level: str
    source: Literal["referral", "decision", "treatment_history"]
    since: datetime | None


def current_level(screenings: Sequence[ScreeningPoint]) -> _Current | None:
    """The level the person was at when last screened: the latest referral made from an
    earlier screening, else the latest clinician decision on one, else what the latest
    screening's treatment history says. (A referral or decision on the latest screening acts
    on its recommendation; it is not where the person was when screened.)"""
    earlier = screenings[:-1]
    for screening in reversed(earlier):
        if screening.referral is not None:
            return _Current(screening.referral.level, "referral", screening.referral.at)
    for screening in reversed(earlier):
        if screening.decision is not None:
            return _Current(screening.decision.level, "decision", screening.decision.at)
    reported = screenings[-1].treatment.current_or_recent_level
    if reported is None or _rank(reported) is None:  # 'none': never treated
        return None
    return _Current(reported, "treatment_history", None)


def _weeks_at(current: _Current, latest: ScreeningPoint) -> int | None:
    """Weeks at the current level: as the latest answers say, else since it was chosen."""
    if latest.treatment.weeks_at_current_level is not None:
        return latest.treatment.weeks_at_current_level
    if current.since is None:
        return None
    return max(0, (latest.created_at - current.since).days // 7)


def measurement_prompts(trends: Sequence[InstrumentTrend], weeks: int | None) -> tuple[str, ...]:
    """Prompts from the PHQ-9 and GAD-7 at a level held ``weeks`` weeks (Bao 2016)."""
    if weeks is None or weeks < REVIEW_WEEKS:
        return ()
    prompts: list[str] = []
    for trend in trends:
        change = trend.change_from_baseline
        if trend.instrument not in POLICIES or change is None:
            continue
        if weeks >= PSYCHIATRIC_REVIEW_WEEKS and trend.response is False:
            prompts.append(
                f"{trend.title}: no response after {weeks} weeks at this level: ask for a "
                "psychiatric review (collaborative care: weeks 8 to 12)."
            )
        elif change.meaningful != "improvement":
            prompts.append(
                f"{trend.title}: no meaningful improvement after {weeks} weeks at this level: "
                "review the plan (collaborative care: follow-up within 4 weeks)."
            )
    return tuple(prompts)


_KIND_WORDS: Final[dict[SuggestionKind, str]] = {
    "step_up": "The latest screening recommends a more intensive level than the current one: "
    "consider stepping up.",
    "step_down": "The latest screening recommends a less intensive level than the current "
    "one: consider stepping down.",
    "continue": "The latest screening recommends the current level: continue.",
}
_KINDS: Final[dict[LevelDirection, SuggestionKind]] = {
    "up": "step_up",
    "down": "step_down",
    "same": "continue",
}


def _no_suggestion(latest: ScreeningPoint, current: _Current | None) -> Suggestion:
    if _rank(latest.level) is None:
        why = "the latest screening recommends no level (complete it first)."
    else:
        why = "no current level is known (no referral, decision or treatment history)."
    return Suggestion(
        kind="none",
        current_level=current.level if current else None,
        current_level_source=current.source if current else None,
        recommended_level=latest.level,
        weeks_at_current_level=None,
        prompts=(),
        explanation=f"No suggestion: {why}",
        references=(),
    )


def suggestion(
    screenings: Sequence[ScreeningPoint], trends: Sequence[InstrumentTrend]
) -> Suggestion:
    """The latest recommendation against the level the person is at now."""
    latest = screenings[-1]
    current = current_level(screenings)
    if current is None or _rank(latest.level) is None:
        return _no_suggestion(latest, current)
    kind = _KINDS[_direction(current.level, latest.level)]  # both ranked: never 'unknown'
    weeks = _weeks_at(current, latest)
    prompts = measurement_prompts(trends, weeks)
    return Suggestion(
        kind=kind,
        current_level=current.level,
        current_level_source=current.source,
        recommended_level=latest.level,
        weeks_at_current_level=weeks,
        prompts=prompts,
        explanation=_KIND_WORDS[kind]
        + " The recommendation is the determination's own, which weighs the treatment "
        "history (its step-up and step-down rules).",
        references=(BAO_2016,) if prompts else (),
    )


# --- re-screening -----------------------------------------------------------------------------

# carelevel's defaults: how many days after a screening at each level to screen again, and why.
RESCREEN_DAYS: Final[dict[str, tuple[int, str]]] = {
    "inpatient": (7, "weekly in 24-hour care, where the plan is reviewed for continued stay"),
    "residential": (7, "weekly in 24-hour care, where the plan is reviewed for continued stay"),
    "partial_hospitalization": (7, "weekly in a day program, which is meant to be short"),
    "intensive_outpatient": (14, "every two weeks in an IOP, several contacts a week"),
    "outpatient": (28, "within 4 weeks in outpatient care (collaborative care follow-up)"),
}


def rescreen(latest: ScreeningPoint, today: date) -> Rescreen:
    """When to screen the person again (carelevel's defaults), and whether that has passed."""
    screened = latest.created_at.date()
    if latest.level is None:
        return Rescreen(
            screened,
            today > screened,
            "The latest screening recommends no level: complete the screening now.",
            (),
        )
    if latest.level == "emergency_evaluation" or latest.urgency in ("urgent", "emergent"):
        return Rescreen(
            screened,
            today > screened,
            "Now, after the emergency or urgent evaluation: screen again once it is done "
            "(carelevel's default).",
            (),
        )
    days, why = RESCREEN_DAYS.get(latest.level, RESCREEN_DAYS["outpatient"])
    due = screened + timedelta(days=days)
    return Rescreen(
        due,
        today > due,
        f"In {days} days: {why} (carelevel's default).",
        (BAO_2016,) if latest.level == "outpatient" else (),
    )


def trajectory(screenings: Sequence[ScreeningPoint], today: date) -> Trajectory:
    """The trajectory of a person's screenings (at least one, oldest first)."""
    if not screenings:
        raise ValueError("a trajectory needs at least one screening")
    trends = instrument_trends(screenings)
    return Trajectory(
        instruments=trends,
        level_changes=level_changes(screenings),
        suggestion=suggestion(screenings, trends),
        rescreen=rescreen(screenings[-1], today),
    )
