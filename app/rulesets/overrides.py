"""What clinicians' decisions teach about a rule-set version: how often its recommendations
were followed, why and to what they were overridden, and which rules fire in the screenings
whose recommendation was overridden. Pure: rows in, figures out.

**Withheld figures.** A figure computed from fewer than ``min_count`` screenings (k) is
withheld: shown as null, its row kept and marked ``suppressed``. A count is shown when it is 0
or at least k; a rate when its denominator is at least k and both its numerator and what the
numerator leaves of the denominator are shown counts (otherwise the rate and the denominator
would give the withheld count away). Counts that split a shown total (the levels chosen
instead, and the reasons, split the overridden screenings) are withheld together until what
they add up to is 0 or at least k, so no withheld count follows by subtraction; a rule's
figures are shown only when every cell of its table (fired or not, overridden or not) is 0 or
at least k. Fewer than k screenings with a decision withhold the whole report. No screening
id, comment or clinician is ever reported.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
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


@dataclass(frozen=True, slots=True)
class DecidedScreening:
    """One screening decided by the version, with its latest clinician decision."""

    outcome: str
    recommended_level: str | None
    final_level: str | None
    variance_reasons: tuple[str, ...]
    fired_rules: tuple[str, ...]

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
    """The report's figures (None: withheld)."""

    min_count: int
    withheld: bool  # fewer than min_count screenings: nothing but this is shown
    decided: int | None
    agreed: int | None
    overridden: int | None
    agreement_rate: float | None
    override_rate: float | None
    suppressed: bool
    reasons: tuple[ReasonFigure, ...]
    chosen_instead: tuple[LevelFigure, ...]
    rules: tuple[RuleFigure, ...]


def shown(count: int, k: int) -> int | None:
    """A count, or None when it rests on fewer than ``k`` screenings (0 rests on none)."""
    return count if count == 0 or count >= k else None


def share(part: int, whole: int, k: int) -> float | None:
    """``part / whole``, or None unless ``whole``, ``part`` and ``whole - part`` are shown."""
    if whole < k or shown(part, k) is None or shown(whole - part, k) is None:
        return None
    return round(part / whole, 4)


def split(counts: Mapping[str, int], total: int, k: int) -> dict[str, int | None]:
    """The counts that split a shown ``total``, withholding more of the smallest until the
    withheld ones add up to 0 or at least ``k`` (so subtraction reveals none of them)."""
    result: dict[str, int | None] = {name: shown(count, k) for name, count in counts.items()}
    while True:
        hidden = total - sum(count for count in result.values() if count is not None)
        if hidden == 0 or hidden >= k:
            return result
        candidates = [(count, name) for name, count in result.items() if count]
        if not candidates:
            return result
        result[min(candidates)[1]] = None


def _pair(part: int, whole: int, k: int) -> tuple[int | None, int | None]:
    """A count and its complement in ``whole``: both shown, or both withheld."""
    if shown(part, k) is None or shown(whole - part, k) is None:
        return None, None
    return part, whole - part


