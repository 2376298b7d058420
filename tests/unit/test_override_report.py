"""The override report's figures (app/rulesets/overrides.py), pure: they add up, every figure
shown rests on at least k people, none withheld follows from shown ones by subtraction,
raising k never reveals more, and shown counts are the exact ones rounded down."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from app.rulesets.overrides import (
    DecidedScreening,
    Group,
    OverrideFigures,
    agreement,
    granularity_for,
    override_figures,
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
    variance_reasons=st.lists(st.sampled_from(REASONS), max_size=2).map(tuple),
    fired_rules=st.lists(st.sampled_from(RULES), max_size=4).map(tuple),
    # Few people, so that many screenings share one.
    person=st.integers(min_value=0, max_value=25).map(str),
)
rows_of_screenings = st.lists(decided_screenings, max_size=60)
ks = st.integers(min_value=1, max_value=15)


def people(rows: Iterable[DecidedScreening]) -> int:
    return len({row.person for row in rows})


def enough(rows: Sequence[DecidedScreening], k: int) -> bool:
    """What a figure may rest on: no screening, or at least k people."""
    return not rows or people(rows) >= k


def recommended(rows: Sequence[DecidedScreening]) -> list[DecidedScreening]:
    return [row for row in rows if row.recommended_level is not None]


def overrides_of(rows: Sequence[DecidedScreening]) -> list[DecidedScreening]:
    return [row for row in recommended(rows) if not row.agreed]


def shown_figures(figures: OverrideFigures) -> dict[str, Any]:
    """Every figure shown, by a name that is the same whatever k."""
    shown: dict[str, Any] = {
        "decided": figures.decided,
        "without_recommendation": figures.without_recommendation,
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


def relations(
    rows: Sequence[DecidedScreening], figures: OverrideFigures
) -> list[tuple[int | None, list[tuple[int | None, list[DecidedScreening]]]]]:
    """Each shown-or-not total with its parts (shown count, the screenings it counts) that
    add up to it: what a reader could subtract."""
    with_level = recommended(rows)
    overrides = overrides_of(rows)
    top = (
        figures.decided,
        [
            (figures.without_recommendation, [r for r in rows if r.recommended_level is None]),
            (figures.agreed, [r for r in with_level if r.agreed]),
            (figures.overridden, overrides),
        ],
    )
    levels = (
        figures.overridden,
        [
            (
                level.count,
                [
                    r
                    for r in overrides
                    if (r.recommended_level, r.chosen_level)
                    == (level.recommended_level, level.chosen_level)
                ],
            )
            for level in figures.chosen_instead
        ],
    )
    found = [top, levels]
    if all(len(set(r.variance_reasons)) <= 1 for r in overrides):  # the reasons split them
        reasons = [
            (reason.count, [r for r in overrides if reason.reason in r.variance_reasons])
            for reason in figures.reasons
        ]
        found.append(
            (
                figures.overridden,
                [*reasons, (None, [r for r in overrides if not r.variance_reasons])],
            )
        )
    return found


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
    assert figures.granularity == 1
    assert figures.decided == len(rows)
    assert figures.agreed is not None
    assert figures.overridden is not None
    assert figures.without_recommendation is not None
    assert figures.without_recommendation + figures.agreed + figures.overridden == len(rows)
    assert figures.agreed == sum(1 for row in recommended(rows) if row.agreed)
    assert sum(level.count or 0 for level in figures.chosen_instead) == figures.overridden
    for reason in figures.reasons:
        assert reason.count is not None
        assert reason.count <= figures.overridden
    for rule in figures.rules:
        assert not rule.suppressed
        fired = sum(1 for row in recommended(rows) if rule.rule_id in row.fired_rules)
        assert rule.fired_in_decided == fired
        assert rule.fired_in_overridden is not None
        assert rule.fired_in_overridden <= rule.fired_in_decided
    fired_anywhere = {r for row in recommended(rows) for r in row.fired_rules}
    assert {rule.rule_id for rule in figures.rules} == fired_anywhere


@given(rows_of_screenings, ks)
def test_every_figure_shown_rests_on_at_least_k_people(
    rows: list[DecidedScreening], k: int
) -> None:
    figures = override_figures(rows, k, granularity=1)

    if not enough(rows, k) or not rows:
        assert figures.withheld
        assert shown_figures(figures) == {}
        return
    for _total, parts in relations(rows, figures):
        for count, counted in parts:
            assert count is None or count == len(counted)
            assert count is None or enough(counted, k)
    assert (figures.agreed is None or figures.overridden is None) == figures.suppressed
    with_level = recommended(rows)
    for rule in figures.rules:
        fired = [r for r in with_level if rule.rule_id in r.fired_rules]
        if rule.fired_in_decided is not None:
            assert enough(fired, k)
            assert enough([r for r in with_level if r not in fired], k)
        if rule.override_rate is not None:
            for in_rule in (True, False):
                for agreed in (True, False):
                    cell = [
                        r
                        for r in with_level
                        if (rule.rule_id in r.fired_rules) == in_rule and r.agreed == agreed
                    ]
                    assert enough(cell, k)
        assert rule.suppressed == (rule.override_rate is None)


@given(rows_of_screenings, ks)
def test_no_withheld_figure_follows_from_shown_ones_by_subtraction(
    rows: list[DecidedScreening], k: int
) -> None:
    figures = override_figures(rows, k, granularity=1)

    for total, parts in relations(rows, figures):
        hidden = [r for count, counted in parts if count is None for r in counted]
        if total is not None:
            # total - the shown parts: none, or a group of at least k people.
            assert enough(hidden, k)
        elif parts:
            # A withheld total is not the sum of shown parts either.
            assert hidden or not any(counted for _, counted in parts)
    if figures.overridden is None:
        # 50 decided, 48 overridden: "clinical_judgment: 48" would give the 2 agreed away.
        assert all(reason.count is None for reason in figures.reasons)
        assert all(level.count is None for level in figures.chosen_instead)
        assert all(rule.fired_in_overridden is None for rule in figures.rules)


@given(rows_of_screenings, ks, ks)
def test_raising_k_never_reveals_more(rows: list[DecidedScreening], k: int, other: int) -> None:
    lower, higher = sorted((k, other))

    shown_lower = shown_figures(override_figures(rows, lower, granularity=1))
    shown_higher = shown_figures(override_figures(rows, higher, granularity=1))

    assert shown_higher.items() <= shown_lower.items()


@given(rows_of_screenings, ks)
def test_shown_counts_are_the_exact_ones_rounded_down(rows: list[DecidedScreening], k: int) -> None:
    figures = override_figures(rows, k)
    exact = override_figures(rows, k, granularity=1)
    g = granularity_for(k)

    assert figures.granularity == g
    assert (g == 5) == (k >= 5)
    counts = ("decided", "without_recommendation", "agreed", "overridden")
    for name in counts:
        value, exact_value = getattr(figures, name), getattr(exact, name)
        assert value == (None if exact_value is None else exact_value // g * g)
    for level, exact_level in zip(figures.chosen_instead, exact.chosen_instead, strict=True):
        assert level.count is None or level.count % g == 0
        assert (level.count is None) == (exact_level.count is None)
    for rule in figures.rules:
        for count in (rule.fired_in_decided, rule.fired_in_overridden):
            assert count is None or count % g == 0
    # Rates are of the shown counts: they tell nothing the counts do not.
    if figures.agreed is not None and figures.overridden is not None:
        both = figures.agreed + figures.overridden
        expected = round(figures.overridden / both, 2) if both else None
        assert figures.override_rate == expected


def screening(
    person: str,
    recommended_level: str | None = "intensive_outpatient",
    final: str = "intensive_outpatient",
) -> DecidedScreening:
    return DecidedScreening("decided", recommended_level, final, (), ("place.a",), person)


def test_a_person_screened_many_times_counts_once() -> None:
    # 12 screenings of 4 people: below k = 5 people, whatever the number of screenings.
    rows = [screening(str(n % 4)) for n in range(12)]

    assert override_figures(rows, 5).withheld
    assert not override_figures([*rows, screening("4")], 5).withheld


def test_decisions_without_a_recommendation_are_no_overrides() -> None:
    agreed = [screening(f"a{n}") for n in range(6)]
    without = [screening(f"w{n}", None, "outpatient") for n in range(5)]

    figures = override_figures(agreed + without, 5)

    assert (figures.decided, figures.without_recommendation) == (10, 5)
    assert (figures.agreed, figures.overridden, figures.override_rate) == (5, 0, 0.0)
    assert figures.chosen_instead == ()
    [rule] = figures.rules
    assert rule.fired_in_decided == 5  # the 6 with a recommendation, rounded down


def test_a_few_without_a_recommendation_withhold_a_part_beside_them() -> None:
    agreed = [screening(f"a{n}") for n in range(10)]
    overridden = [screening(f"o{n}", final="outpatient") for n in range(20)]
    without = [screening(f"w{n}", None, "outpatient") for n in range(2)]

    figures = override_figures(agreed + overridden + without, 5)

    # 32 - 20 would give away the 12 = 10 agreed + 2 without: both withheld.
    assert (figures.without_recommendation, figures.agreed, figures.overridden) == (
        None,
        None,
        20,
    )
    assert figures.suppressed
    assert all(level.count is None for level in figures.chosen_instead)


@given(
    st.integers(min_value=0, max_value=40),
    st.integers(min_value=0, max_value=40),
    st.integers(min_value=0, max_value=40),
    st.integers(min_value=0, max_value=40),
    ks,
)
def test_agreement_shows_counts_of_at_least_k_or_none(
    decided: int, stored: int, simulated: int, excluded: int, k: int
) -> None:
    stored, simulated = min(stored, decided), min(simulated, decided)

    found = agreement(decided, stored, simulated, excluded, k)
    exact = agreement(decided, stored, simulated, excluded, 1)

    assert exact.excluded_unknown_level == excluded
    if decided < k:
        assert (found.decided, found.agreed_stored, found.agreed_simulated) == (None, None, None)
    for count, part in ((found.agreed_stored, stored), (found.agreed_simulated, simulated)):
        if count is not None:
            assert part == 0 or part >= k
            assert decided - part == 0 or decided - part >= k
            assert count == part // found.granularity * found.granularity
    if found.excluded_unknown_level is not None:
        assert excluded == 0 or excluded >= k
    assert found.suppressed == (
        None in (found.decided, found.agreed_stored, found.agreed_simulated)
    )


def test_a_split_withholds_the_smallest_shown_count_with_a_lone_small_one() -> None:
    def groups(**counts: int) -> dict[str, Group]:
        return {
            name: Group(count, frozenset(f"{name}{n}" for n in range(count)))
            for name, count in counts.items()
        }

    assert split(groups(a=6, b=1), 5) == {"a": None, "b": None}
    assert split(groups(a=6, b=1, c=9), 5) == {"a": None, "b": None, "c": 9}
    assert split(groups(a=6, b=2, c=3), 5) == {"a": 6, "b": None, "c": None}
    assert split(groups(a=6, b=0), 5) == {"a": 6, "b": 0}
    # Two withheld groups of 6 screenings of the same two people are still two people.
    same = {
        "a": Group(6, frozenset("uvwxyz")),
        "b": Group(3, frozenset("pq")),
        "c": Group(3, frozenset("pq")),
    }
    assert split(same, 5) == {"a": None, "b": None, "c": None}


def test_reasons_and_levels_are_withheld_with_the_overridden_count() -> None:
    # 50 decided, 48 overridden: agreed (2) is withheld, so is overridden (50 - 48 = 2), and
    # "clinical_judgment: 48" or "to partial hospitalization: 48" would give both away.
    agreed = [screening(f"a{n}") for n in range(2)]
    overridden = [
        DecidedScreening(
            "decided",
            "intensive_outpatient",
            "partial_hospitalization",
            ("clinical_judgment",),
            ("place.a",),
            f"o{n}",
        )
        for n in range(48)
    ]

    figures = override_figures(agreed + overridden, 5)

    assert (figures.decided, figures.agreed, figures.overridden) == (50, None, None)
    assert [(r.reason, r.count, r.suppressed) for r in figures.reasons] == [
        ("clinical_judgment", None, True)
    ]
    assert [(c.chosen_level, c.count) for c in figures.chosen_instead] == [
        ("partial_hospitalization", None)
    ]
    [rule] = figures.rules
    assert (rule.fired_in_decided, rule.fired_in_overridden, rule.suppressed) == (50, None, True)
