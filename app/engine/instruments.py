"""Validated screening instruments: their item structure, published cut-offs and scoring.

Every function here is pure. Cut-offs are clinical policy, so the bands and positive-screen
thresholds used for scoring come from the rule set (``InstrumentPolicy``); the defaults below are
the published tables, cited per instrument, and a rule set that does not override them gets them.

A declined item is not the same as an item that was not asked: a declined item makes the total
unknown, but the score still carries the range the total must lie in, and the band or the
positive screen when every total in that range agrees.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol, cast

from app.engine.choice import Choice

DECLINED: Final = "declined"

ItemAnswer = int | Literal["declined"]
YesNoAnswer = bool | Literal["declined"]


class InstrumentId(Choice):
    """The instruments carelevel scores; the value is the key used in answers and facts."""

    PHQ9 = "phq9"
    PHQ2 = "phq2"
    GAD7 = "gad7"
    AUDIT_C = "audit_c"
    AUDIT = "audit"
    DAST10 = "dast10"
    CSSRS = "cssrs"
    PC_PTSD5 = "pc_ptsd5"
    SCOFF = "scoff"
    CIWA_AR = "ciwa_ar"
    COWS = "cows"
    CRAFFT = "crafft"
    ASQ = "asq"


_PHQ9: Final = InstrumentId.PHQ9
_AUDIT_C: Final = InstrumentId.AUDIT_C


class ScoringSex(Choice):
    """Sex used only to pick a sex-specific cut-off (AUDIT-C); unknown takes the lowest."""

    FEMALE = "female"
    MALE = "male"
    UNKNOWN = "unknown"


class CssrsTier(Choice):
    """C-SSRS screener triage tier, in ascending order of risk."""

    NONE = "none"
    LOW = "low"
    MODERATE = "moderate"
    HIGH = "high"


CSSRS_TIER_ORDER: Final = tuple(CssrsTier)


class AnswerKind(Choice):
    ORDINAL = "ordinal"  # items scored as integers
    YES_NO = "yes_no"  # items answered yes/no, yes scores 1 (reverse-scored items: no scores 1)
    CLINICIAN_TOTAL = "clinician_total"  # a clinician-rated total only
    CATEGORICAL = "categorical"  # C-SSRS screener, ASQ: a triage result, no total


@dataclass(frozen=True, slots=True)
class Band:
    """A severity band: ``label`` covers totals ``minimum``..``maximum`` inclusive."""

    label: str
    minimum: int
    maximum: int


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """The fixed structure of an instrument (not policy): items, ranges and codes (its wording and
    licence: ``app.engine.instrument_content``)."""

    id: InstrumentId
    title: str
    name: str
    kind: AnswerKind
    item_values: tuple[tuple[int, ...], ...]  # allowed values per item (ordinal instruments)
    item_count: int
    total_range: tuple[int, int]
    default_bands: tuple[Band, ...]
    default_positive_at: int | None
    reverse_scored_items: tuple[int, ...] = ()
    loinc_panel: str | None = None
    loinc_total: str | None = None


def _ordinal_items(count: int, values: Sequence[int]) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(values) for _ in range(count))


_ZERO_TO_THREE = (0, 1, 2, 3)
_ZERO_TO_FOUR = (0, 1, 2, 3, 4)

SPECS: Final[Mapping[InstrumentId, InstrumentSpec]] = {
    spec.id: spec
    for spec in (
        InstrumentSpec(
            id=InstrumentId.PHQ9,
            title="PHQ-9",
            name="Patient Health Questionnaire-9 (depression, past 2 weeks)",
            kind=AnswerKind.ORDINAL,
            item_values=_ordinal_items(9, _ZERO_TO_THREE),
            item_count=9,
            total_range=(0, 27),
            default_bands=(
                Band("minimal", 0, 4),
                Band("mild", 5, 9),
                Band("moderate", 10, 14),
                Band("moderately_severe", 15, 19),
                Band("severe", 20, 27),
            ),
            default_positive_at=10,
            loinc_panel="44249-1",
            loinc_total="44261-6",
        ),
        InstrumentSpec(
            id=InstrumentId.PHQ2,
            title="PHQ-2",
            name="Patient Health Questionnaire-2 (depression pre-screen)",
            kind=AnswerKind.ORDINAL,
            item_values=_ordinal_items(2, _ZERO_TO_THREE),
            item_count=2,
            total_range=(0, 6),
            default_bands=(),
            default_positive_at=3,
            loinc_panel="55757-9",
            loinc_total="55758-7",
        ),
        InstrumentSpec(
            id=InstrumentId.GAD7,
            title="GAD-7",
            name="Generalized Anxiety Disorder-7 (anxiety, past 2 weeks)",
            kind=AnswerKind.ORDINAL,
            item_values=_ordinal_items(7, _ZERO_TO_THREE),
            item_count=7,
            total_range=(0, 21),
            default_bands=(
                Band("minimal", 0, 4),
                Band("mild", 5, 9),
                Band("moderate", 10, 14),
                Band("severe", 15, 21),
            ),
            default_positive_at=10,
            loinc_panel="69737-5",
            loinc_total="70274-6",
        ),
        InstrumentSpec(
            id=InstrumentId.AUDIT_C,
            title="AUDIT-C",
            name="AUDIT-Consumption (alcohol use, items 1-3 of the AUDIT)",
            kind=AnswerKind.ORDINAL,
            item_values=_ordinal_items(3, _ZERO_TO_FOUR),
            item_count=3,
            total_range=(0, 12),
            default_bands=(),
            default_positive_at=3,  # the conservative cut-off; sex-specific ones are in the policy
            loinc_panel="72109-2",
            loinc_total="75626-2",
        ),
        InstrumentSpec(
            id=InstrumentId.AUDIT,
            title="AUDIT",
            name="Alcohol Use Disorders Identification Test (past year)",
            kind=AnswerKind.ORDINAL,
            item_values=(*_ordinal_items(8, _ZERO_TO_FOUR), (0, 2, 4), (0, 2, 4)),
            item_count=10,
            total_range=(0, 40),
            default_bands=(
                Band("low_risk", 0, 7),
                Band("hazardous", 8, 15),
                Band("harmful", 16, 19),
                Band("possible_dependence", 20, 40),
            ),
            default_positive_at=8,
            loinc_panel="72110-0",
            loinc_total="75624-7",
        ),
        InstrumentSpec(
            id=InstrumentId.DAST10,
            title="DAST-10",
            name="Drug Abuse Screening Test-10 (past 12 months)",
            kind=AnswerKind.YES_NO,
            item_values=(),
            item_count=10,
            total_range=(0, 10),
            default_bands=(
                Band("none", 0, 0),
                Band("low", 1, 2),
                Band("moderate", 3, 5),
                Band("substantial", 6, 8),
                Band("severe", 9, 10),
            ),
            default_positive_at=3,
            reverse_scored_items=(3,),
            loinc_panel="82666-9",
            loinc_total="82667-7",
        ),
        InstrumentSpec(
            id=InstrumentId.CSSRS,
            title="C-SSRS screener",
            name="Columbia Suicide Severity Rating Scale, screener (recent)",
            kind=AnswerKind.CATEGORICAL,
            item_values=(),
            item_count=6,
            total_range=(0, 0),
            default_bands=(),
            default_positive_at=None,
            loinc_panel="93373-9",
        ),
        InstrumentSpec(
            id=InstrumentId.PC_PTSD5,
            title="PC-PTSD-5",
            name="Primary Care PTSD Screen for DSM-5 (past month)",
            kind=AnswerKind.YES_NO,
            item_values=(),
            item_count=5,
            total_range=(0, 5),
            default_bands=(),
            default_positive_at=3,
            loinc_panel="102010-6",
        ),
        InstrumentSpec(
            id=InstrumentId.SCOFF,
            title="SCOFF",
            name="SCOFF eating-disorder screen",
            kind=AnswerKind.YES_NO,
            item_values=(),
            item_count=5,
            total_range=(0, 5),
            default_bands=(),
            default_positive_at=2,
        ),
        InstrumentSpec(
            id=InstrumentId.CIWA_AR,
            title="CIWA-Ar",
            name="Clinical Institute Withdrawal Assessment for Alcohol, revised (clinician total)",
            kind=AnswerKind.CLINICIAN_TOTAL,
            item_values=(),
            item_count=0,
            total_range=(0, 67),
            default_bands=(
                Band("mild", 0, 9),
                Band("moderate", 10, 18),
                Band("severe", 19, 67),
            ),
            default_positive_at=None,
        ),
        InstrumentSpec(
            id=InstrumentId.COWS,
            title="COWS",
            name="Clinical Opiate Withdrawal Scale (clinician total)",
            kind=AnswerKind.CLINICIAN_TOTAL,
            item_values=(),
            item_count=0,
            total_range=(0, 48),
            default_bands=(
                Band("none", 0, 4),
                Band("mild", 5, 12),
                Band("moderate", 13, 24),
                Band("moderately_severe", 25, 36),
                Band("severe", 37, 48),
            ),
            default_positive_at=None,
        ),
        InstrumentSpec(
            id=InstrumentId.CRAFFT,
            title="CRAFFT 2.1",
            name="CRAFFT 2.1 adolescent substance use screen (ages 12-21, past 12 months)",
            kind=AnswerKind.YES_NO,
            item_values=(),
            item_count=6,  # Part B; only the CAR item is asked when Part A reports no use
            total_range=(0, 6),
            default_bands=(),
            default_positive_at=2,  # Knight et al. 2002: 2 or more yes answers in Part B
        ),
        InstrumentSpec(
            id=InstrumentId.ASQ,
            title="ASQ",
            name="Ask Suicide-Screening Questions (NIMH, ages 10 and over)",
            kind=AnswerKind.CATEGORICAL,
            item_values=(),
            item_count=4,  # items 1-4; item 5 (acute) is asked only after a yes
            total_range=(0, 0),
            default_bands=(),
            default_positive_at=None,
        ),
    )
}

CRAFFT_PART_A: Final = ("days_alcohol", "days_cannabis", "days_other")
"""CRAFFT 2.1 Part A: days of use in the past 12 months (alcohol, cannabis, anything else)."""


_BAND_TABLES: dict[tuple[Band, ...], tuple[str | None, ...]] = {}


def band_table(bands: tuple[Band, ...]) -> tuple[str | None, ...]:
    """The band label of every total from 0 up, prepared once per band scheme."""
    table = _BAND_TABLES.get(bands)
    if table is None:
        top = max((band.maximum for band in bands), default=-1)
        table = tuple(band_for(total, bands) for total in range(top + 1))
        _BAND_TABLES[bands] = table
    return table


def band_for(total: int, bands: Sequence[Band]) -> str | None:
    """The label of the band containing ``total``, or None when no band covers it."""
    for band in bands:
        if band.minimum <= total <= band.maximum:
            return band.label
    return None


@dataclass(frozen=True, slots=True)
class InstrumentPolicy:
    """The cut-offs a rule set applies to one instrument."""

    bands: tuple[Band, ...]
    positive_at: int | None
    positive_at_by_sex: Mapping[ScoringSex, int] | None = None
    adolescent: InstrumentPolicy | None = None
    """The cut-offs applied to adolescents, when the rule set gives them."""
    band_labels: tuple[str | None, ...] = field(init=False, repr=False, compare=False)
    """The band label of every total from 0 up (``band_table``), prepared with the policy."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "band_labels", band_table(self.bands))

    def for_respondent(self, adolescent: bool) -> InstrumentPolicy:
        """The policy that scores this respondent: the adolescent one where there is one."""
        return self.adolescent if adolescent and self.adolescent is not None else self

    def cut_off_for(self, sex: ScoringSex) -> int | None:
        """The positive-screen threshold for ``sex`` (sex-specific where the policy has one)."""
        if self.positive_at_by_sex is not None:
            return self.positive_at_by_sex[sex]
        return self.positive_at