def _rule_figures(
    rows: Sequence[DecidedScreening], overall_rate: float | None, k: int
) -> tuple[RuleFigure, ...]:
    """Per rule that fired in a decided screening: in how many it fired, in how many of those
    the recommendation was overridden, that share and its lift over the overall rate.

    The figures of a rule are the margins of a two-by-two table (fired or not, overridden or
    not) whose total and overridden margin are shown: each is shown only when no cell of the
    table that it and those margins give away rests on fewer than k screenings."""
    n, overridden_total = len(rows), sum(1 for row in rows if not row.agreed)
    fired: Counter[str] = Counter()
    fired_overridden: Counter[str] = Counter()
    for row in rows:
        rules = set(row.fired_rules)
        fired.update(rules)
        if not row.agreed:
            fired_overridden.update(rules)
    figures = []
    for rule_id, count in fired.items():
        overridden = fired_overridden[rule_id]
        in_decided, _ = _pair(count, n, k)
        # fired and overridden, fired and agreed, overridden without it, agreed without it
        not_fired_overridden = overridden_total - overridden
        cells = (overridden, count - overridden, not_fired_overridden)
        cells_left = n - count - not_fired_overridden
        whole_table = in_decided is not None and all(
            shown(c, k) is not None for c in (*cells, cells_left)
        )
        rate = share(overridden, count, k) if whole_table else None
        figures.append(
            RuleFigure(
                rule_id=rule_id,
                fired_in_decided=in_decided,
                fired_in_overridden=overridden if whole_table else None,
                override_rate=rate,
                lift=round(rate / overall_rate, 2) if rate is not None and overall_rate else None,
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


def _reasons(overrides: Sequence[DecidedScreening], k: int) -> tuple[ReasonFigure, ...]:
    """Overrides by variance reason. Most give one reason, so the counts split the overrides
    (with those giving none): they are withheld together like the levels chosen instead."""
    counts = Counter(reason for row in overrides for reason in dict.fromkeys(row.variance_reasons))
    none = "\x00none"  # overrides giving no reason: never shown, but part of the split
    cells = dict(counts) | {none: sum(1 for row in overrides if not row.variance_reasons)}
    figures = split(cells, sum(cells.values()), k)
    rows = [ReasonFigure(reason, figures[reason], figures[reason] is None) for reason in counts]
    return tuple(sorted(rows, key=lambda f: (f.count is None, -(f.count or 0), f.reason)))


def _chosen_instead(
    overrides: Sequence[DecidedScreening], total: int | None, k: int
) -> tuple[LevelFigure, ...]:
    counts = Counter((row.recommended_level, row.chosen_level) for row in overrides)
    names = {f"{before}\x00{after}": (before, after) for before, after in counts}
    keyed = {f"{before}\x00{after}": count for (before, after), count in counts.items()}
    # A withheld total splits into nothing shown: each cell on its own would reveal it.
    figures = split(keyed, len(overrides), k) if total is not None else dict.fromkeys(keyed)
    levels = [
        LevelFigure(names[name][0], names[name][1], count, count is None)
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


def override_figures(rows: Sequence[DecidedScreening], min_count: int) -> OverrideFigures:
    """The override report of ``rows`` (each screening once, with its latest decision)."""
    k = min_count
    n = len(rows)
    if n < k:
        return OverrideFigures(k, True, None, None, None, None, None, True, (), (), ())
    overrides = [row for row in rows if not row.agreed]
    agreed, overridden = _pair(n - len(overrides), n, k)
    override_rate = share(len(overrides), n, k)
    rules = _rule_figures(rows, override_rate, k)
    reasons = _reasons(overrides, k)
    chosen = _chosen_instead(overrides, overridden, k)
    return OverrideFigures(
        min_count=k,
        withheld=False,
        decided=n,
        agreed=agreed,
        overridden=overridden,
        agreement_rate=share(n - len(overrides), n, k),
        override_rate=override_rate,
        suppressed=agreed is None,
        reasons=reasons,
        chosen_instead=chosen,
        rules=rules,
    )


@dataclass(frozen=True, slots=True)
class Agreement:
    """How a simulated version agrees with clinicians' decisions, next to the stored one."""

    decided: int | None  # sampled screenings with a known final level
    agreed_stored: int | None
    agreed_simulated: int | None
    suppressed: bool


def agreement(decided: int, agreed_stored: int, agreed_simulated: int, k: int) -> Agreement:
    """Counts of agreement, each withheld with the rule of the override report."""
    if decided < k:
        return Agreement(None, None, None, True)
    stored, _ = _pair(agreed_stored, decided, k)
    simulated, _ = _pair(agreed_simulated, decided, k)
    return Agreement(decided, stored, simulated, None in (stored, simulated))


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
            f"Fewer than {figures.min_count} of your tenant's screenings of this version have a "
            "clinician decision: the report is withheld until more are decided."
        )
    elif truncated:
        notice = f"Only the {limit} most recently decided screenings were read."
    return OverrideReport(
        owner=owner,
        key=key,
        version=version,
        min_count=figures.min_count,
        decisions_considered=figures.decided,
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
