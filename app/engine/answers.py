"""The questionnaire: everything an intake collects, grouped the way a clinician thinks.

``ScreeningAnswers`` is the public contract of carelevel (the REST body, the FHIR Questionnaire
and the facts rule conditions read are all derived from it). Unknown fields are rejected. Every
section and every field is optional unless stated: a field left out means "not asked", which is
different from an instrument item answered ``"declined"``. The engine reports what is missing
instead of guessing.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from app.engine.choice import Choice
from app.engine.instruments import (
    CRAFFT_PART_A,
    DECLINED,
    SPECS,
    InstrumentId,
    ItemError,
    ScoringSex,
    check_crafft_items,
    check_ordinal_items,
    check_yes_no_items,
    crafft_part_a_use,
)

Declined = Literal["declined"]
OrdinalItem = StrictInt | Declined
YesNoItem = StrictBool | Declined


class Section(BaseModel):
    """Base of every questionnaire section: strict about unknown fields, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


def asked_when(sibling: str, value: bool) -> dict[str, Any]:
    """Field metadata: this question is asked only when ``sibling`` (a field of the same section)
    was answered ``value``; the section's validator enforces it, and the questionnaires (REST
    and FHIR ``enableWhen``) show it."""
    return {"askedWhen": {"field": sibling, "equals": value}}


def _item_error(error: ItemError) -> PydanticCustomError:
    return PydanticCustomError("instrument_item", str(error))


# --- respondent and concerns -------------------------------------------------------------------


class AgeGroup(Choice):
    ADULT = "adult"
    ADOLESCENT = "adolescent"


class Informant(Choice):
    SELF_REPORT = "self_report"
    CLINICIAN = "clinician"


class Concern(Choice):
    SUBSTANCE_USE = "substance_use"
    MENTAL_HEALTH = "mental_health"
    EATING_DISORDER = "eating_disorder"


class Respondent(Section):
    age_group: AgeGroup = Field(
        description="Adult (18+) or adolescent (12-17); sets the IOP hours (adult 9+, adolescent "
        "6+ a week) and the eating-disorder vital-sign thresholds.",
        examples=["adult"],
    )
    answered_by: Informant = Field(
        description="Who gave the answers: the person (self-report) or a clinician's rating.",
        examples=["self_report"],
    )
    sex_for_scoring: ScoringSex = Field(
        default=ScoringSex.UNKNOWN,
        description="Chooses sex-specific instrument cut-offs (AUDIT-C: 4 for male, 3 for "
        "female; 'unknown' applies the conservative, lower one) and whether the pregnancy "
        "question applies (it is not required for 'male').",
        examples=["female"],
    )
    age_years: StrictInt | None = Field(
        default=None,
        ge=12,
        le=120,
        description="Age in years, when known; must agree with age_group (adolescent 12-17, "
        "adult 18 or older). It decides whether the adolescent and young-adult (up to 25) "
        "eating-disorder thresholds apply to an adult.",
        examples=[34],
    )

    @model_validator(mode="after")
    def _age_agrees(self) -> Respondent:
        if self.age_years is not None and (self.age_years < 18) != (
            self.age_group is AgeGroup.ADOLESCENT
        ):
            raise PydanticCustomError(
                "inconsistent_answers",
                "age_years must agree with age_group: adolescent 12-17, adult 18 or older",
            )
        return self


# --- instruments ------------------------------------------------------------------------------


def _ordinal_items_field(instrument: InstrumentId, scale: str) -> Any:
    spec = SPECS[instrument]
    example: list[Any] = [min(1, allowed[-1]) for allowed in spec.item_values]
    example[-1] = "declined"  # shows that an item may be declined
    return Field(
        description=f"{spec.title}: {spec.item_count} items in questionnaire order, each {scale} "
        'or "declined".',
        examples=[example],
        json_schema_extra={"minItems": spec.item_count, "maxItems": spec.item_count},
    )


class OrdinalInstrument(Section):
    """An instrument answered item by item with integer scores."""

    instrument_id: ClassVar[InstrumentId]
    items: list[OrdinalItem]

    @field_validator("items", mode="before")
    @classmethod
    def _items_fit_instrument(cls, items: Any) -> Any:
        try:
            if isinstance(items, list):
                check_ordinal_items(SPECS[cls.instrument_id], items)
        except ItemError as error:
            raise _item_error(error) from None
        return items


class Phq9(OrdinalInstrument):
    """PHQ-9 depression questionnaire (past 2 weeks); item 9 asks about thoughts of self-harm."""

    items: list[OrdinalItem] = _ordinal_items_field(InstrumentId.PHQ9, "0-3")

    instrument_id: ClassVar[InstrumentId] = InstrumentId.PHQ9


class Phq2(OrdinalInstrument):
    """PHQ-2 depression pre-screen (the first two PHQ-9 items)."""

    items: list[OrdinalItem] = _ordinal_items_field(InstrumentId.PHQ2, "0-3")

    instrument_id: ClassVar[InstrumentId] = InstrumentId.PHQ2


class Gad7(OrdinalInstrument):
    """GAD-7 anxiety questionnaire (past 2 weeks)."""

    items: list[OrdinalItem] = _ordinal_items_field(InstrumentId.GAD7, "0-3")

    instrument_id: ClassVar[InstrumentId] = InstrumentId.GAD7