DEFAULT_POLICIES: Final[Mapping[InstrumentId, InstrumentPolicy]] = {
    spec.id: InstrumentPolicy(bands=spec.default_bands, positive_at=spec.default_positive_at)
    for spec in SPECS.values()
} | {
    InstrumentId.AUDIT_C: InstrumentPolicy(
        bands=(),
        positive_at=None,
        positive_at_by_sex={ScoringSex.MALE: 4, ScoringSex.FEMALE: 3, ScoringSex.UNKNOWN: 3},
    )
}


@dataclass  # built per evaluation: not frozen (cheaper) and no slots (faster with orjson)
class InstrumentScore:
    """The scored result of one instrument, as reported in a determination."""

    instrument: InstrumentId
    title: str
    total: int | None
    """The total, or None when an item was declined (see ``total_min``/``total_max``)."""
    total_min: int | None
    total_max: int | None
    band: str | None
    positive: bool | None
    cut_off: int | None
    declined_items: tuple[int, ...]
    loinc_panel: str | None
    loinc_total: str | None
    tier: CssrsTier | None = None
    """C-SSRS only: the triage tier, or None when a declined answer leaves it open."""
    tier_at_least: CssrsTier | None = None
    flags: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


class ItemError(ValueError):
    """An item list does not fit its instrument; the message names the instrument and item."""


