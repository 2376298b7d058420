"""What clinicians' decisions teach about a rule-set version: how often its recommendations
were followed, why and to what they were overridden, and which rules fire in the screenings
whose recommendation was overridden. Pure: rows in, figures out.

**Who is counted.** Each screening counts once, with its latest decision. A decision on a
screening without a recommended level is no override: such screenings are counted apart
(``without_recommendation``) and left out of the agreement, the reasons, the levels chosen
instead and the rules' figures.

**Withheld figures.** A figure resting on fewer than ``min_count`` (k) people is withheld:
shown as null, its row kept and marked ``suppressed``. People, not screenings: a person
screened five times is one person (a screening without a person id counts as its own
person). A count is shown when it is 0 or rests on at least k people. Counts that split a
shown total are withheld together until what the withheld ones add up to is 0 or rests on at
least k people, so subtracting the shown ones from the total reveals no smaller group: the
decided screenings split into agreed, overridden and without a recommendation; the
overridden ones into the levels chosen instead, and into the reasons (with those giving
none). When the agreed and overridden counts are withheld, every figure that splits them
(reasons, levels, the rules' overridden counts and rates) is withheld too. A rule's figures
are shown only when every cell of its table (fired or not, overridden or not) is 0 or rests
on at least k people. Fewer than k people with a decision withhold the whole report. No
screening id, person id, comment or clinician is ever reported.

**Rounded counts.** Every count shown is rounded down to a multiple of the granularity (5
when k is at least 5, else 1), and every rate is computed from the rounded counts (two
decimals), so one more decision between two reports changes a shown figure only when it
crosses a multiple: comparing successive reports tells far less about the latest decisions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from app.rulesets.schemas import (
    LevelChosenInstead,
    OverrideReasonCount,
    OverrideReport,
    RuleOverrides,
)

# Decision outcomes: ``decided`` through the REST API (final level known), ``accepted`` and
# ``overridden`` from CDS Hooks feedback (an override's final level is not known).
ACCEPTED, OVERRIDDEN = "accepted", "overridden"
UNKNOWN_LEVEL = "unknown"


def granularity_for(k: int) -> int:
    """What shown counts are rounded down to a multiple of, for the smallest count ``k``."""
    return 5 if k >= 5 else 1


@dataclass(frozen=True, slots=True)
class DecidedScreening:
    """One screening decided by the version, with its latest clinician decision. ``person``
    is who the screening counts as for the k rule: its person id, or, without one, the
    screening's own id (never reported)."""

    outcome: str
    recommended_level: str | None
    final_level: str | None
    variance_reasons: tuple[str, ...]
    fired_rules: tuple[str, ...]
    person: str

    @property
    def agreed(self) -> bool:
        """Whether the clinician took the recommendation."""
        if self.outcome == ACCEPTED:
            return True
        if self.outcome == OVERRIDDEN:
            return False
        return self.final_level == self.recommended_level

    @property
    def chosen_level(self) -> str:
        """The level chosen instead (``unknown`` when an EHR did not say)."""
        return self.final_level or UNKNOWN_LEVEL


@dataclass(frozen=True, slots=True)
class Group:
    """A number of screenings and the people they are of."""

    count: int
    people: frozenset[str]

    @staticmethod
    def of(rows: Iterable[DecidedScreening]) -> Group:
        listed = list(rows)
        return Group(len(listed), frozenset(row.person for row in listed))

    def enough(self, k: int) -> bool:
        """Whether a figure may rest on this group: none, or at least ``k`` people."""
        return self.count == 0 or len(self.people) >= k


EMPTY = Group(0, frozenset())


@dataclass(frozen=True, slots=True)
class ReasonFigure:
    reason: str
    count: int | None
    suppressed: bool


@dataclass(frozen=True, slots=True)
class LevelFigure:
    recommended_level: str | None
    chosen_level: str
    count: int | None
    suppressed: bool


@dataclass(frozen=True, slots=True)
class RuleFigure:
    rule_id: str
    fired_in_decided: int | None
    fired_in_overridden: int | None
    override_rate: float | None
    lift: float | None
    suppressed: bool


@dataclass(frozen=True, slots=True)
class OverrideFigures:
    """The report's figures (None: withheld), counts rounded down to ``granularity``."""

    min_count: int
    granularity: int
    withheld: bool  # fewer than min_count people: nothing but this is shown
    decided: int | None
    without_recommendation: int | None
    agreed: int | None
    overridden: int | None
    agreement_rate: float | None
    override_rate: float | None
    suppressed: bool
    reasons: tuple[ReasonFigure, ...]
    chosen_instead: tuple[LevelFigure, ...]
    rules: tuple[RuleFigure, ...]


def shown(group: Group, k: int) -> int | None:
    """A group's count, or None when it rests on fewer than ``k`` people (0 rests on none)."""
    return group.count if group.enough(k) else None


