"""All SQL about a person's screenings: a few bounded queries, never one per screening."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import load_only

from app.referrals.models import Referral
from app.screenings.models import Decision, Screening

# What the trajectory reads of each screening (never the client or the idempotency key).
READ_COLUMNS = (
    Screening.id,
    Screening.created_at,
    Screening.level,
    Screening.urgency,
    Screening.status,
    Screening.iop_verdict,
    Screening.answers,
    Screening.determination,
)


def _person(tenant: str, person_id: str) -> tuple[Any, ...]:
    return Screening.tenant_id == tenant, Screening.person_id == person_id


class PeopleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def newest_screenings(
        self, tenant: str, person_id: str, limit: int
    ) -> Sequence[Screening]:
        """The ``limit`` newest screenings of ``tenant``'s person, newest first (served by the
        index on tenant, person id, created_at, id)."""
        query = (
            select(Screening)
            .options(load_only(*READ_COLUMNS, raiseload=True))
            .where(Screening.tenant_id == tenant, Screening.person_id == person_id)
            .order_by(Screening.created_at.desc(), Screening.id.desc())
            .limit(limit)
        )
        return (await self.session.execute(query)).scalars().all()

    async def latest_decisions(
        self, tenant: str, screening_ids: Sequence[str]
    ) -> dict[str, tuple[str | None, datetime]]:
        """The latest decision's (final level, created_at) of each screening that has one."""
        query = (
            select(Decision.screening_id, Decision.final_level, Decision.created_at)
            .where(Decision.tenant_id == tenant, Decision.screening_id.in_(screening_ids))
            .order_by(Decision.created_at, Decision.id)
        )
        rows = (await self.session.execute(query)).all()
        return {row[0]: (row[1], row[2]) for row in rows}  # the last one of each wins

    async def latest_referrals(
        self, tenant: str, screening_ids: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        """The latest referral's program id, level and created_at of each screening that has
        one (served by the index on tenant, screening id, created_at)."""
        query = (
            select(Referral.screening_id, Referral.program_id, Referral.level, Referral.created_at)
            .where(Referral.tenant_id == tenant, Referral.screening_id.in_(screening_ids))
            .order_by(Referral.created_at, Referral.id)
        )
        rows = (await self.session.execute(query)).all()
        return {
            row[0]: {"program_id": row[1], "level": row[2], "created_at": row[3]} for row in rows
        }

    async def latest_earlier_decision(
        self, tenant: str, person_id: str, latest_id: str
    ) -> tuple[str | None, datetime] | None:
        """The latest decision (final level, created_at) on any of the person's screenings
        but the latest one, however old."""
        query = (
            select(Decision.final_level, Decision.created_at)
            .join(Screening, Screening.id == Decision.screening_id)
            .where(*_person(tenant, person_id), Screening.id != latest_id)
            .where(Decision.tenant_id == tenant)
            .order_by(Decision.created_at.desc(), Decision.id.desc())
            .limit(1)
        )
        row = (await self.session.execute(query)).first()
        return (row[0], row[1]) if row else None

    async def latest_earlier_referral(
        self, tenant: str, person_id: str, latest_id: str
    ) -> tuple[str, datetime] | None:
        """The latest referral (level, created_at) made from any of the person's screenings
        but the latest one, however old."""
        query = (
            select(Referral.level, Referral.created_at)
            .join(Screening, Screening.id == Referral.screening_id)
            .where(*_person(tenant, person_id), Screening.id != latest_id)
            .where(Referral.tenant_id == tenant)
            .order_by(Referral.created_at.desc(), Referral.id.desc())
            .limit(1)
        )
        row = (await self.session.execute(query)).first()
        return (row[0], row[1]) if row else None

    async def oldest_screenings(
        self, tenant: str, person_id: str, after: datetime | None, limit: int
    ) -> Sequence[Screening]:
        """The person's ``limit`` oldest screenings created after ``after`` (None: of all),
        oldest first: where the current episode's baselines are read."""
        query = (
            select(Screening)
            .options(load_only(*READ_COLUMNS, raiseload=True))
            .where(*_person(tenant, person_id))
            .order_by(Screening.created_at, Screening.id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(Screening.created_at > after)
        return (await self.session.execute(query)).scalars().all()