def check_ordinal_items(spec: InstrumentSpec, items: Sequence[object]) -> None:
    """Raise ItemError unless ``items`` has the right count and each item an allowed value."""
    _check_count(spec, items)
    # Every answer is checked on every request: plain integers, the common case, first.
    for item, allowed in zip(items, spec.item_values, strict=True):
        if type(item) is not int or item not in allowed:
            break
    else:
        return
    for number, (item, allowed) in enumerate(zip(items, spec.item_values, strict=True), start=1):
        if item == DECLINED:
            continue
        if isinstance(item, bool) or not isinstance(item, int) or item not in allowed:
            values = ", ".join(str(v) for v in allowed)
            raise ItemError(f'{spec.title} item {number} must be one of {values} or "declined"')


def check_yes_no_items(spec: InstrumentSpec, items: Sequence[object]) -> None:
    """Raise ItemError unless ``items`` has the right count of yes/no/declined answers."""
    _check_count(spec, items)
    for number, item in enumerate(items, start=1):
        if not isinstance(item, bool) and item != DECLINED:
            raise ItemError(f'{spec.title} item {number} must be true, false or "declined"')


def _check_count(spec: InstrumentSpec, items: Sequence[object]) -> None:
    if len(items) != spec.item_count:
        raise ItemError(f"{spec.title} has {spec.item_count} items; {len(items)} were given")


