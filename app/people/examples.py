"""The documented answer of GET /v1/people/{person_id}/screenings (merged into the OpenAPI
document's examples by app/runtime/openapi_examples.py), computed by the trajectory
itself from three made-up screenings (PHQ-9 20, 14, 8; referred to a day program, improving
there, then IOP recommended), so the document cannot drift from what the service says."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from app.engine.trajectory import LevelEvent, Score, ScreeningPoint, Treatment, trajectory

PERSON_ID = "p-3f9a1c7e5b2d4f60"
_START = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
_IDS = (
    "019a4a1e-3c00-7000-8000-000000000001",
    "019a6e2b-1f00-7000-8000-000000000002",
    "019a9237-0b00-7000-8000-000000000003",
)
DAY_PROGRAM_ID = "0193a6f2-7c41-7e0a-9d55-3b8f0c2e6a20"
_VISITS = (
    # (days after the first, level recommended, level referred to, PHQ-9, its band, GAD-7, its
    # band): referred to a day program after the first screening, the person is in it at the
    # next two, so the second one is the current episode's baseline.
    (0, "partial_hospitalization", "partial_hospitalization", 20, "severe", 15, "severe"),
    (21, "intensive_outpatient", None, 14, "moderate", 11, "moderate"),
    (42, "intensive_outpatient", None, 8, "mild", 9, "mild"),
)


_VERDICTS = {"partial_hospitalization": "higher_level_needed", "intensive_outpatient": "suitable"}


def _points() -> list[ScreeningPoint]:
    points = []
    for screening_id, (days, level, referred, phq9, phq9_band, gad7, gad7_band) in zip(
        _IDS, _VISITS, strict=True
    ):
        at = _START + timedelta(days=days)
        points.append(
            ScreeningPoint(
                id=screening_id,
                created_at=at,
                level=level,
                urgency="routine",
                status="complete",
                scores=(
                    Score("phq9", phq9, phq9_band, "PHQ-9"),
                    Score("gad7", gad7, gad7_band, "GAD-7"),
                ),
                treatment=Treatment("partial_hospitalization" if days else "outpatient"),
                referral=LevelEvent(referred, at + timedelta(hours=2)) if referred else None,
            )
        )
    return points


def person_screenings_example() -> dict[str, Any]:
    points = _points()
    screenings = [
        {
            "id": point.id,
            "created_at": point.created_at,
            "level": point.level,
            "urgency": point.urgency,
            "status": point.status,
            "iop_verdict": _VERDICTS[point.level or ""],
            "scores": {score.instrument: score.total for score in point.scores},
            "latest_decision": None,
            "latest_referral": {
                "program_id": DAY_PROGRAM_ID,
                "level": point.referral.level,
                "created_at": point.referral.at,
            }
            if point.referral
            else None,
        }
        for point in points
    ]
    today = points[-1].created_at.date() + timedelta(days=3)
    body = {
        "person_id": PERSON_ID,
        "screenings": screenings,
        **dataclasses.asdict(trajectory(points, today)),
    }
    decoded: dict[str, Any] = orjson.loads(orjson.dumps(body))
    return decoded


def people_examples() -> dict[tuple[str, str], dict[str, Any]]:
    """The examples of the people operations, as ``operation_examples`` lists them."""
    example = {
        "summary": "PHQ-9 20, 14, 8: improving in a day program, IOP recommended",
        "value": person_screenings_example(),
    }
    return {
        ("GET", "/v1/people/{person_id}/screenings"): {
            "responses": {"200": {"application/json": {"improving": example}}}
        }
    }
