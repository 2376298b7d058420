"""API shapes of a person's screenings over time (GET /v1/people/{person_id}/screenings)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.engine.determination import LevelOfCare, Status, Urgency


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PersonLatestDecision(Schema):
    final_level: LevelOfCare | None = Field(
        description="The level the clinician chose (empty when an EHR reported the "
        "recommendation overridden without the level chosen)."
    )
    created_at: datetime


class PersonLatestReferral(Schema):
    program_id: str
    level: LevelOfCare = Field(description="The level of the program referred to.")
    created_at: datetime


class PersonScreening(Schema):
    id: str
    created_at: datetime
    level: LevelOfCare | None = Field(description="The recommended level (none: incomplete).")
    urgency: Urgency
    status: Status
    iop_verdict: str
    scores: dict[str, int | None] = Field(
        description="Each instrument's total by its id (null: items declined or left out).",
        examples=[{"phq9": 14, "gad7": 9}],
    )
    latest_decision: PersonLatestDecision | None
    latest_referral: PersonLatestReferral | None


class ScoreSeriesPoint(Schema):
    screening_id: str
    date: date
    total: int | None
    severity: str | None = Field(description="The score's band as the determination names it.")


class ScoreChange(Schema):
    points: int = Field(description="Later score minus earlier: negative is a drop.")
    percent: float | None = Field(description="Of the earlier score (null when it was 0).")
    meaningful: Literal["improvement", "worsening", "none"] | None = Field(
        description="Whether the change reaches the instrument's meaningful change (PHQ-9: 5 "
        "points, GAD-7: 4); null for an instrument without such a threshold."
    )


class InstrumentTrajectory(Schema):
    instrument: str
    title: str
    series: list[ScoreSeriesPoint] = Field(
        description="Every screening that scored it, oldest first."
    )
    baseline: ScoreSeriesPoint | None = Field(
        description="The first score with a total of the current episode (see "
        "`baseline_from`); it may be older than the screenings shown, so it does not move "
        "with `limit`."
    )
    latest: ScoreSeriesPoint | None = Field(description="The last score with a total.")
    change_from_baseline: ScoreChange | None = Field(
        description="From the baseline to the latest score (null: no score since the baseline)."
    )
    change_from_previous: ScoreChange | None
    meaningful_change_points: int | None
    response: bool | None = Field(
        description="At least 50% below the baseline (PHQ-9; GAD-7 by analogy); null unless "
        "the baseline is 10 or more and there are two scores."
    )
    remission: bool | None = Field(
        description="The latest score below 5 (PHQ-9; GAD-7 by analogy); null unless the "
        "baseline is 10 or more and there are two scores."
    )
    notes: list[str]
    references: list[str]


class LevelStep(Schema):
    from_screening_id: str
    to_screening_id: str
    from_level: LevelOfCare | None
    to_level: LevelOfCare | None
    direction: Literal["up", "down", "same", "unknown"]


class LevelSuggestion(Schema):
    kind: Literal["step_up", "step_down", "continue", "none"] = Field(
        description="The latest recommended level against the person's current level."
    )
    current_level: LevelOfCare | None = Field(
        description="Where the person was when last screened: the level the latest answers' "
        "treatment history reports, when it reports one (the person's own report wins: a "
        "referral may never have been taken up; null when it reports no treatment); else the "
        "more recent of the latest referral of an earlier screening and the latest clinician "
        "decision on one."
    )
    current_level_source: Literal["referral", "decision", "treatment_history"] | None
    recommended_level: LevelOfCare | None
    weeks_at_current_level: int | None
    prompts: list[str] = Field(
        description="Measurement-based care prompts: a meaningful PHQ-9 or GAD-7 worsening "
        "from the previous score or the baseline at any week (review now); no meaningful "
        "improvement from a baseline of 10 or more after 4 weeks at the level (review the "
        "plan); no response after 8 (psychiatric review)."
    )
    explanation: str
    references: list[str]


class RescreenDue(Schema):
    due: date = Field(
        description="When to screen again (carelevel's defaults by the level in force; 7 days "
        "when stepping down from inpatient or residential care or discharged from it in the "
        "last 30 days)."
    )
    overdue: bool
    explanation: str
    references: list[str]
    level: LevelOfCare | None = Field(
        description="The level in force the date follows: the latest screening's latest "
        "clinician decision, else its recommendation."
    )
    level_source: Literal["decision", "recommendation"] | None


class BaselineFrom(Schema):
    kind: Literal["current_level", "first_screening"] = Field(
        description="`current_level`: the first screening since the current level began (after "
        "the referral or decision that chose it); `first_screening`: the person's first."
    )
    screening_id: str
    date: date
    explanation: str


class PersonScreenings(Schema):
    person_id: str
    screenings: list[PersonScreening] = Field(description="Oldest first.")
    instruments: list[InstrumentTrajectory]
    level_changes: list[LevelStep]
    suggestion: LevelSuggestion
    rescreen: RescreenDue
    baseline_from: BaselineFrom = Field(
        description="Which screening the instruments' baselines are read from."
    )