def _score_range(
    spec: InstrumentSpec,
    minimum: int,
    maximum: int,
    declined: tuple[int, ...],
    policy: InstrumentPolicy,
    sex: ScoringSex,
    *,
    flags: tuple[str, ...] = (),
    notes: tuple[str, ...] = (),
) -> InstrumentScore:
    """Band and screen result for a total known to lie in ``minimum..maximum``."""
    table = policy.band_labels
    low_band = table[minimum] if minimum < len(table) else None
    high_band = table[maximum] if maximum < len(table) else None
    by_sex = policy.positive_at_by_sex
    cut_off = policy.positive_at if by_sex is None else by_sex[sex]
    positive: bool | None = None
    if cut_off is not None:
        if minimum >= cut_off:
            positive = True
        elif maximum < cut_off:
            positive = False
    return InstrumentScore(
        instrument=spec.id,
        title=spec.title,
        total=minimum if minimum == maximum else None,
        total_min=minimum,
        total_max=maximum,
        band=low_band if low_band == high_band else None,
        positive=positive,
        cut_off=cut_off,
        declined_items=declined,
        loinc_panel=spec.loinc_panel,
        loinc_total=spec.loinc_total,
        flags=flags,
        notes=notes,
    )


def score_ordinal(
    instrument: InstrumentId,
    items: Sequence[ItemAnswer],
    policy: InstrumentPolicy,
    sex: ScoringSex = ScoringSex.UNKNOWN,
) -> InstrumentScore:
    """Score an instrument whose items are integers (PHQ-9, PHQ-2, GAD-7, AUDIT, AUDIT-C)."""
    spec = SPECS[instrument]
    headroom = 0
    declined: list[int] = []
    try:
        answered = sum(cast("Sequence[int]", items))
    except TypeError:  # a "declined" item: total the rest, and note what the declined could add
        for number, (item, allowed) in enumerate(zip(items, spec.item_values, strict=True), 1):
            if item == DECLINED:
                declined.append(number)
                headroom += allowed[-1]
        answered = sum(item for item in items if isinstance(item, int))
    flags: list[str] = []
    notes: list[str] = []
    if instrument is _PHQ9:
        item9 = items[8]
        if item9 == DECLINED:
            flags.append("item9_declined")
            notes.append("Item 9 (thoughts of death or self-harm) was declined.")
        elif isinstance(item9, int) and item9 >= 1:
            flags.append("item9_positive")
            notes.append(
                "Item 9 (thoughts of death or self-harm) is positive: a structured suicide-risk "
                "assessment is needed whatever the total."
            )
    first = items[0]
    if (
        instrument is _AUDIT_C
        and isinstance(first, int)
        and first > 0
        and items[1] == 0
        and items[2] == 0
    ):
        flags.append("points_from_item1_only")
        notes.append(
            "All points come from item 1 (frequency): drinking may be below recommended limits; "
            "clinician review advised."
        )
    if instrument is _AUDIT_C and policy.positive_at_by_sex is not None:
        notes.append(f"Cut-off for sex '{sex}': {policy.cut_off_for(sex)}.")
    return _score_range(
        spec,
        answered,
        answered + headroom,
        tuple(declined),
        policy,
        sex,
        flags=tuple(flags),
        notes=tuple(notes),
    )


