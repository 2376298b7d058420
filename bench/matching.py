"""How long the matcher takes over a full directory: 1000 programs (a tenant's most), each
with a 50-row travel-time table, for a person with an origin area and an age group.

    .venv/bin/python bench/matching.py

Prints the median and the slowest of 20 runs of ``match``; it should stay well under 100 ms.
"""

from __future__ import annotations

import statistics
import time

from app.engine.matching import Needs, Origin, Preferences, match
from app.engine.programs import DirectoryEntry, Population, ProgramDocument

PROGRAMS = 1000
AREAS = 50
RUNS = 20


def directory() -> list[DirectoryEntry]:
    days = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
    entries = []
    for index in range(PROGRAMS):
        document = {
            "name": f"Program {index:04d}",
            "level": ("intensive_outpatient", "partial_hospitalization")[index % 2],
            "populations": ["adult", "older_adult"],
            "specialties": ["mental_health", "substance_use"],
            "co_occurring_capability": ("none", "capable", "enhanced")[index % 3],
            "services": ["moud"] if index % 4 else [],
            "modality": ("in_person", "telehealth")[index % 5 == 0],
            "timetable": [
                {
                    "day": day,
                    "start": f"{9 + index % 10:02d}:00",
                    "end": f"{12 + index % 10:02d}:00",
                }
                for day in days[: 3 + index % 3]
            ],
            "location": {"label": "Clinic", "latitude": 39.7, "longitude": -89.6},
            "travel_times": [
                {"area": f"area-{area:02d}", "minutes": (index + area) % 90}
                for area in range(AREAS)
            ],
            "languages": ["en", "es"],
            "capacity": {"open_places": index % 3, "waitlist_weeks": float(index % 7)},
            "payers": ["medicaid", "self-pay"],
        }
        entries.append(DirectoryEntry(f"p{index:04d}", 1, ProgramDocument.model_validate(document)))
    return entries


def main() -> None:
    entries = directory()
    needs = Needs(
        level="intensive_outpatient",
        urgency="urgent",
        population=Population.ADULT,
        risks=("a safety alert",),
        concerns=("mental_health", "substance_use"),
        services=("moud",),
        minimum_hours=9,
        transport="public_transit",
        telehealth_capable=True,
        hours_available=12,
        times_available=("daytime", "evening"),
        preferences=Preferences(Origin(area=f"area-{AREAS - 1:02d}"), ("es",), "medicaid"),
    )
    timings = []
    for _ in range(RUNS):
        started = time.perf_counter()
        match(needs, entries)
        timings.append((time.perf_counter() - started) * 1000)
    print(
        f"match over {PROGRAMS} programs: median {statistics.median(timings):.1f} ms, "
        f"slowest {max(timings):.1f} ms"
    )


if __name__ == "__main__":
    main()