class AuditC(OrdinalInstrument):
    """AUDIT-C alcohol consumption questions (AUDIT items 1-3)."""

    items: list[OrdinalItem] = _ordinal_items_field(InstrumentId.AUDIT_C, "0-4")

    instrument_id: ClassVar[InstrumentId] = InstrumentId.AUDIT_C


class Audit(OrdinalInstrument):
    """The full 10-item AUDIT (past year)."""

    items: list[OrdinalItem] = _ordinal_items_field(
        InstrumentId.AUDIT, "0-4 (items 9 and 10: 0, 2 or 4)"
    )

    instrument_id: ClassVar[InstrumentId] = InstrumentId.AUDIT


def _yes_no_items_field(instrument: InstrumentId, note: str = "") -> Any:
    spec = SPECS[instrument]
    return Field(
        description=f"{spec.title}: {spec.item_count} yes/no items in questionnaire order, each "
        f'true, false or "declined".{note}',
        examples=[[number % 3 == 0 for number in range(1, spec.item_count + 1)]],
        json_schema_extra={"minItems": spec.item_count, "maxItems": spec.item_count},
    )


class YesNoInstrument(Section):
    """An instrument answered item by item with yes/no."""

    instrument_id: ClassVar[InstrumentId]
    items: list[YesNoItem]

    @field_validator("items", mode="before")
    @classmethod
    def _items_fit_instrument(cls, items: Any) -> Any:
        try:
            if isinstance(items, list):
                check_yes_no_items(SPECS[cls.instrument_id], items)
        except ItemError as error:
            raise _item_error(error) from None
        return items


class Dast10(YesNoInstrument):
    """DAST-10 drug use screen (past 12 months). Give answers as asked; item 3 is reverse-scored."""

    items: list[YesNoItem] = _yes_no_items_field(
        InstrumentId.DAST10, " Give item 3 as answered; carelevel reverse-scores it."
    )

    instrument_id: ClassVar[InstrumentId] = InstrumentId.DAST10


class Scoff(YesNoInstrument):
    """SCOFF eating-disorder screen."""

    items: list[YesNoItem] = _yes_no_items_field(InstrumentId.SCOFF)

    instrument_id: ClassVar[InstrumentId] = InstrumentId.SCOFF


class PcPtsd5(Section):
    """PC-PTSD-5: a trauma-exposure question, then 5 symptom items (past month) if exposed."""

    trauma_exposure: YesNoItem = Field(
        description="Lifetime exposure to a traumatic event. When false, the symptom items are "
        "not asked and the screen is negative.",
        examples=[True],
    )
    items: list[YesNoItem] | None = Field(
        default=None,
        description='The 5 symptom items, each true, false or "declined"; only when exposed.',
        json_schema_extra={"minItems": 5, "maxItems": 5, **asked_when("trauma_exposure", True)},
        examples=[[True, True, False, True, False]],
    )

    @field_validator("items", mode="before")
    @classmethod
    def _items_fit_instrument(cls, items: Any) -> Any:
        if isinstance(items, list):
            try:
                check_yes_no_items(SPECS[InstrumentId.PC_PTSD5], items)
            except ItemError as error:
                raise _item_error(error) from None
        return items

    @model_validator(mode="after")
    def _items_only_when_exposed(self) -> PcPtsd5:
        if self.trauma_exposure is False and self.items is not None:
            raise PydanticCustomError(
                "instrument_item",
                "PC-PTSD-5 symptom items are asked only after trauma exposure; "
                "trauma_exposure is false",
            )
        return self


class CssrsScreener(Section):
    """C-SSRS screener (recent version). Questions 3-5 are asked only when question 2 is yes;
    the past-3-months behavior question only when lifetime behavior is yes."""

    wish_to_be_dead: YesNoItem = Field(
        description="Q1 (past month): wish to be dead. Topic only: ask it as your licensed "
        "copy of the screener words it.",
        examples=[True],
    )
    non_specific_active_thoughts: YesNoItem = Field(
        description="Q2 (past month): thoughts of killing oneself. Topic only.", examples=[False]
    )
    method: YesNoItem | None = Field(
        default=None,
        description="Q3 (past month): thoughts of a method (asked if Q2 is yes). Topic only.",
        examples=[None],
        json_schema_extra=asked_when("non_specific_active_thoughts", True),
    )
    intent: YesNoItem | None = Field(
        default=None,
        description="Q4 (past month): intention to act on the thoughts (asked if Q2 is yes). "
        "Topic only.",
        examples=[None],
        json_schema_extra=asked_when("non_specific_active_thoughts", True),
    )
    plan_with_intent: YesNoItem | None = Field(
        default=None,
        description="Q5 (past month): a worked-out plan with intent (asked if Q2 is yes). Topic "
        "only.",
        examples=[None],
        json_schema_extra=asked_when("non_specific_active_thoughts", True),
    )
    behavior_lifetime: YesNoItem = Field(
        description="Q6 (lifetime): suicidal behaviour. Topic only.",
        examples=[False],
    )
    behavior_past_3_months: YesNoItem | None = Field(
        default=None,
        description="Q6 follow-up: suicidal behaviour in the past 3 months (asked if Q6 is yes). "
        "Topic only.",
        examples=[None],
        json_schema_extra=asked_when("behavior_lifetime", True),
    )

    @model_validator(mode="after")
    def _skip_logic(self) -> CssrsScreener:
        follow_ups = {
            "method": self.method,
            "intent": self.intent,
            "plan_with_intent": self.plan_with_intent,
        }
        if self.non_specific_active_thoughts is True:
            for name, value in follow_ups.items():
                if value is None:
                    raise PydanticCustomError(
                        "cssrs_skip_logic",
                        f"C-SSRS {name} must be answered when non_specific_active_thoughts is true",
                    )
        else:
            for name, value in follow_ups.items():
                if value is not None:
                    raise PydanticCustomError(
                        "cssrs_skip_logic",
                        f"C-SSRS {name} is asked only when non_specific_active_thoughts is true",
                    )
        if self.behavior_lifetime is True and self.behavior_past_3_months is None:
            raise PydanticCustomError(
                "cssrs_skip_logic",
                "C-SSRS behavior_past_3_months must be answered when behavior_lifetime is true",
            )
        if self.behavior_lifetime is not True and self.behavior_past_3_months is not None:
            raise PydanticCustomError(
                "cssrs_skip_logic",
                "C-SSRS behavior_past_3_months is asked only when behavior_lifetime is true",
            )
        return self