def score_yes_no(
    instrument: InstrumentId,
    items: Sequence[YesNoAnswer],
    policy: InstrumentPolicy,
) -> InstrumentScore:
    """Score a yes/no instrument (DAST-10, SCOFF, PC-PTSD-5 items); reverse items score on no."""
    spec = SPECS[instrument]
    points = 0
    declined: list[int] = []
    for number, item in enumerate(items, start=1):
        if item == DECLINED:
            declined.append(number)
        elif bool(item) != (number in spec.reverse_scored_items):
            points += 1
    notes: tuple[str, ...] = ()
    if spec.reverse_scored_items:
        reversed_items = ", ".join(str(n) for n in spec.reverse_scored_items)
        notes = (f"Item {reversed_items} is reverse-scored (a 'no' scores 1).",)
    return _score_range(
        spec,
        points,
        points + len(declined),
        tuple(declined),
        policy,
        ScoringSex.UNKNOWN,
        notes=notes,
    )


def score_pc_ptsd5(
    trauma_exposure: YesNoAnswer,
    items: Sequence[YesNoAnswer] | None,
    policy: InstrumentPolicy,
) -> InstrumentScore:
    """Score PC-PTSD-5: without trauma exposure the symptom items are not asked and score 0."""
    spec = SPECS[InstrumentId.PC_PTSD5]
    if trauma_exposure is False:
        return _score_range(
            spec,
            0,
            0,
            (),
            policy,
            ScoringSex.UNKNOWN,
            notes=("No lifetime trauma exposure reported: symptom items not asked.",),
        )
    if trauma_exposure == DECLINED:
        return _score_range(
            spec,
            0,
            spec.total_range[1],
            (),
            policy,
            ScoringSex.UNKNOWN,
            notes=("The trauma-exposure question was declined.",),
        )
    if items is None:
        return _score_range(
            spec,
            0,
            spec.total_range[1],
            (),
            policy,
            ScoringSex.UNKNOWN,
            notes=("Trauma exposure reported but the symptom items were not asked.",),
        )
    return score_yes_no(InstrumentId.PC_PTSD5, items, policy)


def score_clinician_total(
    instrument: InstrumentId, total: int, policy: InstrumentPolicy
) -> InstrumentScore:
    """Score a clinician-rated total (CIWA-Ar, COWS)."""
    return _score_range(SPECS[instrument], total, total, (), policy, ScoringSex.UNKNOWN)


@dataclass(frozen=True, slots=True)
class CssrsAnswers:
    """The C-SSRS screener answers, None meaning not asked (skipped by the screener's logic)."""

    wish_to_be_dead: YesNoAnswer | None
    non_specific_active_thoughts: YesNoAnswer | None
    method: YesNoAnswer | None
    intent: YesNoAnswer | None
    plan_with_intent: YesNoAnswer | None
    behavior_lifetime: YesNoAnswer | None
    behavior_past_3_months: YesNoAnswer | None


