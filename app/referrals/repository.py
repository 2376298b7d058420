"""All SQL on the referrals table, always naming the tenant."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.referrals.models import Referral


class ReferralRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, referral: Referral) -> None:
        self.session.add(referral)

    async def of_screening(self, tenant: str, screening_id: str, limit: int) -> Sequence[Referral]:
        """The screening's referrals, newest first."""
        query = (
            select(Referral)
            .where(Referral.tenant_id == tenant, Referral.screening_id == screening_id)
            .order_by(Referral.created_at.desc(), Referral.id.desc())
            .limit(limit)
        )
        return (await self.session.execute(query)).scalars().all()

    async def count(self, tenant: str, screening_id: str) -> int:
        query = select(func.count(Referral.id)).where(
            Referral.tenant_id == tenant, Referral.screening_id == screening_id
        )
        return int((await self.session.execute(query)).scalar_one())
