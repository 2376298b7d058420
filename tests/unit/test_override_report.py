"""The override report's figures (app/rulesets/overrides.py), pure: they add up, every figure
shown rests on at least k screenings (nor gives away one that does not), and raising k never
reveals more."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from app.rulesets.overrides import (
    DecidedScreening,
    OverrideFigures,
    agreement,
    override_figures,
    share,
    split,
)

LEVELS = ("intensive_outpatient", "partial_hospitalization", "outpatient")
RULES = ("place.a", "place.b", "psych.c", "safety.d")
REASONS = ("waitlist", "clinical_judgment", "other")

decided_screenings = st.builds(
    DecidedScreening,
    outcome=st.sampled_from(("decided", "accepted", "overridden")),
    recommended_level=st.sampled_from((*LEVELS, None)),
    final_level=st.sampled_from((*LEVELS, None)),
    variance_reasons=st.lists(st.sampled_from(REASONS), max_size=3).map(tuple),
    fired_rules=st.lists(st.sampled_from(RULES), max_size=4).map(tuple),
)
rows_of_screenings = st.lists(decided_screenings, max_size=60)
ks = st.integers(min_value=1, max_value=15)


def fine(count: int | None, k: int) -> bool:
    """A shown count rests on none or at least k screenings."""
    return count is None or count == 0 or count >= k


def rule_table(rows: list[DecidedScreening], rule_id: str) -> tuple[int, int, int, int]:
    """Fired and overridden, fired and agreed, overridden without it, agreed without it."""
    cells: Counter[tuple[bool, bool]] = Counter(
        (rule_id in row.fired_rules, row.agreed) for row in rows
    )
    return cells[(True, False)], cells[(True, True)], cells[(False, False)], cells[(False, True)]


def shown_figures(figures: OverrideFigures) -> dict[str, Any]:
    """Every figure shown, by a name that is the same whatever k."""
    shown: dict[str, Any] = {
        "decided": figures.decided,
        "agreed": figures.agreed,
        "overridden": figures.overridden,
        "agreement_rate": figures.agreement_rate,
        "override_rate": figures.override_rate,
    }
    for reason in figures.reasons:
        shown[f"reason {reason.reason}"] = reason.count
    for level in figures.chosen_instead:
        shown[f"level {level.recommended_level} {level.chosen_level}"] = level.count
    for rule in figures.rules:
        for name in ("fired_in_decided", "fired_in_overridden", "override_rate", "lift"):
            shown[f"{rule.rule_id} {name}"] = getattr(rule, name)
    return {name: value for name, value in shown.items() if value is not None}


@given(rows_of_screenings)
def test_with_k_of_one_every_figure_is_shown_and_they_add_up(
    rows: list[DecidedScreening],
) -> None:
    figures = override_figures(rows, 1)

    if not rows:
        assert figures.withheld
        return
    assert not figures.withheld
    assert not figures.suppressed
    assert figures.decided == len(rows)
    assert figures.agreed is not None
    assert figures.overridden is not None
    assert figures.agreed + figures.overridden == len(rows)
    assert figures.agreed == sum(1 for row in rows if row.agreed)
    assert sum(level.count or 0 for level in figures.chosen_instead) == figures.overridden
    for reason in figures.reasons:
        assert reason.count is not None
        assert reason.count <= figures.overridden
    for rule in figures.rules:
        assert not rule.suppressed
        assert rule.fired_in_decided == sum(1 for row in rows if rule.rule_id in row.fired_rules)
        assert rule.fired_in_overridden is not None
        assert rule.fired_in_overridden <= rule.fired_in_decided <= len(rows)
    assert {rule.rule_id for rule in figures.rules} == {r for row in rows for r in row.fired_rules}


@given(rows_of_screenings, ks)
def test_every_figure_shown_rests_on_at_least_k_screenings(
    rows: list[DecidedScreening], k: int
) -> None:
    figures = override_figures(rows, k)

    if len(rows) < k:
        assert figures.withheld
        assert shown_figures(figures) == {}
        return
    assert fine(figures.agreed, k)
    assert fine(figures.overridden, k)
    assert (figures.agreed is None) == (figures.overridden is None) == figures.suppressed
    overridden = sum(1 for row in rows if not row.agreed)
    for reason in figures.reasons:
        assert fine(reason.count, k)
        assert reason.suppressed == (reason.count is None)
    # Reasons split the shown overrides (with those giving none) the same way.
    overrides = [row for row in rows if not row.agreed]
    mentions = sum(len(set(row.variance_reasons)) or 1 for row in overrides)
    hidden_reasons = mentions - sum(reason.count or 0 for reason in figures.reasons)
    if figures.overridden is not None:
        assert hidden_reasons == 0 or hidden_reasons >= k
    # The withheld levels chosen instead add up to none or at least k: subtracting the shown
    # ones from the total reveals no smaller group (a withheld total shows none of them).
    levels = Counter((row.recommended_level, row.chosen_level) for row in rows if not row.agreed)
    hidden = sum(
        levels[(level.recommended_level, level.chosen_level)]
        for level in figures.chosen_instead
        if level.count is None
    )
    if figures.overridden is None:
        assert all(level.count is None for level in figures.chosen_instead)
    else:
        assert hidden == 0 or hidden >= k
    assert all(fine(level.count, k) for level in figures.chosen_instead)
    assert sum(levels.values()) == overridden
    for rule in figures.rules:
        assert fine(rule.fired_in_decided, k)
        if rule.fired_in_decided is not None:
            assert fine(len(rows) - rule.fired_in_decided, k)
        if rule.override_rate is not None:
            assert all(cell == 0 or cell >= k for cell in rule_table(rows, rule.rule_id))
        assert rule.suppressed == (rule.override_rate is None)


@given(rows_of_screenings, ks, ks)
def test_raising_k_never_reveals_more(rows: list[DecidedScreening], k: int, other: int) -> None:
    lower, higher = sorted((k, other))

    shown_lower = shown_figures(override_figures(rows, lower))
    shown_higher = shown_figures(override_figures(rows, higher))

    assert shown_higher.items() <= shown_lower.items()


@given(
    st.integers(min_value=0, max_value=40),
    st.integers(min_value=0, max_value=40),
    st.integers(min_value=0, max_value=40),
    ks,
)
def test_agreement_shows_counts_of_at_least_k_or_none(
    decided: int, stored: int, simulated: int, k: int
) -> None:
    stored, simulated = min(stored, decided), min(simulated, decided)

    found = agreement(decided, stored, simulated, k)

    if decided < k:
        assert (found.decided, found.agreed_stored, found.agreed_simulated) == (None, None, None)
    for count in (found.agreed_stored, found.agreed_simulated):
        assert fine(count, k)
        assert count is None or fine(decided - count, k)
    assert found.suppressed == (
        None in (found.decided, found.agreed_stored, found.agreed_simulated)
    )


def test_a_rate_needs_its_parts_shown() -> None:
    assert share(6, 12, 5) == 0.5
    assert share(0, 12, 5) == 0.0
    assert share(11, 12, 5) is None  # 12 - 11 = 1 screening would be given away
    assert share(4, 4, 5) is None


def test_a_split_withholds_the_smallest_shown_count_with_a_lone_small_one() -> None:
    assert split({"a": 6, "b": 1}, 7, 5) == {"a": None, "b": None}
    assert split({"a": 6, "b": 1, "c": 9}, 16, 5) == {"a": None, "b": None, "c": 9}
    assert split({"a": 6, "b": 2, "c": 3}, 11, 5) == {"a": 6, "b": None, "c": None}
    assert split({"a": 6, "b": 0}, 6, 5) == {"a": 6, "b": 0}
