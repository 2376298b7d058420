"""The program directory's examples in the OpenAPI document: a request an integrator can send
as it is, and the responses the service's own ``program_body`` makes of it."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from app.programs.models import Program
from app.programs.service import program_body

Json = dict[str, Any]
JSON = "application/json"

PROGRAM_ID = "0193a6f2-7c41-7e0a-9d55-3b8f0c2e6a17"
ADDED_AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
EDITOR = "directory-admin (3f1c9a52-6b0e-4c1d-9f8a-2d7e4b6c8a10)"

EVENING_IOP: Json = {
    "name": "Evening IOP, Riverside clinic",
    "description": "Group and individual therapy three evenings a week, for people who work "
    "or study during the day.",
    "level": "intensive_outpatient",
    "populations": ["adult"],
    "specialties": ["mental_health", "substance_use"],
    "co_occurring_capability": "capable",
    "services": ["moud", "primary_care_coordination"],
    "accepts_people_on_moud": True,
    "modality": "hybrid",
    "timetable": [
        {"day": "monday", "start": "18:00", "end": "21:00", "modality": "in_person"},
        {"day": "wednesday", "start": "18:00", "end": "21:00", "modality": "telehealth"},
        {"day": "thursday", "start": "18:00", "end": "21:00", "modality": "in_person"},
    ],
    "location": {
        "label": "Riverside clinic",
        "address": "400 River Road, Springfield",
        "latitude": 39.7817,
        "longitude": -89.6501,
    },
    "travel_times": [
        {"area": "north-district", "minutes": 25},
        {"area": "riverside", "minutes": 10},
    ],
    "languages": ["en", "es"],
    "capacity": {"places": 24, "open_places": 3, "waitlist_weeks": 1.5},
    "payers": ["medicaid", "self-pay", "state-plan-a"],
    "accepting_referrals": True,
    "contact": {"phone": "+1 555 0100", "email": "intake@riverside.example"},
}


def _row(**fields: Any) -> Program:
    values: Json = {
        "id": PROGRAM_ID,
        "tenant_id": "clinic-a",
        "version": 1,
        "name": EVENING_IOP["name"],
        "level": EVENING_IOP["level"],
        "document": copy.deepcopy(EVENING_IOP),
        "created_at": ADDED_AT,
        "created_by": EDITOR,
        "updated_at": ADDED_AT,
        "updated_by": EDITOR,
        "retired_at": None,
        "retired_by": None,
    }
    return Program(**(values | fields))


def _body(program: Program) -> Json:
    """What the API writes (orjson: timestamps as ``+00:00``)."""
    body: Json = orjson.loads(orjson.dumps(program_body(program)))
    return body


def _example(summary: str, value: Any) -> Json:
    return {"summary": summary, "value": value}


def program_examples() -> dict[tuple[str, str], Json]:
    """Per (METHOD, path), as app/runtime/openapi_examples.py lays them out."""
    request = {JSON: {"evening-iop": _example("An evening hybrid IOP", EVENING_IOP)}}
    added = _body(_row())
    edited = copy.deepcopy(EVENING_IOP)
    edited["capacity"] = {"places": 24, "open_places": 0, "waitlist_weeks": 3}
    later = ADDED_AT + timedelta(days=6)
    replaced = _body(_row(version=2, document=edited, updated_at=later))
    retired = _body(
        _row(
            version=3,
            document=edited,
            updated_at=later,
            retired_at=later + timedelta(days=30),
            retired_by=EDITOR,
        )
    )
    one = "/v1/programs/{program_id}"
    return {
        ("POST", "/v1/programs"): {
            "request": request,
            "responses": {"201": {JSON: {"added": _example("Added (version 1)", added)}}},
        },
        ("GET", "/v1/programs"): {
            "responses": {
                "200": {
                    JSON: {
                        "page": _example("The last page", {"items": [added], "next_cursor": None})
                    }
                }
            }
        },
        ("GET", one): {"responses": {"200": {JSON: {"program": _example("A program", added)}}}},
        ("PUT", one): {
            "request": {JSON: {"full": _example("No places free for three weeks", edited)}},
            "responses": {"200": {JSON: {"edited": _example("Edited (version 2)", replaced)}}},
        },
        ("POST", f"{one}/retire"): {
            "responses": {"200": {JSON: {"retired": _example("Retired (version 3)", retired)}}}
        },
    }
