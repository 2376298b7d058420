"""Versions published before the current semantics replay byte for byte.

``legacy/iop-level-of-care-2026.11.0.yaml`` is the rule set every database created before
2026.12 holds as shared version 1 (engine 1.0.0); ``legacy/iop-level-of-care-2026.12.0.yaml``
is the first shipped version of semantics 2 (engine 2.0.0), stored as shared version 2 by those
databases. Their screenings must keep replaying exactly as they were decided, whatever the
engine learns later: ``legacy/replay-<version>.json`` records, per test case of the document and
per shipped example, the sha256 of the determinations of the case and of a fixed family of
variations of it (items raised, declined, safety answers flipped, abnormal vital signs, sections
left out), as that engine produced them. The variations are frozen here on purpose: changing
them means regenerating the record with the engine that decided those screenings.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from app.engine import ScreeningAnswers, compile_rule_set, determination_to_json, evaluate
from app.engine.compiler import CompiledRuleSet
from app.engine.testing import case_answers

LEGACY = Path(__file__).parent / "legacy"
# label: (shared version number those databases store it as)
LEGACY_VERSIONS = {"2026.11.0": "1", "2026.12.0": "2"}
EXAMPLES = Path(__file__).parents[2] / "examples"
EXAMPLE_NAMES = (
    "adult-iop-suitable",
    "emergency-suicide-risk",
    "adolescent-step-down",
    "adult-iop-with-barriers",
    "insufficient-information",
)

_ORDINAL_MAX = {"phq9": 3, "phq2": 3, "gad7": 3, "audit_c": 4, "audit": 4}
_YES_NO = ("dast10", "scoff")
_TOTALS = {"ciwa_ar": (0, 9, 10, 18, 19, 67), "cows": (0, 12, 13, 36, 37, 48)}
_SAFETY_FLAGS = (
    "recent_violence",
    "psychosis_or_mania_unable_to_self_care",
    "severe_cognitive_impairment",
    "acutely_intoxicated",
    "dependents_at_risk",
)
_ABNORMAL_MEDICAL: tuple[dict[str, Any], ...] = (
    {"heart_rate_bpm": 35},
    {"potassium_mmol_l": 2.5},
    {"systolic_bp_mmhg": 75, "diastolic_bp_mmhg": 45},
    {"glucose_mg_dl": 45},
    {"temperature_c": 34.5},
    {"percent_healthy_body_weight": 70.0},
    {"pregnant": True},
    {"acute_condition_needing_hospital_care": True},
)
_SECTIONS = (
    "safety",
    "withdrawal",
    "medical",
    "functioning",
    "co_occurring",
    "treatment_history",
    "engagement",
    "supports",
    "logistics",
)


def _variations(answers: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The answers, then each frozen single change of them (some may be invalid)."""
    yield answers
    yield from _ordinal_item_changes(answers)
    yield from _yes_no_item_changes(answers)
    yield from _withdrawal_total_changes(answers)
    yield from _safety_changes(answers)
    yield from _withdrawal_changes(answers)
    yield from _medical_changes(answers)
    yield from _respondent_changes(answers)
    yield from _sections_left_out(answers)


