"""Matching a screening's determination against a tenant's program directory.

Pure and deterministic: no I/O, no clock. The REST API, referrals and CDS cards call it with the
stored determination JSON, the answers JSON and the referrer's preferences.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from app.engine.programs import DirectoryEntry

Outcome = Literal["fits", "partly", "does_not_fit", "unknown"]
CRITERIA: tuple[str, ...] = (
    "level",
    "population",
    "specialty",
    "co_occurring",
    "services",
    "language",
    "payer",
    "accepting_referrals",
    "modality",
    "schedule",
    "hours",
    "travel",
    "waitlist",
)


@dataclass(frozen=True)
class Origin:
    """Where the person travels from: an area of the tenant's travel-time tables, or coordinates."""

    area: str | None = None
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True)
class Preferences:
    """What the referrer adds to the screening: origin, preferred languages, payer."""

    origin: Origin | None = None
    languages: tuple[str, ...] = ()
    payer: str | None = None


@dataclass(frozen=True)
class Needs:
    """Everything the matcher reads about the person."""

    level: str | None
    urgency: str
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class Criterion:
    criterion: str
    outcome: Outcome
    explanation: str


@dataclass(frozen=True)
class Candidate:
    program_id: str
    program_version: int
    name: str
    rank: int
    fits: bool
    criteria: tuple[Criterion, ...]
    summary: str
    travel_minutes: int | None
    waitlist_weeks: float | None


@dataclass(frozen=True)
class Matches:
    level: str | None
    urgency: str
    notice: str | None
    candidates: tuple[Candidate, ...]


def needs_for(
    determination: Mapping[str, Any], answers: Mapping[str, Any], preferences: Preferences
) -> Needs:
    """What the person needs, from the determination JSON, the answers JSON and preferences."""
    recommended = determination.get("recommended_level") or {}
    return Needs(level=recommended.get("level"), urgency=str(determination.get("urgency")))


def match(needs: Needs, entries: Sequence[DirectoryEntry]) -> Matches:
    """Every program of the directory judged against the needs, ranked."""
    return Matches(level=needs.level, urgency=needs.urgency, notice=None, candidates=())


def as_json(matches: Matches) -> dict[str, Any]:
    """The matches as JSON (candidates' parts are what a referral stores)."""
    return {
        "level": matches.level,
        "urgency": matches.urgency,
        "notice": matches.notice,
        "candidates": [candidate_json(c) for c in matches.candidates],
    }


def candidate_json(candidate: Candidate) -> dict[str, Any]:
    """One candidate's match explanation as JSON."""
    return {
        "program_id": candidate.program_id,
        "program_version": candidate.program_version,
        "name": candidate.name,
        "rank": candidate.rank,
        "fits": candidate.fits,
        "summary": candidate.summary,
        "travel_minutes": candidate.travel_minutes,
        "waitlist_weeks": candidate.waitlist_weeks,
        "criteria": [
            {"criterion": c.criterion, "outcome": c.outcome, "explanation": c.explanation}
            for c in candidate.criteria
        ],
    }
