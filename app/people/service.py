"""A person's screenings over time: read in a few bounded queries, the trajectory computed by
the pure engine (app/engine/trajectory.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.trail import record
from app.engine.trajectory import (
    EPISODE_SCREENINGS,
    History,
    LevelEvent,
    Score,
    ScreeningPoint,
    Treatment,
    episode_start,
    trajectory,
)
from app.kernel.db import utcnow
from app.kernel.errors import NotFound
from app.people.repository import PeopleRepository
from app.screenings.models import Screening
from app.security.caller import Caller


def not_found(person_id: str) -> NotFound:
    """The same answer for a person unknown to the tenant and one of another tenant's."""
    return NotFound(f"No screening of person '{person_id}'.")


def scores_of(determination: Mapping[str, Any]) -> tuple[Score, ...]:
    """The scores a stored determination holds (instrument, total, severity band, title)."""
    return tuple(
        Score(score["instrument"], score.get("total"), score.get("band"), score.get("title"))
        for score in determination.get("scores") or ()
    )


def treatment_of(answers: Mapping[str, Any]) -> Treatment:
    history = answers.get("treatment_history") or {}
    return Treatment(
        history.get("current_or_recent_level"),
        history.get("weeks_at_current_level"),
        history.get("response_to_current_level"),
        history.get("discharged_last_30_days"),
    )


def _event(level: str | None, at: datetime | None) -> LevelEvent | None:
    return LevelEvent(level, at) if level is not None and at is not None else None


def screening_point(
    row: Screening,
    decision: tuple[str | None, datetime] | None,
    referral: Mapping[str, Any] | None,
) -> ScreeningPoint:
    return ScreeningPoint(
        id=row.id,
        created_at=row.created_at,
        level=row.level,
        urgency=row.urgency,
        status=row.status,
        scores=scores_of(row.determination),
        treatment=treatment_of(row.answers),
        decision=_event(*decision) if decision else None,
        referral=_event(referral["level"], referral["created_at"]) if referral else None,
    )


def _screening_body(
    row: Screening,
    decision: tuple[str | None, datetime] | None,
    referral: Mapping[str, Any] | None,
) -> dict[str, Any]:
    return {
        "id": row.id,
        "created_at": row.created_at,
        "level": row.level,
        "urgency": row.urgency,
        "status": row.status,
        "iop_verdict": row.iop_verdict,
        "scores": {score.instrument: score.total for score in scores_of(row.determination)},
        "latest_decision": (
            {"final_level": decision[0], "created_at": decision[1]} if decision else None
        ),
        "latest_referral": dict(referral) if referral else None,
    }


async def read_history(
    repository: PeopleRepository, tenant: str, person_id: str, latest: ScreeningPoint
) -> History:
    """What the trajectory reads beyond the screenings shown, so that the current level and
    the baselines do not move with ``limit``: the latest referral and decision of any earlier
    screening, and the current episode's first screenings (else the person's first ones)."""
    referral = await repository.latest_earlier_referral(tenant, person_id, latest.id)
    decision = await repository.latest_earlier_decision(tenant, person_id, latest.id)
    found = History(
        referral=_event(*referral) if referral else None,
        decision=_event(*decision) if decision else None,
    )
    since = episode_start(latest, found)
    rows = await repository.oldest_screenings(tenant, person_id, since, EPISODE_SCREENINGS)
    if not rows and since is not None:  # the level was chosen after the latest screening
        rows = await repository.oldest_screenings(tenant, person_id, None, EPISODE_SCREENINGS)
    return dataclasses.replace(found, episode=tuple(screening_point(r, None, None) for r in rows))


class PeopleService:
    """A person's screenings, for a ``Caller``: its tenant's only, the read audited."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def screenings(self, caller: Caller, person_id: str, limit: int) -> dict[str, Any]:
        """The ``limit`` newest screenings of the person, oldest first, and their trajectory;
        NotFound when the tenant has none of that person."""
        async with self.sessions() as session, session.begin():
            repository = PeopleRepository(session)
            rows = list(await repository.newest_screenings(caller.tenant, person_id, limit))
            if not rows:
                raise not_found(person_id)
            ids = [row.id for row in rows]
            decisions = await repository.latest_decisions(caller.tenant, ids)
            referrals = await repository.latest_referrals(caller.tenant, ids)
            latest = screening_point(rows[0], decisions.get(ids[0]), referrals.get(ids[0]))
            history = await read_history(repository, caller.tenant, person_id, latest)
            # A pseudonymous id, not a direct identifier: it may name the resource read.
            record(session, caller, 200, resource_id=person_id, details={"returned": len(rows)})
        rows.reverse()  # oldest first
        points = [screening_point(r, decisions.get(r.id), referrals.get(r.id)) for r in rows]
        found = trajectory(points, utcnow().date(), history)
        return {
            "person_id": person_id,
            "screenings": [
                _screening_body(r, decisions.get(r.id), referrals.get(r.id)) for r in rows
            ],
            **dataclasses.asdict(found),
        }
