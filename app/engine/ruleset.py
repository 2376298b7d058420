"""The rule-set document: what a clinical admin writes (YAML or JSON), validated by Pydantic.

A document holds the instrument cut-offs it scores with, ordered stages of rules, named answer
fixtures and test cases. It is data only; ``compiler.py`` turns it into something that runs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from app.engine.determination import (
    CURRENT_SEMANTICS,
    Domain,
    IopVerdict,
    LevelOfCare,
    Rating,
    Status,
    Urgency,
)
from app.engine.instruments import InstrumentId, ScoringSex

RULE_ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
CODE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"


class DocumentModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleBase(DocumentModel):
    id: str = Field(
        pattern=RULE_ID_PATTERN,
        description="Unique rule id (lower case, digits, '-', '_', '.').",
        examples=["safety.cssrs-high-risk"],
    )
    description: str = Field(
        min_length=1, description="Plain-language statement of the rule, shown as the reason."
    )
    when: str = Field(
        min_length=1,
        description="Condition in the rule-set expression language.",
        examples=['cssrs.tier == "high"'],
    )
    references: list[str] = Field(
        default_factory=list, description="Sources for the rule (guidelines, papers)."
    )


class SafetyOverride(DocumentModel):
    level: LevelOfCare = Field(description="The level this override sends the person to.")
    urgency: Urgency = Urgency.EMERGENT
    action: str = Field(min_length=1, description="What must happen now.")


class SafetyFollowUp(DocumentModel):
    urgency: Urgency = Urgency.URGENT
    action: str = Field(min_length=1, description="What must happen, and how soon.")
    requires: list[str] = Field(
        default_factory=list,
        description="Information still needed; when given, the result is marked partial.",
    )


class SafetyRule(RuleBase):
    """Every safety rule is evaluated; the most severe override that fires sets the level (under
    ``semantics: 1``, the first in file order did), alerts are all collected."""

    override: SafetyOverride | None = None
    alert: SafetyFollowUp | None = None

    @model_validator(mode="after")
    def _one_outcome(self) -> SafetyRule:
        if (self.override is None) == (self.alert is None):
            raise ValueError("a safety rule has exactly one of 'override' or 'alert'")
        return self


class ContradictionRule(RuleBase):
    """Semantics 3: answers that contradict each other. When it fires, the contradiction is
    reported and ``confirm`` becomes a missing item (the result is partial); the answers are
    used as given and the level and urgency never change."""

    confirm: str = Field(
        min_length=1,
        description="What to confirm with the person, shown as a missing item.",
        examples=["Check both answers with the person; both can be right."],
    )


class InformationRule(RuleBase):
    """When it fires, the information is insufficient for any placement."""

    missing: list[str] = Field(min_length=1, description="What must be collected first.")


class DomainRule(RuleBase):
    """Rates a domain; the highest rating that fires wins for that domain."""

    domain: Domain
    rating: Rating


class ConditionSpec(DocumentModel):
    code: str = Field(pattern=CODE_PATTERN)
    description: str = Field(min_length=1)


class PlacementRule(RuleBase):
    """Sets a minimum level; the highest level that fires wins."""

    level: LevelOfCare
    urgency: Urgency = Urgency.ROUTINE
    conditions: list[ConditionSpec] = Field(
        default_factory=list,
        description="What an ambulatory level needs in place when this rule fires (ignored when "
        "the recommended level provides 24-hour care).",
    )


class AccommodationSpec(DocumentModel):
    code: str = Field(pattern=CODE_PATTERN)
    description: str = Field(min_length=1)
    when: str | None = Field(
        default=None, description="Offer this accommodation only when the condition holds."
    )


class BarrierSpec(DocumentModel):
    code: str = Field(pattern=CODE_PATTERN)
    description: str = Field(min_length=1)
    accommodations: list[AccommodationSpec] = Field(min_length=1)


class FeasibilityRule(RuleBase):
    """A practical barrier to attending; every barrier that fires is reported."""

    barrier: BarrierSpec


class SafetyStage(DocumentModel):
    stage: Literal["safety"]
    rules: list[SafetyRule] = Field(min_length=1)


class ConsistencyStage(DocumentModel):
    """Semantics 3: runs after safety (also when an override fired), before information."""

    stage: Literal["consistency"]
    rules: list[ContradictionRule] = Field(min_length=1)


class InformationStage(DocumentModel):
    stage: Literal["information"]
    rules: list[InformationRule] = Field(min_length=1)


class DomainStage(DocumentModel):
    stage: Literal["domains"]
    rules: list[DomainRule] = Field(min_length=1)


class PlacementStage(DocumentModel):
    stage: Literal["placement"]
    default_level: LevelOfCare = Field(description="The level when no placement rule fires.")
    default_reason: str = Field(min_length=1)
    rules: list[PlacementRule] = Field(min_length=1)


class FeasibilityStage(DocumentModel):
    stage: Literal["feasibility"]
    rules: list[FeasibilityRule] = Field(min_length=1)


StageDocument = Annotated[
    SafetyStage
    | ConsistencyStage
    | InformationStage
    | DomainStage
    | PlacementStage
    | FeasibilityStage,
    Field(discriminator="stage"),
]


class BandDocument(DocumentModel):
    label: str = Field(pattern=CODE_PATTERN)
    min: StrictInt
    max: StrictInt


def _omitted_when_none(value: object) -> bool:
    return value is None


class PopulationPolicyDocument(DocumentModel):
    bands: list[BandDocument] | None = Field(
        default=None,
        description="Severity bands for this population, ascending, covering the whole score "
        "range; their labels are the instrument's own band labels (some may be left out).",
    )
    positive_at: StrictInt | dict[ScoringSex, StrictInt] | None = Field(
        default=None,
        description="Positive-screen threshold for this population (one per sex where the "
        "instrument has sex-specific cut-offs).",
    )
    references: list[str] = Field(
        default_factory=list, description="Sources of these cut-offs (guidelines, papers)."
    )


class InstrumentPolicyDocument(DocumentModel):
    bands: list[BandDocument] | None = Field(
        default=None, description="Severity bands, ascending, covering the whole score range."
    )
    positive_at: StrictInt | dict[ScoringSex, StrictInt] | None = Field(
        default=None,
        description="Positive-screen threshold, or one per sex for sex-specific instruments.",
    )
    adolescent: PopulationPolicyDocument | None = Field(
        default=None,
        exclude_if=_omitted_when_none,
        description="Cut-offs for adolescents (respondent.age_group 'adolescent') where they "
        "differ from the adult ones; what is not given here is the adult cut-off.",
    )


class Expectation(DocumentModel):
    """What a test case expects; every field given is checked, the rest are not."""

    level: LevelOfCare | None = None
    no_level: bool = Field(default=False, description="Expect no recommended level at all.")
    urgency: Urgency | None = None
    status: Status | None = None
    iop: IopVerdict | None = None
    fired: list[str] = Field(default_factory=list, description="Rule ids that must fire.")
    not_fired: list[str] = Field(default_factory=list, description="Rule ids that must not fire.")
    barriers: list[str] | None = Field(default=None, description="Exactly these barrier codes.")
    conditions: list[str] | None = Field(
        default=None, description="Exactly these placement-condition codes."
    )
    missing: list[str] = Field(
        default_factory=list, description="Items that must be reported missing."
    )
    domains: dict[Domain, Rating] = Field(default_factory=dict)
    contradictions: list[str] | None = Field(
        default=None,
        exclude_if=_omitted_when_none,
        description="Exactly these consistency rule ids fire (semantics 3).",
    )


class TestCase(DocumentModel):
    name: str = Field(min_length=1)
    description: str = ""
    extends: str | None = Field(
        default=None, description="A fixture the answers are merged onto (deep merge)."
    )
    answers: dict[str, Any]
    expect: Expectation


def _is_first_semantics(value: object) -> bool:
    return value == 1  # left out, so documents written before the key existed keep their hash


def _is_empty(value: object) -> bool:
    return not value  # left out, so documents written before the key existed keep their hash


class RuleSetDocument(DocumentModel):
    """A whole rule set as written by a clinical admin."""

    key: str = Field(pattern=r"^[a-z][a-z0-9-]{1,63}$", examples=["iop-level-of-care"])
    version: str = Field(min_length=1, max_length=64, examples=["2026.12.0"])
    semantics: StrictInt = Field(
        default=1,
        ge=1,
        le=CURRENT_SEMANTICS,
        exclude_if=_is_first_semantics,
        examples=[CURRENT_SEMANTICS],
        description="How the engine evaluates this document. 3 (current; new versions must "
        "declare it): as 2, plus a `consistency` stage (answers that contradict each other, "
        "to confirm), `context` answers, the answers given that did not affect the result, and "
        "how each eliminated level relates to the one recommended. 2: every safety override "
        "is evaluated and the most severe one decides; an "
        "open safety question withholds the IOP verdict; safety rules never read the "
        "presenting concerns; reasons carry their rules' references. 1 (a document without "
        "this key): the first override in file order decides; kept only so that versions "
        "published before 2026.12 replay their screenings byte for byte.",
    )
    title: str = Field(min_length=1)
    description: str = ""
    context: list[str] = Field(
        default_factory=list,
        exclude_if=_is_empty,
        examples=[["respondent.answered_by"]],
        description="Semantics 3: answer paths shown to clinicians as context, read by no rule "
        "(a section answer such as `respondent.answered_by`, or `instruments.<id>`).",
    )
    instruments: dict[InstrumentId, InstrumentPolicyDocument] = Field(
        default_factory=dict,
        description="Cut-off overrides per instrument; instruments not listed use the published "
        "defaults.",
    )
    stages: list[StageDocument] = Field(min_length=1)
    fixtures: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Named base answers that test cases extend."
    )
    tests: list[TestCase] = Field(default_factory=list)
