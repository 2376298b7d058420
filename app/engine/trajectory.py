"""A person's screenings over time (measurement-based care), pure.

Given one person's screenings, oldest first, as plain data, what is known of them beyond those
screenings (``History``: the latest referral and decision of any earlier screening, the first
screenings of the current episode) and the day it is today, this says how each instrument's
score moved (from the baseline and from the one before), whether the PHQ-9 and GAD-7 changes
are meaningful, responses or remissions, how the recommended level moved, what the latest
recommendation means for the level the person is at now, and when to screen again. No clock
and no I/O: the same input gives the same output.

The level suggestion never contradicts the determination. Its kind compares only the level the
latest determination recommends with the person's current level, and names no other level.
When the latest answers report the current level, that report is the current level: it is
what the determination weighed (its step-up and step-down rules), so both read the same
level. Only when the answers are silent does the current level come from an earlier referral
or decision, which the determination could not weigh.
"""

from __future__ import annotations

import dataclasses
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
CHUNG_2017: Final = (
    "Chung DT et al. 2017, Suicide rates after discharge from psychiatric facilities: a "
    "systematic review and meta-analysis, JAMA Psychiatry"
)
NCQA_FUH: Final = "NCQA HEDIS: Follow-Up After Hospitalization for Mental Illness (FUH), 7-day rate"

# Response and remission are read only from a baseline at least this high (moderate).
RESPONSE_BASELINE: Final = 10
RESPONSE_DROP: Final = 0.5  # a response: the score at most half of its baseline
REMISSION_BELOW: Final = 5
REVIEW_WEEKS: Final = 4  # follow-up within 4 weeks of starting (Bao 2016)
PSYCHIATRIC_REVIEW_WEEKS: Final = 8  # psychiatric review at weeks 8-12 without response
TWENTY_FOUR_HOUR_CARE: Final = frozenset({"inpatient", "residential"})
AFTER_DISCHARGE_DAYS: Final = 7  # follow-up within 7 days of leaving 24-hour care (HEDIS FUH)
# How many of the current episode's first screenings the baseline is read from (a bound: an
# instrument first scored later in the episode takes its baseline from the screenings shown).
EPISODE_SCREENINGS: Final = 10

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
    discharged_last_30_days: bool | None = None


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


@dataclass(frozen=True, slots=True)
class History:
    """What the trajectory reads beyond the screenings shown, so that the current level and
    the baseline do not move with how many screenings are shown."""

    referral: LevelEvent | None = None  # the latest referral of any earlier screening
    decision: LevelEvent | None = None  # the latest decision on any earlier screening
    episode: tuple[ScreeningPoint, ...] = ()  # the current episode's first screenings


def history_of(screenings: Sequence[ScreeningPoint]) -> History:
    """The history when every screening of the person is given (oldest first)."""
    earlier = screenings[:-1]
    referrals = [s.referral for s in earlier if s.referral is not None]
    decisions = [s.decision for s in earlier if s.decision is not None]
    found = History(
        referral=max(referrals, key=lambda e: e.at, default=None),
        decision=max(decisions, key=lambda e: e.at, default=None),
    )
    since = episode_start(screenings[-1], found)
    episode = [s for s in screenings if since is None or s.created_at > since]
    # A level chosen after the latest screening: no screening of that episode yet.
    return dataclasses.replace(found, episode=tuple((episode or screenings)[:EPISODE_SCREENINGS]))


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
    level: str | None  # the level in force the due date follows
    level_source: Literal["decision", "recommendation"] | None


@dataclass(frozen=True, slots=True)
class BaselineFrom:
    """Where the baselines are read from: the current episode or the person's first screening."""

    kind: Literal["current_level", "first_screening"]
    screening_id: str
    date: date
    explanation: str


@dataclass(frozen=True, slots=True)
class Trajectory:
    instruments: tuple[InstrumentTrend, ...]
    level_changes: tuple[LevelChange, ...]
    suggestion: Suggestion
    rescreen: Rescreen
    baseline_from: BaselineFrom


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


