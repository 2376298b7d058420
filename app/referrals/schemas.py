"""API shapes for matching a screening to the program directory and recording referrals."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StrictFloat, ValidationInfo, WithJsonSchema, field_validator
from pydantic_core import PydanticCustomError

from app.engine.answers import ScreeningAnswers
from app.engine.determination import LevelOfCare, Urgency
from app.engine.matching import CRITERIA, LevelSource, Origin, Preferences
from app.engine.programs import Contact, LanguageTag, Modality, ProgramDocument, Token
from app.kernel.text import NO_CONTROL_CHARACTERS, NO_NUL
from app.screenings.schemas import EXAMPLE_ANSWERS, RuleSetPin, Schema

ID_PATTERN = r"^[A-Za-z0-9-]+$"
EXAMPLE_SCREENING_ID = "0b8f5a7e-6c1d-4f0a-9a57-3f1c2e4d5b6a"
EXAMPLE_PROGRAM_ID = "5d0c2a9e-3f4b-4c1d-8e7f-6a5b4c3d2e1f"
EXAMPLE_REFERRAL_ID = "6f7a8b9c-0d1e-4f2a-8b3c-4d5e6f7a8b9c"


class OriginIn(Schema):
    """Where the person travels from: an area the tenant's travel-time tables name, or
    coordinates (used for straight-line estimates only; never stored or logged)."""

    area: Token | None = Field(default=None, examples=["riverside"])
    latitude: StrictFloat | None = Field(default=None, ge=-90, le=90)
    longitude: StrictFloat | None = Field(default=None, ge=-180, le=180, validate_default=True)

    @field_validator("longitude")
    @classmethod
    def _one_origin(cls, longitude: float | None, info: ValidationInfo) -> float | None:
        if not {"latitude", "area"} <= info.data.keys():
            return longitude  # another field failed: its own error says what is wrong
        latitude, area = info.data["latitude"], info.data["area"]
        if (latitude is None) != (longitude is None):
            raise PydanticCustomError("coordinates", "give both latitude and longitude, or neither")
        if area is None and latitude is None:
            raise PydanticCustomError("origin", "give an area or latitude and longitude")
        return longitude

    def origin(self) -> Origin:
        return Origin(self.area, self.latitude, self.longitude)


class PreferencesIn(Schema):
    """What the referrer adds to the screening's answers; each is optional."""

    origin: OriginIn | None = Field(default=None, description="Where the person travels from.")
    languages: list[LanguageTag] = Field(
        default_factory=list,
        max_length=10,
        description="Languages the person prefers (BCP 47); `es` matches `es-MX`.",
        examples=[["es"]],
    )
    payer: Token | None = Field(
        default=None,
        description="The person's payer, in the tenant's own codes (as programs list them).",
        examples=["medicaid"],
    )

    def preferences(self) -> Preferences:
        origin = self.origin.origin() if self.origin else None
        return Preferences(origin, tuple(self.languages), self.payer)


class MatchRequest(Schema):
    """A stored screening (`screening_id`) or answers to evaluate now (`answers`), not both."""

    screening_id: str | None = Field(
        default=None,
        max_length=64,
        pattern=ID_PATTERN,
        description="A stored screening of your tenant.",
        examples=[EXAMPLE_SCREENING_ID],
    )
    answers: ScreeningAnswers | None = Field(
        default=None,
        validate_default=True,
        description="Answers to evaluate as `POST /v1/screenings/evaluate` does, stored nowhere.",
        examples=[EXAMPLE_ANSWERS],
    )
    rule_set: RuleSetPin | None = Field(
        default=None,
        validate_default=True,
        description="With `answers`: pin a rule-set version, as `POST /v1/screenings/evaluate`.",
    )
    preferences: PreferencesIn = Field(default_factory=PreferencesIn)
    limit: int = Field(default=10, ge=1, le=50, description="How many candidates to return.")

    @field_validator("answers")
    @classmethod
    def _one_source(cls, answers: Any, info: ValidationInfo) -> Any:
        if "screening_id" not in info.data:
            return answers  # screening_id failed: its own error says what is wrong
        given = info.data["screening_id"] is not None
        if given == (answers is not None):
            raise PydanticCustomError("one_source", "give either screening_id or answers")
        return answers

    @field_validator("rule_set")
    @classmethod
    def _pin_with_answers(cls, pin: RuleSetPin | None, info: ValidationInfo) -> Any:
        if pin is not None and info.data.get("screening_id") is not None:
            raise PydanticCustomError(
                "pin_without_answers", "a stored screening keeps the version that decided it"
            )
        return pin


