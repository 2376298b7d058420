"""All SQL about a person's screenings: three bounded queries, never one per screening."""

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