def _ordinal_item_changes(answers: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Each ordinal item at its top score, then declined (AUDIT-C follows AUDIT items 1-3)."""
    instruments = answers.get("instruments", {})
    for name, top in _ORDINAL_MAX.items():
        items = instruments.get(name, {}).get("items")
        for index in range(len(items or ())):
            for value in (top if not (name == "audit" and index >= 8) else 4, "declined"):
                changed = copy.deepcopy(answers)
                changed["instruments"][name]["items"][index] = value
                if name == "audit" and "audit_c" in instruments and index < 3:
                    changed["instruments"]["audit_c"]["items"][index] = value
                yield changed


def _yes_no_item_changes(answers: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Each yes/no item flipped (a declined one answered yes), then declined."""
    instruments = answers.get("instruments", {})
    for name in _YES_NO:
        items = instruments.get(name, {}).get("items")
        for index in range(len(items or ())):
            for value in (not items[index] if items[index] != "declined" else True, "declined"):
                changed = copy.deepcopy(answers)
                changed["instruments"][name]["items"][index] = value
                yield changed


def _withdrawal_total_changes(answers: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """CIWA-Ar and COWS given, at each of their frozen totals."""
    for name, totals in _TOTALS.items():
        for total in totals:
            changed = copy.deepcopy(answers)
            changed.setdefault("instruments", {})[name] = {"total": total}
            yield changed


def _safety_changes(answers: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Each safety flag flipped, then each homicidal ideation answer."""
    for flag in _SAFETY_FLAGS:
        changed = copy.deepcopy(answers)
        section = changed.setdefault("safety", {})
        section[flag] = not section.get(flag, False)
        yield changed
    for ideation in ("none", "thoughts", "intent_or_plan"):
        changed = copy.deepcopy(answers)
        changed.setdefault("safety", {})["homicidal_ideation"] = ideation
        yield changed


def _withdrawal_changes(answers: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Each set of substances used heavily every day, then each withdrawal flag flipped."""
    for substances in ([], ["alcohol"], ["sedatives"], ["opioids"], ["alcohol", "opioids"]):
        changed = copy.deepcopy(answers)
        changed.setdefault("withdrawal", {})["heavy_daily_use"] = substances
        yield changed
    for flag in ("seizure_or_delirium_history", "complicated_signs_now"):
        changed = copy.deepcopy(answers)
        section = changed.setdefault("withdrawal", {})
        section[flag] = not section.get(flag, False)
        yield changed


def _medical_changes(answers: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Each abnormal vital sign or result, or hospital-level finding."""
    for patch in _ABNORMAL_MEDICAL:
        changed = copy.deepcopy(answers)
        changed.setdefault("medical", {}).update(patch)
        yield changed


def _respondent_changes(answers: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Each single presenting concern, then each age group."""
    for concerns in (["mental_health"], ["substance_use"], ["eating_disorder"]):
        changed = copy.deepcopy(answers)
        changed["presenting_concerns"] = concerns
        yield changed
    for age_group in ("adult", "adolescent"):
        changed = copy.deepcopy(answers)
        changed["respondent"]["age_group"] = age_group
        yield changed


def _sections_left_out(answers: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Each section given, left out."""
    for section in _SECTIONS:
        if section in answers:
            changed = copy.deepcopy(answers)
            del changed[section]
            yield changed


def _fingerprint(compiled: CompiledRuleSet, answers: dict[str, Any]) -> tuple[str, int]:
    digest = hashlib.sha256()
    evaluated = 0
    for variation in _variations(answers):
        try:
            validated = ScreeningAnswers.model_validate(variation)
        except ValidationError:
            digest.update(b"invalid\n")
            continue
        digest.update(determination_to_json(evaluate(compiled, validated)) + b"\n")
        evaluated += 1
    return digest.hexdigest(), evaluated


def fingerprints(compiled: CompiledRuleSet) -> dict[str, str]:
    """Per test case and example: the sha256 of its determinations and its variations'."""
    result = {}
    for case in compiled.document.tests:
        result[f"case: {case.name}"] = _fingerprint(compiled, case_answers(compiled, case))[0]
    for name in EXAMPLE_NAMES:
        answers = json.loads((EXAMPLES / f"{name}.json").read_text())
        result[f"example: {name}"] = _fingerprint(compiled, answers)[0]
    return result


def legacy_rule_set(label: str = "2026.11.0") -> CompiledRuleSet:
    """A legacy shipped version as databases store it (2026.11.0: shared version 1)."""
    document = LEGACY / f"iop-level-of-care-{label}.yaml"
    return compile_rule_set(document.read_text("utf-8"), version=LEGACY_VERSIONS[label])


def _record(label: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads((LEGACY / f"replay-{label}.json").read_text())
    return record


@pytest.mark.parametrize("label", LEGACY_VERSIONS)
def test_the_legacy_document_keeps_its_identity(label: str) -> None:
    record = _record(label)
    compiled = legacy_rule_set(label)
    assert compiled.ref.sha256 == record["sha256"]
    assert compiled.engine_version == record["engine_version"]


@pytest.mark.parametrize("label", LEGACY_VERSIONS)
def test_screenings_decided_by_a_legacy_version_replay_byte_for_byte(label: str) -> None:
    record = _record(label)
    got = fingerprints(legacy_rule_set(label))
    changed = sorted(name for name, digest in record["fingerprints"].items() if got[name] != digest)
    assert changed == []
    assert got.keys() == record["fingerprints"].keys()