def _days_of_use(substance: str) -> Any:
    return Field(
        default=None,
        ge=0,
        le=365,
        description=f"CRAFFT 2.1 Part A: on how many days in the past 12 months the person "
        f"used {substance} (0-365).",
        examples=[0],
    )


class Crafft(Section):
    """CRAFFT 2.1 (ages 12-21): Part A, days of use in the past 12 months; Part B, six yes/no
    items. When all three Part A answers are 0, only the first Part B item (CAR) is asked."""

    days_alcohol: StrictInt | None = _days_of_use("alcohol (more than a few sips)")
    days_cannabis: StrictInt | None = _days_of_use("cannabis (marijuana, hash, edibles, vaping)")
    days_other: StrictInt | None = _days_of_use(
        "anything else to get high (other drugs, medicines not as prescribed, things sniffed, "
        "huffed or vaped)"
    )
    items: list[YesNoItem] = Field(
        description="CRAFFT 2.1 Part B in questionnaire order (CAR, RELAX, ALONE, FORGET, "
        'FRIENDS, TROUBLE), each true, false or "declined": all 6, or only CAR when all three '
        "Part A answers are 0.",
        examples=[[False, True, False, True, False, False]],
        json_schema_extra={"minItems": 1, "maxItems": 6},
    )

    @field_validator("items", mode="before")
    @classmethod
    def _items_fit_part_a(cls, items: Any, info: ValidationInfo) -> Any:
        # Checked before type validation so an error names the items, not Pydantic's union
        # members. Part A is declared first, so its answers are in info.data when valid.
        if isinstance(items, list):
            no_use = crafft_part_a_use(info.data.get(name) for name in CRAFFT_PART_A) is False
            try:
                check_crafft_items(items, no_use)
            except ItemError as error:
                raise _item_error(error) from None
        return items

    def part_a_use(self) -> bool | None:
        """What Part A reports (see ``crafft_part_a_use``): False means only CAR was asked."""
        return crafft_part_a_use((self.days_alcohol, self.days_cannabis, self.days_other))


class Asq(Section):
    """NIMH Ask Suicide-Screening Questions (ages 10 and over): four yes/no items, then item 5
    (thoughts of killing oneself right now) only when any of them is yes."""

    items: list[YesNoItem] = Field(
        description="ASQ items 1-4 in questionnaire order (wished dead, family better off, "
        "thoughts of killing self in the past week, ever tried), each true, false or "
        '"declined".',
        examples=[[False, False, False, False]],
        json_schema_extra={"minItems": 4, "maxItems": 4},
    )
    acute: YesNoItem | None = Field(
        default=None,
        description="ASQ item 5: thoughts of killing oneself right now; asked only when any of "
        'items 1-4 is yes (allowed also when one was declined), true, false or "declined".',
        examples=[None],
        json_schema_extra={"askedWhen": {"field": "items", "equals": True, "anyItem": True}},
    )

    @field_validator("items", mode="before")
    @classmethod
    def _items_fit_instrument(cls, items: Any) -> Any:
        if isinstance(items, list):
            try:
                check_yes_no_items(SPECS[InstrumentId.ASQ], items)
            except ItemError as error:
                raise _item_error(error) from None
        return items

    @field_validator("acute")
    @classmethod
    def _acute_only_after_a_yes(cls, acute: Any, info: ValidationInfo) -> Any:
        items = info.data.get("items")
        if acute is not None and items is not None and not {True, DECLINED} & set(items):
            raise PydanticCustomError(
                "instrument_item",
                "ASQ acute (item 5) is asked only when one of items 1-4 is yes (or declined)",
            )
        return acute


class ClinicianTotal(Section):
    """A clinician-rated withdrawal scale, given as its total."""

    total: StrictInt = Field(description="The scale total.", examples=[8])


class CiwaAr(ClinicianTotal):
    """CIWA-Ar alcohol withdrawal rating by a clinician (0-67)."""

    total: StrictInt = Field(
        ge=0,
        le=67,
        description="CIWA-Ar total, 0-67 (ASAM: <10 mild, 10-18 moderate, 19+ severe).",
        examples=[8],
    )


