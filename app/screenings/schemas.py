"""API shapes for screenings, replays and clinician decisions."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.engine.answers import ScreeningAnswers
from app.engine.determination import Determination, LevelOfCare, Status, Urgency

_EXAMPLE_FILE = Path(__file__).resolve().parents[2] / "examples" / "adult-iop-suitable.json"
EXAMPLE_ANSWERS: dict[str, Any] = (
    json.loads(_EXAMPLE_FILE.read_text()) if _EXAMPLE_FILE.exists() else {}
)


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RuleSetPin(Schema):
    """Evaluate under a specific rule-set version instead of the active one."""

    key: str = Field(default="iop-level-of-care", examples=["iop-level-of-care"])
    version: int | None = Field(
        default=None,
        ge=1,
        description="A published, active or retired version; omit for the active one.",
    )


class ScreeningRequest(Schema):
    answers: ScreeningAnswers
    external_reference: str | None = Field(
        default=None,
        max_length=200,
        description="Your own reference for this screening (an encounter id, not a name).",
        examples=["enc-2026-000123"],
    )
    rule_set: RuleSetPin | None = Field(
        default=None, description="Pin a rule-set version; the active version decides otherwise."
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"answers": EXAMPLE_ANSWERS, "external_reference": "enc-2026-000123"}]
        },
    )


class RuleSetUsed(Schema):
    key: str
    version: int
    sha256: str


class EvaluationResponse(Schema):
    rule_set: RuleSetUsed
    determination: Determination


class ScreeningResponse(Schema):
    id: str = Field(examples=["7d7c1b0e-52a8-4f0e-8f5f-3f1f8c9b2a61"])
    created_at: datetime
    external_reference: str | None
    rule_set: RuleSetUsed
    engine_version: str
    determination: Determination
    latest_decision: DecisionResponse | None = None


class ScreeningSummary(Schema):
    id: str
    created_at: datetime
    external_reference: str | None
    rule_set: RuleSetUsed
    status: Status
    level: LevelOfCare | None
    urgency: Urgency
    iop_verdict: str


class ScreeningPage(Schema):
    items: list[ScreeningSummary]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class ReplayRequest(Schema):
    version: int | None = Field(
        default=None,
        ge=1,
        description="Another version of the same rule set (a what-if); omit to replay under the "
        "version that decided the screening.",
    )


class ReplayResponse(Schema):
    screening_id: str
    original_rule_set: RuleSetUsed
    replay_rule_set: RuleSetUsed
    what_if: bool = Field(description="True when replayed under another version.")
    identical: bool = Field(
        description="The replayed determination equals the stored one, byte for byte."
    )
    level_before: LevelOfCare | None
    level_after: LevelOfCare | None
    determination: Determination


class VarianceReason(StrEnum):
    """Why the level a clinician chose differs from the recommendation (coded, reportable)."""

    CLIENT_DECLINED_RECOMMENDED_LEVEL = "client_declined_recommended_level"
    CLIENT_PREFERS_HIGHER_LEVEL = "client_prefers_higher_level"
    LEVEL_NOT_AVAILABLE = "level_not_available"
    WAITLIST = "waitlist"
    CLINICAL_JUDGMENT = "clinical_judgment"
    INSURANCE_OR_PAYER = "insurance_or_payer"
    LEGAL_OR_COURT_MANDATE = "legal_or_court_mandate"
    TRANSPORT_OR_LOGISTICS = "transport_or_logistics"
    SUPPORTS_ELSEWHERE = "supports_elsewhere"
    OTHER = "other"


class DecisionRequest(Schema):
    final_level: LevelOfCare = Field(description="The level of care the clinician chose.")
    variance_reasons: list[VarianceReason] = Field(
        default_factory=list,
        max_length=10,
        description="Required when the final level differs from the recommendation.",
    )
    comment: str | None = Field(
        default=None,
        max_length=2000,
        description="Free text; required when a variance reason is 'other'.",
    )
    decided_by: str = Field(min_length=1, max_length=200, examples=["clinician-042"])

    @model_validator(mode="after")
    def _other_needs_comment(self) -> DecisionRequest:
        if VarianceReason.OTHER in self.variance_reasons and not (self.comment or "").strip():
            raise ValueError("a comment is required when a variance reason is 'other'")
        return self


class DecisionResponse(Schema):
    id: str
    screening_id: str
    created_at: datetime
    final_level: LevelOfCare
    recommended_level: LevelOfCare | None
    matches_recommendation: bool
    variance_reasons: list[VarianceReason]
    comment: str | None
    decided_by: str


ScreeningResponse.model_rebuild()
