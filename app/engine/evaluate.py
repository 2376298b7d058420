"""``evaluate(compiled, answers)``: the pure function at the heart of carelevel.

Stages run in a fixed order. Safety first: every safety rule is evaluated, alerts are all
collected, and when overrides fire the most severe one sets the level and no later stage runs
(nothing can outvote it). Then the information check (too little to place anyone →
``insufficient_information``, never a guess), domain ratings (highest that fires, per domain),
placement (highest level that fires; no averaging, no composite score) and feasibility (every
practical barrier, with the accommodations that lift it; barriers never change the clinical
level).

A condition that needs an unknown fact is *undetermined*. When its rule could have changed the
result had it fired, the unknown facts are reported as missing and the status is ``partial``.
A safety question left open (an alert that requires an assessment, or a safety override or
requirement that could not be decided) is never taken as safe: the urgency is at least
urgent, the result partial, and the IOP verdict waits (``pending_safety_assessment``).

From semantics 3, the consistency stage runs right after safety, on every screening: a rule
that fires reports a contradiction to confirm, and its ``confirm`` text becomes a missing item
(the result is partial, the IOP verdict provisional) while the answers are used as given, so
level and urgency never change. The determination also shows the context answers, the answers
given that no rule evaluated read, and how each eliminated level relates to the one recommended.

Rule sets written before these semantics (``semantics: 1``) are evaluated as they always were:
the first override in file order ends the evaluation and open questions only make the result
partial, so their screenings replay byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.engine.answered import Reach
from app.engine.answers import AgeGroup, ScreeningAnswers
from app.engine.compiler import (
    CompiledContradictionRule,
    CompiledDomainRule,
    CompiledFeasibilityRule,
    CompiledPlacementRule,
    CompiledRuleSet,
    CompiledSafetyRule,
    level_not_indicated,
)
from app.engine.determination import (
    DISCLAIMER,
    DOMAIN_LABELS,
    LEVEL_ORDER,
    LEVEL_RANK,
    URGENCY_RANK,
    Barrier,
    Contradiction,
    Determination,
    Domain,
    DomainRating,
    EliminatedLevel,
    ExplainedDetermination,
    IopAssessment,
    IopVerdict,
    LevelInfo,
    LevelOfCare,
    MissingItem,
    PlacementCondition,
    Rating,
    Reason,
    RecommendedLevel,
    RelatedEliminatedLevel,
    Relation,
    RuleResult,
    SafetyAlert,
    Stage,
    Status,
    TraceStep,
    Urgency,
)
from app.engine.expressions import CompiledCondition
from app.engine.facts import FactSpec, extract_facts
from app.engine.instruments import InstrumentScore
from app.engine.scoring import score_answers

_RATINGS = tuple(Rating)
_URGENCIES = tuple(Urgency)
_DOMAINS = tuple(Domain)
_DOMAIN_FACTS = {domain: f"domains.{domain.value}" for domain in Domain}
_IOP_RANK = LEVEL_RANK[LevelOfCare.INTENSIVE_OUTPATIENT]
_EMERGENCY = LevelOfCare.EMERGENCY_EVALUATION


class _Run:
    """Mutable bookkeeping for one evaluation: facts, the trace and what was missing."""

    __slots__ = ("facts", "catalogue", "trace", "missing", "urgency")

    def __init__(self, facts: dict[str, object], catalogue: Mapping[str, FactSpec]) -> None:
        self.facts = facts
        self.catalogue = catalogue
        self.trace: list[TraceStep] = []
        self.missing: dict[str, tuple[str, list[str]]] = {}
        self.urgency = 0

    def undetermined(self, stage: Stage, rule_id: str, condition: CompiledCondition) -> None:
        """Record a rule whose condition needed an unknown fact."""
        unknown = tuple(f for f in condition.facts if self.facts.get(f) is None)
        self.trace.append(TraceStep(stage, rule_id, RuleResult.UNDETERMINED, unknown))

    def could_change(self, rule_id: str, condition: CompiledCondition) -> None:
        """An undetermined rule could have changed the result: report its unknown facts."""
        for fact in condition.facts:
            if self.facts.get(fact) is None:
                spec = self.catalogue.get(fact)
                label = spec.description if spec else fact
                self.missing.setdefault(fact, (label, []))[1].append(rule_id)

    def require(self, items: Iterable[str], rule_id: str) -> None:
        """A rule that fired asks for these items (assessments, answers): report them missing."""
        for item in items:
            self.missing.setdefault(item, (item, []))[1].append(rule_id)

    def ask(self, fact: str) -> None:
        """The engine itself needs this answer (no rule asks for it): report it missing."""
        spec = self.catalogue.get(fact)
        self.missing.setdefault(fact, (spec.description if spec else fact, []))

    def raise_urgency(self, urgency: Urgency) -> None:
        self.urgency = max(self.urgency, URGENCY_RANK[urgency])

    def missing_items(self) -> tuple[MissingItem, ...]:
        return tuple(
            MissingItem(item, label, tuple(dict.fromkeys(rules)))
            for item, (label, rules) in self.missing.items()
        )


def evaluate(compiled: CompiledRuleSet, answers: ScreeningAnswers) -> Determination:
    """Evaluate validated answers under a compiled rule set; pure and deterministic."""
    scores = score_answers(answers, compiled.policies)
    facts = extract_facts(answers, scores, compiled.extraction, compiled.policies)
    run = _Run(facts, compiled.catalogue)
    score_list = tuple(scores.values())

    # 1. Safety: alerts accumulate; an override that fires ends the evaluation after this stage
    # (and after the consistency check, which runs on every screening).
    safety = _evaluate_safety(compiled, run)
    contradictions = _check_consistency(compiled.consistency, run) if compiled.consistency else ()
    if safety.decisive:
        explained = _explained(compiled, answers, contradictions, Reach.AFTER_SAFETY)
        return _after_override(compiled, run, safety.decisive, safety.alerts, score_list, explained)

    # 2. Information: is there enough to place anyone? Nobody is placed before it is known
    # what they are asking for help with.
    insufficient = _check_information(compiled, run)
    if answers.presenting_concerns is None:
        insufficient.append(compiled.engine_reasons.no_concern)
        run.ask("presenting_concerns")
    if insufficient:
        explained = _explained(compiled, answers, contradictions, Reach.AFTER_INFORMATION)
        return _insufficient(compiled, run, insufficient, safety.alerts, score_list, explained)

    # 3. Domains: the highest rating that fires, per domain; later rules read them as facts.
    ratings, evidence = _rate_domains(compiled.domains, run)
    for domain, rank in ratings.items():
        facts[_DOMAIN_FACTS[domain]] = _RATINGS[rank]

    # 4. Placement: the highest level that fires.
    best, decisive, fired, undetermined = _place(compiled.placement, run, compiled.default_level)
    level = LEVEL_ORDER[best]
    info = compiled.level_info[level]
    decided_by = tuple(p.reason for p in decisive) or (compiled.default_decision,)
    conditions = _placement_conditions(info, fired)

    # 5. Feasibility: every barrier to attending the level placed, with what lifts it.
    hours = info.adolescent_hours if _adolescent(answers) else info.adult_hours
    facts["placement.level"] = level.value
    facts["placement.minimum_hours_per_week"] = hours.minimum_per_week
    barriers = _find_barriers(compiled.feasibility, run)

    missing = run.missing_items()
    iop = _iop_verdict(
        compiled, level, decided_by, fired, barriers, conditions, safety.open_questions
    )
    if missing:  # provisional: what is missing could change the verdict
        iop = IopAssessment(iop.verdict, (*iop.reasons, compiled.engine_reasons.provisional))
    return _kind(compiled)(
        status=Status.PARTIAL if missing else Status.COMPLETE,
        missing=missing,
        urgency=_URGENCIES[run.urgency],
        recommended_level=RecommendedLevel(
            level, info.label, info.aligned_with, info.provides_24_hour_care, hours, decided_by
        ),
        iop=iop,
        conditions=conditions,
        eliminated=_eliminated_levels(compiled, best, decisive, undetermined),
        domains=tuple(
            DomainRating(domain, DOMAIN_LABELS[domain], _RATINGS[rank], tuple(evidence[domain]))
            for domain, rank in ratings.items()
        ),
        barriers=tuple(barriers),
        safety_alerts=tuple(safety.alerts),
        scores=score_list,
        trace=tuple(run.trace),
        rule_set=compiled.ref,
        engine_version=compiled.engine_version,
        disclaimer=DISCLAIMER,
        **_explained(compiled, answers, contradictions, Reach.EVERY_STAGE),
    )


_NOTHING_MORE: dict[str, Any] = {}


def _explained(
    compiled: CompiledRuleSet,
    answers: ScreeningAnswers,
    contradictions: tuple[Contradiction, ...],
    reach: Reach,
) -> dict[str, Any]:
    """From semantics 3, what the determination adds (``ExplainedDetermination``'s fields): its
    contradictions, the context answers and the answers given that no rule evaluated read
    (``reach``: how far the evaluation went); nothing before."""
    if compiled.semantics < 3:
        return _NOTHING_MORE
    return {
        "contradictions": contradictions,
        "context": compiled.context_walk.context(answers),
        "answers_not_used": compiled.unused_walks[reach].unused(answers),
    }


def _kind(compiled: CompiledRuleSet) -> type[Determination]:
    """The determination a rule set's semantics makes (built once, never copied)."""
    return ExplainedDetermination if compiled.semantics >= 3 else Determination


def _check_consistency(
    rules: Sequence[CompiledContradictionRule], run: _Run
) -> tuple[Contradiction, ...]:
    """Every consistency rule, on every screening: one that fires reports its contradiction and
    asks to confirm it (a missing item). Answers are never changed, and an undetermined rule is
    silent: a contradiction needs both answers given."""
    facts, trace = run.facts, run.trace
    found: list[Contradiction] = []
    for rule in rules:
        result = rule.condition.evaluate(facts)
        if result is None:
            run.undetermined(Stage.CONSISTENCY, rule.id, rule.condition)
        elif not result:
            trace.append(rule.not_fired_step)
        else:
            trace.append(rule.fired_step)
            found.append(rule.contradiction)
            run.require((rule.confirm,), rule.id)
    return tuple(found)


@dataclass(frozen=True, slots=True)
class _SafetyOutcome:
    alerts: list[SafetyAlert]
    decisive: tuple[CompiledSafetyRule, ...] = ()
    """The overrides that set the level (none fired: empty)."""
    open_questions: tuple[Reason, ...] = ()
    """Why the IOP verdict must wait: one reason per open safety question (semantics 2)."""


_OpenRule = tuple[CompiledSafetyRule, bool]
"""A safety question left open: the rule, and whether it fired (else it was undetermined)."""


def _evaluate_safety(compiled: CompiledRuleSet, run: _Run) -> _SafetyOutcome:
    """Every safety rule is evaluated and the most severe override that fires decides (file
    order never does); every open safety question is reported and raises the urgency.

    Semantics 1 (documents written before) differs in two ways, kept so that their screenings
    replay byte for byte: the first override that fires, in file order, ends the stage, and an
    open question only makes the result partial.
    """
    first_decides = compiled.semantics == 1
    alerts, fired, undecided_overrides, open_rules = _run_safety_rules(
        compiled.safety, run, first_decides
    )
    top = max(
        (LEVEL_RANK[rule.override_level] for rule in fired if rule.override_level), default=-1
    )
    for rule in undecided_overrides:  # an override that could still raise the level
        assert rule.override_level is not None
        if LEVEL_RANK[rule.override_level] > top:
            run.could_change(rule.id, rule.condition)
            open_rules.append((rule, False))
    decisive = tuple(r for r in fired if r.override_level and LEVEL_RANK[r.override_level] == top)
    if first_decides:
        return _SafetyOutcome(alerts, decisive)
    if open_rules:
        run.raise_urgency(Urgency.URGENT)
    return _SafetyOutcome(
        alerts, decisive, tuple(_open_question(compiled, run, *o) for o in open_rules)
    )


def _run_safety_rules(
    rules: Sequence[CompiledSafetyRule], run: _Run, first_decides: bool
) -> tuple[list[SafetyAlert], list[CompiledSafetyRule], list[CompiledSafetyRule], list[_OpenRule]]:
    """Evaluate the safety rules in file order (under semantics 1, only up to the first
    override that fires). Returns the alerts raised, the overrides that fired, the overrides
    left undetermined and the safety questions left open so far.

    An undetermined override is set aside rather than reported: whether its unknown facts
    matter depends on the most severe override that fired, known only once every rule ran.
    """
    facts, trace = run.facts, run.trace
    alerts: list[SafetyAlert] = []
    fired: list[CompiledSafetyRule] = []
    undecided_overrides: list[CompiledSafetyRule] = []
    open_rules: list[_OpenRule] = []
    for rule in rules:
        result = rule.condition.evaluate(facts)
        if result is None:
            run.undetermined(Stage.SAFETY, rule.id, rule.condition)
            if rule.override_level is not None:
                undecided_overrides.append(rule)
                continue
            run.could_change(rule.id, rule.condition)
            if rule.requires:
                open_rules.append((rule, False))
        elif not result:
            trace.append(rule.not_fired_step)
        else:
            trace.append(rule.fired_step)
            run.raise_urgency(rule.urgency)
            alerts.append(rule.alert)
            if rule.override_level is not None:
                fired.append(rule)
                if first_decides:
                    break
            elif rule.requires:
                run.require(rule.requires, rule.id)
                open_rules.append((rule, True))
    return alerts, fired, undecided_overrides, open_rules


def _open_question(
    compiled: CompiledRuleSet, run: _Run, rule: CompiledSafetyRule, fired: bool
) -> Reason:
    """Why the IOP verdict waits for this safety question, and what to do now."""
    if fired:
        text = f"Safety assessment pending ({'; '.join(rule.requires)}): {rule.action}"
    else:
        unknown = ", ".join(f for f in rule.condition.facts if run.facts.get(f) is None)
        text = (
            f"Safety question not answered ({unknown}); ask it now, it decides: {rule.description}"
        )
    return compiled.explain.reason(rule.id, text, rule.references)


def _adolescent(answers: ScreeningAnswers) -> bool:
    return answers.respondent.age_group is AgeGroup.ADOLESCENT


def _check_information(compiled: CompiledRuleSet, run: _Run) -> list[Reason]:
    """Why there is too little to place anyone (empty: enough); what a check that fires asks
    for is reported as missing."""
    facts, trace = run.facts, run.trace
    insufficient: list[Reason] = []
    for check in compiled.information:
        result = check.condition.evaluate(facts)
        if result is None:
            run.undetermined(Stage.INFORMATION, check.id, check.condition)
            run.could_change(check.id, check.condition)
        elif not result:
            trace.append(check.not_fired_step)
        else:
            trace.append(check.fired_step)
            insufficient.append(check.reason)
            run.require(check.missing, check.id)
    return insufficient


def _rate_domains(
    rules: Sequence[CompiledDomainRule], run: _Run
) -> tuple[dict[Domain, int], dict[Domain, list[Reason]]]:
    facts, trace = run.facts, run.trace
    ratings = dict.fromkeys(_DOMAINS, 0)
    evidence: dict[Domain, list[Reason]] = {domain: [] for domain in _DOMAINS}
    undetermined: list[CompiledDomainRule] = []
    for rule in rules:
        result = rule.condition.evaluate(facts)
        if result is None:
            run.undetermined(Stage.DOMAINS, rule.id, rule.condition)
            undetermined.append(rule)
        elif not result:
            trace.append(rule.not_fired_step)
        else:
            trace.append(rule.fired_step)
            if rule.rank > ratings[rule.domain]:
                ratings[rule.domain] = rule.rank
                evidence[rule.domain] = [rule.reason]
            elif rule.rank == ratings[rule.domain]:
                evidence[rule.domain].append(rule.reason)
    for rule in undetermined:
        if rule.rank > ratings[rule.domain]:
            run.could_change(rule.id, rule.condition)
    return ratings, evidence


def _place(
    rules: Sequence[CompiledPlacementRule], run: _Run, default_level: LevelOfCare
) -> tuple[int, list[CompiledPlacementRule], list[CompiledPlacementRule], set[str]]:
    """The highest level that fires (no averaging, no composite score): its rank, the rules
    that decided it (every one that fired at that level), every rule that fired and the ids of
    those left undetermined. Only an undetermined rule above the level placed could have changed
    it, so only its unknown facts are reported as missing."""
    facts, trace = run.facts, run.trace
    best = LEVEL_RANK[default_level]
    decisive: list[CompiledPlacementRule] = []
    fired: list[CompiledPlacementRule] = []
    undetermined: set[str] = set()
    for placement in rules:
        result = placement.condition.evaluate(facts)
        if result is None:
            run.undetermined(Stage.PLACEMENT, placement.id, placement.condition)
            undetermined.add(placement.id)
        elif not result:
            trace.append(placement.not_fired_step)
        else:
            trace.append(placement.fired_step)
            fired.append(placement)
            run.raise_urgency(placement.urgency)
            if placement.rank > best:
                best, decisive = placement.rank, [placement]
            elif placement.rank == best:
                decisive.append(placement)
    for placement in rules:
        if placement.id in undetermined and placement.rank > best:
            run.could_change(placement.id, placement.condition)
    return best, decisive, fired, undetermined


def _placement_conditions(
    info: LevelInfo, fired: Sequence[CompiledPlacementRule]
) -> tuple[PlacementCondition, ...]:
    """What an ambulatory level needs in place to work, from the placement rules that fired,
    once per code; none at a level of 24-hour care."""
    if info.provides_24_hour_care or not fired:
        return ()
    by_code: dict[str, PlacementCondition] = {}
    for placement in fired:
        for condition in placement.conditions:
            by_code.setdefault(condition.code, condition)
    return tuple(by_code.values())


def _find_barriers(rules: Sequence[CompiledFeasibilityRule], run: _Run) -> list[Barrier]:
    """Every practical barrier to attending, with the accommodations that lift it (barriers
    never change the clinical level)."""
    facts, trace = run.facts, run.trace
    barriers: list[Barrier] = []
    for barrier in rules:
        result = barrier.condition.evaluate(facts)
        if result is None:
            run.undetermined(Stage.FEASIBILITY, barrier.id, barrier.condition)
            run.could_change(barrier.id, barrier.condition)
        elif not result:
            trace.append(barrier.not_fired_step)
        else:
            trace.append(barrier.fired_step)
            offered = tuple(
                a.accommodation
                for a in barrier.accommodations
                if a.condition is None or a.condition.evaluate(facts) is True
            )
            barriers.append(Barrier(barrier.code, barrier.barrier_description, barrier.id, offered))
    return barriers


def _iop_verdict(
    compiled: CompiledRuleSet,
    level: LevelOfCare,
    decided_by: tuple[Reason, ...],
    fired: Sequence[CompiledPlacementRule],
    barriers: Sequence[Barrier],
    conditions: Sequence[PlacementCondition],
    open_questions: tuple[Reason, ...],
) -> IopAssessment:
    """The verdict on IOP. Above IOP it stands whatever is still open (more evidence never
    lowers the level); at IOP or below, an open safety question makes it wait."""
    rank = LEVEL_RANK[level]
    if rank > _IOP_RANK:
        return IopAssessment(IopVerdict.HIGHER_LEVEL_NEEDED, decided_by)
    if open_questions:
        return IopAssessment(IopVerdict.PENDING_SAFETY_ASSESSMENT, open_questions)
    if rank < _IOP_RANK:
        fired_ids = {p.id for p in fired}
        not_met = tuple(
            p.not_met
            for p in compiled.placement
            if p.level is LevelOfCare.INTENSIVE_OUTPATIENT and p.id not in fired_ids
        )
        return IopAssessment(IopVerdict.LOWER_LEVEL_SUFFICIENT, (*decided_by, *not_met))
    if not barriers and not conditions:
        return IopAssessment(IopVerdict.SUITABLE, decided_by)
    reason, cited = compiled.explain.reason, compiled.references
    extra = [
        reason(c.rule_id, f"Condition: {c.description}", cited[c.rule_id]) for c in conditions
    ] + [reason(b.rule_id, _barrier_text(b), cited[b.rule_id]) for b in barriers]
    return IopAssessment(IopVerdict.SUITABLE_WITH_CONDITIONS, (*decided_by, *extra))


def _barrier_text(barrier: Barrier) -> str:
    if not barrier.accommodations:
        return (
            f"Barrier: {barrier.description} No accommodation in this rule set applies; "
            "resolve it with the program before admission."
        )
    lifts = " ".join(a.description for a in barrier.accommodations)
    return f"Barrier: {barrier.description} Accommodations: {lifts}"


def _eliminated_levels(
    compiled: CompiledRuleSet,
    best: int,
    decisive: Sequence[CompiledPlacementRule],
    undetermined: set[str],
) -> tuple[EliminatedLevel, ...]:
    """The levels ruled out and why; memoised per decisive rules when nothing was undetermined
    (a rule set produces few distinct combinations, so the memo stays small)."""
    if undetermined:
        return _eliminated(compiled, best, decisive, undetermined)
    key: tuple[int | str, ...] = (best, *(p.id for p in decisive))
    memo = compiled.eliminated_memo
    cached = memo.get(key)
    if cached is None:
        cached = _eliminated(compiled, best, decisive, undetermined)
        if len(memo) < _MEMO_LIMIT:
            memo[key] = cached
    return cached


_MEMO_LIMIT = 4096


def _eliminated(
    compiled: CompiledRuleSet,
    best: int,
    decisive: Sequence[CompiledPlacementRule],
    undetermined: set[str],
) -> tuple[EliminatedLevel, ...]:
    if compiled.semantics >= 3:
        return _related(compiled, best, decisive, undetermined)
    lower = tuple(p.ruled_out for p in decisive) or (compiled.default_ruled_out,)
    eliminated: list[EliminatedLevel] = []
    for rank, candidate in enumerate(LEVEL_ORDER):
        if rank < best:
            eliminated.append(EliminatedLevel(candidate, lower))
        elif rank > best:
            reasons = (
                level_not_indicated(
                    compiled.safety,
                    compiled.placement,
                    candidate,
                    undetermined,
                    compiled.engine_reasons,
                )
                if undetermined
                else compiled.not_indicated[candidate]
            )
            eliminated.append(EliminatedLevel(candidate, reasons))
    return tuple(eliminated)


def _not_indicated(
    compiled: CompiledRuleSet, candidate: LevelOfCare, undetermined: set[str]
) -> tuple[Reason, ...]:
    if not undetermined:
        return compiled.not_indicated[candidate]
    return level_not_indicated(
        compiled.safety, compiled.placement, candidate, undetermined, compiled.engine_reasons
    )


def _related(
    compiled: CompiledRuleSet,
    best: int,
    decisive: Sequence[CompiledPlacementRule],
    undetermined: set[str],
) -> tuple[EliminatedLevel, ...]:
    """Semantics 3: each level not recommended, with how it relates to the one that is."""
    if LEVEL_ORDER[best] is _EMERGENCY:
        deferred = tuple(p.deferred for p in decisive) or (compiled.default_deferred,)
        return _deferred(_EMERGENCY, deferred)
    exceeded = tuple(p.exceeded for p in decisive) or (compiled.default_exceeded,)
    return tuple(
        RelatedEliminatedLevel(candidate, exceeded, Relation.EXCEEDED)
        if rank < best
        else RelatedEliminatedLevel(
            candidate, _not_indicated(compiled, candidate, undetermined), Relation.NOT_INDICATED
        )
        for rank, candidate in enumerate(LEVEL_ORDER)
        if rank != best
    )


def _deferred(level: LevelOfCare, reasons: tuple[Reason, ...]) -> tuple[EliminatedLevel, ...]:
    """Every level but emergency evaluation waits for it: the evaluation decides them."""
    return tuple(
        RelatedEliminatedLevel(candidate, reasons, Relation.DEFERRED)
        for candidate in LEVEL_ORDER
        if candidate is not level
    )


def _override_eliminated(
    compiled: CompiledRuleSet, level: LevelOfCare, decisive: Sequence[CompiledSafetyRule]
) -> tuple[EliminatedLevel, ...]:
    """The levels a safety override eliminated, and why; memoised per decisive overrides
    (keyed apart from the placement rules' entries by its first element, a string)."""
    key: tuple[int | str, ...] = ("override", *(rule.id for rule in decisive))
    memo = compiled.eliminated_memo
    cached = memo.get(key)
    if cached is None:
        cached = _override_eliminated_now(compiled, level, decisive)
        if len(memo) < _MEMO_LIMIT:
            memo[key] = cached
    return cached


def _override_eliminated_now(
    compiled: CompiledRuleSet, level: LevelOfCare, decisive: Sequence[CompiledSafetyRule]
) -> tuple[EliminatedLevel, ...]:
    """The levels a safety override eliminated, and why (semantics 3 also says how each
    relates to the level it set)."""
    below = tuple(rule.eliminates for rule in decisive if rule.eliminates is not None)
    if compiled.semantics >= 3 and level is _EMERGENCY:
        return _deferred(level, below)
    not_reached = (compiled.engine_reasons.no_override,)
    rank = LEVEL_RANK[level]
    if compiled.semantics < 3:
        return tuple(
            EliminatedLevel(candidate, below if LEVEL_RANK[candidate] < rank else not_reached)
            for candidate in LEVEL_ORDER
            if candidate is not level
        )
    return tuple(
        RelatedEliminatedLevel(candidate, below, Relation.EXCEEDED)
        if LEVEL_RANK[candidate] < rank
        else RelatedEliminatedLevel(candidate, not_reached, Relation.NOT_INDICATED)
        for candidate in LEVEL_ORDER
        if candidate is not level
    )


def _after_override(
    compiled: CompiledRuleSet,
    run: _Run,
    decisive: Sequence[CompiledSafetyRule],
    alerts: Sequence[SafetyAlert],
    scores: tuple[InstrumentScore, ...],
    explained: Mapping[str, Any],
) -> Determination:
    """The determination when safety overrides fired: ``decisive`` are those at the most
    severe level (the first in file order under semantics 1); ``explained``: what semantics 3
    adds."""
    level = decisive[0].override_level
    assert level is not None
    info = compiled.level_info[level]
    reasons = tuple(rule.reason for rule in decisive)
    eliminated = _override_eliminated(compiled, level, decisive)
    missing = run.missing_items()
    return _kind(compiled)(
        status=Status.PARTIAL if missing else Status.COMPLETE,
        missing=missing,
        urgency=_URGENCIES[run.urgency],
        recommended_level=RecommendedLevel(
            level,
            info.label,
            info.aligned_with,
            info.provides_24_hour_care,
            info.adult_hours,
            reasons,
        ),
        iop=IopAssessment(IopVerdict.HIGHER_LEVEL_NEEDED, reasons),
        conditions=(),
        eliminated=eliminated,
        domains=(),
        barriers=(),
        safety_alerts=tuple(alerts),
        scores=scores,
        trace=tuple(run.trace),
        rule_set=compiled.ref,
        engine_version=compiled.engine_version,
        disclaimer=DISCLAIMER,
        **explained,
    )


def _insufficient(
    compiled: CompiledRuleSet,
    run: _Run,
    reasons: Iterable[Reason],
    alerts: Sequence[SafetyAlert],
    scores: tuple[InstrumentScore, ...],
    explained: Mapping[str, Any],
) -> Determination:
    return _kind(compiled)(
        status=Status.INSUFFICIENT_INFORMATION,
        missing=run.missing_items(),
        urgency=_URGENCIES[run.urgency],
        recommended_level=None,
        iop=IopAssessment(IopVerdict.INSUFFICIENT_INFORMATION, tuple(reasons)),
        conditions=(),
        eliminated=(),
        domains=(),
        barriers=(),
        safety_alerts=tuple(alerts),
        scores=scores,
        trace=tuple(run.trace),
        rule_set=compiled.ref,
        engine_version=compiled.engine_version,
        disclaimer=DISCLAIMER,
        **explained,
    )