def instrument_trend(
    instrument: str,
    title: str,
    series: Sequence[SeriesPoint],
    baseline: SeriesPoint | None,
) -> InstrumentTrend:
    """One instrument's series (oldest first) and what its changes mean, from ``baseline``
    (its first total of the current episode, which may be older than the series)."""
    policy = POLICIES.get(instrument)
    scored = [point for point in series if point.total is not None]
    latest = scored[-1] if scored else None
    from_baseline = from_previous = None
    response = remission = None
    if len(scored) >= 2:
        from_previous = _change(_total(scored[-2]), _total(scored[-1]), policy)
    if baseline is not None and latest is not None and baseline.screening_id != latest.screening_id:
        first, last = _total(baseline), _total(latest)
        from_baseline = _change(first, last, policy)
        response, remission = _response_and_remission(first, last, policy)
    notes = [policy.response_and_remission if policy else NO_THRESHOLD]
    if len(scored) < len(series):
        notes.append(SKIPPED)
    return InstrumentTrend(
        instrument=instrument,
        title=title,
        series=tuple(series),
        baseline=baseline,
        latest=latest,
        change_from_baseline=from_baseline,
        change_from_previous=from_previous,
        meaningful_change_points=policy.meaningful_change if policy else None,
        response=response,
        remission=remission,
        notes=tuple(notes),
        references=policy.references if policy else (),
    )


def _total(point: SeriesPoint) -> int:
    assert point.total is not None  # only scored points are compared
    return point.total


def _series(screenings: Sequence[ScreeningPoint]) -> dict[str, list[tuple[SeriesPoint, str]]]:
    """Each instrument's points with its title, in the order the instruments first appear."""
    series: dict[str, list[tuple[SeriesPoint, str]]] = {}
    for screening in screenings:
        for score in screening.scores:
            point = SeriesPoint(
                screening.id, screening.created_at.date(), score.total, score.severity
            )
            series.setdefault(score.instrument, []).append((point, score.title or ""))
    return series


def _baselines(
    screenings: Sequence[ScreeningPoint], episode: Sequence[ScreeningPoint]
) -> dict[str, SeriesPoint]:
    """Each instrument's first total in the episode: among its first screenings, then among
    those shown from its start on."""
    start = episode[0].created_at if episode else screenings[0].created_at
    known = {s.id for s in episode}
    ordered = [*episode, *(s for s in screenings if s.created_at >= start and s.id not in known)]
    baselines: dict[str, SeriesPoint] = {}
    for name, points in _series(ordered).items():
        scored = [point for point, _ in points if point.total is not None]
        if scored:
            baselines[name] = scored[0]
    return baselines


def instrument_trends(
    screenings: Sequence[ScreeningPoint], episode: Sequence[ScreeningPoint] = ()
) -> tuple[InstrumentTrend, ...]:
    """Every instrument the screenings shown scored, in the order they first appear, each
    from its baseline in ``episode`` (none given: the screenings shown are the episode)."""
    baselines = _baselines(screenings, episode)
    return tuple(
        instrument_trend(
            name,
            next((title for _, title in points if title), name),
            [point for point, _ in points],
            baselines.get(name),
        )
        for name, points in _series(screenings).items()
    )


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


CurrentSource = Literal["referral", "decision", "treatment_history"]


@dataclass(frozen=True, slots=True)
class Current:
    """The level the person is at (None: the answers report no treatment), where that is
    known from, and since when, if a referral or decision chose it."""

    level: str | None
    source: CurrentSource
    since: datetime | None


def current_level(latest: ScreeningPoint, history: History) -> Current | None:
    """The level the person was at when last screened: what the latest answers' treatment
    history reports, when they report it (the person's own current report wins over older
    records: a referral may never have been taken up); else the most recent of the latest
    referral and the latest decision of an earlier screening. (A referral or decision on the
    latest screening acts on its recommendation; it is not where the person was.)"""
    events: list[tuple[LevelEvent, CurrentSource]] = []
    if history.referral is not None:
        events.append((history.referral, "referral"))
    if history.decision is not None:
        events.append((history.decision, "decision"))
    reported = latest.treatment.current_or_recent_level
    if reported is not None:
        level = reported if _rank(reported) is not None else None  # 'none': never treated
        chosen = [event.at for event, _ in events if event.level == level]
        return Current(level, "treatment_history", max(chosen, default=None))
    if not events:
        return None
    event, source = max(events, key=lambda pair: pair[0].at)  # a tie: the referral
    return Current(event.level, source, event.at)