class Cows(ClinicianTotal):
    """COWS opioid withdrawal rating by a clinician (0-48)."""

    total: StrictInt = Field(
        ge=0,
        le=48,
        description="COWS total, 0-48 (5-12 mild, 13-24 moderate, 25-36 moderately "
        "severe, 37+ severe).",
        examples=[6],
    )


class Instruments(Section):
    """Validated instruments, item by item. Each is optional; include those that were given."""

    phq9: Phq9 | None = Field(
        default=None,
        description="PHQ-9 depression (9 items, 0-3).",
        examples=[{"items": [2, 2, 1, 2, 1, 2, 1, 1, 0]}],
    )
    phq2: Phq2 | None = Field(
        default=None,
        description="PHQ-2 depression pre-screen (2 items, 0-3). Omit when the PHQ-9 is given.",
        examples=[{"items": [2, 1]}],
    )
    gad7: Gad7 | None = Field(
        default=None,
        description="GAD-7 anxiety (7 items, 0-3).",
        examples=[{"items": [2, 1, 2, 1, 1, 1, 2]}],
    )
    audit_c: AuditC | None = Field(
        default=None,
        description="AUDIT-C (3 items, 0-4). When the full AUDIT is given, AUDIT-C is taken from "
        "its items 1-3 and, if also given, must match them.",
        examples=[{"items": [3, 2, 1]}],
    )
    audit: Audit | None = Field(
        default=None,
        description="Full AUDIT (10 items; items 1-8 score 0-4, items 9-10 score 0, 2 or 4).",
        examples=[{"items": [3, 2, 1, 1, 1, 0, 1, 0, 0, 2]}],
    )
    dast10: Dast10 | None = Field(
        default=None,
        description="DAST-10 drug use (10 yes/no items, item 3 reverse-scored by carelevel).",
        examples=[{"items": [True, False, True, False, False, False, False, True, False, False]}],
    )
    cssrs: CssrsScreener | None = Field(
        default=None,
        description="C-SSRS suicide-risk screener.",
        examples=[
            {
                "wish_to_be_dead": False,
                "non_specific_active_thoughts": False,
                "behavior_lifetime": False,
            }
        ],
    )
    pc_ptsd5: PcPtsd5 | None = Field(
        default=None,
        description="PC-PTSD-5 post-traumatic stress screen.",
        examples=[{"trauma_exposure": True, "items": [True, True, False, True, False]}],
    )
    scoff: Scoff | None = Field(
        default=None,
        description="SCOFF eating-disorder screen (5 yes/no items).",
        examples=[{"items": [False, False, False, False, False]}],
    )
    ciwa_ar: CiwaAr | None = Field(
        default=None, description="CIWA-Ar clinician total.", examples=[{"total": 8}]
    )
    cows: Cows | None = Field(
        default=None, description="COWS clinician total.", examples=[{"total": 6}]
    )
    crafft: Crafft | None = Field(
        default=None,
        description="CRAFFT 2.1 adolescent substance use screen (ages 12-21): Part A days of "
        "use, Part B 6 yes/no items (CAR only when Part A reports no use).",
        examples=[
            {
                "days_alcohol": 6,
                "days_cannabis": 0,
                "days_other": 0,
                "items": [False, True, False, True, False, False],
            }
        ],
    )
    asq: Asq | None = Field(
        default=None,
        description="ASQ suicide-risk screen (NIMH; ages 10 and over): 4 yes/no items, then "
        "item 5 (acute) after a yes.",
        examples=[{"items": [False, False, False, False]}],
    )

    @model_validator(mode="after")
    def _audit_c_matches_audit(self) -> Instruments:
        audit, audit_c = self.audit, self.audit_c
        if audit is not None and audit_c is not None and audit.items[:3] != audit_c.items:
            raise PydanticCustomError(
                "instrument_item",
                "AUDIT-C items must equal AUDIT items 1-3 when both are given",
            )
        return self


# --- safety, withdrawal, medical --------------------------------------------------------------


class HomicidalIdeation(Choice):
    NONE = "none"
    THOUGHTS = "thoughts"
    INTENT_OR_PLAN = "intent_or_plan"


class OverdoseHistory(Choice):
    """When the person last overdosed (any substance), in ascending order of risk."""

    NEVER = "never"
    OVER_A_YEAR_AGO = "over_a_year_ago"
    PAST_YEAR = "past_year"


class Safety(Section):
    """Risk of harm beyond the suicide screen."""

    homicidal_ideation: HomicidalIdeation | None = Field(
        default=None,
        description="Thoughts of harming or killing someone else: none, thoughts without intent, "
        "or intent or a plan.",
        examples=["none"],
    )
    recent_violence: StrictBool | None = Field(
        default=None,
        description="Assaultive or violent behavior toward others in the past 30 days.",
        examples=[False],
    )
    psychosis_or_mania_unable_to_self_care: StrictBool | None = Field(
        default=None,
        description="Psychotic or manic symptoms with inability to care for oneself (food, "
        "shelter, safety), as judged by a clinician.",
        examples=[False],
    )
    severe_cognitive_impairment: StrictBool | None = Field(
        default=None,
        description="Confusion or cognitive impairment severe enough to prevent safe "
        "participation in ambulatory care.",
        examples=[False],
    )
    acutely_intoxicated: StrictBool | None = Field(
        default=None,
        description="Currently intoxicated to a degree that is risky or prevents a reliable "
        "assessment.",
        examples=[False],
    )
    dependents_at_risk: StrictBool | None = Field(
        default=None,
        description="A child or other dependent may be in danger (abuse or neglect).",
        examples=[False],
    )
    overdose_history: OverdoseHistory | None = Field(
        default=None,
        description="The most recent overdose (of any substance, needing help or not): never, "
        "more than a year ago, or within the past year.",
        examples=["never"],
    )


