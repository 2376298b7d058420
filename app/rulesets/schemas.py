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


# --- what clinicians' decisions teach (app/rulesets/overrides.py) ------------------------------

SUPPRESSED = (
    "True when a figure of this row is withheld (null): it rests on fewer people than the "
    "smallest count reported (`CARELEVEL_OVERRIDE_REPORT_MIN_COUNT`; a screening without a "
    "person id counts as its own person), or would give such a figure away by subtraction."
)
GRANULARITY = Field(
    description="Every count shown is rounded down to a multiple of this (5 when min_count is "
    "at least 5, else 1), and every rate is computed from the rounded counts, to two "
    "decimals: one more decision changes a figure only when a count crosses a multiple."
)


class OverrideReasonCount(Schema):
    reason: str = Field(description="A variance reason code.", examples=["waitlist"])
    count: int | None = Field(description="Overridden screenings giving this reason.")
    suppressed: bool = Field(description=SUPPRESSED)


class LevelChosenInstead(Schema):
    recommended_level: str | None = Field(examples=["intensive_outpatient"])
    chosen_level: str = Field(
        description="The level the clinician chose; `unknown` when an EHR reported the "
        "recommendation overridden without saying what was chosen (CDS Hooks feedback).",
        examples=["partial_hospitalization"],
    )
    count: int | None
    suppressed: bool = Field(description=SUPPRESSED)


class RuleOverrides(Schema):
    """How often a rule's screenings were overridden. A rule with a high override rate and a
    lift well above 1 is where clinicians disagree with the version: read its condition, the
    reasons and the levels chosen instead before drafting the next version."""

    rule_id: str
    fired_in_decided: int | None = Field(
        description="Screenings with a clinician decision in which the rule fired."
    )
    fired_in_overridden: int | None = Field(
        description="Of those, the screenings whose recommendation was overridden."
    )
    override_rate: float | None = Field(
        description="fired_in_overridden / fired_in_decided: how often the recommendation was "
        "overridden when this rule fired."
    )
    lift: float | None = Field(
        description="override_rate / the version's overall override rate: above 1, screenings "
        "in which the rule fires are overridden more often than the others."
    )
    suppressed: bool = Field(description=SUPPRESSED)


class RuleChange(Schema):
    rule_id: str
    stage: str
    change: str = Field(description="added, removed or changed")
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    overrides: RuleOverrides | None = Field(
        default=None,
        description="For a removed or changed rule: how clinicians decided your tenant's "
        "screenings of the `from` version in which it fired (null for an added rule, for a "
        "rule that never fired in a decided screening, and without the `screenings:read` "
        "scope). A changed rule that was often overridden is the change to check first.",
    )


class CaseDifference(Schema):
    case: str
    source_owner: str
    source_version: int
    before: dict[str, Any]
    after: dict[str, Any]


class DiffOverrides(Schema):
    decisions_considered: int | None = Field(
        description="Your tenant's screenings of the `from` version with a clinician decision "
        "(null below min_count people; rounded down to count_granularity)."
    )
    override_rate: float | None
    min_count: int = Field(description="The smallest number of people a figure rests on.")
    count_granularity: int = GRANULARITY
    truncated: bool = Field(description="Only the most recently decided screenings were read.")


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
    overrides: DiffOverrides | None = Field(
        default=None,
        description="The clinician decisions the rules' `overrides` rest on (null without the "
        "`screenings:read` scope).",
    )


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


class ClinicianAgreement(Schema):
    """Whether the simulated version would agree with clinicians more often than the stored
    results did: more agreement than stored suggests the change follows clinical judgement;
    less suggests it moves away from it (read the transitions and the override report)."""

    decided: int | None = Field(
        description="Sampled screenings whose latest clinician decision names a final level "
        "(a level recorded through the API, or a CDS recommendation accepted). Unlike the "
        "override report, CDS overrides are left out (the level chosen is unknown, so neither "
        "level can be compared with it: see excluded_unknown_level), and screenings without "
        "a stored recommendation are in (the simulated version may recommend the level "
        "chosen)."
    )
    agreed_stored: int | None = Field(description="Of those, how many the stored level matches.")
    agreed_simulated: int | None = Field(
        description="And how many the level under this version would match."
    )
    excluded_unknown_level: int | None = Field(
        description="Sampled screenings left out because their latest decision is a CDS "
        "override without the level chosen (null when fewer than min_count)."
    )
    min_count: int = Field(
        description="The smallest number of screenings a figure rests on (the samples carry "
        "no person id: screenings are counted)."
    )
    count_granularity: int = GRANULARITY
    suppressed: bool = Field(description=SUPPRESSED)


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
    clinician_agreement: ClinicianAgreement


class OverrideReport(Schema):
    """How clinicians decided your tenant's screenings of one rule-set version: agreement,
    the reasons and levels of overrides, and the rules that fire where recommendations are
    overridden. Each screening counts once, with its latest decision; a decision on a
    screening without a recommended level is no override (`without_recommendation`). A CDS
    override without the level chosen counts as overridden (to `unknown`), unlike in a
    simulation's clinician_agreement, which cannot compare it."""

    owner: str
    key: str
    version: int
    min_count: int = Field(
        description="The smallest number of people a figure rests on "
        "(`CARELEVEL_OVERRIDE_REPORT_MIN_COUNT`); a screening without a person id counts as "
        "its own person."
    )
    count_granularity: int = GRANULARITY
    decisions_considered: int | None = Field(
        description="Screenings of this version with a clinician decision (null below "
        "min_count people)."
    )
    without_recommendation: int | None = Field(
        description="Of those, screenings without a recommended level: their decisions are "
        "no overrides and count in no other figure."
    )
    decision_limit: int = Field(description="The most recently decided screenings read, at most.")
    truncated: bool = Field(description="More screenings were decided than decision_limit.")
    withheld: bool = Field(description="Fewer than min_count people decided: no figures.")
    notice: str | None
    agreed: int | None = Field(description="Screenings whose recommendation was taken.")
    overridden: int | None = Field(description="Screenings whose recommendation was not.")
    agreement_rate: float | None = Field(description="agreed / (agreed + overridden).")
    override_rate: float | None = Field(description="overridden / (agreed + overridden).")
    suppressed: bool = Field(description=SUPPRESSED)
    reasons: list[OverrideReasonCount] = Field(
        description="Variance reasons of the overridden screenings, the most frequent first "
        "(all withheld when overridden is)."
    )
    chosen_instead: list[LevelChosenInstead] = Field(
        description="Recommended level → level chosen instead, the most frequent first (all "
        "withheld when overridden is)."
    )
    rules: list[RuleOverrides] = Field(
        description="Every rule that fired in a decided screening, the most overridden first."
    )


class ActivationResult(Schema):
    owner: str
    key: str
    version: int
    status: VersionStatus
    previous_active_version: int | None


# Rule-set documents are read by their routes themselves (JSON or YAML); the OpenAPI document
# describes those bodies with the document's schema (app/runtime/openapi.py adds it).
DOCUMENT_REF = {"$ref": "#/components/schemas/RuleSetDocument"}
