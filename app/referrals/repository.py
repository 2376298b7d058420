"""All SQL on the referrals table, and the locks that recording one takes; always naming the
tenant."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.programs.models import Program
from app.referrals.models import Referral

# The first key of the transaction-level advisory lock that serialises the referrals of one
# screening (the second is the screening id's hash), so that two at once cannot both pass
# the per-screening limit.
_REFERRALS_LOCK_CLASS = 0x5245_4652  # "REFR"


class ReferralRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, referral: Referral) -> None:
        self.session.add(referral)

    async def program(self, tenant: str, program_id: str) -> Program | None:
        """The program referred to, locked until the transaction ends, so that it is not edited
        or retired while the referral is recorded.

        PostgreSQL share-locks the row (SELECT … FOR SHARE: referrals to one program do not
        wait for each other, an edit waits for them). SQLite has no row locks: there the lock
        is a write that changes nothing, which takes the database's single write lock and
        opens the transaction (see ``RuleSetRepository.rule_set``). It must be the
        transaction's first statement."""
        if self.session.get_bind().dialect.name == "sqlite":
            await self.session.execute(
                update(Program)
                .where(Program.tenant_id == tenant, Program.id == program_id)
                .values(version=Program.version)
                .execution_options(synchronize_session=False)
            )
        query = (
            select(Program)
            .where(Program.tenant_id == tenant, Program.id == program_id)
            .with_for_update(read=True)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def lock_referrals_of(self, screening_id: str) -> None:
        """Hold, until the transaction ends, the lock on recording the screening's referrals
        (PostgreSQL; on SQLite ``program`` took the database's write lock already)."""
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(
                text("SELECT pg_advisory_xact_lock(:class, hashtext(:screening))"),
                {"class": _REFERRALS_LOCK_CLASS, "screening": screening_id},
            )

    async def get(self, tenant: str, screening_id: str, referral_id: str) -> Referral | None:
        """The screening's referral ``referral_id``."""
        query = select(Referral).where(
            Referral.tenant_id == tenant,
            Referral.screening_id == screening_id,
            Referral.id == referral_id,
        )
        return (await self.session.execute(query)).scalar_one_or_none()

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