class DailyUseSubstance(Choice):
    ALCOHOL = "alcohol"
    SEDATIVES = "sedatives"
    OPIOIDS = "opioids"


class SedativeWithdrawalSign(Choice):
    """Signs of sedative (benzodiazepine, Z-drug, barbiturate) withdrawal a clinician observes."""

    TREMOR = "tremor"
    SWEATING_OR_FAST_PULSE = "sweating_or_fast_pulse"
    ANXIETY_OR_AGITATION = "anxiety_or_agitation"
    INSOMNIA = "insomnia"
    NAUSEA_OR_VOMITING = "nausea_or_vomiting"
    PERCEPTUAL_DISTURBANCE = "perceptual_disturbance"
    CONFUSION = "confusion"
    SEIZURE = "seizure"


class Withdrawal(Section):
    """Withdrawal risk history and current use."""

    seizure_or_delirium_history: StrictBool | None = Field(
        default=None,
        description="Ever had a withdrawal seizure or delirium tremens.",
        examples=[False],
    )
    heavy_daily_use: list[DailyUseSubstance] | None = Field(
        default=None,
        description="Substances currently used heavily every day (empty list: none).",
        examples=[["alcohol"]],
    )
    complicated_signs_now: StrictBool | None = Field(
        default=None,
        description="Seizure, hallucinations or confusion during current withdrawal.",
        examples=[False],
    )
    sedative_signs_now: list[SedativeWithdrawalSign] | None = Field(
        default=None,
        description="Sedative withdrawal assessment: the signs of benzodiazepine, Z-drug or "
        "barbiturate withdrawal a clinician observes now (empty list: none). CIWA-Ar rates "
        "alcohol withdrawal only.",
        examples=[[]],
    )
    drinks_per_week: StrictInt | None = Field(
        default=None,
        ge=0,
        le=500,
        description="Standard drinks in a typical week of the past 30 days (0-500).",
        examples=[10],
    )
    most_drinks_in_a_day: StrictInt | None = Field(
        default=None,
        ge=0,
        le=100,
        description="The most standard drinks on any one day in the past 30 days (0-100).",
        examples=[4],
    )

    @field_validator("heavy_daily_use", "sedative_signs_now")
    @classmethod
    def _unique(cls, value: list[Any] | None) -> list[Any] | None:
        return _unique_sorted(value)


class Medical(Section):
    """Medical stability: vital signs, results and weight, for everyone (eating disorders have
    stricter thresholds of their own)."""

    acute_condition_needing_hospital_care: StrictBool | None = Field(
        default=None,
        description="An acute medical illness or injury that needs hospital care now.",
        examples=[False],
    )
    pregnant: StrictBool | None = Field(
        default=None, description="Currently pregnant.", examples=[False]
    )
    receiving_prenatal_care: StrictBool | None = Field(
        default=None,
        description="When pregnant: receiving prenatal care.",
        examples=[None],
        json_schema_extra=asked_when("pregnant", True),
    )
    heart_rate_bpm: StrictInt | None = Field(
        default=None,
        ge=20,
        le=250,
        description="Resting heart rate, beats per minute.",
        examples=[72],
    )
    systolic_bp_mmhg: StrictInt | None = Field(
        default=None, ge=40, le=300, description="Systolic blood pressure, mmHg.", examples=[118]
    )
    diastolic_bp_mmhg: StrictInt | None = Field(
        default=None, ge=20, le=200, description="Diastolic blood pressure, mmHg.", examples=[76]
    )
    potassium_mmol_l: StrictFloat | None = Field(
        default=None,
        ge=1.0,
        le=10.0,
        description="Serum potassium, mmol/L (= mEq/L).",
        examples=[4.1],
    )
    glucose_mg_dl: StrictInt | None = Field(
        default=None, ge=10, le=1000, description="Blood glucose, mg/dL.", examples=[92]
    )
    temperature_c: StrictFloat | None = Field(
        default=None,
        ge=25.0,
        le=45.0,
        description="Body temperature, degrees Celsius.",
        examples=[36.8],
    )
    percent_healthy_body_weight: StrictFloat | None = Field(
        default=None,
        ge=30,
        le=300,
        description="Current weight as a percentage of healthy (expected) body weight.",
        examples=[92],
    )
    sodium_mmol_l: StrictFloat | None = Field(
        default=None,
        ge=90.0,
        le=200.0,
        description="Serum sodium, mmol/L (= mEq/L).",
        examples=[139],
    )
    phosphate_mmol_l: StrictFloat | None = Field(
        default=None,
        ge=0.1,
        le=5.0,
        description="Serum phosphate, mmol/L (mg/dL divided by 3.1).",
        examples=[1.1],
    )
    qtc_ms: StrictInt | None = Field(
        default=None,
        ge=250,
        le=800,
        description="Corrected QT interval on the ECG, milliseconds.",
        examples=[410],
    )
    orthostatic_heart_rate_rise_bpm: StrictInt | None = Field(
        default=None,
        ge=0,
        le=150,
        description="Sustained rise of the heart rate from lying to standing, beats per minute "
        "(0 when it does not rise).",
        examples=[8],
    )
    orthostatic_systolic_drop_mmhg: StrictInt | None = Field(
        default=None,
        ge=0,
        le=150,
        description="Sustained fall of the systolic blood pressure from lying to standing, mmHg "
        "(0 when it does not fall).",
        examples=[4],
    )
    orthostatic_diastolic_drop_mmhg: StrictInt | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Sustained fall of the diastolic blood pressure from lying to standing, mmHg "
        "(0 when it does not fall).",
        examples=[2],
    )
    acute_food_refusal: StrictBool | None = Field(
        default=None,
        description="Eating disorder: refusing food now, acutely (not only restricting).",
        examples=[False],
    )
    cognitive_screen_positive: StrictBool | None = Field(
        default=None,
        description="A validated brief cognitive screen given by a clinician (for example "
        "Mini-Cog or MoCA) was positive.",
        examples=[False],
    )

    @model_validator(mode="after")
    def _consistent(self) -> Medical:
        if self.pregnant is not True and self.receiving_prenatal_care is not None:
            raise PydanticCustomError(
                "inconsistent_answers", "receiving_prenatal_care is asked only when pregnant"
            )
        if (
            self.systolic_bp_mmhg is not None
            and self.diastolic_bp_mmhg is not None
            and self.diastolic_bp_mmhg >= self.systolic_bp_mmhg
        ):
            raise PydanticCustomError(
                "inconsistent_answers", "diastolic_bp_mmhg must be lower than systolic_bp_mmhg"
            )
        return self


