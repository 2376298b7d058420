"""Score every instrument present in a set of answers, under a rule set's cut-off policies."""

from __future__ import annotations

from collections.abc import Mapping

from app.engine.answers import ScreeningAnswers
from app.engine.instruments import (
    DEFAULT_POLICIES,
    InstrumentId,
    InstrumentPolicy,
    InstrumentScore,
    score_clinician_total,
    score_cssrs,
    score_ordinal,
    score_pc_ptsd5,
    score_yes_no,
)


def score_answers(
    answers: ScreeningAnswers,
    policies: Mapping[InstrumentId, InstrumentPolicy] = DEFAULT_POLICIES,
) -> dict[InstrumentId, InstrumentScore]:
    """Score each instrument that was given, in the fixed order of ``InstrumentId``.

    AUDIT-C is taken from the full AUDIT's first three items when only the AUDIT was given.
    """
    given = answers.instruments
    sex = answers.respondent.sex_for_scoring
    scores: dict[InstrumentId, InstrumentScore] = {}
    if given.phq9 is not None:
        scores[InstrumentId.PHQ9] = score_ordinal(
            InstrumentId.PHQ9, given.phq9.items, policies[InstrumentId.PHQ9]
        )
    if given.phq2 is not None:
        scores[InstrumentId.PHQ2] = score_ordinal(
            InstrumentId.PHQ2, given.phq2.items, policies[InstrumentId.PHQ2]
        )
    if given.gad7 is not None:
        scores[InstrumentId.GAD7] = score_ordinal(
            InstrumentId.GAD7, given.gad7.items, policies[InstrumentId.GAD7]
        )
    audit_c_items = (
        given.audit_c.items
        if given.audit_c is not None
        else given.audit.items[:3]
        if given.audit is not None
        else None
    )
    if audit_c_items is not None:
        score = score_ordinal(
            InstrumentId.AUDIT_C, audit_c_items, policies[InstrumentId.AUDIT_C], sex
        )
        if given.audit_c is None:
            score.notes = (*score.notes, "Derived from AUDIT items 1-3.")
        scores[InstrumentId.AUDIT_C] = score
    if given.audit is not None:
        scores[InstrumentId.AUDIT] = score_ordinal(
            InstrumentId.AUDIT, given.audit.items, policies[InstrumentId.AUDIT]
        )
    if given.dast10 is not None:
        scores[InstrumentId.DAST10] = score_yes_no(
            InstrumentId.DAST10, given.dast10.items, policies[InstrumentId.DAST10]
        )
    if given.cssrs is not None:
        scores[InstrumentId.CSSRS] = score_cssrs(given.cssrs)
    if given.pc_ptsd5 is not None:
        scores[InstrumentId.PC_PTSD5] = score_pc_ptsd5(
            given.pc_ptsd5.trauma_exposure, given.pc_ptsd5.items, policies[InstrumentId.PC_PTSD5]
        )
    if given.scoff is not None:
        scores[InstrumentId.SCOFF] = score_yes_no(
            InstrumentId.SCOFF, given.scoff.items, policies[InstrumentId.SCOFF]
        )
    if given.ciwa_ar is not None:
        scores[InstrumentId.CIWA_AR] = score_clinician_total(
            InstrumentId.CIWA_AR, given.ciwa_ar.total, policies[InstrumentId.CIWA_AR]
        )
    if given.cows is not None:
        scores[InstrumentId.COWS] = score_clinician_total(
            InstrumentId.COWS, given.cows.total, policies[InstrumentId.COWS]
        )
    return scores