class CssrsResponses(Protocol):
    """Anything with the C-SSRS screener answers as attributes (``CssrsAnswers`` or the
    questionnaire's own model)."""

    @property
    def wish_to_be_dead(self) -> YesNoAnswer | None: ...
    @property
    def non_specific_active_thoughts(self) -> YesNoAnswer | None: ...
    @property
    def method(self) -> YesNoAnswer | None: ...
    @property
    def intent(self) -> YesNoAnswer | None: ...
    @property
    def plan_with_intent(self) -> YesNoAnswer | None: ...
    @property
    def behavior_lifetime(self) -> YesNoAnswer | None: ...
    @property
    def behavior_past_3_months(self) -> YesNoAnswer | None: ...


# (answer name, 1-based number, rank of the tier a yes reaches) in questionnaire order
_CSSRS_QUESTIONS: Final = (
    ("wish_to_be_dead", 1, 1),
    ("non_specific_active_thoughts", 2, 1),
    ("method", 3, 2),
    ("intent", 4, 3),
    ("plan_with_intent", 5, 3),
    ("behavior_lifetime", 6, 2),
    ("behavior_past_3_months", 7, 3),
)
_HIGH: Final = CSSRS_TIER_ORDER.index(CssrsTier.HIGH)


def score_cssrs(answers: CssrsResponses) -> InstrumentScore:
    """Triage tier of the C-SSRS screener, following the Columbia triage guidance.

    high: intent (Q4) or plan with intent (Q5) in the past month, or any suicidal behavior in the
    past 3 months. moderate: method (Q3), or suicidal behavior more than 3 months ago.
    low: wish to be dead or non-specific active thoughts only. none: every answer no.
    A declined answer that could raise the tier leaves the tier open (``tier`` None) and
    ``tier_at_least`` says how high it is known to be.
    """
    spec = SPECS[InstrumentId.CSSRS]
    established = 0  # tier ranks: none 0, low 1, moderate 2, high 3
    open_up_to = 0
    declined: list[int] = []
    flags: list[str] = []
    for name, number, rank in _CSSRS_QUESTIONS:
        answer = getattr(answers, name)
        if answer is True:
            established = max(established, rank)
            flags.append(name)
        elif answer == DECLINED:
            declined.append(number)
            open_up_to = max(open_up_to, rank)
    # A declined gate question hides the follow-ups it skips, and those reach the high tier:
    # Q2 gates intent and plan (Q4, Q5); lifetime behavior gates behavior in the past 3 months.
    if answers.non_specific_active_thoughts == DECLINED and None in (
        answers.method,
        answers.intent,
        answers.plan_with_intent,
    ):
        open_up_to = _HIGH
    if answers.behavior_lifetime == DECLINED and answers.behavior_past_3_months is None:
        open_up_to = _HIGH
    tier = CSSRS_TIER_ORDER[established]
    settled = open_up_to <= established
    return _suicide_screen(
        spec,
        band=str(tier) if settled else None,
        # Any reported ideation or behavior is a positive screen even while the tier is open.
        positive=established > 0 if settled else (established > 0 or None),
        declined=declined,
        flags=tuple(flags),
        open_note=f"A declined answer could raise the tier above '{tier}'; "
        "a clinician must complete the risk assessment.",
        tier=tier if settled else None,
        tier_at_least=tier,
    )


def _suicide_screen(
    spec: InstrumentSpec,
    *,
    band: str | None,
    positive: bool | None,
    declined: Sequence[int],
    flags: tuple[str, ...],
    open_note: str,
    tier: CssrsTier | None = None,
    tier_at_least: CssrsTier | None = None,
) -> InstrumentScore:
    """The score of a suicide risk screen (C-SSRS, ASQ): a result and no total; while a
    declined answer leaves the result open (``band`` None) ``open_note`` says a clinician must
    complete the assessment."""
    return InstrumentScore(
        instrument=spec.id,
        title=spec.title,
        total=None,
        total_min=None,
        total_max=None,
        band=band,
        positive=positive,
        cut_off=None,
        declined_items=tuple(declined),
        loinc_panel=spec.loinc_panel,
        loinc_total=None,
        tier=tier,
        tier_at_least=tier_at_least,
        flags=flags,
        notes=() if band is not None else (open_note,),
    )


