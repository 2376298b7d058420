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
    baseline: ScoreSeriesPoint | None = Field(description="The first score with a total.")
    latest: ScoreSeriesPoint | None = Field(description="The last score with a total.")
    change_from_baseline: ScoreChange | None
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
        description="Where the person was when last screened: the latest referral of an "
        "earlier screening, else the latest clinician decision on one, else the latest "
        "answers' treatment history."
    )
    current_level_source: Literal["referral", "decision", "treatment_history"] | None
    recommended_level: LevelOfCare | None
    weeks_at_current_level: int | None
    prompts: list[str] = Field(
        description="Measurement-based care prompts: no meaningful PHQ-9 or GAD-7 improvement "
        "after 4 weeks at the level (review the plan), no response after 8 (psychiatric "
        "review)."
    )
    explanation: str
    references: list[str]


class RescreenDue(Schema):
    due: date = Field(description="When to screen again (carelevel's defaults by level).")
    overdue: bool
    explanation: str
    references: list[str]


class PersonScreenings(Schema):
    person_id: str
    screenings: list[PersonScreening] = Field(description="Oldest first.")
    instruments: list[InstrumentTrajectory]
    level_changes: list[LevelStep]
    suggestion: LevelSuggestion
    rescreen: RescreenDue