# --- functioning and co-occurring conditions --------------------------------------------------


class Impairment(Choice):
    """How much a problem interferes with a life domain, in ascending order."""

    NONE = "none"
    MILD = "mild"
    MODERATE = "moderate"
    SEVERE = "severe"
    EXTREME = "extreme"


_IMPAIRMENT_HELP = (
    " Scale: none; mild (some difficulty, manages); moderate (often struggles, needs help); "
    "severe (mostly unable); extreme (cannot function in this domain)."
)


class Functioning(Section):
    """Functional impairment over the past 30 days, per life domain."""

    work_school: Impairment | None = Field(
        default=None,
        description="Work, school or training." + _IMPAIRMENT_HELP,
        examples=["moderate"],
    )
    self_care: Impairment | None = Field(
        default=None,
        description="Hygiene, eating, sleep, medication, safety." + _IMPAIRMENT_HELP,
        examples=["mild"],
    )
    relationships: Impairment | None = Field(
        default=None,
        description="Family, friends, partner." + _IMPAIRMENT_HELP,
        examples=["moderate"],
    )
    daily_activities: Impairment | None = Field(
        default=None,
        description="Household tasks, errands, managing money and appointments." + _IMPAIRMENT_HELP,
        examples=["mild"],
    )


class ConditionStatus(Choice):
    """Whether a co-occurring condition is present, in ascending order of certainty."""

    ABSENT = "absent"
    SUSPECTED = "suspected"
    KNOWN = "known"


def _condition(description: str) -> Any:
    return Field(
        default=None,
        description=f"{description}: absent, suspected (screen or history suggests it) or known "
        "(diagnosed).",
        examples=["absent"],
    )


class SubstanceUseConditions(Section):
    """Co-occurring substance use problems by substance class."""

    alcohol: ConditionStatus | None = _condition("Alcohol use problem")
    opioids: ConditionStatus | None = _condition("Opioid use problem")
    stimulants: ConditionStatus | None = _condition("Stimulant use problem (cocaine, amphetamines)")
    cannabis: ConditionStatus | None = _condition("Cannabis use problem")
    sedatives: ConditionStatus | None = _condition("Sedative or hypnotic use problem")
    other: ConditionStatus | None = _condition("Other substance use problem")


class CoOccurring(Section):
    """Co-occurring conditions, known or suspected."""

    depressive: ConditionStatus | None = _condition("Depressive disorder")
    anxiety: ConditionStatus | None = _condition("Anxiety disorder")
    trauma: ConditionStatus | None = _condition("Trauma- or stressor-related disorder")
    bipolar: ConditionStatus | None = _condition("Bipolar disorder")
    psychotic: ConditionStatus | None = _condition("Psychotic disorder")
    eating: ConditionStatus | None = _condition("Eating disorder")
    cognitive: ConditionStatus | None = _condition("Cognitive or neurodevelopmental disorder")
    chronic_medical: ConditionStatus | None = _condition("Chronic medical condition")
    substance_use: SubstanceUseConditions | None = Field(
        default=None,
        description="Substance use problems by class.",
        examples=[{"alcohol": "known", "cannabis": "suspected"}],
    )


# --- history, engagement, supports, logistics -------------------------------------------------