# --- CRAFFT 2.1 --------------------------------------------------------------------------------

_CRAFFT: Final = InstrumentId.CRAFFT
CRAFFT_CAR_ONLY_NOTE: Final = "No use reported in Part A: only the CAR item was asked."


def crafft_part_a_use(days: Iterable[int | None]) -> bool | None:
    """What CRAFFT 2.1 Part A reports: use (any answer above 0), no use (all three answered 0:
    the form then asks only the CAR item), or None (no use reported, but a Part A question was
    left unanswered, so the form asks every Part B item)."""
    counts = list(days)
    if any(count for count in counts if count is not None):
        return True
    return False if all(count is not None for count in counts) else None


def check_crafft_items(items: Sequence[object], no_use_reported: bool) -> None:
    """Raise ItemError unless ``items`` is the 6 Part B answers, or only the CAR item when
    ``no_use_reported`` (all three Part A answers are 0): the published skip of the 2.1 form."""
    spec = SPECS[_CRAFFT]
    if len(items) == 1 and not no_use_reported:
        raise ItemError(
            f"{spec.title} asks all {spec.item_count} Part B items when Part A reports use "
            "(or a Part A question is unanswered); only the CAR item alone is allowed when all "
            "three Part A answers are 0"
        )
    if len(items) != 1:
        _check_count(spec, items)
    for number, item in enumerate(items, start=1):
        if not isinstance(item, bool) and item != DECLINED:
            raise ItemError(f'{spec.title} item {number} must be true, false or "declined"')


def score_crafft(items: Sequence[YesNoAnswer], policy: InstrumentPolicy) -> InstrumentScore:
    """Score CRAFFT 2.1 Part B: the number of yes answers among the items asked (CAR alone
    when Part A reports no use, when the items not asked count 0, as the form scores them)."""
    score = score_yes_no(_CRAFFT, items, policy)
    notes: list[str] = []
    if len(items) == 1:
        notes.append(CRAFFT_CAR_ONLY_NOTE)
    if items[0] is True:
        score.flags = ("car_positive",)
        notes.append(
            "CAR item is yes: riding with a driver who had been using (or driving after use); "
            "discuss safe transport whatever the total."
        )
    score.notes = (*score.notes, *notes)
    return score


# --- ASQ ---------------------------------------------------------------------------------------


def asq_result(
    items: Sequence[YesNoAnswer], acute: YesNoAnswer | None
) -> tuple[bool | None, bool | None]:
    """(positive, acute) of the ASQ: positive when any of items 1-4 is yes; acute when item 5
    is yes. A declined item leaves either open (None) unless the answers given settle it: a yes
    settles positive; acute is false when the screen is negative or item 5 was answered no."""
    if acute is True:  # item 5 yes is an acute positive, whatever items 1-4 left open
        return True, True
    positive: bool | None = True if True in items else (None if DECLINED in items else False)
    if acute is False or positive is False:
        return positive, False
    return positive, None


ASQ_RESULTS: Final = ("negative", "non_acute_positive", "acute_positive")
"""The ASQ results (a score's ``band``), as NIMH names them."""
_ASQ_BANDS: Final = {True: ASQ_RESULTS[2], False: ASQ_RESULTS[1]}


def score_asq(items: Sequence[YesNoAnswer], acute: YesNoAnswer | None) -> InstrumentScore:
    """The ASQ result, following the NIMH pathway: negative, non-acute positive (a brief
    suicide safety assessment before the person leaves) or acute positive (item 5 yes: an
    emergency evaluation). Declined answers leave the result open as they do for the C-SSRS."""
    spec = SPECS[InstrumentId.ASQ]
    positive, is_acute = asq_result(items, acute)
    declined = [number for number, item in enumerate(items, start=1) if item == DECLINED]
    if acute == DECLINED:
        declined.append(5)
    band = None
    if positive is False:
        band = ASQ_RESULTS[0]
    elif positive is True and is_acute is not None:
        band = _ASQ_BANDS[is_acute]
    return _suicide_screen(
        spec,
        band=band,
        positive=positive,
        declined=declined,
        flags=("acute",) if is_acute else (),
        open_note="A declined answer leaves the ASQ result open; a clinician must complete the "
        "suicide risk assessment.",
    )
