"""All SQL on the programs table, always naming the tenant."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, false, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.kernel.pagination import after_row
from app.programs.models import Program

# The first key of the transaction-level advisory lock that serialises the creations of one
# tenant's programs (the second is the tenant's hash), so that two at once cannot both pass
# the limit.
_CREATION_LOCK_CLASS = 0x5052_4F47  # "PROG"


class ProgramRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, program: Program) -> None:
        self.session.add(program)

    async def get(self, tenant: str, program_id: str, *, lock: bool = False) -> Program | None:
        """The program ``program_id`` of ``tenant``; with ``lock``, locked until the
        transaction ends, so that a change reads what the previous one committed. Must then be
        the transaction's first statement (see ``_write_lock_on_sqlite``)."""
        where = (Program.tenant_id == tenant, Program.id == program_id)
        if lock:
            await self._write_lock_on_sqlite(*where)
        query = select(Program).where(*where)
        if lock:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def page(
        self,
        tenant: str,
        *,
        limit: int,
        after: tuple[datetime, str] | None = None,
        level: str | None = None,
        include_retired: bool = False,
    ) -> Sequence[Program]:
        """Programs oldest first; ``after`` is the (created_at, id) of the last one seen."""
        query = select(Program).where(Program.tenant_id == tenant)
        if level is not None:
            query = query.where(Program.level == level)
        if not include_retired:
            query = query.where(Program.retired_at.is_(None))
        if after is not None:
            query = query.where(
                after_row(Program.created_at, Program.id, after, newest_first=False)
            )
        query = query.order_by(Program.created_at, Program.id).limit(limit)
        return (await self.session.execute(query)).scalars().all()

    async def counts(self, tenant: str) -> tuple[int, int]:
        """How many programs ``tenant`` has: (active ones, all of them, retired ones included)."""
        query = select(
            func.count(Program.id).filter(Program.retired_at.is_(None)), func.count(Program.id)
        ).where(Program.tenant_id == tenant)
        active, stored = (await self.session.execute(query)).one()
        return int(active), int(stored)

    async def lock_creations(self, tenant: str) -> None:
        """Hold, until the transaction ends, the lock on creating ``tenant``'s programs, so that
        two creations at once cannot both pass the limit. The transaction's first statement."""
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(
                text("SELECT pg_advisory_xact_lock(:class, hashtext(:tenant))"),
                {"class": _CREATION_LOCK_CLASS, "tenant": tenant},
            )
        else:
            await self._write_lock_on_sqlite(false())

    async def _write_lock_on_sqlite(self, *where: ColumnElement[bool]) -> None:
        """On SQLite, take the database's single write lock (waiting for it up to the busy
        timeout) with a write that changes nothing, as app/rulesets/repository.py does: SQLite
        ignores FOR UPDATE and has no advisory locks. The write opens the transaction, so what
        is read next is what the previous writer committed; it must be the transaction's first
        statement, since the driver runs reads before the first write outside the transaction.
        """
        if self.session.get_bind().dialect.name == "sqlite":
            await self.session.execute(
                update(Program)
                .where(*where)
                .values(id=Program.id)
                .execution_options(synchronize_session=False)
            )