def split(groups: Mapping[str, Group], k: int) -> dict[str, int | None]:
    """The counts of ``groups``, parts of a shown total, withholding more of the smallest
    until the withheld ones are together none or of at least ``k`` people (so subtraction
    from the total reveals none of them)."""
    result: dict[str, int | None] = {name: shown(group, k) for name, group in groups.items()}
    while True:
        hidden = [groups[name] for name, count in result.items() if count is None]
        together = Group(
            sum(g.count for g in hidden), frozenset().union(*(g.people for g in hidden))
        )
        if together.enough(k):
            return result
        candidates = [(count, name) for name, count in result.items() if count]
        if not candidates:
            return result
        result[min(candidates)[1]] = None


def rounded(count: int | None, granularity: int) -> int | None:
    """``count`` rounded down to a multiple of ``granularity``."""
    return None if count is None else count - count % granularity


def rate(part: int | None, whole: int | None) -> float | None:
    """``part / whole`` to two decimals, of shown (rounded) counts only."""
    if part is None or not whole:
        return None
    return round(part / whole, 2)


def _table_cells(rows: Sequence[DecidedScreening], rule_id: str) -> tuple[Group, ...]:
    """Fired and overridden, fired and agreed, overridden without it, agreed without it."""
    return tuple(
        Group.of(r for r in rows if (rule_id in r.fired_rules) == fired and r.agreed == agreed)
        for fired, agreed in ((True, False), (True, True), (False, False), (False, True))
    )


def _rule_figures(
    rows: Sequence[DecidedScreening], overall_rate: float | None, k: int, g: int
) -> tuple[RuleFigure, ...]:
    """Per rule that fired in a screening with a recommendation: in how many it fired, in how
    many of those the recommendation was overridden, that share and its lift over the
    overall rate (None: ``overall_rate`` is withheld, and so is every overridden count).

    The figures of a rule are the margins of a two-by-two table (fired or not, overridden or
    not) whose total and overridden margin are shown: each is shown only when no cell of the
    table that it and those margins give away rests on fewer than k people."""
    figures = []
    for rule_id in sorted({rule for row in rows for rule in row.fired_rules}):
        cells = _table_cells(rows, rule_id)
        fired = Group.of(r for r in rows if rule_id in r.fired_rules)
        not_fired = Group.of(r for r in rows if rule_id not in r.fired_rules)
        pair = fired.enough(k) and not_fired.enough(k)
        whole_table = pair and overall_rate is not None and all(c.enough(k) for c in cells)
        in_decided = rounded(fired.count, g) if pair else None
        in_overridden = rounded(cells[0].count, g) if whole_table else None
        override_rate = rate(in_overridden, in_decided) if whole_table else None
        figures.append(
            RuleFigure(
                rule_id=rule_id,
                fired_in_decided=in_decided,
                fired_in_overridden=in_overridden,
                override_rate=override_rate,
                lift=round(override_rate / overall_rate, 2)
                if override_rate is not None and overall_rate
                else None,
                suppressed=not whole_table,
            )
        )
    return tuple(sorted(figures, key=_rule_order))


def _rule_order(figure: RuleFigure) -> tuple[int, int, str]:
    """Most overridden first, then the withheld (some, fewer than k), then those never
    overridden; by rule id within each."""
    count = figure.fired_in_overridden
    if count is None:
        return (1, 0, figure.rule_id)
    return (0 if count else 2, -count, figure.rule_id)


def _reasons(
    overrides: Sequence[DecidedScreening], k: int, g: int, withheld: bool
) -> tuple[ReasonFigure, ...]:
    """Overrides by variance reason. Most give one reason, so the counts split the overrides
    (with those giving none): they are withheld together like the levels chosen instead, and
    all of them when the overridden count is (``withheld``)."""
    counts = Counter(reason for row in overrides for reason in dict.fromkeys(row.variance_reasons))
    none = "\x00none"  # overrides giving no reason: never shown, but part of the split
    groups = {
        reason: Group.of(row for row in overrides if reason in row.variance_reasons)
        for reason in counts
    } | {none: Group.of(row for row in overrides if not row.variance_reasons)}
    figures = dict.fromkeys(groups) if withheld else split(groups, k)
    rows = [
        ReasonFigure(reason, rounded(figures[reason], g), figures[reason] is None)
        for reason in counts
    ]
    return tuple(sorted(rows, key=lambda f: (f.count is None, -(f.count or 0), f.reason)))


def _chosen_instead(
    overrides: Sequence[DecidedScreening], k: int, g: int, withheld: bool
) -> tuple[LevelFigure, ...]:
    """Overrides by recommended level and level chosen instead: they split the overrides,
    so they are withheld together, and all of them when the overridden count is."""
    pairs = dict.fromkeys((row.recommended_level, row.chosen_level) for row in overrides)
    names = {f"{before}\x00{after}": (before, after) for before, after in pairs}
    groups = {
        name: Group.of(r for r in overrides if (r.recommended_level, r.chosen_level) == pair)
        for name, pair in names.items()
    }
    # A withheld total splits into nothing shown: each cell on its own would reveal it.
    figures = dict.fromkeys(groups) if withheld else split(groups, k)
    levels = [
        LevelFigure(names[name][0], names[name][1], rounded(count, g), count is None)
        for name, count in figures.items()
    ]
    return tuple(
        sorted(
            levels,
            key=lambda f: (
                f.count is None,
                -(f.count or 0),
                str(f.recommended_level),
                f.chosen_level,
            ),
        )
    )


