"""Matching's and referrals' examples in the OpenAPI document, made by the matcher and the
service's own ``referral_body`` from the documented answers and three made-up programs, so the
document cannot drift from what the service says."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

import orjson

from app.engine import ScreeningAnswers, default_rule_set, determination_to_json, evaluate
from app.engine.answers import EXAMPLE_SECTIONS
from app.engine.matching import Preferences, candidate_json, judge, match, needs_for
from app.engine.programs import DirectoryEntry, ProgramDocument
from app.referrals.models import Referral
from app.referrals.schemas import EXAMPLE_PROGRAM_ID, EXAMPLE_REFERRAL_ID, EXAMPLE_SCREENING_ID
from app.referrals.service import ranked, referral_body

Json = dict[str, Any]
JSON = "application/json"
REFERRED_AT = datetime(2026, 12, 3, 14, 5, tzinfo=UTC)
_EVENINGS = [
    {"day": day, "start": "18:00", "end": "21:00", "modality": "in_person"}
    for day in ("monday", "wednesday", "thursday")
]
_PROGRAMS: tuple[tuple[str, Json], ...] = (
    (
        EXAMPLE_PROGRAM_ID,
        {
            "name": "Evening IOP, Riverside clinic",
            "level": "intensive_outpatient",
            "populations": ["adult", "older_adult"],
            "specialties": ["mental_health", "substance_use"],
            "co_occurring_capability": "capable",
            "modality": "hybrid",
            "timetable": _EVENINGS,
            "travel_times": [{"area": "riverside", "minutes": 15}],
            "languages": ["en", "es"],
            "capacity": {"places": 24, "open_places": 2},
            "payers": ["medicaid", "self-pay"],
            "contact": {"phone": "+1 555 0100"},
        },
    ),
    (
        "8e1f4b2c-0d3a-4f5e-9b6c-7a8d9e0f1a2b",
        {
            "name": "Teen IOP, Oak Street",
            "level": "intensive_outpatient",
            "populations": ["adolescent"],
            "specialties": ["mental_health", "substance_use"],
            "co_occurring_capability": "capable",
            "modality": "in_person",
            "timetable": [
                {"day": day, "start": "15:30", "end": "18:30"}
                for day in ("tuesday", "wednesday", "friday")
            ],
            "travel_times": [{"area": "riverside", "minutes": 30}],
            "languages": ["en"],
            "capacity": {"places": 12, "open_places": 1},
        },
    ),
    (
        "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f",
        {
            "name": "Day program, County hospital",
            "level": "partial_hospitalization",
            "populations": ["adult"],
            "specialties": ["mental_health", "substance_use"],
            "co_occurring_capability": "enhanced",
            "modality": "in_person",
            "timetable": [
                {"day": day, "start": "09:00", "end": "15:00"}
                for day in ("monday", "tuesday", "wednesday", "thursday", "friday")
            ],
            "travel_times": [{"area": "riverside", "minutes": 40}],
            "languages": ["en"],
            "capacity": {"waitlist_weeks": 2},
        },
    ),
)
PREFERENCES: Json = {"origin": {"area": "riverside"}, "languages": ["es"], "payer": "medicaid"}


def _entries() -> list[DirectoryEntry]:
    return [DirectoryEntry(pid, 1, ProgramDocument.model_validate(doc)) for pid, doc in _PROGRAMS]


def _preferences() -> Preferences:
    from app.referrals.schemas import PreferencesIn

    return PreferencesIn.model_validate(PREFERENCES).preferences()


@cache
def _determination() -> Json:
    answers = ScreeningAnswers.model_validate(EXAMPLE_SECTIONS)
    found: Json = orjson.loads(determination_to_json(evaluate(default_rule_set(), answers)))
    return found


def _matches() -> Json:
    answers = ScreeningAnswers.model_validate(EXAMPLE_SECTIONS).model_dump(
        mode="json", exclude_none=True
    )
    entries = _entries()
    matches = match(needs_for(_determination(), answers, _preferences()), entries)
    body = ranked(EXAMPLE_SCREENING_ID, matches, entries, 10)
    wired: Json = orjson.loads(orjson.dumps(body))
    return wired


def _referral() -> Json:
    entry = _entries()[0]
    needs = needs_for(_determination(), EXAMPLE_SECTIONS, _preferences())
    referral = Referral(
        id=EXAMPLE_REFERRAL_ID,
        tenant_id="clinic-a",
        client_id="intake-web",
        screening_id=EXAMPLE_SCREENING_ID,
        screening_created_at=REFERRED_AT,
        created_at=REFERRED_AT,
        program_id=entry.id,
        program_version=entry.version,
        program=entry.program.model_dump(mode="json"),
        level=entry.program.level.value,
        match=candidate_json(judge(needs, entry)),
        referred_by="clinician-042",
        note="Prefers the Wednesday telehealth session.",
        source="api",
    )
    wired: Json = orjson.loads(orjson.dumps(referral_body(referral)))
    return wired


def _example(summary: str, value: Any) -> Json:
    return {"summary": summary, "value": value}


def referral_examples() -> dict[tuple[str, str], Json]:
    """Per (METHOD, path), as app/runtime/openapi_examples.py lays them out."""
    referrals = "/v1/screenings/{screening_id}/referrals"
    referral = _referral()
    return {
        ("POST", "/v1/program-matches"): {
            "request": {
                JSON: {
                    "stored": _example(
                        "A stored screening, from the Riverside area",
                        {"screening_id": EXAMPLE_SCREENING_ID, "preferences": PREFERENCES},
                    ),
                    "answers": _example(
                        "Answers evaluated now", {"answers": EXAMPLE_SECTIONS, "limit": 5}
                    ),
                }
            },
            "responses": {"200": {JSON: {"ranked": _example("Three programs", _matches())}}},
        },
        ("POST", referrals): {
            "request": {
                JSON: {
                    "referral": _example(
                        "To the evening IOP",
                        {
                            "program_id": EXAMPLE_PROGRAM_ID,
                            "program_version": 1,
                            "referred_by": "clinician-042",
                            "note": "Prefers the Wednesday telehealth session.",
                            "preferences": PREFERENCES,
                        },
                    )
                }
            },
            "responses": {"201": {JSON: {"referral": _example("Recorded", referral)}}},
        },
        ("GET", referrals): {
            "responses": {"200": {JSON: {"list": _example("One referral", {"items": [referral]})}}}
        },
        ("GET", referrals + "/{referral_id}"): {
            "responses": {"200": {JSON: {"referral": _example("The referral", referral)}}}
        },
    }
