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


class ValidationReport(Schema):
    """Whether a version can be published: it compiles, its cases pass, every rule fires."""

    owner: str
    key: str
    version: int
    compiles: bool
    problems: list[RuleSetProblemOut]
    cases: list[CaseOutcome]
    cases_passed: int
    cases_total: int
    rules_total: int
    rules_never_fired: list[str]
    coverage: float = Field(description="Share of rules that fire in at least one case.")
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


class SimulationReport(Schema):
    owner: str
    key: str
    version: int
    screenings_considered: int
    changed: int
    unchanged: int
    transitions: list[LevelTransition]
    sample_limit: int


class ActivationResult(Schema):
    owner: str
    key: str
    version: int
    status: VersionStatus
    previous_active_version: int | None
