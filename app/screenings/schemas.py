"""API shapes for screenings, replays and clinician decisions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    ValidationInfo,
    field_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

from app.engine.answers import EXAMPLE_SECTIONS, ScreeningAnswers
from app.engine.determination import Determination, LevelOfCare, Stage, Status, Urgency
from app.kernel.tenancy import TENANT_PATTERN
from app.kernel.text import NO_CONTROL_CHARACTERS, NO_NUL, NOT_BLANK
from app.screenings.models import PERSON_ID_LENGTH, PERSON_ID_PATTERN

EXAMPLE_ANSWERS: dict[str, Any] = EXAMPLE_SECTIONS


MAX_VERSION = 2_147_483_647  # version columns are 32-bit integers on Postgres
RULE_SET_KEY = r"^[a-z][a-z0-9-]{1,63}$"


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RuleSetPin(Schema):
    """Evaluate under a specific rule-set version instead of the active one."""

    owner: str | None = Field(
        default=None,
        pattern=TENANT_PATTERN,
        max_length=63,
        description="`shared` or your tenant. Default: your tenant's rule set of this key when "
        "your tenant has one (a fork), else the shared one.",
        examples=["shared"],
    )
    key: str = Field(
        default="iop-level-of-care",
        pattern=RULE_SET_KEY,
        description="The rule set's key (`GET /v1/rule-sets` lists them).",
        examples=["iop-level-of-care"],
    )
    version: int | None = Field(
        default=None,
        ge=1,
        le=MAX_VERSION,
        description="A published or active version (not a draft, not a retired one); omit for "
        "the active one.",
        examples=[1],
    )


PERSON_ID_EXAMPLE = "p-3f9a1c7e5b2d4f60"
PERSON_ID_DESCRIPTION = (
    "Your pseudonymous id of the person screened (8 to 64 characters of letters, digits and "
    "`. _ ~ -`, starting with a letter or digit): it links this person's screenings over time "
    "(`GET /v1/people/{person_id}/screenings`). Never a name, MRN or other direct identifier. "
    "Derive it from your patient without revealing who it is: an HMAC-SHA-256 of your "
    "patient's id under a secret key that only your EHR keeps (hex-encoded, 64 characters), "
    "or a random id that your EHR stores beside its patient. Only `POST /v1/screenings` "
    "stores it; an evaluation ignores it."
)


class ScreeningRequest(Schema):
    answers: ScreeningAnswers = Field(
        description="Everything the intake asked, section by section (`GET /v1/questionnaire` "
        "lists the questions). Leave out what was not asked.",
        examples=[EXAMPLE_ANSWERS],
    )
    external_reference: str | None = Field(
        default=None,
        max_length=200,
        pattern=NO_CONTROL_CHARACTERS,
        description="Your own reference for this screening (an encounter id, not a name).",
        examples=["enc-2026-000123"],
    )
    person_id: str | None = Field(
        default=None,
        max_length=PERSON_ID_LENGTH,
        pattern=PERSON_ID_PATTERN,
        description=PERSON_ID_DESCRIPTION,
        examples=[PERSON_ID_EXAMPLE],
    )
    rule_set: RuleSetPin | None = Field(
        default=None,
        description="Pin a rule-set version; the active version decides otherwise.",
        examples=[{"owner": "shared", "key": "iop-level-of-care", "version": 1}],
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "answers": EXAMPLE_ANSWERS,
                    "external_reference": "enc-2026-000123",
                    "person_id": PERSON_ID_EXAMPLE,
                }
            ]
        },
    )


class RuleSetUsed(Schema):
    owner: str = Field(description="`shared`, or your tenant for a rule set of its own.")
    key: str
    version: int
    sha256: str


class _TraceOnRequest:
    """Documents a determination as responses show it: ``trace`` only with ``?include=trace``
    (the definition is shared by every response that shows a determination)."""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        reference = handler(core_schema)
        definition = handler.resolve_ref_schema(reference)
        definition["required"] = [name for name in definition["required"] if name != "trace"]
        definition["properties"]["trace"]["description"] = (
            "Every rule evaluated, in order. Only with `?include=trace`; the stored "
            "determination always keeps it."
        )
        return reference


ShownDetermination = Annotated[Determination, _TraceOnRequest()]
SUMMARY = Field(
    description="Two or three plain sentences: the level, its urgency and the IOP verdict, the "
    "main reason, and what to do now (a safety alert's action first). Derived from the "
    "determination, beside it: never part of what is stored or replayed.",
    examples=[
        "Recommended level of care: Intensive outpatient program (IOP); urgency: routine; an "
        "IOP is suitable. Main reason: Moderate or worse substance-use risk needs a structured "
        "program several days a week. Next: a clinician reviews this and refers to Intensive "
        "outpatient program (IOP)."
    ],
)


class QuestionPath(Schema):
    path: str = Field(
        description="Where the answer goes in `answers` (dotted); also the FHIR Questionnaire "
        "linkId. An instrument's path (`instruments.phq9`) means: give the instrument.",
        examples=["safety.homicidal_ideation"],
    )
    pointer: str = Field(
        description="The same place as a JSON pointer into `answers`.",
        examples=["/safety/homicidal_ideation"],
    )
    link_id: str = Field(
        description="The FHIR Questionnaire item that asks it.",
        examples=["safety.homicidal_ideation"],
    )


class AskNext(Schema):
    item: str = Field(
        description="The missing item as `determination.missing` names it.",
        examples=["safety.homicidal_ideation"],
    )
    label: str = Field(
        description="What it is, in words.",
        examples=[
            "Thoughts of harming or killing someone else: none, thoughts without intent, "
            "or intent or a plan."
        ],
    )
    kind: Literal["question", "assessment"] = Field(
        description="`question`: answer one of `questions`; `assessment`: something a clinician "
        "must do (no question of the questionnaire supplies it).",
        examples=["question"],
    )
    stage: Stage = Field(
        description="The earliest stage that needs it: safety first, then information (nobody "
        "is placed without it), domains, placement, feasibility.",
        examples=["safety"],
    )
    questions: list[QuestionPath] = Field(
        description="Unanswered questions that supply it, any one of which may do.",
        examples=[
            [
                {
                    "path": "safety.homicidal_ideation",
                    "pointer": "/safety/homicidal_ideation",
                    "link_id": "safety.homicidal_ideation",
                }
            ]
        ],
    )
    needed_by: list[str] = Field(
        description="The rules that need it.", examples=[["safety.homicidal-thoughts"]]
    )


ASK_NEXT = Field(
    description="What to ask next: `determination.missing` as the questionnaire's questions not "
    "yet answered, ordered by what they could change (safety first, then by stage); empty when "
    "the screening is complete. Submit what you have, ask the first, submit again. Derived "
    "beside the determination, never stored in it.",
    examples=[
        [
            {
                "item": "safety.recent_violence",
                "label": "Assaultive or violent behavior toward others in the past 30 days.",
                "kind": "question",
                "stage": "safety",
                "questions": [
                    {
                        "path": "safety.recent_violence",
                        "pointer": "/safety/recent_violence",
                        "link_id": "safety.recent_violence",
                    }
                ],
                "needed_by": ["safety.recent-violence"],
            }
        ]
    ],
)


class EvaluationResponse(Schema):
    rule_set: RuleSetUsed
    summary: str = SUMMARY
    determination: ShownDetermination
    ask_next: list[AskNext] = ASK_NEXT


PERSON_ID = Field(
    description="Your pseudonymous id of the person screened, if you gave one.",
    examples=[PERSON_ID_EXAMPLE],
)


class ScreeningResponse(Schema):
    id: str = Field(examples=["7d7c1b0e-52a8-4f0e-8f5f-3f1f8c9b2a61"])
    created_at: datetime
    external_reference: str | None
    person_id: str | None = PERSON_ID
    rule_set: RuleSetUsed
    engine_version: str
    summary: str = SUMMARY
    determination: ShownDetermination
    ask_next: list[AskNext] = ASK_NEXT
    latest_decision: DecisionResponse | None = None


class ScreeningSummary(Schema):
    id: str
    created_at: datetime
    external_reference: str | None
    person_id: str | None = PERSON_ID
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
    owner: str | None = Field(
        default=None,
        pattern=TENANT_PATTERN,
        max_length=63,
        description="Replay under a version of another owner's rule set of the same key (a "
        "what-if: your fork against the shared one, or back); omit for the original owner.",
        examples=["shared"],
    )
    version: int | None = Field(
        default=None,
        ge=1,
        le=MAX_VERSION,
        description="Another version of the same rule set (a what-if; any version but a draft); "
        "omit to replay under the version that decided the screening.",
        examples=[2],
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
    summary: str = SUMMARY
    determination: ShownDetermination


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
    """Whether variance reasons are needed depends on the screening's recommendation, which
    no schema of the request can know; the comment that 'other' needs is stated in it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "if": {
                "properties": {"variance_reasons": {"contains": {"const": "other"}}},
                "required": ["variance_reasons"],
            },
            "then": {
                "required": ["comment"],
                "properties": {"comment": {"type": "string", "pattern": NOT_BLANK}},
            },
        },
    )

    final_level: LevelOfCare = Field(
        description="The level of care the clinician chose.", examples=["intensive_outpatient"]
    )
    variance_reasons: list[VarianceReason] = Field(
        default_factory=list,
        max_length=10,
        description="Required when the final level differs from the recommendation; empty when "
        "it matches.",
        examples=[["waitlist"]],
    )
    comment: str | None = Field(
        default=None,
        max_length=2000,
        pattern=NO_NUL,
        validate_default=True,
        description="Free text; required when a variance reason is 'other'. No names or other "
        "identifying details.",
        examples=["The IOP has a four-week waitlist; PHP has a place now."],
    )
    decided_by: str = Field(
        min_length=1,
        max_length=200,
        pattern=NO_CONTROL_CHARACTERS,
        description="Your identifier of the clinician who decided (a staff id, not a name).",
        examples=["clinician-042"],
    )

    @field_validator("comment")
    @classmethod
    def _other_needs_comment(cls, comment: str | None, info: ValidationInfo) -> str | None:
        """Reported at ``#/comment``, where the answer is missing (runs when it is left out)."""
        reasons = info.data.get("variance_reasons") or ()
        if VarianceReason.OTHER in reasons and not (comment or "").strip():
            raise PydanticCustomError(
                "comment_required", "a comment is required when a variance reason is 'other'"
            )
        return comment


class DecisionResponse(Schema):
    id: str
    screening_id: str
    created_at: datetime
    final_level: LevelOfCare | None = Field(
        description="The level chosen; empty when an EHR reported the recommendation "
        "overridden without saying what was chosen instead."
    )
    recommended_level: LevelOfCare | None
    matches_recommendation: bool
    variance_reasons: list[VarianceReason]
    comment: str | None
    decided_by: str
    outcome: Literal["decided", "accepted", "overridden"] = Field(
        description="decided (recorded through this API), or from CDS Hooks feedback: accepted "
        "or overridden."
    )
    source: Literal["api", "cds-hooks"]


ScreeningResponse.model_rebuild()