def episode_start(latest: ScreeningPoint, history: History) -> datetime | None:
    """When the current level began (the referral or decision that chose it), if known: the
    current episode's screenings are the ones after it."""
    current = current_level(latest, history)
    return current.since if current else None


def _weeks_at(current: Current, latest: ScreeningPoint) -> int | None:
    """Weeks at the current level: as the latest answers say, else since it was chosen."""
    if (
        current.source == "treatment_history"
        and latest.treatment.weeks_at_current_level is not None
    ):
        return latest.treatment.weeks_at_current_level
    if current.since is None:
        return None
    return max(0, (latest.created_at - current.since).days // 7)


def _worsening_prompt(trend: InstrumentTrend) -> str | None:
    """A meaningful worsening from the previous score or the baseline: at any week."""
    for change, since in (
        (trend.change_from_previous, "the previous score"),
        (trend.change_from_baseline, "the baseline"),
    ):
        if change is not None and change.meaningful == "worsening":
            return (
                f"{trend.title}: worsening: review now ({change.points:+d} points from {since}; "
                f"{trend.meaningful_change_points} or more is a meaningful change)."
            )
    return None


def _review_prompt(trend: InstrumentTrend, weeks: int | None) -> str | None:
    """No response after 8 weeks, or no meaningful improvement after 4 (Bao 2016); none
    from a baseline below moderate or at a latest score in remission range."""
    change = trend.change_from_baseline
    if weeks is None or weeks < REVIEW_WEEKS or change is None:
        return None
    if weeks >= PSYCHIATRIC_REVIEW_WEEKS and trend.response is False:
        return (
            f"{trend.title}: no response after {weeks} weeks at this level: ask for a "
            "psychiatric review (collaborative care: weeks 8 to 12)."
        )
    if trend.baseline is None or change.meaningful == "improvement":
        return None
    # Below moderate there is little to improve on. (From 10 or more, a latest score in
    # remission range is a drop of 6 or more: a meaningful improvement on both instruments.)
    if _total(trend.baseline) < RESPONSE_BASELINE:
        return None
    return (
        f"{trend.title}: no meaningful improvement after {weeks} weeks at this level: "
        "review the plan (collaborative care: follow-up within 4 weeks)."
    )


def measurement_prompts(
    trends: Sequence[InstrumentTrend], weeks: int | None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Prompts from the PHQ-9 and GAD-7 at a level held ``weeks`` weeks, and their sources."""
    prompts: list[str] = []
    references: list[str] = []
    for trend in trends:
        policy = POLICIES.get(trend.instrument)
        if policy is None:
            continue
        worsening = _worsening_prompt(trend)
        prompt = worsening or _review_prompt(trend, weeks)
        if prompt is None:
            continue
        prompts.append(prompt)
        cited = policy.references[:1] if worsening else (BAO_2016,)
        references.extend(r for r in cited if r not in references)
    return tuple(prompts), tuple(references)


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


def _no_suggestion(
    latest: ScreeningPoint, current: Current | None, trends: Sequence[InstrumentTrend]
) -> Suggestion:
    if _rank(latest.level) is None:
        why = "the latest screening recommends no level (complete it first)."
    elif current is not None:
        why = "the latest answers report no current treatment."
    else:
        why = "no current level is known (no referral, decision or treatment history)."
    prompts, references = measurement_prompts(trends, None)  # a worsening still prompts
    return Suggestion(
        kind="none",
        current_level=current.level if current else None,
        current_level_source=current.source if current else None,
        recommended_level=latest.level,
        weeks_at_current_level=None,
        prompts=prompts,
        explanation=f"No suggestion: {why}",
        references=references,
    )


def suggestion(
    latest: ScreeningPoint, current: Current | None, trends: Sequence[InstrumentTrend]
) -> Suggestion:
    """The latest recommendation against the level the person is at now."""
    if current is None or current.level is None or _rank(latest.level) is None:
        return _no_suggestion(latest, current, trends)
    kind = _KINDS[_direction(current.level, latest.level)]  # both ranked: never 'unknown'
    weeks = _weeks_at(current, latest)
    prompts, references = measurement_prompts(trends, weeks)
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
        references=references,
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
AFTER_DISCHARGE: Final = (
    f"In {AFTER_DISCHARGE_DAYS} days: stepping down from 24-hour care, and the first week "
    "after leaving it is the riskiest (suicide rates are highest soon after discharge, Chung "
    "2017); follow-up within 7 days as the HEDIS FUH measure counts it (carelevel's default)."
)


def level_in_force(
    latest: ScreeningPoint,
) -> tuple[str | None, Literal["decision", "recommendation"] | None]:
    """The level the latest screening put in force: its latest clinician decision's final
    level, else its recommendation."""
    if latest.decision is not None and _rank(latest.decision.level) is not None:
        return latest.decision.level, "decision"
    if latest.level is None:
        return None, None
    return latest.level, "recommendation"


def _steps_down_from_24_hour_care(
    latest: ScreeningPoint, current: Current | None, level: str
) -> bool:
    treatment = latest.treatment
    if (
        treatment.discharged_last_30_days
        and treatment.current_or_recent_level in TWENTY_FOUR_HOUR_CARE
    ):
        return True
    if current is None or current.level not in TWENTY_FOUR_HOUR_CARE:
        return False
    return _direction(current.level, level) == "down"


def rescreen(latest: ScreeningPoint, current: Current | None, today: date) -> Rescreen:
    """When to screen the person again (carelevel's defaults), after the level in force, and
    whether that has passed."""
    screened = latest.created_at.date()
    level, source = level_in_force(latest)
    if level is None:
        return Rescreen(
            screened,
            today > screened,
            "The latest screening recommends no level: complete the screening now.",
            (),
            None,
            None,
        )
    if level == "emergency_evaluation" or latest.urgency in ("urgent", "emergent"):
        return Rescreen(
            screened,
            today > screened,
            "Now, after the emergency or urgent evaluation: screen again once it is done "
            "(carelevel's default).",
            (),
            level,
            source,
        )
    if _steps_down_from_24_hour_care(latest, current, level):
        due = screened + timedelta(days=AFTER_DISCHARGE_DAYS)
        return Rescreen(due, today > due, AFTER_DISCHARGE, (CHUNG_2017, NCQA_FUH), level, source)
    days, why = RESCREEN_DAYS.get(level, RESCREEN_DAYS["outpatient"])
    due = screened + timedelta(days=days)
    return Rescreen(
        due,
        today > due,
        f"In {days} days: {why} (carelevel's default).",
        (BAO_2016,) if level == "outpatient" else (),
        level,
        source,
    )


def baseline_from(latest: ScreeningPoint, history: History, first: ScreeningPoint) -> BaselineFrom:
    """Which screening starts the current episode (``first``: the earliest one known)."""
    since = episode_start(latest, history)
    if since is not None and first.created_at > since:
        return BaselineFrom(
            "current_level",
            first.id,
            first.created_at.date(),
            "Baselines are the first scores since the current level began (the first "
            "screening after the referral or decision that chose it).",
        )
    return BaselineFrom(
        "first_screening",
        first.id,
        first.created_at.date(),
        "Baselines are the person's first scores (no referral or decision is known to have "
        "started the current level before a later screening).",
    )


def trajectory(
    screenings: Sequence[ScreeningPoint], today: date, history: History | None = None
) -> Trajectory:
    """The trajectory of a person's screenings shown (at least one, oldest first), with what
    is known beyond them (default: the screenings shown are all the person's)."""
    if not screenings:
        raise ValueError("a trajectory needs at least one screening")
    latest = screenings[-1]
    history = history if history is not None else history_of(screenings)
    episode = history.episode or (screenings[0],)
    current = current_level(latest, history)
    trends = instrument_trends(screenings, episode)
    return Trajectory(
        instruments=trends,
        level_changes=level_changes(screenings),
        suggestion=suggestion(latest, current, trends),
        rescreen=rescreen(latest, current, today),
        baseline_from=baseline_from(latest, history, episode[0]),
    )