class CareLevelHistory(Choice):
    NONE = "none"
    OUTPATIENT = "outpatient"
    INTENSIVE_OUTPATIENT = "intensive_outpatient"
    PARTIAL_HOSPITALIZATION = "partial_hospitalization"
    RESIDENTIAL = "residential"
    INPATIENT = "inpatient"


class PreviousIop(Choice):
    NEVER = "never"
    COMPLETED = "completed"
    DID_NOT_COMPLETE = "did_not_complete"


class ResponseToLevel(Choice):
    """How the person is responding at the current level of care, from the most severe (a
    step-up candidate) to goals met (a step-down candidate)."""

    WORSENING = "worsening"
    NOT_IMPROVING = "not_improving"
    IMPROVING = "improving"
    GOALS_MET = "goals_met"


class TreatmentHistory(Section):
    """Current or most recent treatment, which decides step-down and step-up."""

    current_or_recent_level: CareLevelHistory | None = Field(
        default=None,
        description="The current or most recent level of care ('none' if never treated).",
        examples=["outpatient"],
    )
    discharged_last_30_days: StrictBool | None = Field(
        default=None,
        description="Discharged from that level within the past 30 days (a step-down candidate "
        "when it was inpatient, residential or partial hospitalization).",
        examples=[False],
    )
    outpatient_not_effective: StrictBool | None = Field(
        default=None,
        description="Weekly outpatient treatment was tried and did not control the symptoms or "
        "use (a step-up candidate).",
        examples=[True],
    )
    previous_iop: PreviousIop | None = Field(
        default=None, description="Earlier intensive outpatient treatment.", examples=["never"]
    )
    weeks_at_current_level: StrictInt | None = Field(
        default=None,
        ge=0,
        le=520,
        description="Weeks at the current (or most recent) level of care (0-520).",
        examples=[6],
    )
    response_to_current_level: ResponseToLevel | None = Field(
        default=None,
        description="How the person is responding at the current (or most recent) level of "
        "care: worsening, not improving, improving, or treatment goals met.",
        examples=["not_improving"],
    )


class Readiness(Choice):
    """Stage of readiness to change, in ascending order."""

    PRECONTEMPLATION = "precontemplation"
    CONTEMPLATION = "contemplation"
    PREPARATION = "preparation"
    ACTION = "action"
    MAINTENANCE = "maintenance"


class Willingness(Choice):
    NO = "no"
    UNSURE = "unsure"
    YES = "yes"


class Engagement(Section):
    """Readiness for treatment and willingness to attend."""

    readiness_stage: Readiness | None = Field(
        default=None, description="Stage of readiness to change.", examples=["preparation"]
    )
    willing_to_attend: Willingness | None = Field(
        default=None,
        description="Willing to attend a program several hours a day, several days a week.",
        examples=["yes"],
    )


class LivingSituation(Choice):
    STABLE_WITH_SUPPORTIVE_OTHERS = "stable_with_supportive_others"
    STABLE_ALONE = "stable_alone"
    UNSTABLE_HOUSING = "unstable_housing"
    HOMELESS = "homeless"
    HOUSEHOLD_WITH_ACTIVE_USE = "household_with_active_use"
    UNSAFE = "unsafe"


class Supports(Section):
    """The recovery environment at home."""

    living_situation: LivingSituation | None = Field(
        default=None,
        description="Housing and household: stable with supportive others, stable alone, "
        "unstable housing, homeless, a household where others actively use, or unsafe (abuse, "
        "violence).",
        examples=["stable_with_supportive_others"],
    )
    support_person_available: StrictBool | None = Field(
        default=None,
        description="At least one person who supports recovery and can be reached.",
        examples=[True],
    )
    family_willing_to_participate: StrictBool | None = Field(
        default=None,
        description="Family or close others willing to take part in treatment.",
        examples=[True],
    )


class Transport(Choice):
    OWN_VEHICLE = "own_vehicle"
    PUBLIC_TRANSIT = "public_transit"
    RIDES_FROM_OTHERS = "rides_from_others"
    NONE = "none"


class TimeOfDay(Choice):
    DAYTIME = "daytime"
    EVENING = "evening"
    WEEKEND = "weekend"


class Obligation(Choice):
    WORK = "work"
    SCHOOL = "school"
    CAREGIVING = "caregiving"


class Telehealth(Section):
    """What telehealth needs; all three make a person telehealth capable."""

    device: StrictBool | None = Field(
        default=None, description="Has a device with camera and microphone.", examples=[True]
    )
    private_space: StrictBool | None = Field(
        default=None, description="Has a private space for sessions.", examples=[True]
    )
    reliable_connection: StrictBool | None = Field(
        default=None, description="Has a connection reliable enough for video.", examples=[True]
    )


