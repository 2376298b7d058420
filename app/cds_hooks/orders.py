"""Which level of care a drafted referral (ServiceRequest) is to, from its codes: carelevel's
own level codes, the standard codes EHRs put on behavioral-health referrals (HCPCS, and SNOMED
CT where app/fhir/terminology.py holds verified concepts), and the codes a tenant's EHR uses
locally (its CDS client's ``local_codes``). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.engine.determination import LEVEL_INFO, LevelOfCare
from app.fhir.terminology import SNOMED_REFERRALS

# Billing codes EHRs put on behavioral-health referrals (HCPCS).
HCPCS_SYSTEMS = (
    "urn:oid:2.16.840.1.113883.6.285",
    "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
)
HCPCS_LEVELS = {
    "H0015": LevelOfCare.INTENSIVE_OUTPATIENT,
    "S9480": LevelOfCare.INTENSIVE_OUTPATIENT,
    "H0035": LevelOfCare.PARTIAL_HOSPITALIZATION,
}

SNOMED = "http://snomed.info/sct"
CodeKey = tuple[str, str]  # (system, code)


def standard_codes() -> dict[CodeKey, LevelOfCare]:
    """The standard codes carelevel knows for levels of care: HCPCS, and the SNOMED CT
    referral concepts of app/fhir/terminology.py (``SNOMED_REFERRALS``, level → (code,
    display), verified there) that name one level alone: a concept terminology uses for
    several levels (e.g. "Referral to mental health team") says nothing about which."""
    known = {
        (system, code): level for system in HCPCS_SYSTEMS for code, level in HCPCS_LEVELS.items()
    }
    levels_of: dict[str, set[LevelOfCare]] = {}
    for level, (code, _display) in SNOMED_REFERRALS.items():
        levels_of.setdefault(code, set()).add(level)
    for code, levels in levels_of.items():
        if len(levels) == 1:
            known[(SNOMED, code)] = next(iter(levels))
    return known


def code_map(local_codes: Mapping[str, LevelOfCare]) -> dict[CodeKey, LevelOfCare]:
    """Standard codes, then the tenant's ``system|code`` mapping (which wins: the EHR knows
    what its own codes, and its use of standard ones, mean)."""
    mapped = standard_codes()
    for key, level in local_codes.items():
        system, _, code = key.partition("|")
        mapped[(system, code)] = level
    return mapped


def ordered_level(
    resource: Mapping[str, Any], codes: Mapping[CodeKey, LevelOfCare]
) -> LevelOfCare | None:
    """The level of care a drafted ServiceRequest refers to, when one of its codings says."""
    concept = resource.get("code")
    codings = concept.get("coding") if isinstance(concept, dict) else None
    for coding in codings if isinstance(codings, list) else []:
        if not isinstance(coding, dict):
            continue
        system, code = coding.get("system"), coding.get("code")
        if not isinstance(system, str) or not isinstance(code, str):
            continue
        level = _own_level(system, code) or codes.get((system, code))
        if level is not None:
            return level
    return None


def _own_level(system: str, code: str) -> LevelOfCare | None:
    if not system.endswith("/CodeSystem/level-of-care"):
        return None
    try:
        return LevelOfCare(code)
    except ValueError:
        return None


def difference(
    draft_orders: Mapping[str, Any],
    selections: list[str],
    recommended: Mapping[str, Any] | None,
    codes: Mapping[CodeKey, LevelOfCare],
) -> str | None:
    """A sentence when a selected referral goes to another level than ``recommended`` (the
    determination's ``recommended_level``)."""
    selected = set(selections)
    for entry in draft_orders.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or resource.get("resourceType") != "ServiceRequest":
            continue
        if f"ServiceRequest/{resource.get('id')}" not in selected:
            continue
        ordered = ordered_level(resource, codes)
        if ordered is None or recommended is None or ordered.value == recommended["level"]:
            continue
        return (
            f"**The selected referral is to {LEVEL_INFO[ordered].label}; the screening "
            f"recommends {recommended['label']}.**"
        )
    return None
