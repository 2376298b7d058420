"""API shapes for rule sets and their versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.rulesets.models import VersionStatus


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


OWNER_DESCRIPTION = "`shared` (maintained by the operator, read by every tenant) or your tenant."


class RuleSetSummary(Schema):
    owner: str = Field(description=OWNER_DESCRIPTION, examples=["shared"])
    key: str = Field(examples=["iop-level-of-care"])
    title: str
    active_version: int | None = Field(description="The version that decides new screenings.")
    latest_version: int
    versions: int


class VersionSummary(Schema):
    owner: str = Field(description=OWNER_DESCRIPTION, examples=["shared"])
    key: str
    version: int
    status: VersionStatus
    title: str
    sha256: str = Field(description="sha256 of the canonical JSON of the content.")
    parent_owner: str | None = Field(description="Owner of the version this one was copied from.")
    parent_version: int | None
    created_by: str
    created_at: datetime
    published_by: str | None
    published_at: datetime | None
    activated_by: str | None
    activated_at: datetime | None
    retired_by: str | None
    retired_at: datetime | None


class VersionDetail(VersionSummary):
    content: dict[str, Any] = Field(description="The rule-set document.")


class RuleSetProblemOut(Schema):
    rule_id: str | None = Field(description="The rule the problem is in, when it is in one.")
    location: str = Field(examples=["stages.2.rules.4.when"])
    message: str


class CaseOutcome(Schema):
    name: str
    passed: bool
    failures: list[str]


class MonotonicityFindingOut(Schema):
    case: str = Field(description="The test case whose answers were changed.")
    change: str = Field(
        description="The single change towards more severe evidence.",
        examples=["CIWA-Ar total: 18 → 19"],
    )
    before: str = Field(
        description="Level and urgency before the change.",
        examples=["emergency_evaluation (emergent)"],
    )
    after: str = Field(
        description="Level and urgency after it (lower).", examples=["inpatient (emergent)"]
    )


class ValidationReport(Schema):
    """Whether a version can be published: it compiles under the current semantics, its cases
    pass, every rule fires, more severe evidence never lowers a case, every rule cites a
    source."""

    owner: str
    key: str
    version: int
    semantics: int | None = Field(
        description="The document's semantics (null when it does not parse); only the current "
        "one can be published."
    )
    compiles: bool
    problems: list[RuleSetProblemOut]
    cases: list[CaseOutcome]
    cases_passed: int
    cases_total: int
    rules_total: int
    rules_never_fired: list[str]
    coverage: float = Field(description="Share of rules that fire in at least one case.")
    monotonicity: list[MonotonicityFindingOut] = Field(
        description="Single changes towards more severe evidence (an item raised or declined, "
        "a safety answer, an abnormal vital sign) that lower a test case's level or urgency."
    )
    rules_without_references: list[str] = Field(description="Rules that cite no source.")
    unread_questions: list[str] = Field(
        default_factory=list,
        description="Questionnaire answers (answer paths such as `respondent.answered_by` or "
        "`instruments.phq9`) that no rule reads and that the document does not list as "
        "`context`: a warning for review; it does not block publishing.",
    )
    publishable: bool


class RuleChange(Schema):
    rule_id: str
    stage: str
    change: str = Field(description="added, removed or changed")
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class CaseDifference(Schema):
    case: str
    source_owner: str
    source_version: int
    before: dict[str, Any]
    after: dict[str, Any]


class VersionDiff(Schema):
    key: str
    from_owner: str
    from_version: int
    to_owner: str
    to_version: int
    rules: list[RuleChange]
    other_changes: list[str] = Field(description="Top-level fields that differ.")
    cases_compared: int
    behaviour_changes: list[CaseDifference]


class LevelTransition(Schema):
    from_level: str | None
    to_level: str | None
    count: int
    example_screening_ids: list[str]


class ValueChange(Schema):
    before: str | None = Field(description="The stored value.")
    after: str | None = Field(description="The value under the simulated version.")
    count: int
    example_screening_ids: list[str]


class SimulationReport(Schema):
    owner: str
    key: str
    version: int
    screenings_considered: int
    changed: int = Field(description="Screenings whose recommended level would change.")
    unchanged: int
    transitions: list[LevelTransition] = Field(
        description="From each stored level to the simulated one, the largest groups first."
    )
    urgency_changes: list[ValueChange] = Field(
        description="Screenings whose urgency would change, grouped by stored and new urgency."
    )
    verdict_changes: list[ValueChange] = Field(
        description="Screenings whose IOP verdict would change (e.g. suitable to "
        "pending_safety_assessment), grouped by stored and new verdict."
    )
    sample_limit: int


class ActivationResult(Schema):
    owner: str
    key: str
    version: int
    status: VersionStatus
    previous_active_version: int | None


# Rule-set documents are read by their routes themselves (JSON or YAML); the OpenAPI document
# describes those bodies with the document's schema (app/runtime/openapi.py adds it).
DOCUMENT_REF = {"$ref": "#/components/schemas/RuleSetDocument"}
