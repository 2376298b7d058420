"""A program of the tenant's directory as a FHIR R4 ``HealthcareService``. Pure: the resource
follows from the program's document, its id and version and whether it is retired.

The level of care is the ``category`` (searched as ``service-category``), the specialties the
``specialty``, in carelevel's code systems (app/fhir/terminology.py); the populations it admits
are its ``eligibility``, its level, co-occurring capability and services its ``program``s, its
modality a ``characteristic``. The weekly timetable becomes ``availableTime`` (sessions with the
same hours grouped over their days), the languages ``communication`` (BCP 47), the place a
contained ``Location`` (``#loc``), and the capacity and whether it takes referrals
``availabilityExceptions`` (FHIR R4 has no element for a waiting list).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Final

from app.engine.determination import LEVEL_INFO
from app.engine.programs import (
    CoOccurringCapability,
    Day,
    DirectoryEntry,
    Location,
    Population,
    ProgramDocument,
)
from app.fhir.terminology import Vocabulary, program_display

BCP_47: Final = "urn:ietf:bcp:47"
REFERRAL_METHOD: Final = "http://terminology.hl7.org/CodeSystem/service-referral-method"
LOCATION_ID: Final = "loc"
# FHIR's days-of-week codes.
DAYS: Final = {day: day.value[:3] for day in Day}
ELIGIBILITY: Final = {
    Population.ADULT: "Adults (18 and over).",
    Population.ADOLESCENT: "Adolescents (under 18).",
    Population.OLDER_ADULT: "Older adults (65 and over).",
}
CO_OCCURRING: Final = {
    CoOccurringCapability.CAPABLE: "Co-occurring capable",
    CoOccurringCapability.ENHANCED: "Co-occurring enhanced",
}


def healthcare_service(
    vocabulary: Vocabulary, entry: DirectoryEntry, *, retired: bool
) -> dict[str, Any]:
    """The HealthcareService of a program (``retired``: no longer active)."""
    program = entry.program
    level = LEVEL_INFO[program.level].label
    resource: dict[str, Any] = {
        "resourceType": "HealthcareService",
        "id": entry.id,
        "meta": {"versionId": str(entry.version)},
    }
    location = _location(program.location)
    if location is not None:
        resource["contained"] = [location]
    resource["active"] = not retired
    if program.operated_by:
        resource["providedBy"] = {"display": program.operated_by}
    resource["category"] = [{"coding": [vocabulary.level_coding(program.level)], "text": level}]
    resource["specialty"] = [_concept(vocabulary, s) for s in program.specialties]
    if location is not None:
        resource["location"] = [{"reference": f"#{LOCATION_ID}", "display": location["name"]}]
    resource["name"] = program.name
    if program.description:
        resource["comment"] = program.description
    resource |= _contact(program)
    resource["eligibility"] = [
        {"code": _concept(vocabulary, p), "comment": ELIGIBILITY[p]} for p in program.populations
    ]
    resource["program"] = _programs(vocabulary, program)
    resource["characteristic"] = [_concept(vocabulary, program.modality)]
    resource["communication"] = [
        {"coding": [{"system": BCP_47, "code": tag}]} for tag in program.languages
    ]
    resource["referralMethod"] = [
        {"coding": [{"system": REFERRAL_METHOD, "code": "elec", "display": "Secure Messaging"}]}
    ]
    resource["appointmentRequired"] = True
    times = available_times(program)
    if times:
        resource["availableTime"] = times
    resource["availabilityExceptions"] = availability(program)
    return resource


def _concept(vocabulary: Vocabulary, value: Any) -> dict[str, Any]:
    return {"coding": [vocabulary.program_coding(value)], "text": program_display(value.value)}


def _programs(vocabulary: Vocabulary, program: ProgramDocument) -> list[dict[str, Any]]:
    """The level, the co-occurring capability (when it has one) and each service."""
    level_label = LEVEL_INFO[program.level].label
    found = [{"coding": [vocabulary.level_coding(program.level)], "text": level_label}]
    if program.co_occurring_capability in CO_OCCURRING:
        found.append(
            {
                "coding": [vocabulary.program_coding(program.co_occurring_capability)],
                "text": CO_OCCURRING[program.co_occurring_capability],
            }
        )
    found += [_concept(vocabulary, service) for service in program.services]
    return found


def _location(location: Location | None) -> dict[str, Any] | None:
    """The contained Location of the in-person sessions."""
    if location is None:
        return None
    found: dict[str, Any] = {"resourceType": "Location", "id": LOCATION_ID, "name": location.label}
    if location.address:
        found["address"] = {"text": location.address}
    if location.latitude is not None and location.longitude is not None:
        found["position"] = {"longitude": location.longitude, "latitude": location.latitude}
    return found


def _contact(program: ProgramDocument) -> dict[str, Any]:
    contact = program.contact
    if contact is None:
        return {}
    points = (("phone", contact.phone), ("email", contact.email), ("url", contact.url))
    telecom = [
        {"system": system, "value": value, "use": "work"} for system, value in points if value
    ]
    return {"telecom": telecom} if telecom else {}


def available_times(program: ProgramDocument) -> list[dict[str, Any]]:
    """The timetable grouped by hours: one ``availableTime`` per start and end, with every
    day a session has those hours (FHIR times: ``HH:MM:00``)."""
    days: dict[tuple[str, str], list[str]] = defaultdict(list)
    for session in program.timetable:  # in week order (ProgramDocument sorts it)
        hours = days[(session.start, session.end)]
        if DAYS[session.day] not in hours:
            hours.append(DAYS[session.day])
    return [
        {"daysOfWeek": codes, "availableStartTime": f"{start}:00", "availableEndTime": f"{end}:00"}
        for (start, end), codes in sorted(days.items())
    ]


def availability(program: ProgramDocument) -> str:
    """Whether the program takes referrals now, how long the wait is and how many places are
    open, as the tenant last recorded them."""
    parts = [] if program.accepting_referrals else ["Not accepting referrals."]
    capacity = program.capacity
    if capacity.waitlist_weeks is not None:
        weeks = f"{capacity.waitlist_weeks:g}"
        parts.append(f"Estimated wait: {weeks} week{'' if weeks == '1' else 's'}.")
    if capacity.open_places is not None:
        open_places = capacity.open_places
        parts.append(f"{open_places} place{'' if open_places == 1 else 's'} open.")
    return " ".join(parts) or "Accepting referrals."