def override_figures(
    rows: Sequence[DecidedScreening], min_count: int, granularity: int | None = None
) -> OverrideFigures:
    """The override report of ``rows`` (each screening once, with its latest decision);
    counts rounded down to ``granularity`` (by default ``granularity_for(min_count)``)."""
    k = min_count
    g = granularity or granularity_for(k)
    if not Group.of(rows).enough(k) or not rows:
        return OverrideFigures(k, g, True, None, None, None, None, None, None, True, (), (), ())
    recommended = [row for row in rows if row.recommended_level is not None]
    overrides = [row for row in recommended if not row.agreed]
    top = split(
        {
            "without": Group.of(row for row in rows if row.recommended_level is None),
            "agreed": Group.of(row for row in recommended if row.agreed),
            "overridden": Group.of(overrides),
        },
        k,
    )
    agreed, overridden = rounded(top["agreed"], g), rounded(top["overridden"], g)
    suppressed = agreed is None or overridden is None
    # Both rates of the rounded counts, so that they add up to 1 (give or take a rounding).
    both = None if agreed is None or overridden is None else agreed + overridden
    override_rate = rate(overridden, both)
    return OverrideFigures(
        min_count=k,
        granularity=g,
        withheld=False,
        decided=rounded(len(rows), g),
        without_recommendation=rounded(top["without"], g),
        agreed=agreed,
        overridden=overridden,
        agreement_rate=rate(agreed, both),
        override_rate=override_rate,
        suppressed=suppressed,
        reasons=_reasons(overrides, k, g, suppressed),
        chosen_instead=_chosen_instead(overrides, k, g, suppressed),
        rules=_rule_figures(recommended, override_rate, k, g),
    )


@dataclass(frozen=True, slots=True)
class Agreement:
    """How a simulated version agrees with clinicians' decisions, next to the stored one."""

    decided: int | None  # sampled screenings with a known final level
    agreed_stored: int | None
    agreed_simulated: int | None
    excluded_unknown_level: int | None  # sampled CDS overrides: the level chosen is unknown
    granularity: int
    suppressed: bool


def agreement(
    decided: int, agreed_stored: int, agreed_simulated: int, excluded: int, k: int
) -> Agreement:
    """Counts of agreement, each withheld with the rule of the override report (counting
    screenings: the samples carry no person id) and rounded down alike."""
    g = granularity_for(k)
    left_out = rounded(excluded if excluded == 0 or excluded >= k else None, g)
    if decided < k:
        return Agreement(None, None, None, left_out, g, True)

    def paired(part: int) -> int | None:
        fine = all(count == 0 or count >= k for count in (part, decided - part))
        return rounded(part, g) if fine else None

    stored, simulated = paired(agreed_stored), paired(agreed_simulated)
    return Agreement(
        rounded(decided, g), stored, simulated, left_out, g, None in (stored, simulated)
    )


def rule_figures_by_id(figures: OverrideFigures) -> dict[str, RuleFigure]:
    """The per-rule figures by rule id (empty when the report is withheld)."""
    return {figure.rule_id: figure for figure in figures.rules}


def override_report(
    owner: str, key: str, version: int, figures: OverrideFigures, limit: int, truncated: bool
) -> OverrideReport:
    """The report of version ``owner/key/version`` as the API returns it: ``figures`` of at
    most ``limit`` decided screenings (``truncated``: more were decided)."""
    notice = None
    if figures.withheld:
        notice = (
            f"Fewer than {figures.min_count} people's screenings of this version have a "
            "clinician decision in your tenant: the report is withheld until more are decided."
        )
    elif truncated:
        notice = f"Only the {limit} most recently decided screenings were read."
    return OverrideReport(
        owner=owner,
        key=key,
        version=version,
        min_count=figures.min_count,
        count_granularity=figures.granularity,
        decisions_considered=figures.decided,
        without_recommendation=figures.without_recommendation,
        decision_limit=limit,
        truncated=truncated,
        withheld=figures.withheld,
        notice=notice,
        agreed=figures.agreed,
        overridden=figures.overridden,
        agreement_rate=figures.agreement_rate,
        override_rate=figures.override_rate,
        suppressed=figures.suppressed,
        reasons=[
            OverrideReasonCount.model_validate(f, from_attributes=True) for f in figures.reasons
        ],
        chosen_instead=[
            LevelChosenInstead.model_validate(f, from_attributes=True)
            for f in figures.chosen_instead
        ],
        rules=[RuleOverrides.model_validate(f, from_attributes=True) for f in figures.rules],
    )
