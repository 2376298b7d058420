"""Score every instrument present in a set of answers, under a rule set's cut-off policies."""

from __future__ import annotations

from collections.abc import Mapping

from app.engine.answers import AgeGroup, Instruments, ScreeningAnswers
from app.engine.instruments import (
    DEFAULT_POLICIES,
    InstrumentId,
    InstrumentPolicy,
    InstrumentScore,
    ScoringSex,
    score_asq,
    score_clinician_total,
    score_crafft,
    score_cssrs,
    score_ordinal,
    score_pc_ptsd5,
    score_yes_no,
)

# Enum members bound once: class-attribute access on an Enum costs a metaclass lookup.
_ASQ = InstrumentId.ASQ
_AUDIT = InstrumentId.AUDIT
_AUDIT_C = InstrumentId.AUDIT_C
_CIWA_AR = InstrumentId.CIWA_AR
_COWS = InstrumentId.COWS
_CRAFFT = InstrumentId.CRAFFT
_CSSRS = InstrumentId.CSSRS
_DAST10 = InstrumentId.DAST10
_GAD7 = InstrumentId.GAD7
_PC_PTSD5 = InstrumentId.PC_PTSD5
_PHQ2 = InstrumentId.PHQ2
_PHQ9 = InstrumentId.PHQ9
_SCOFF = InstrumentId.SCOFF


_ADOLESCENT_NOTE = "Scored with the rule set's adolescent cut-offs."

_Policies = Mapping[InstrumentId, InstrumentPolicy]
_Scores = dict[InstrumentId, InstrumentScore]


def score_answers(
    answers: ScreeningAnswers,
    policies: Mapping[InstrumentId, InstrumentPolicy] = DEFAULT_POLICIES,
) -> dict[InstrumentId, InstrumentScore]:
    """Score each instrument that was given, in the fixed order of ``InstrumentId``.

    AUDIT-C is taken from the full AUDIT's first three items when only the AUDIT was given.
    An adolescent is scored with the rule set's adolescent cut-offs where it gives them.
    """
    given = answers.instruments
    adolescent_cut_offs: tuple[InstrumentId, ...] = ()
    if answers.respondent.age_group is AgeGroup.ADOLESCENT:
        adolescent_cut_offs = tuple(i for i, p in policies.items() if p.adolescent is not None)
        if adolescent_cut_offs:
            policies = {i: policy.for_respondent(True) for i, policy in policies.items()}
    # Each group adds its scores in turn, which keeps the order of ``InstrumentId``.
    scores: dict[InstrumentId, InstrumentScore] = {}
    _score_depression_and_anxiety(given, policies, scores)
    _score_substance_use(given, policies, answers.respondent.sex_for_scoring, scores)
    _score_suicide_risk_trauma_and_eating(given, policies, scores)
    _score_withdrawal(given, policies, scores)
    _score_youth_screens(given, policies, scores)
    for instrument in adolescent_cut_offs:
        adjusted = scores.get(instrument)
        if adjusted is not None:
            adjusted.notes = (*adjusted.notes, _ADOLESCENT_NOTE)
    return scores


def _score_depression_and_anxiety(given: Instruments, policies: _Policies, scores: _Scores) -> None:
    """Add the PHQ-9, PHQ-2 and GAD-7 scores, for those given."""
    if given.phq9 is not None:
        scores[_PHQ9] = score_ordinal(_PHQ9, given.phq9.items, policies[_PHQ9])
    if given.phq2 is not None:
        scores[_PHQ2] = score_ordinal(_PHQ2, given.phq2.items, policies[_PHQ2])
    if given.gad7 is not None:
        scores[_GAD7] = score_ordinal(_GAD7, given.gad7.items, policies[_GAD7])


def _score_substance_use(
    given: Instruments, policies: _Policies, sex: ScoringSex, scores: _Scores
) -> None:
    """Add the AUDIT-C (with the cut-off for ``sex``), AUDIT and DAST-10 scores, for those
    given; AUDIT-C is derived from the AUDIT's first three items when only the AUDIT was."""
    audit_c_items = (
        given.audit_c.items
        if given.audit_c is not None
        else given.audit.items[:3]
        if given.audit is not None
        else None
    )
    if audit_c_items is not None:
        score = score_ordinal(_AUDIT_C, audit_c_items, policies[_AUDIT_C], sex)
        if given.audit_c is None:
            score.notes = (*score.notes, "Derived from AUDIT items 1-3.")
        scores[_AUDIT_C] = score
    if given.audit is not None:
        scores[_AUDIT] = score_ordinal(_AUDIT, given.audit.items, policies[_AUDIT])
    if given.dast10 is not None:
        scores[_DAST10] = score_yes_no(_DAST10, given.dast10.items, policies[_DAST10])


def _score_suicide_risk_trauma_and_eating(
    given: Instruments, policies: _Policies, scores: _Scores
) -> None:
    """Add the C-SSRS, PC-PTSD-5 and SCOFF scores, for those given."""
    if given.cssrs is not None:
        scores[_CSSRS] = score_cssrs(given.cssrs)
    if given.pc_ptsd5 is not None:
        scores[_PC_PTSD5] = score_pc_ptsd5(
            given.pc_ptsd5.trauma_exposure, given.pc_ptsd5.items, policies[_PC_PTSD5]
        )
    if given.scoff is not None:
        scores[_SCOFF] = score_yes_no(_SCOFF, given.scoff.items, policies[_SCOFF])


def _score_withdrawal(given: Instruments, policies: _Policies, scores: _Scores) -> None:
    """Add the clinician-rated withdrawal totals (CIWA-Ar, COWS), for those given."""
    if given.ciwa_ar is not None:
        scores[_CIWA_AR] = score_clinician_total(_CIWA_AR, given.ciwa_ar.total, policies[_CIWA_AR])
    if given.cows is not None:
        scores[_COWS] = score_clinician_total(_COWS, given.cows.total, policies[_COWS])


def _score_youth_screens(given: Instruments, policies: _Policies, scores: _Scores) -> None:
    """Add the CRAFFT 2.1 and ASQ results, for those given."""
    if given.crafft is not None:
        scores[_CRAFFT] = score_crafft(given.crafft.items, policies[_CRAFFT])
    if given.asq is not None:
        scores[_ASQ] = score_asq(given.asq.items, given.asq.acute)