class CriterionOut(Schema):
    criterion: Annotated[str, WithJsonSchema({"type": "string", "enum": list(CRITERIA)})] = Field(
        description="The criterion judged: one of the matcher's, in its order."
    )
    outcome: Literal["fits", "partly", "does_not_fit", "unknown"]
    explanation: str = Field(examples=["The program has 2 places open."])


class ProgramBrief(Schema):
    id: str
    version: int
    name: str
    level: LevelOfCare
    modality: Modality
    hours_per_week: float | None
    contact: Contact | None


class CandidateOut(Schema):
    program: ProgramBrief
    rank: int = Field(description="1 for the best match.")
    fits: bool = Field(description="No criterion rules the program out.")
    summary: str = Field(examples=["Fits: evening sessions, 20 minutes away, 2 places open."])
    travel_minutes: int | None = Field(
        description="One-way minutes, from the tenant's table or estimated."
    )
    waitlist_weeks: float | None
    criteria: list[CriterionOut] = Field(description="Every criterion, in a fixed order.")


class MatchResponse(Schema):
    screening_id: str | None
    level: LevelOfCare | None = Field(description="The level matched against.")
    level_source: LevelSource = Field(
        description="`decided`: the level of the screening's latest clinician decision, "
        "`recommended`: the determination's (no decision, or answers evaluated now)."
    )
    urgency: Urgency
    notice: str | None = Field(
        description="Why there are no candidates (no level yet, or emergency evaluation first)."
    )
    considered: int = Field(description="How many programs of the directory were judged.")
    candidates: list[CandidateOut]


class ReferralRequest(Schema):
    program_id: str = Field(
        max_length=64,
        pattern=ID_PATTERN,
        description="A program of your directory.",
        examples=[EXAMPLE_PROGRAM_ID],
    )
    program_version: int | None = Field(
        default=None,
        ge=1,
        le=2_147_483_647,
        description="The version you matched against: refused (409) if the program changed since.",
        examples=[3],
    )
    note: str | None = Field(
        default=None,
        max_length=2000,
        pattern=NO_NUL,
        description="Free text for the program. No names or other identifying details.",
    )
    referred_by: str = Field(
        min_length=1,
        max_length=300,
        pattern=NO_CONTROL_CHARACTERS,
        description="Your identifier of the clinician who referred (a staff id, not a name).",
        examples=["clinician-042"],
    )
    preferences: PreferencesIn | None = Field(
        default=None, description="Preferences to judge the program with, as when matching."
    )


class MatchOut(Schema):
    """The referred program's judgement, as matching shows a candidate."""

    fits: bool
    summary: str
    travel_minutes: int | None
    waitlist_weeks: float | None
    criteria: list[CriterionOut]


class ReferralResponse(Schema):
    id: str
    screening_id: str
    created_at: datetime
    program_id: str
    program_version: int
    program: ProgramDocument = Field(description="The program as it was when referred.")
    level: LevelOfCare = Field(description="The program's level.")
    match: MatchOut
    referred_by: str
    note: str | None
    source: Literal["api", "cds"]


class ReferralList(Schema):
    items: list[ReferralResponse] = Field(description="Newest first.")
