"""All SQL on the programs table, always naming the tenant."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, false, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.kernel.pagination import after_row
from app.programs.models import Program

# The first key of the transaction-level advisory lock that serialises the creations of one
# tenant's programs (the second is the tenant's hash), so that two at once cannot both pass
# the limit.
_CREATION_LOCK_CLASS = 0x5052_4F47  # "PROG"
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True, slots=True)
class ProgramCriteria:
    """What a search of a tenant's programs asks for. Each tuple's alternatives are ORed (a
    program meets one of them), the tuples ANDed. ``retired``: None for either state.
    ``name_prefixes``: the name starts with one of them, ignoring the case of A to Z only;
    other letters, accented ones included, compare as written (a folded name would need a
    column of its own, and SQL folds accents in no way both PostgreSQL and SQLite share)."""

    ids: tuple[frozenset[str], ...] = ()
    retired: bool | None = None
    name_prefixes: tuple[tuple[str, ...], ...] = ()
    levels: tuple[frozenset[str], ...] = ()


def ascii_lower(text: str) -> str:
    """``text`` in Unicode's composed form with A to Z lowered, as the name search compares."""
    return unicodedata.normalize("NFC", text).translate(_ASCII_LOWER)


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

    async def search(
        self,
        tenant: str,
        criteria: ProgramCriteria,
        *,
        limit: int,
        after: tuple[datetime, str] | None = None,
    ) -> Sequence[Program]:
        """The programs that meet ``criteria``, oldest first, retired ones included unless
        ``criteria`` says; ``after`` is the (created_at, id) of the last one seen. One query,
        a seek of the tenant's (created_at, id) index."""
        query = select(Program).where(Program.tenant_id == tenant)
        if criteria.retired is not None:
            in_use = Program.retired_at.is_(None)
            query = query.where(~in_use if criteria.retired else in_use)
        for ids in criteria.ids:
            query = query.where(Program.id.in_(sorted(ids)) if ids else false())
        for levels in criteria.levels:
            query = query.where(Program.level.in_(sorted(levels)) if levels else false())
        name = self._lowered_name()
        for prefixes in criteria.name_prefixes:
            query = query.where(or_(false(), *(_starts(name, p) for p in prefixes)))
        if after is not None:
            query = query.where(
                after_row(Program.created_at, Program.id, after, newest_first=False)
            )
        query = query.order_by(Program.created_at, Program.id).limit(limit)
        return (await self.session.execute(query)).scalars().all()

    def _lowered_name(self) -> ColumnElement[str]:
        """The name with A to Z lowered and nothing else: SQLite's ``lower`` does just that;
        PostgreSQL's does under the C collation (under another it lowers by that locale)."""
        if self.session.get_bind().dialect.name == "postgresql":
            return func.lower(Program.name.collate("C"))
        return func.lower(Program.name)


def _starts(name: ColumnElement[str], prefix: str) -> ColumnElement[bool]:
    # A substring compared, not LIKE: no wildcard in the prefix to escape.
    lowered = ascii_lower(prefix)
    return func.substr(name, 1, len(lowered)) == lowered
