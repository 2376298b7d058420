"""Specification tests for instrument scoring.

The expected tables below are written out independently from the published instrument tables in
``docs/clinical-reference.md`` §4 (shared docs), never built from ``DEFAULT_POLICIES`` or
``SPECS``: the code is compared against them, so a wrong cut-off or band edge in the code fails a
test here.

Sections:
    1. Published tables (the expectations) and reference scoring
    2. The code's specs and default policies against the published tables
    3. Ordinal instruments: PHQ-9, PHQ-2, GAD-7, AUDIT, AUDIT-C (totals, bands, cut-offs)
    4. Declined items: the total range, band and screen result
    5. PHQ-9 item 9
    6. AUDIT and AUDIT-C specifics
    7. Yes/no instruments: DAST-10, SCOFF, PC-PTSD-5
    8. Clinician totals: CIWA-Ar, COWS
    9. C-SSRS screener triage
    10. Questionnaire validation (``ScreeningAnswers``)
    11. ``score_answers`` and LOINC codes
    12. CRAFFT 2.1 and ASQ (adolescents)
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from app.engine.answers import CssrsScreener, ScreeningAnswers
from app.engine.instruments import (
    DEFAULT_POLICIES,
    SPECS,
    AnswerKind,
    Band,
    CssrsAnswers,
    CssrsTier,
    InstrumentId,
    InstrumentPolicy,
    InstrumentScore,
    ItemAnswer,
    ScoringSex,
    YesNoAnswer,
    asq_result,
    score_asq,
    score_clinician_total,
    score_crafft,
    score_cssrs,
    score_ordinal,
    score_pc_ptsd5,
    score_yes_no,
)
from app.engine.scoring import score_answers

# =================================================================================================
# 1. Published tables (clinical-reference.md §4.1) and reference scoring
# =================================================================================================

DECLINED: Final = "declined"

_0_3: Final = (0, 1, 2, 3)
_0_4: Final = (0, 1, 2, 3, 4)
_0_2_4: Final = (0, 2, 4)


@dataclass(frozen=True)
class Published:
    """One instrument as the clinical reference publishes it."""

    instrument: InstrumentId
    title: str
    kind: AnswerKind
    item_count: int
    total_range: tuple[int, int]
    bands: tuple[tuple[str, int, int], ...]  # (label, minimum, maximum), inclusive
    positive_at: int | None
    item_values: tuple[tuple[int, ...], ...] = ()  # ordinal instruments: allowed values per item
    reverse_scored: tuple[int, ...] = ()  # yes/no instruments: items where "no" scores 1
    loinc_panel: str | None = None
    loinc_total: str | None = None

    def __str__(self) -> str:
        return self.title


PHQ9: Final = Published(
    InstrumentId.PHQ9,
    "PHQ-9",
    AnswerKind.ORDINAL,
    item_count=9,
    total_range=(0, 27),
    bands=(
        ("minimal", 0, 4),
        ("mild", 5, 9),
        ("moderate", 10, 14),
        ("moderately_severe", 15, 19),
        ("severe", 20, 27),
    ),
    positive_at=10,
    item_values=(_0_3,) * 9,
    loinc_panel="44249-1",
    loinc_total="44261-6",
)
PHQ2: Final = Published(
    InstrumentId.PHQ2,
    "PHQ-2",
    AnswerKind.ORDINAL,
    item_count=2,
    total_range=(0, 6),
    bands=(),
    positive_at=3,
    item_values=(_0_3,) * 2,
    loinc_panel="55757-9",
    loinc_total="55758-7",
)
GAD7: Final = Published(
    InstrumentId.GAD7,
    "GAD-7",
    AnswerKind.ORDINAL,
    item_count=7,
    total_range=(0, 21),
    bands=(("minimal", 0, 4), ("mild", 5, 9), ("moderate", 10, 14), ("severe", 15, 21)),
    positive_at=10,
    item_values=(_0_3,) * 7,
    loinc_panel="69737-5",
    loinc_total="70274-6",
)
AUDIT: Final = Published(
    InstrumentId.AUDIT,
    "AUDIT",
    AnswerKind.ORDINAL,
    item_count=10,
    total_range=(0, 40),
    bands=(
        ("low_risk", 0, 7),  # WHO zone I
        ("hazardous", 8, 15),  # zone II
        ("harmful", 16, 19),  # zone III
        ("possible_dependence", 20, 40),  # zone IV
    ),
    positive_at=8,
    item_values=(_0_4,) * 8 + (_0_2_4,) * 2,  # items 9-10 score only 0, 2 or 4
    loinc_panel="72110-0",
    loinc_total="75624-7",
)
AUDIT_C: Final = Published(
    InstrumentId.AUDIT_C,
    "AUDIT-C",
    AnswerKind.ORDINAL,
    item_count=3,
    total_range=(0, 12),
    bands=(),
    positive_at=None,  # sex-specific: AUDIT_C_CUT_OFF
    item_values=(_0_4,) * 3,
    loinc_panel="72109-2",
    loinc_total="75626-2",
)
AUDIT_C_CUT_OFF: Final = {
    ScoringSex.MALE: 4,
    ScoringSex.FEMALE: 3,
    ScoringSex.UNKNOWN: 3,  # conservative: the lower cut-off
}
DAST10: Final = Published(
    InstrumentId.DAST10,
    "DAST-10",
    AnswerKind.YES_NO,
    item_count=10,
    total_range=(0, 10),
    bands=(
        ("none", 0, 0),
        ("low", 1, 2),
        ("moderate", 3, 5),
        ("substantial", 6, 8),
        ("severe", 9, 10),
    ),
    positive_at=3,
    reverse_scored=(3,),
    loinc_panel="82666-9",
    loinc_total="82667-7",
)
SCOFF: Final = Published(
    InstrumentId.SCOFF,
    "SCOFF",
    AnswerKind.YES_NO,
    item_count=5,
    total_range=(0, 5),
    bands=(),
    positive_at=2,
    loinc_panel=None,  # "no LOINC or SNOMED code"
    loinc_total=None,
)
PC_PTSD5: Final = Published(
    InstrumentId.PC_PTSD5,
    "PC-PTSD-5",
    AnswerKind.YES_NO,
    item_count=5,
    total_range=(0, 5),
    bands=(),
    positive_at=3,
    loinc_panel="102010-6",  # marked "verify" in the reference
    loinc_total=None,
)
CIWA_AR: Final = Published(
    InstrumentId.CIWA_AR,
    "CIWA-Ar",
    AnswerKind.CLINICIAN_TOTAL,
    item_count=0,
    total_range=(0, 67),
    bands=(("mild", 0, 9), ("moderate", 10, 18), ("severe", 19, 67)),  # ASAM 2020
    positive_at=None,
)
COWS: Final = Published(
    InstrumentId.COWS,
    "COWS",
    AnswerKind.CLINICIAN_TOTAL,
    item_count=0,
    total_range=(0, 48),
    bands=(
        ("none", 0, 4),
        ("mild", 5, 12),
        ("moderate", 13, 24),
        ("moderately_severe", 25, 36),
        ("severe", 37, 48),
    ),
    positive_at=None,
)
CSSRS_LOINC_PANEL: Final = "93373-9"

ORDINAL: Final = (PHQ9, PHQ2, GAD7, AUDIT, AUDIT_C)
YES_NO: Final = (DAST10, SCOFF, PC_PTSD5)
CLINICIAN: Final = (CIWA_AR, COWS)
ALL_SCORED: Final = (*ORDINAL, *YES_NO, *CLINICIAN)
BANDED: Final = tuple(p for p in ALL_SCORED if p.bands)
SEXES: Final = tuple(ScoringSex)


def published_band(published: Published, total: int) -> str | None:
    """The published band label for ``total`` (None for instruments without bands)."""
    labels = [label for label, low, high in published.bands if low <= total <= high]
    assert len(labels) <= 1, f"overlapping published bands at {total}"
    return labels[0] if labels else None


def published_cut_off(published: Published, sex: ScoringSex = ScoringSex.UNKNOWN) -> int | None:
    if published.instrument is InstrumentId.AUDIT_C:
        return AUDIT_C_CUT_OFF[sex]
    return published.positive_at


def default_policy(published: Published) -> InstrumentPolicy:
    return DEFAULT_POLICIES[published.instrument]


@dataclass(frozen=True)
class Expected:
    """What the published scoring rules say about a set of answers."""

    total_min: int
    total_max: int
    declined_items: tuple[int, ...]


def expected_ordinal(published: Published, items: Sequence[ItemAnswer]) -> Expected:
    answered = [item for item in items if item != DECLINED]
    declined = tuple(n for n, item in enumerate(items, start=1) if item == DECLINED)
    total_min = sum(int(item) for item in answered)
    headroom = sum(max(published.item_values[n - 1]) for n in declined)
    return Expected(total_min, total_min + headroom, declined)


def yes_no_points(published: Published, number: int, answer: bool) -> int:
    """A "yes" scores 1, except on a reverse-scored item, where a "no" scores 1."""
    if number in published.reverse_scored:
        return 0 if answer else 1
    return 1 if answer else 0


def expected_yes_no(published: Published, items: Sequence[YesNoAnswer]) -> Expected:
    declined = tuple(n for n, item in enumerate(items, start=1) if item == DECLINED)
    points = sum(
        yes_no_points(published, n, item)
        for n, item in enumerate(items, start=1)
        if isinstance(item, bool)
    )
    return Expected(points, points + len(declined), declined)


def assert_scored_as_published(
    score: InstrumentScore, published: Published, expected: Expected, cut_off: int | None
) -> None:
    """Total, range, band and screen result as the published tables and the declined rule say.

    With declined items the total is unknown; the band is given only when every total in
    ``total_min..total_max`` has the same band, the screen result only when every total agrees.
    """
    low, high = expected.total_min, expected.total_max
    assert score.instrument is published.instrument
    assert score.title == published.title
    assert score.total_min == low
    assert score.total_max == high
    assert score.total == (low if low == high else None)
    assert score.declined_items == expected.declined_items
    low_band, high_band = published_band(published, low), published_band(published, high)
    assert score.band == (low_band if low_band == high_band else None)
    assert score.cut_off == cut_off
    if cut_off is None:
        assert score.positive is None
    elif low >= cut_off:
        assert score.positive is True
    elif high < cut_off:
        assert score.positive is False
    else:
        assert score.positive is None


def ordinal_items_with_total(published: Published, total: int) -> list[ItemAnswer]:
    """A valid complete item list adding up to ``total`` (filled from the last item)."""
    items: list[ItemAnswer] = [0] * published.item_count
    remaining = total
    for index in reversed(range(published.item_count)):
        pick = max(v for v in published.item_values[index] if v <= remaining)
        items[index] = pick
        remaining -= pick
    assert remaining == 0, f"cannot build {published} total {total}"
    return items


def yes_no_items_with_points(published: Published, points: int) -> list[YesNoAnswer]:
    """Answers scoring ``points``: the first ``points`` items score, the rest do not."""
    return [
        (n <= points) != (n in published.reverse_scored) for n in range(1, published.item_count + 1)
    ]


def band_boundaries(published: Published) -> list[tuple[int, int, str, str]]:
    """(last total of a band, first total of the next, their labels) for each band edge."""
    return [
        (lower[2], upper[1], lower[0], upper[0])
        for lower, upper in itertools.pairwise(published.bands)
    ]


BAND_EDGES: Final = [
    pytest.param(p, below, at, below_label, at_label, id=f"{p}-{below}|{at}")
    for p in BANDED
    for below, at, below_label, at_label in band_boundaries(p)
]


# --- hypothesis strategies -----------------------------------------------------------------------


def ordinal_items(
    published: Published, *, declines: bool = False
) -> st.SearchStrategy[list[ItemAnswer]]:
    per_item: list[st.SearchStrategy[ItemAnswer]] = []
    for values in published.item_values:
        choices: tuple[ItemAnswer, ...] = (*values, DECLINED) if declines else values
        per_item.append(st.sampled_from(choices))
    return st.tuples(*per_item).map(list)


def yes_no_items(
    published: Published, *, declines: bool = False
) -> st.SearchStrategy[list[YesNoAnswer]]:
    choices: tuple[YesNoAnswer, ...] = (True, False, DECLINED) if declines else (True, False)
    return st.lists(
        st.sampled_from(choices), min_size=published.item_count, max_size=published.item_count
    )


# =================================================================================================
# 2. The code's specs and default policies against the published tables
# =================================================================================================


@pytest.mark.parametrize("published", BANDED, ids=str)
def test_published_bands_partition_the_total_range(published: Published) -> None:
    """Self-check of the tables above: bands are contiguous and cover the whole range."""
    low, high = published.total_range
    assert published.bands[0][1] == low
    assert published.bands[-1][2] == high
    for (_, _, end), (_, start, _) in itertools.pairwise(published.bands):
        assert start == end + 1


@pytest.mark.parametrize("published", ALL_SCORED, ids=str)
def test_default_bands_are_the_published_bands(published: Published) -> None:
    expected = tuple(Band(label, low, high) for label, low, high in published.bands)
    assert default_policy(published).bands == expected


@pytest.mark.parametrize("published", ALL_SCORED, ids=str)
def test_default_cut_off_is_the_published_cut_off(published: Published) -> None:
    policy = default_policy(published)
    for sex in SEXES:
        assert policy.cut_off_for(sex) == published_cut_off(published, sex)


def test_audit_c_cut_off_is_sex_specific_with_the_lower_one_for_unknown() -> None:
    policy = DEFAULT_POLICIES[InstrumentId.AUDIT_C]
    assert policy.positive_at_by_sex == AUDIT_C_CUT_OFF


@pytest.mark.parametrize("published", ALL_SCORED, ids=str)
def test_spec_structure_is_the_published_structure(published: Published) -> None:
    spec = SPECS[published.instrument]
    assert spec.title == published.title
    assert spec.kind is published.kind
    assert spec.item_count == published.item_count
    assert spec.total_range == published.total_range
    assert spec.reverse_scored_items == published.reverse_scored
    if published.kind is AnswerKind.ORDINAL:
        assert spec.item_values == published.item_values
        assert sum(max(v) for v in spec.item_values) == published.total_range[1]


# =================================================================================================
# 3. Ordinal instruments: totals, bands and cut-offs
# =================================================================================================


@pytest.mark.parametrize("published", ORDINAL, ids=str)
@given(data=st.data())
def test_complete_items_score_the_published_total_band_and_screen(
    published: Published, data: st.DataObject
) -> None:
    items = data.draw(ordinal_items(published))
    sex = data.draw(st.sampled_from(SEXES))
    score = score_ordinal(published.instrument, items, default_policy(published), sex)
    expected = expected_ordinal(published, items)
    assert expected.total_min == expected.total_max == sum(int(i) for i in items)
    assert_scored_as_published(score, published, expected, published_cut_off(published, sex))
    assert score.total is not None
    assert score.band is not None or not published.bands
    assert score.positive is not None


@pytest.mark.parametrize(("published", "below", "at", "below_label", "at_label"), BAND_EDGES)
def test_band_edges(
    published: Published, below: int, at: int, below_label: str, at_label: str
) -> None:
    policy = default_policy(published)
    if published.kind is AnswerKind.ORDINAL:
        under = score_ordinal(
            published.instrument, ordinal_items_with_total(published, below), policy
        )
        over = score_ordinal(published.instrument, ordinal_items_with_total(published, at), policy)
    elif published.kind is AnswerKind.YES_NO:
        under = score_yes_no(
            published.instrument, yes_no_items_with_points(published, below), policy
        )
        over = score_yes_no(published.instrument, yes_no_items_with_points(published, at), policy)
    else:
        under = score_clinician_total(published.instrument, below, policy)
        over = score_clinician_total(published.instrument, at, policy)
    assert (under.total, under.band) == (below, below_label)
    assert (over.total, over.band) == (at, at_label)


CUT_OFF_EDGES: Final = [
    pytest.param(p, sex, id=f"{p}-{sex.value}")
    for p in (*ORDINAL, *YES_NO)
    for sex in (SEXES if p.instrument is InstrumentId.AUDIT_C else (ScoringSex.UNKNOWN,))
]


@pytest.mark.parametrize(("published", "sex"), CUT_OFF_EDGES)
def test_cut_off_edges(published: Published, sex: ScoringSex) -> None:
    cut_off = published_cut_off(published, sex)
    assert cut_off is not None
    policy = default_policy(published)
    results: list[InstrumentScore] = []
    for total in (cut_off - 1, cut_off):
        if published.kind is AnswerKind.ORDINAL:
            items = ordinal_items_with_total(published, total)
            results.append(score_ordinal(published.instrument, items, policy, sex))
        elif published.instrument is InstrumentId.PC_PTSD5:
            results.append(score_pc_ptsd5(True, yes_no_items_with_points(published, total), policy))
        else:
            items_yn = yes_no_items_with_points(published, total)
            results.append(score_yes_no(published.instrument, items_yn, policy))
    under, over = results
    assert (under.total, under.positive, under.cut_off) == (cut_off - 1, False, cut_off)
    assert (over.total, over.positive, over.cut_off) == (cut_off, True, cut_off)


@pytest.mark.parametrize(
    ("published", "total", "band", "positive"),
    [
        (PHQ9, 0, "minimal", False),
        (PHQ9, 27, "severe", True),
        (GAD7, 0, "minimal", False),
        (GAD7, 21, "severe", True),
        (AUDIT, 0, "low_risk", False),
        (AUDIT, 40, "possible_dependence", True),
        (PHQ2, 0, None, False),
        (PHQ2, 6, None, True),
        (AUDIT_C, 0, None, False),
        (AUDIT_C, 12, None, True),
    ],
    ids=lambda v: str(v),
)
def test_range_extremes(published: Published, total: int, band: str | None, positive: bool) -> None:
    items = ordinal_items_with_total(published, total)
    score = score_ordinal(published.instrument, items, default_policy(published))
    assert (score.total, score.band, score.positive) == (total, band, positive)


def test_cut_offs_come_from_the_policy_not_the_spec() -> None:
    policy = InstrumentPolicy(bands=(Band("low", 0, 14), Band("high", 15, 27)), positive_at=15)
    items = ordinal_items_with_total(PHQ9, 14)
    score = score_ordinal(InstrumentId.PHQ9, items, policy)
    assert (score.band, score.positive, score.cut_off) == ("low", False, 15)


# =================================================================================================
# 4. Declined items
# =================================================================================================


@pytest.mark.parametrize("published", ORDINAL, ids=str)
@given(data=st.data())
def test_declined_ordinal_items_bracket_the_total(
    published: Published, data: st.DataObject
) -> None:
    items = data.draw(ordinal_items(published, declines=True))
    sex = data.draw(st.sampled_from(SEXES))
    score = score_ordinal(published.instrument, items, default_policy(published), sex)
    expected = expected_ordinal(published, items)
    assert_scored_as_published(score, published, expected, published_cut_off(published, sex))
    if expected.declined_items:
        assert score.total is None


@pytest.mark.parametrize("published", YES_NO, ids=str)
@given(data=st.data())
def test_declined_yes_no_items_bracket_the_total(published: Published, data: st.DataObject) -> None:
    items = data.draw(yes_no_items(published, declines=True))
    policy = default_policy(published)
    if published.instrument is InstrumentId.PC_PTSD5:
        score = score_pc_ptsd5(True, items, policy)
    else:
        score = score_yes_no(published.instrument, items, policy)
    expected = expected_yes_no(published, items)
    assert_scored_as_published(score, published, expected, published.positive_at)
    if expected.declined_items:
        assert score.total is None


@pytest.mark.parametrize(
    ("published", "items", "total_min", "total_max", "band", "positive"),
    [
        # one declined item adds its maximum to the top of the range
        (PHQ9, [3, 3, 3, 3, 3, 3, 3, 3, DECLINED], 24, 27, "severe", True),
        (PHQ9, [0, 0, 0, 0, 0, 0, 0, 0, DECLINED], 0, 3, "minimal", False),
        (PHQ9, [1, 1, 1, 1, 1, 1, 1, 1, DECLINED], 8, 11, None, None),  # mild..moderate
        (PHQ9, [1, 1, 1, 1, 1, 1, 1, 0, DECLINED], 7, 10, None, None),  # straddles 10
        (PHQ9, [1, 1, 1, 1, 1, 1, 0, 0, DECLINED], 6, 9, "mild", False),
        (GAD7, [2, 2, 2, 2, 2, DECLINED, DECLINED], 10, 16, None, True),  # moderate..severe
        # AUDIT items 9 and 10 can add at most 4 each, items 1-8 at most 4 each
        (AUDIT, [0, 0, 0, 0, 0, 0, 0, 0, DECLINED, 0], 0, 4, "low_risk", False),
        (AUDIT, [1, 1, 1, 1, 0, 0, 0, 0, 0, DECLINED], 4, 8, None, None),
        (AUDIT, [DECLINED] * 10, 0, 40, None, None),
        (PHQ2, [2, DECLINED], 2, 5, None, None),
        (PHQ2, [DECLINED, 3], 3, 6, None, True),
    ],
    ids=lambda v: str(v),
)
def test_declined_examples(
    published: Published,
    items: list[ItemAnswer],
    total_min: int,
    total_max: int,
    band: str | None,
    positive: bool | None,
) -> None:
    score = score_ordinal(published.instrument, items, default_policy(published))
    assert score.total is None
    assert (score.total_min, score.total_max) == (total_min, total_max)
    assert (score.band, score.positive) == (band, positive)
    assert score.declined_items == tuple(
        n for n, item in enumerate(items, start=1) if item == DECLINED
    )


def test_declined_items_are_numbered_from_one() -> None:
    items: list[ItemAnswer] = [DECLINED, 0, 0, 0, 0, 0, DECLINED]
    score = score_ordinal(InstrumentId.GAD7, items, default_policy(GAD7))
    assert score.declined_items == (1, 7)


# =================================================================================================
# 5. PHQ-9 item 9 (thoughts of death or self-harm)
# =================================================================================================


@given(data=st.data())
def test_phq9_item9_flag_whatever_the_total(data: st.DataObject) -> None:
    items = data.draw(ordinal_items(PHQ9, declines=True))
    score = score_ordinal(InstrumentId.PHQ9, items, default_policy(PHQ9))
    item9 = items[8]
    assert ("item9_positive" in score.flags) == (item9 != DECLINED and int(item9) >= 1)
    assert ("item9_declined" in score.flags) == (item9 == DECLINED)


@pytest.mark.parametrize("value", [1, 2, 3])
def test_phq9_item9_alone_is_flagged_although_the_total_is_minimal(value: int) -> None:
    items: list[ItemAnswer] = [0, 0, 0, 0, 0, 0, 0, 0, value]
    score = score_ordinal(InstrumentId.PHQ9, items, default_policy(PHQ9))
    assert (score.total, score.band, score.positive) == (value, "minimal", False)
    assert "item9_positive" in score.flags
    assert "item9_declined" not in score.flags


def test_phq9_item9_zero_raises_no_flag_even_when_severe() -> None:
    items: list[ItemAnswer] = [3, 3, 3, 3, 3, 3, 3, 3, 0]
    score = score_ordinal(InstrumentId.PHQ9, items, default_policy(PHQ9))
    assert score.band == "severe"
    assert not {"item9_positive", "item9_declined"} & set(score.flags)


def test_phq9_item9_declined_is_flagged() -> None:
    items: list[ItemAnswer] = [0, 0, 0, 0, 0, 0, 0, 0, DECLINED]
    score = score_ordinal(InstrumentId.PHQ9, items, default_policy(PHQ9))
    assert "item9_declined" in score.flags
    assert "item9_positive" not in score.flags


# =================================================================================================
# 6. AUDIT and AUDIT-C specifics
# =================================================================================================


@given(items=ordinal_items(AUDIT))
def test_audit_items_9_and_10_only_score_0_2_or_4(items: list[ItemAnswer]) -> None:
    assert items[8] in _0_2_4
    assert items[9] in _0_2_4
    score = score_ordinal(InstrumentId.AUDIT, items, default_policy(AUDIT))
    assert score.total == sum(int(i) for i in items)


@given(
    item1=st.sampled_from(_0_4),
    rest=st.tuples(*[st.sampled_from((*_0_4, DECLINED))] * 2),
)
def test_audit_c_points_from_item1_only_flag(
    item1: int, rest: tuple[ItemAnswer, ItemAnswer]
) -> None:
    """All points from item 1 (items 2 and 3 both 0) needs clinician review."""
    items: list[ItemAnswer] = [item1, *rest]
    score = score_ordinal(InstrumentId.AUDIT_C, items, default_policy(AUDIT_C))
    assert ("points_from_item1_only" in score.flags) == (item1 > 0 and rest == (0, 0))


@pytest.mark.parametrize(
    ("sex", "total", "positive"),
    [
        (ScoringSex.MALE, 3, False),
        (ScoringSex.MALE, 4, True),
        (ScoringSex.FEMALE, 2, False),
        (ScoringSex.FEMALE, 3, True),
        (ScoringSex.UNKNOWN, 2, False),
        (ScoringSex.UNKNOWN, 3, True),
    ],
    ids=lambda v: str(v),
)
def test_audit_c_sex_specific_cut_offs(sex: ScoringSex, total: int, positive: bool) -> None:
    items = ordinal_items_with_total(AUDIT_C, total)
    score = score_ordinal(InstrumentId.AUDIT_C, items, default_policy(AUDIT_C), sex)
    assert (score.total, score.positive, score.cut_off) == (total, positive, AUDIT_C_CUT_OFF[sex])


BASE_ANSWERS: Final[dict[str, Any]] = {
    "respondent": {"age_group": "adult", "answered_by": "self_report"},
    "presenting_concerns": ["mental_health"],
}


def answers_with(
    instruments: dict[str, Any], sex: ScoringSex | None = None, **extra: Any
) -> dict[str, Any]:
    respondent = dict(BASE_ANSWERS["respondent"])
    if sex is not None:
        respondent["sex_for_scoring"] = sex.value
    return {**BASE_ANSWERS, "respondent": respondent, "instruments": instruments, **extra}


@pytest.mark.parametrize("sex", SEXES, ids=str)
@given(items=ordinal_items(AUDIT, declines=True))
def test_audit_c_is_derived_from_audit_items_1_to_3(
    sex: ScoringSex, items: list[ItemAnswer]
) -> None:
    answers = ScreeningAnswers.model_validate(answers_with({"audit": {"items": items}}, sex))
    scores = score_answers(answers)
    audit_c = scores[InstrumentId.AUDIT_C]
    expected = expected_ordinal(AUDIT_C, items[:3])
    assert_scored_as_published(audit_c, AUDIT_C, expected, AUDIT_C_CUT_OFF[sex])
    assert any("AUDIT items 1-3" in note for note in audit_c.notes)
    assert_scored_as_published(
        scores[InstrumentId.AUDIT], AUDIT, expected_ordinal(AUDIT, items), AUDIT.positive_at
    )


def test_audit_c_given_with_matching_audit_is_not_marked_derived() -> None:
    audit = [2, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    answers = ScreeningAnswers.model_validate(
        answers_with({"audit": {"items": audit}, "audit_c": {"items": audit[:3]}})
    )
    audit_c = score_answers(answers)[InstrumentId.AUDIT_C]
    assert audit_c.total == 3
    assert not any("AUDIT items 1-3" in note for note in audit_c.notes)


def test_audit_c_alone_does_not_produce_an_audit_score() -> None:
    answers = ScreeningAnswers.model_validate(answers_with({"audit_c": {"items": [1, 0, 0]}}))
    scores = score_answers(answers)
    assert set(scores) == {InstrumentId.AUDIT_C}
    assert "points_from_item1_only" in scores[InstrumentId.AUDIT_C].flags


@pytest.mark.parametrize(
    "audit_c",
    [[2, 1, 1], [2, 1, DECLINED], [1, 1, 0], [0, 0, 0]],
    ids=lambda v: str(v),
)
def test_audit_c_that_differs_from_audit_items_1_to_3_is_rejected(
    audit_c: list[ItemAnswer],
) -> None:
    audit = [2, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    with pytest.raises(ValidationError, match="AUDIT-C"):
        ScreeningAnswers.model_validate(
            answers_with({"audit": {"items": audit}, "audit_c": {"items": audit_c}})
        )


# =================================================================================================
# 7. Yes/no instruments: DAST-10, SCOFF, PC-PTSD-5
# =================================================================================================


@pytest.mark.parametrize("published", [DAST10, SCOFF], ids=str)
@given(data=st.data())
def test_complete_yes_no_items_score_the_published_total_band_and_screen(
    published: Published, data: st.DataObject
) -> None:
    items = data.draw(yes_no_items(published))
    score = score_yes_no(published.instrument, items, default_policy(published))
    assert_scored_as_published(
        score, published, expected_yes_no(published, items), published.positive_at
    )
    assert score.total is not None


@given(items=yes_no_items(DAST10))
def test_dast10_item3_is_reverse_scored(items: list[YesNoAnswer]) -> None:
    """DAST-10 item 3 ("able to stop using drugs when you want to?"): "no" scores 1."""
    score = score_yes_no(InstrumentId.DAST10, items, default_policy(DAST10))
    others = sum(1 for n, item in enumerate(items, start=1) if n != 3 and item is True)
    assert score.total == others + (1 if items[2] is False else 0)


@pytest.mark.parametrize(
    ("items", "total", "band", "positive"),
    [
        ([False] * 10, 1, "low", False),  # all "no": item 3 "no" scores 1
        ([False, False, True, *[False] * 7], 0, "none", False),
        ([True] * 10, 9, "severe", True),  # all "yes": item 3 "yes" scores 0
        ([True, True, False, *[True] * 7], 10, "severe", True),
        ([True, True, True, *[False] * 7], 2, "low", False),
        ([True, True, False, *[False] * 7], 3, "moderate", True),
    ],
    ids=lambda v: str(v),
)
def test_dast10_examples(items: list[YesNoAnswer], total: int, band: str, positive: bool) -> None:
    score = score_yes_no(InstrumentId.DAST10, items, default_policy(DAST10))
    assert (score.total, score.band, score.positive) == (total, band, positive)


def test_dast10_declined_item3_can_add_a_point() -> None:
    items: list[YesNoAnswer] = [True, True, DECLINED, *[False] * 7]
    score = score_yes_no(InstrumentId.DAST10, items, default_policy(DAST10))
    assert (score.total, score.total_min, score.total_max) == (None, 2, 3)
    assert (score.band, score.positive, score.declined_items) == (None, None, (3,))


@pytest.mark.parametrize(
    ("items", "positive"),
    [
        ([True, False, False, False, False], False),
        ([True, True, False, False, False], True),
        ([False, False, False, True, True], True),
    ],
    ids=lambda v: str(v),
)
def test_scoff_positive_at_2(items: list[YesNoAnswer], positive: bool) -> None:
    score = score_yes_no(InstrumentId.SCOFF, items, default_policy(SCOFF))
    assert (score.positive, score.cut_off) == (positive, 2)


@given(items=yes_no_items(PC_PTSD5))
def test_pc_ptsd5_after_trauma_scores_the_yes_answers(items: list[YesNoAnswer]) -> None:
    score = score_pc_ptsd5(True, items, default_policy(PC_PTSD5))
    total = sum(1 for item in items if item is True)
    assert (score.total, score.positive, score.cut_off) == (total, total >= 3, 3)


def test_pc_ptsd5_without_trauma_exposure_is_zero_and_negative() -> None:
    score = score_pc_ptsd5(False, None, default_policy(PC_PTSD5))
    assert (score.total, score.total_min, score.total_max) == (0, 0, 0)
    assert (score.positive, score.cut_off) == (False, 3)


def test_pc_ptsd5_without_trauma_exposure_through_the_questionnaire() -> None:
    answers = ScreeningAnswers.model_validate(
        answers_with({"pc_ptsd5": {"trauma_exposure": False}})
    )
    score = score_answers(answers)[InstrumentId.PC_PTSD5]
    assert (score.total, score.positive) == (0, False)


@pytest.mark.parametrize(
    ("trauma", "items"),
    [(DECLINED, None), (True, None)],
    ids=["exposure-declined", "exposed-items-not-asked"],
)
def test_pc_ptsd5_unknown_exposure_or_items_leaves_the_screen_open(
    trauma: YesNoAnswer, items: list[YesNoAnswer] | None
) -> None:
    score = score_pc_ptsd5(trauma, items, default_policy(PC_PTSD5))
    assert (score.total, score.total_min, score.total_max) == (None, 0, 5)
    assert score.positive is None


# =================================================================================================
# 8. Clinician totals: CIWA-Ar, COWS
# =================================================================================================


@pytest.mark.parametrize("published", CLINICIAN, ids=str)
@given(data=st.data())
def test_clinician_total_band_is_the_published_band(
    published: Published, data: st.DataObject
) -> None:
    total = data.draw(st.integers(*published.total_range))
    score = score_clinician_total(published.instrument, total, default_policy(published))
    assert_scored_as_published(score, published, Expected(total, total, ()), None)
    assert score.band == published_band(published, total)
    assert score.band is not None


@pytest.mark.parametrize(
    ("published", "total", "band"),
    [
        (CIWA_AR, 0, "mild"),
        (CIWA_AR, 9, "mild"),  # ASAM: < 10 mild
        (CIWA_AR, 10, "moderate"),
        (CIWA_AR, 18, "moderate"),
        (CIWA_AR, 19, "severe"),  # ASAM: >= 19 severe
        (CIWA_AR, 67, "severe"),
        (COWS, 0, "none"),
        (COWS, 4, "none"),
        (COWS, 5, "mild"),
        (COWS, 12, "mild"),
        (COWS, 13, "moderate"),
        (COWS, 24, "moderate"),
        (COWS, 25, "moderately_severe"),
        (COWS, 36, "moderately_severe"),
        (COWS, 37, "severe"),  # > 36 severe
        (COWS, 48, "severe"),
    ],
    ids=lambda v: str(v),
)
def test_clinician_total_examples(published: Published, total: int, band: str) -> None:
    score = score_clinician_total(published.instrument, total, default_policy(published))
    assert (score.total, score.band, score.positive, score.cut_off) == (total, band, None, None)


# =================================================================================================
# 9. C-SSRS screener triage
# =================================================================================================

_TIER_RANK: Final = {
    CssrsTier.NONE: 0,
    CssrsTier.LOW: 1,
    CssrsTier.MODERATE: 2,
    CssrsTier.HIGH: 3,
}


def cssrs(
    wish: YesNoAnswer = False,
    thoughts: YesNoAnswer = False,
    method: YesNoAnswer | None = None,
    intent: YesNoAnswer | None = None,
    plan: YesNoAnswer | None = None,
    lifetime: YesNoAnswer = False,
    past_3_months: YesNoAnswer | None = None,
) -> CssrsAnswers:
    return CssrsAnswers(
        wish_to_be_dead=wish,
        non_specific_active_thoughts=thoughts,
        method=method,
        intent=intent,
        plan_with_intent=plan,
        behavior_lifetime=lifetime,
        behavior_past_3_months=past_3_months,
    )


def reference_tier(
    wish: bool, thoughts: bool, method: bool, intent: bool, plan: bool, lifetime: bool, past: bool
) -> CssrsTier:
    """Columbia triage for a fully known set of answers (§4.2)."""
    if intent or plan or (lifetime and past):
        return CssrsTier.HIGH
    if method or lifetime:
        return CssrsTier.MODERATE
    if wish or thoughts:
        return CssrsTier.LOW
    return CssrsTier.NONE


def _possible(answer: YesNoAnswer | None, *, skipped_behind_declined: bool) -> tuple[bool, ...]:
    """The real answers an answer may stand for.

    A declined answer could be yes or no. A question that was not asked because the question
    that gates it was declined could also be yes or no had the gate been answered yes.
    """
    if answer == DECLINED or (answer is None and skipped_behind_declined):
        return (True, False)
    return (answer is True,)


def possible_tiers(answers: CssrsAnswers) -> set[CssrsTier]:
    """Every tier the full answers could give, the declined answers filled in every way."""
    tiers: set[CssrsTier] = set()
    gate_declined = answers.non_specific_active_thoughts == DECLINED
    behavior_declined = answers.behavior_lifetime == DECLINED
    for wish, thoughts, lifetime in itertools.product(
        _possible(answers.wish_to_be_dead, skipped_behind_declined=False),
        _possible(answers.non_specific_active_thoughts, skipped_behind_declined=False),
        _possible(answers.behavior_lifetime, skipped_behind_declined=False),
    ):
        follow_ups = [
            _possible(answer, skipped_behind_declined=gate_declined and thoughts)
            for answer in (answers.method, answers.intent, answers.plan_with_intent)
        ]
        pasts = _possible(
            answers.behavior_past_3_months, skipped_behind_declined=behavior_declined and lifetime
        )
        for method, intent, plan, past in itertools.product(*follow_ups, pasts):
            tiers.add(reference_tier(wish, thoughts, method, intent, plan, lifetime, past))
    return tiers


def assert_cssrs_tier(score: InstrumentScore, tier: CssrsTier | None, at_least: CssrsTier) -> None:
    assert score.instrument is InstrumentId.CSSRS
    assert (score.tier, score.tier_at_least) == (tier, at_least)
    assert score.total is None


YES_NO_DECLINED: Final[st.SearchStrategy[YesNoAnswer]] = st.sampled_from((True, False, DECLINED))


@st.composite
def cssrs_answers(draw: st.DrawFn) -> CssrsAnswers:
    """Answers consistent with the screener's skip logic.

    Q3-Q5 are asked only when Q2 is yes (not when it was declined); the past-3-months
    question likewise only behind a yes to lifetime behavior.
    """
    thoughts = draw(YES_NO_DECLINED)
    asked = thoughts is True
    method, intent, plan = (
        (draw(YES_NO_DECLINED), draw(YES_NO_DECLINED), draw(YES_NO_DECLINED))
        if asked
        else (None, None, None)
    )
    lifetime = draw(YES_NO_DECLINED)
    past_asked = lifetime is True
    past = draw(YES_NO_DECLINED) if past_asked else None
    return cssrs(draw(YES_NO_DECLINED), thoughts, method, intent, plan, lifetime, past)


@given(answers=cssrs_answers())
def test_cssrs_tier_matches_the_columbia_triage(answers: CssrsAnswers) -> None:
    # every generated combination is one the questionnaire accepts
    CssrsScreener.model_validate(
        {name: getattr(answers, name) for name in CssrsScreener.model_fields}
    )
    tiers = possible_tiers(answers)
    lowest = min(tiers, key=_TIER_RANK.__getitem__)
    score = score_cssrs(answers)
    assert_cssrs_tier(score, lowest if len(tiers) == 1 else None, lowest)
    fields = (
        answers.wish_to_be_dead,
        answers.non_specific_active_thoughts,
        answers.method,
        answers.intent,
        answers.plan_with_intent,
        answers.behavior_lifetime,
        answers.behavior_past_3_months,
    )
    assert score.declined_items == tuple(
        n for n, answer in enumerate(fields, start=1) if answer == DECLINED
    )


@given(
    wish=st.booleans(),
    thoughts=st.booleans(),
    method=st.booleans(),
    intent=st.booleans(),
    plan=st.booleans(),
    lifetime=st.booleans(),
    past=st.booleans(),
)
def test_cssrs_fully_answered_tier(
    wish: bool, thoughts: bool, method: bool, intent: bool, plan: bool, lifetime: bool, past: bool
) -> None:
    answers = cssrs(
        wish,
        thoughts,
        method if thoughts else None,
        intent if thoughts else None,
        plan if thoughts else None,
        lifetime,
        past if lifetime else None,
    )
    expected = reference_tier(
        wish,
        thoughts,
        thoughts and method,
        thoughts and intent,
        thoughts and plan,
        lifetime,
        lifetime and past,
    )
    assert_cssrs_tier(score_cssrs(answers), expected, expected)


NO, YES = False, True

CSSRS_EXAMPLES: Final = [
    pytest.param(cssrs(), CssrsTier.NONE, CssrsTier.NONE, id="all-no"),
    pytest.param(cssrs(wish=YES), CssrsTier.LOW, CssrsTier.LOW, id="wish-only"),
    pytest.param(
        cssrs(thoughts=YES, method=NO, intent=NO, plan=NO),
        CssrsTier.LOW,
        CssrsTier.LOW,
        id="non-specific-thoughts-only",
    ),
    pytest.param(
        cssrs(YES, YES, method=YES, intent=NO, plan=NO),
        CssrsTier.MODERATE,
        CssrsTier.MODERATE,
        id="method",
    ),
    pytest.param(
        cssrs(thoughts=YES, method=NO, intent=YES, plan=NO),
        CssrsTier.HIGH,
        CssrsTier.HIGH,
        id="intent",
    ),
    pytest.param(
        cssrs(thoughts=YES, method=YES, intent=NO, plan=YES),
        CssrsTier.HIGH,
        CssrsTier.HIGH,
        id="plan-with-intent",
    ),
    pytest.param(
        cssrs(lifetime=YES, past_3_months=NO),
        CssrsTier.MODERATE,
        CssrsTier.MODERATE,
        id="behavior-over-3-months-ago",
    ),
    pytest.param(
        cssrs(lifetime=YES, past_3_months=YES),
        CssrsTier.HIGH,
        CssrsTier.HIGH,
        id="behavior-past-3-months",
    ),
    # declined answers that could raise the tier leave it open
    pytest.param(cssrs(wish=DECLINED), None, CssrsTier.NONE, id="wish-declined"),
    pytest.param(
        cssrs(thoughts=YES, method=YES, intent=DECLINED, plan=NO),
        None,
        CssrsTier.MODERATE,
        id="intent-declined-after-method",
    ),
    pytest.param(
        cssrs(lifetime=YES, past_3_months=DECLINED),
        None,
        CssrsTier.MODERATE,
        id="past-3-months-declined",
    ),
    pytest.param(
        cssrs(wish=YES, lifetime=DECLINED),
        None,
        CssrsTier.LOW,
        id="lifetime-behavior-declined",
    ),
    pytest.param(
        cssrs(wish=YES, thoughts=DECLINED),
        None,
        CssrsTier.LOW,
        id="thoughts-declined-follow-ups-not-asked",
    ),
    pytest.param(
        cssrs(thoughts=DECLINED, lifetime=YES, past_3_months=NO),
        None,
        CssrsTier.MODERATE,
        id="thoughts-declined-behavior-long-ago",
    ),
    # declined answers that cannot raise the tier leave it settled
    pytest.param(
        cssrs(DECLINED, YES, method=NO, intent=YES, plan=NO),
        CssrsTier.HIGH,
        CssrsTier.HIGH,
        id="wish-declined-intent-yes",
    ),
    pytest.param(
        cssrs(DECLINED, DECLINED, lifetime=YES, past_3_months=YES),
        CssrsTier.HIGH,
        CssrsTier.HIGH,
        id="ideation-declined-recent-behavior",
    ),
    pytest.param(
        cssrs(thoughts=YES, method=DECLINED, intent=NO, plan=YES),
        CssrsTier.HIGH,
        CssrsTier.HIGH,
        id="method-declined-plan-yes",
    ),
    pytest.param(
        cssrs(DECLINED, YES, method=YES, intent=NO, plan=NO),
        CssrsTier.MODERATE,
        CssrsTier.MODERATE,
        id="wish-declined-method-yes",
    ),
]


@pytest.mark.parametrize(("answers", "tier", "at_least"), CSSRS_EXAMPLES)
def test_cssrs_examples(answers: CssrsAnswers, tier: CssrsTier | None, at_least: CssrsTier) -> None:
    assert_cssrs_tier(score_cssrs(answers), tier, at_least)


# =================================================================================================
# 10. Questionnaire validation (ScreeningAnswers)
# =================================================================================================

VALID_INSTRUMENTS: Final[dict[str, Any]] = {
    "phq9": {"items": [1, 1, 1, 1, 1, 1, 1, 1, 0]},
    "phq2": {"items": [1, 1]},
    "gad7": {"items": [1, 1, 1, 1, 1, 1, 1]},
    "audit": {"items": [2, 1, 0, 0, 0, 0, 0, 0, 2, 4]},
    "audit_c": {"items": [2, 1, 0]},
    "dast10": {"items": [False] * 10},
    "cssrs": {
        "wish_to_be_dead": False,
        "non_specific_active_thoughts": False,
        "behavior_lifetime": False,
    },
    "pc_ptsd5": {"trauma_exposure": True, "items": [True, False, False, False, False]},
    "scoff": {"items": [False] * 5},
    "ciwa_ar": {"total": 8},
    "cows": {"total": 6},
    "crafft": {"days_alcohol": 0, "days_cannabis": 0, "days_other": 0, "items": [False]},
    "asq": {"items": [False] * 4},
}

ITEM_INSTRUMENTS: Final = [
    pytest.param("phq9", PHQ9, id="PHQ-9"),
    pytest.param("phq2", PHQ2, id="PHQ-2"),
    pytest.param("gad7", GAD7, id="GAD-7"),
    pytest.param("audit", AUDIT, id="AUDIT"),
    pytest.param("audit_c", AUDIT_C, id="AUDIT-C"),
    pytest.param("dast10", DAST10, id="DAST-10"),
    pytest.param("scoff", SCOFF, id="SCOFF"),
    pytest.param("pc_ptsd5", PC_PTSD5, id="PC-PTSD-5"),
]
ORDINAL_KEYS: Final = [
    pytest.param(key, p, id=str(p))
    for key, p in zip(("phq9", "phq2", "gad7", "audit", "audit_c"), ORDINAL, strict=True)
]
YES_NO_KEYS: Final = [
    pytest.param(key, p, id=str(p))
    for key, p in zip(("dast10", "scoff", "pc_ptsd5"), YES_NO, strict=True)
]


def instrument_answers(key: str, items: list[Any]) -> dict[str, Any]:
    if key == "pc_ptsd5":
        return {key: {"trauma_exposure": True, "items": items}}
    return {key: {"items": items}}


def validation_error(payload: dict[str, Any]) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        ScreeningAnswers.model_validate(payload)
    return caught.value


def test_every_instrument_at_once_is_valid() -> None:
    answers = ScreeningAnswers.model_validate(answers_with(VALID_INSTRUMENTS))
    assert answers.instruments.phq9 is not None


@pytest.mark.parametrize(("key", "published"), ITEM_INSTRUMENTS)
@pytest.mark.parametrize("delta", [-1, 1])
def test_wrong_item_count_names_the_instrument(key: str, published: Published, delta: int) -> None:
    count = published.item_count + delta
    filler: Any = False if published.kind is AnswerKind.YES_NO else 0
    error = validation_error(answers_with(instrument_answers(key, [filler] * count)))
    assert f"{published.title} has {published.item_count} items; {count} were given" in str(error)


def test_empty_item_list_is_rejected() -> None:
    error = validation_error(answers_with({"dast10": {"items": []}}))
    assert "DAST-10 has 10 items" in str(error)


OUT_OF_RANGE: Final = [
    pytest.param(PHQ9, 4, 4, id="PHQ-9 item 4 = 4"),
    pytest.param(PHQ9, 1, -1, id="PHQ-9 item 1 = -1"),
    pytest.param(PHQ9, 9, 4, id="PHQ-9 item 9 = 4"),
    pytest.param(PHQ2, 2, 4, id="PHQ-2 item 2 = 4"),
    pytest.param(GAD7, 7, 4, id="GAD-7 item 7 = 4"),
    pytest.param(AUDIT, 1, 5, id="AUDIT item 1 = 5"),
    pytest.param(AUDIT, 8, 5, id="AUDIT item 8 = 5"),
    pytest.param(AUDIT, 9, 1, id="AUDIT item 9 = 1"),
    pytest.param(AUDIT, 9, 3, id="AUDIT item 9 = 3"),
    pytest.param(AUDIT, 10, 1, id="AUDIT item 10 = 1"),
    pytest.param(AUDIT, 10, 5, id="AUDIT item 10 = 5"),
    pytest.param(AUDIT_C, 3, 5, id="AUDIT-C item 3 = 5"),
    pytest.param(AUDIT_C, 2, -1, id="AUDIT-C item 2 = -1"),
]


@pytest.mark.parametrize(("published", "number", "value"), OUT_OF_RANGE)
def test_out_of_range_item_names_the_instrument_and_item(
    published: Published, number: int, value: int
) -> None:
    key = str(published.instrument)
    items: list[Any] = [0] * published.item_count
    items[number - 1] = value
    error = validation_error(answers_with({key: {"items": items}}))
    assert f"{published.title} item {number} must be one of" in str(error)


@pytest.mark.parametrize("value", [0, 2, 4])
def test_audit_items_9_and_10_accept_0_2_and_4(value: int) -> None:
    items = [0] * 8 + [value, value]
    answers = ScreeningAnswers.model_validate(answers_with({"audit": {"items": items}}))
    assert answers.instruments.audit is not None
    assert answers.instruments.audit.items == items


@pytest.mark.parametrize(("key", "published"), ORDINAL_KEYS)
@pytest.mark.parametrize(
    "value",
    [True, False, 1.0, "1", "yes", "Declined", "DECLINED", " declined", "", None],
    ids=repr,
)
def test_ordinal_items_reject_booleans_and_other_strings(
    key: str, published: Published, value: object
) -> None:
    """True is not 1 and False is not 0; the only string accepted is "declined"."""
    items: list[Any] = [0] * published.item_count
    items[1] = value
    error = validation_error(answers_with({key: {"items": items}}))
    (problem,) = error.errors()
    assert problem["loc"] == ("instruments", key, "items")
    assert problem["msg"].startswith(f"{published.title} item 2 must be one of")


@pytest.mark.parametrize(("key", "published"), YES_NO_KEYS)
@pytest.mark.parametrize("value", [1, 0, 1.0, "yes", "no", "true", "Declined", None], ids=repr)
def test_yes_no_items_reject_numbers_and_other_strings(
    key: str, published: Published, value: object
) -> None:
    items: list[Any] = [False] * published.item_count
    items[1] = value
    error = validation_error(answers_with(instrument_answers(key, items)))
    (problem,) = error.errors()
    assert problem["loc"] == ("instruments", key, "items")
    assert problem["msg"] == f'{published.title} item 2 must be true, false or "declined"'


@pytest.mark.parametrize(("key", "published"), ITEM_INSTRUMENTS)
def test_declined_is_accepted_for_any_item(key: str, published: Published) -> None:
    filler: Any = False if published.kind is AnswerKind.YES_NO else 0
    for index in range(published.item_count):
        items: list[Any] = [filler] * published.item_count
        items[index] = DECLINED
        answers = ScreeningAnswers.model_validate(answers_with(instrument_answers(key, items)))
        given_items = getattr(answers.instruments, key).items
        assert given_items[index] == DECLINED


def test_declined_is_accepted_for_every_item_at_once() -> None:
    instruments: dict[str, Any] = {
        key: (
            {"items": [DECLINED] * p.item_count}
            if key != "pc_ptsd5"
            else {"trauma_exposure": True, "items": [DECLINED] * 5}
        )
        for key, p in (
            ("phq9", PHQ9),
            ("phq2", PHQ2),
            ("gad7", GAD7),
            ("audit", AUDIT),
            ("audit_c", AUDIT_C),
            ("dast10", DAST10),
            ("scoff", SCOFF),
            ("pc_ptsd5", PC_PTSD5),
        )
    }
    instruments["cssrs"] = {
        "wish_to_be_dead": DECLINED,
        "non_specific_active_thoughts": DECLINED,
        "behavior_lifetime": DECLINED,
    }
    scores = score_answers(ScreeningAnswers.model_validate(answers_with(instruments)))
    for instrument in (InstrumentId.PHQ9, InstrumentId.AUDIT, InstrumentId.DAST10):
        assert scores[instrument].total is None
    assert scores[InstrumentId.CSSRS].tier is None


@pytest.mark.parametrize(
    "cssrs_answers",
    [
        {
            "wish_to_be_dead": DECLINED,
            "non_specific_active_thoughts": DECLINED,
            "behavior_lifetime": DECLINED,
        },
        {
            "wish_to_be_dead": True,
            "non_specific_active_thoughts": True,
            "method": DECLINED,
            "intent": DECLINED,
            "plan_with_intent": DECLINED,
            "behavior_lifetime": True,
            "behavior_past_3_months": DECLINED,
        },
    ],
    ids=["gates-declined", "follow-ups-declined"],
)
def test_cssrs_accepts_declined(cssrs_answers: dict[str, Any]) -> None:
    ScreeningAnswers.model_validate(answers_with({"cssrs": cssrs_answers}))


def test_pc_ptsd5_accepts_declined_exposure() -> None:
    ScreeningAnswers.model_validate(answers_with({"pc_ptsd5": {"trauma_exposure": DECLINED}}))


CSSRS_SKIP_LOGIC_VIOLATIONS: Final = [
    pytest.param(
        {
            "wish_to_be_dead": True,
            "non_specific_active_thoughts": False,
            "method": False,
            "behavior_lifetime": False,
        },
        id="method-without-thoughts",
    ),
    pytest.param(
        {
            "wish_to_be_dead": True,
            "non_specific_active_thoughts": False,
            "intent": True,
            "behavior_lifetime": False,
        },
        id="intent-without-thoughts",
    ),
    pytest.param(
        {
            "wish_to_be_dead": True,
            "non_specific_active_thoughts": False,
            "plan_with_intent": DECLINED,
            "behavior_lifetime": False,
        },
        id="plan-declined-without-thoughts",
    ),
    pytest.param(
        {
            "wish_to_be_dead": True,
            "non_specific_active_thoughts": True,
            "method": True,
            "intent": False,
            "behavior_lifetime": False,
        },
        id="plan-missing-after-thoughts",
    ),
    pytest.param(
        {"wish_to_be_dead": True, "non_specific_active_thoughts": True, "behavior_lifetime": False},
        id="follow-ups-missing-after-thoughts",
    ),
    pytest.param(
        {
            "wish_to_be_dead": False,
            "non_specific_active_thoughts": False,
            "behavior_lifetime": True,
        },
        id="past-3-months-missing-after-behavior",
    ),
    pytest.param(
        {
            "wish_to_be_dead": False,
            "non_specific_active_thoughts": False,
            "behavior_lifetime": False,
            "behavior_past_3_months": False,
        },
        id="past-3-months-without-behavior",
    ),
    pytest.param(
        {"non_specific_active_thoughts": False, "behavior_lifetime": False},
        id="wish-missing",
    ),
    pytest.param(
        {"wish_to_be_dead": False, "non_specific_active_thoughts": False},
        id="lifetime-behavior-missing",
    ),
]


@pytest.mark.parametrize("cssrs_answers", CSSRS_SKIP_LOGIC_VIOLATIONS)
def test_cssrs_skip_logic_violations_are_rejected(cssrs_answers: dict[str, Any]) -> None:
    error = validation_error(answers_with({"cssrs": cssrs_answers}))
    assert all(e["loc"][:2] == ("instruments", "cssrs") for e in error.errors())


@pytest.mark.parametrize(
    "value",
    [1, 0, "yes", None],
    ids=repr,
)
def test_cssrs_answers_must_be_true_false_or_declined(value: object) -> None:
    validation_error(
        answers_with(
            {
                "cssrs": {
                    "wish_to_be_dead": value,
                    "non_specific_active_thoughts": False,
                    "behavior_lifetime": False,
                }
            }
        )
    )


def test_pc_ptsd5_items_without_trauma_exposure_are_rejected() -> None:
    error = validation_error(
        answers_with({"pc_ptsd5": {"trauma_exposure": False, "items": [False] * 5}})
    )
    assert "PC-PTSD-5" in str(error)


@pytest.mark.parametrize(
    ("key", "total"),
    [
        ("ciwa_ar", -1),
        ("ciwa_ar", 68),
        ("ciwa_ar", True),
        ("ciwa_ar", 8.5),
        ("cows", -1),
        ("cows", 49),
        ("cows", "6"),
    ],
    ids=repr,
)
def test_clinician_totals_out_of_range_or_wrong_type_are_rejected(key: str, total: object) -> None:
    error = validation_error(answers_with({key: {"total": total}}))
    assert all(e["loc"][:3] == ("instruments", key, "total") for e in error.errors())


@pytest.mark.parametrize(
    ("key", "total"), [("ciwa_ar", 0), ("ciwa_ar", 67), ("cows", 0), ("cows", 48)]
)
def test_clinician_totals_at_the_range_ends_are_accepted(key: str, total: int) -> None:
    ScreeningAnswers.model_validate(answers_with({key: {"total": total}}))


UNKNOWN_FIELDS: Final = [
    pytest.param(answers_with({}, nickname="x"), ("nickname",), id="top-level"),
    pytest.param(
        {**BASE_ANSWERS, "respondent": {**BASE_ANSWERS["respondent"], "name": "x"}},
        ("respondent", "name"),
        id="respondent",
    ),
    pytest.param(
        answers_with({"phq10": {"items": [0]}}), ("instruments", "phq10"), id="instruments"
    ),
    pytest.param(
        answers_with({"phq9": {"items": [0] * 9, "total": 0}}),
        ("instruments", "phq9", "total"),
        id="phq9",
    ),
    pytest.param(
        answers_with({"dast10": {"items": [False] * 10, "reverse": [3]}}),
        ("instruments", "dast10", "reverse"),
        id="dast10",
    ),
    pytest.param(
        answers_with({"cssrs": {**VALID_INSTRUMENTS["cssrs"], "q7": False}}),
        ("instruments", "cssrs", "q7"),
        id="cssrs",
    ),
    pytest.param(
        answers_with({"pc_ptsd5": {"trauma_exposure": False, "total": 0}}),
        ("instruments", "pc_ptsd5", "total"),
        id="pc_ptsd5",
    ),
    pytest.param(
        answers_with({"ciwa_ar": {"total": 5, "items": [1] * 10}}),
        ("instruments", "ciwa_ar", "items"),
        id="ciwa_ar",
    ),
]


@pytest.mark.parametrize(("payload", "loc"), UNKNOWN_FIELDS)
def test_unknown_fields_are_rejected(payload: dict[str, Any], loc: tuple[str, ...]) -> None:
    errors = validation_error(payload).errors()
    assert [(e["type"], e["loc"]) for e in errors] == [("extra_forbidden", loc)]


# =================================================================================================
# 11. score_answers and LOINC codes
# =================================================================================================


def test_score_answers_scores_every_given_instrument_in_instrument_order() -> None:
    scores = score_answers(ScreeningAnswers.model_validate(answers_with(VALID_INSTRUMENTS)))
    assert list(scores) == list(InstrumentId)


def test_score_answers_scores_only_the_given_instruments() -> None:
    answers = ScreeningAnswers.model_validate(answers_with({"gad7": VALID_INSTRUMENTS["gad7"]}))
    assert list(score_answers(answers)) == [InstrumentId.GAD7]


def test_score_answers_uses_the_policies_it_is_given() -> None:
    policies = {
        **DEFAULT_POLICIES,
        InstrumentId.GAD7: InstrumentPolicy(bands=(Band("any", 0, 21),), positive_at=7),
    }
    answers = ScreeningAnswers.model_validate(answers_with({"gad7": VALID_INSTRUMENTS["gad7"]}))
    score = score_answers(answers, policies)[InstrumentId.GAD7]
    assert (score.total, score.band, score.positive, score.cut_off) == (7, "any", True, 7)


LOINC: Final = [
    pytest.param(InstrumentId.PHQ9, "44249-1", "44261-6", id="PHQ-9"),
    pytest.param(InstrumentId.PHQ2, "55757-9", "55758-7", id="PHQ-2"),
    pytest.param(InstrumentId.GAD7, "69737-5", "70274-6", id="GAD-7"),
    pytest.param(InstrumentId.AUDIT, "72110-0", "75624-7", id="AUDIT"),
    pytest.param(InstrumentId.AUDIT_C, "72109-2", "75626-2", id="AUDIT-C"),
    pytest.param(InstrumentId.DAST10, "82666-9", "82667-7", id="DAST-10"),
    pytest.param(InstrumentId.CSSRS, CSSRS_LOINC_PANEL, None, id="C-SSRS"),
    pytest.param(InstrumentId.PC_PTSD5, "102010-6", None, id="PC-PTSD-5"),
    pytest.param(InstrumentId.SCOFF, None, None, id="SCOFF"),  # no LOINC or SNOMED code
    pytest.param(InstrumentId.CIWA_AR, None, None, id="CIWA-Ar"),  # no verified total code
    pytest.param(InstrumentId.COWS, None, None, id="COWS"),  # not verified
]


@pytest.mark.parametrize(("instrument", "panel", "total"), LOINC)
def test_loinc_codes(instrument: InstrumentId, panel: str | None, total: str | None) -> None:
    scores = score_answers(ScreeningAnswers.model_validate(answers_with(VALID_INSTRUMENTS)))
    assert (scores[instrument].loinc_panel, scores[instrument].loinc_total) == (panel, total)
    assert (SPECS[instrument].loinc_panel, SPECS[instrument].loinc_total) == (panel, total)


@pytest.mark.parametrize("published", ALL_SCORED, ids=str)
def test_published_table_loinc_codes_match(published: Published) -> None:
    spec = SPECS[published.instrument]
    assert (spec.loinc_panel, spec.loinc_total) == (published.loinc_panel, published.loinc_total)


# =================================================================================================
# 12. CRAFFT 2.1 and ASQ (adolescents)
# =================================================================================================

CRAFFT_POLICY: Final = DEFAULT_POLICIES[InstrumentId.CRAFFT]
yes_no_declined = st.sampled_from([True, False, DECLINED])


def test_crafft_and_asq_specs_follow_the_published_instruments() -> None:
    crafft, asq = SPECS[InstrumentId.CRAFFT], SPECS[InstrumentId.ASQ]
    assert (crafft.item_count, crafft.total_range, crafft.default_positive_at) == (6, (0, 6), 2)
    assert crafft.loinc_panel is None  # no LOINC panel is confirmed
    assert (asq.kind, asq.item_count, asq.loinc_panel) == (AnswerKind.CATEGORICAL, 4, None)


@pytest.mark.parametrize(
    ("items", "total", "positive"),
    [
        ([False] * 6, 0, False),
        ([True] + [False] * 5, 1, False),
        ([True, True] + [False] * 4, 2, True),  # Knight 2002: 2 or more is positive
        ([True] * 6, 6, True),
        ([False], 0, False),  # CAR alone, after no use in Part A
        ([True], 1, False),
    ],
)
def test_crafft_total_is_the_yes_answers_of_part_b(
    items: list[YesNoAnswer], total: int, positive: bool
) -> None:
    score = score_crafft(items, CRAFFT_POLICY)
    assert (score.total, score.positive, score.cut_off) == (total, positive, 2)
    assert ("car_positive" in score.flags) is (items[0] is True)


@given(
    st.lists(yes_no_declined, min_size=6, max_size=6)
    | st.lists(yes_no_declined, max_size=1, min_size=1)
)
def test_crafft_total_stays_in_range_and_declined_keeps_the_lower_bound(
    items: list[YesNoAnswer],
) -> None:
    score = score_crafft(items, CRAFFT_POLICY)
    yes = sum(1 for item in items if item is True)
    declined = sum(1 for item in items if item == DECLINED)
    assert score.total_min == yes
    assert score.total_max == yes + declined
    assert 0 <= score.total_min <= score.total_max <= 6
    assert (score.total is None) is (declined > 0)
    if score.positive is not None:  # settled: every total in the range agrees
        assert score.positive is (score.total_min >= 2)
    else:
        assert score.total_min < 2 <= score.total_max


@given(
    st.lists(yes_no_declined, min_size=4, max_size=4),
    st.sampled_from([None, True, False, DECLINED]),
)
def test_asq_acute_implies_positive_and_declined_answers_leave_it_open(
    items: list[YesNoAnswer], acute: YesNoAnswer | None
) -> None:
    if acute is not None and True not in items and DECLINED not in items:
        return  # item 5 is asked only after a yes (or a declined item)
    positive, is_acute = asq_result(items, acute)
    score = score_asq(items, acute)
    assert score.positive is positive
    if True in items or acute is True:  # item 5 yes is an acute positive
        assert positive is True
    elif DECLINED in items:
        assert positive is None
    else:
        assert (positive, is_acute) == (False, False)
    if is_acute is True:
        assert positive is not False
        assert score.flags == ("acute",)
    if score.band is not None:  # settled: negative exactly when the screen is
        assert (score.band == "negative") is (positive is False)
    assert (5 in score.declined_items) is (acute == DECLINED)


@pytest.mark.parametrize(
    ("items", "acute", "band"),
    [
        ([False] * 4, None, "negative"),
        ([True, False, False, False], False, "non_acute_positive"),
        ([False, False, False, True], True, "acute_positive"),
        ([True, False, False, False], None, None),  # item 5 not asked: open
        ([True, False, False, False], DECLINED, None),
        ([DECLINED, False, False, False], False, None),  # positive itself open
        ([DECLINED, False, False, False], True, "acute_positive"),  # item 5 yes settles it
    ],
)
def test_asq_result_follows_the_nimh_pathway(
    items: list[YesNoAnswer], acute: YesNoAnswer | None, band: str | None
) -> None:
    assert score_asq(items, acute).band == band


@pytest.mark.parametrize(
    "crafft",
    [
        {"days_alcohol": 0, "days_cannabis": 0, "days_other": 0, "items": [True]},
        {"days_alcohol": 0, "days_cannabis": 0, "days_other": 0, "items": [False]},
        {"days_alcohol": 0, "items": [False] * 6},  # asked in full anyway
        {"items": [False, True, DECLINED, False, False, False]},
    ],
)
def test_crafft_answers_accepted(crafft: dict[str, Any]) -> None:
    ScreeningAnswers.model_validate(answers_with({"crafft": crafft}))


@pytest.mark.parametrize(
    ("crafft", "fragment"),
    [
        ({"days_alcohol": 1, "items": [True]}, "only the CAR item"),
        ({"items": [True]}, "only the CAR item"),
        ({"days_other": 0, "items": [False] * 2}, "6 items"),
        ({"days_alcohol": 366, "items": [False] * 6}, "less than or equal to 365"),
    ],
)
def test_crafft_answers_refused(crafft: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        ScreeningAnswers.model_validate(answers_with({"crafft": crafft}))


def test_asq_item_5_only_after_a_yes_or_a_declined_item() -> None:
    for items in ([True, False, False, False], [DECLINED, False, False, False]):
        ScreeningAnswers.model_validate(answers_with({"asq": {"items": items, "acute": False}}))
    with pytest.raises(ValidationError, match="item 5"):
        ScreeningAnswers.model_validate(
            answers_with({"asq": {"items": [False] * 4, "acute": False}})
        )