class Logistics(Section):
    """What attending a program takes: transport, time and obligations."""

    transport: Transport | None = Field(
        default=None,
        description="How the person would get to the program.",
        examples=["public_transit"],
    )
    travel_minutes_one_way: StrictInt | None = Field(
        default=None,
        ge=0,
        le=600,
        description="One-way travel time to the program, minutes.",
        examples=[35],
    )
    telehealth: Telehealth | None = Field(
        default=None,
        description="Telehealth capability.",
        examples=[{"device": True, "private_space": True, "reliable_connection": True}],
    )
    hours_per_week_available: StrictFloat | None = Field(
        default=None,
        ge=0,
        le=168,
        description="Hours per week available for treatment.",
        examples=[12],
    )
    times_available: list[TimeOfDay] | None = Field(
        default=None,
        description="When the person can attend (empty list: none of these).",
        examples=[["evening", "weekend"]],
    )
    obligations: list[Obligation] | None = Field(
        default=None,
        description="Commitments the schedule must fit around (empty list: none).",
        examples=[["work"]],
    )

    @field_validator("times_available", "obligations")
    @classmethod
    def _unique(cls, value: list[Any] | None) -> list[Any] | None:
        return _unique_sorted(value)


_Choice = TypeVar("_Choice", bound=StrEnum)


def _unique_sorted(value: list[_Choice] | None) -> list[_Choice] | None:
    """Lists of choices are sets: duplicates dropped, order normalised for reproducibility."""
    return None if value is None else sorted(set(value))


# --- the whole questionnaire ------------------------------------------------------------------


# One coherent example (an adult suited to IOP), used by every section field's documentation and
# by the model's own example, so the API docs show a request that validates.
EXAMPLE_SECTIONS: dict[str, Any] = {
    "respondent": {"age_group": "adult", "answered_by": "clinician", "sex_for_scoring": "male"},
    "presenting_concerns": ["substance_use", "mental_health"],
    "instruments": {
        "phq9": {"items": [2, 2, 1, 2, 1, 2, 1, 1, 0]},
        "gad7": {"items": [2, 1, 2, 1, 1, 1, 1]},
        "audit": {"items": [3, 2, 1, 2, 1, 2, 1, 1, 2, 2]},
        "cssrs": {
            "wish_to_be_dead": False,
            "non_specific_active_thoughts": False,
            "behavior_lifetime": False,
        },
        "ciwa_ar": {"total": 4},
    },
    "safety": {
        "homicidal_ideation": "none",
        "recent_violence": False,
        "psychosis_or_mania_unable_to_self_care": False,
        "severe_cognitive_impairment": False,
        "acutely_intoxicated": False,
        "dependents_at_risk": False,
    },
    "withdrawal": {
        "seizure_or_delirium_history": False,
        "heavy_daily_use": [],
        "complicated_signs_now": False,
    },
    "medical": {"acute_condition_needing_hospital_care": False, "pregnant": False},
    "functioning": {
        "work_school": "moderate",
        "self_care": "mild",
        "relationships": "moderate",
        "daily_activities": "mild",
    },
    "co_occurring": {
        "depressive": "suspected",
        "anxiety": "suspected",
        "substance_use": {"alcohol": "known"},
    },
    "treatment_history": {
        "current_or_recent_level": "outpatient",
        "discharged_last_30_days": False,
        "outpatient_not_effective": True,
        "previous_iop": "never",
    },
    "engagement": {"readiness_stage": "preparation", "willing_to_attend": "yes"},
    "supports": {
        "living_situation": "stable_with_supportive_others",
        "support_person_available": True,
        "family_willing_to_participate": True,
    },
    "logistics": {
        "transport": "own_vehicle",
        "travel_minutes_one_way": 25,
        "telehealth": {"device": True, "private_space": True, "reliable_connection": True},
        "hours_per_week_available": 12,
        "times_available": ["daytime", "evening"],
        "obligations": [],
    },
}


def _section_field(name: str, description: str, *, optional: bool = True) -> Any:
    example = EXAMPLE_SECTIONS[name]
    if optional:
        return Field(default=None, description=description, examples=[example])
    return Field(description=description, examples=[example])


class ScreeningAnswers(Section):
    """Everything an intake collects for a level-of-care screening."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"examples": [EXAMPLE_SECTIONS]}
    )

    respondent: Respondent = _section_field(
        "respondent", "Who is screened and who answered.", optional=False
    )
    presenting_concerns: Annotated[list[Concern], Field(min_length=1)] | None = _section_field(
        "presenting_concerns",
        "What the person is asking for help with (one or more).",
    )
    instruments: Instruments = Field(
        default_factory=Instruments,
        description="Validated screening instruments, item by item.",
        examples=[EXAMPLE_SECTIONS["instruments"]],
    )
    safety: Safety | None = _section_field("safety", "Risk of harm to others and self.")
    withdrawal: Withdrawal | None = _section_field("withdrawal", "Withdrawal risk.")
    medical: Medical | None = _section_field("medical", "Medical stability.")
    functioning: Functioning | None = _section_field(
        "functioning", "Functional impairment per life domain."
    )
    co_occurring: CoOccurring | None = _section_field(
        "co_occurring", "Co-occurring conditions, known or suspected."
    )
    treatment_history: TreatmentHistory | None = _section_field(
        "treatment_history", "Current or most recent treatment."
    )
    engagement: Engagement | None = _section_field("engagement", "Readiness and willingness.")
    supports: Supports | None = _section_field("supports", "Recovery environment at home.")
    logistics: Logistics | None = _section_field("logistics", "Transport, schedule and telehealth.")

    @field_validator("presenting_concerns")
    @classmethod
    def _concerns_unique(cls, value: list[Concern] | None) -> list[Concern] | None:
        return None if value is None else sorted(set(value))
