"""Program use cases: the directory a tenant keeps of the programs it refers people to.

The REST operations (``create``, ``page``, ``read``, ``update``, ``retire``) are each one unit
of work: one transaction for what they read and write and for the caller's audit event, so a
failed request changes nothing. ``directory`` and ``entry`` are for the other packages
(matching, referrals, FHIR): the route that calls them has already checked its caller and
records its own event.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.trail import record
from app.engine.programs import DirectoryEntry, ProgramDocument
from app.kernel.db import new_id, utcnow
from app.kernel.errors import Conflict, NotFound
from app.kernel.pagination import decode_cursor, encode_cursor
from app.kernel.preconditions import if_none_match_names, require_if_match
from app.programs.models import Program
from app.programs.repository import ProgramCriteria, ProgramRepository
from app.security.caller import Caller

# A tenant's active programs: matching reads them all for every request.
MAX_PROGRAMS = 1000
# A tenant's programs, retired ones included (kept for the referrals that name them).
MAX_STORED_PROGRAMS = 10_000
# Parsed documents kept per process, by (program id, version): a version never changes, so
# only new versions are validated again (1000 documents take from 0.7 to several seconds).
DOCUMENT_CACHE_SIZE = 10_000


def too_many_active() -> str:
    return (
        f"Your directory holds {MAX_PROGRAMS} active programs, the most a tenant may have: "
        "retire one that no longer takes referrals (POST /v1/programs/{id}/retire), or edit "
        "one, instead."
    )


def too_many_stored() -> str:
    return (
        f"Your directory holds {MAX_STORED_PROGRAMS} programs counting retired ones, which are "
        "kept for the referrals that name them, the most a tenant may store: edit an active "
        "program instead of adding one."
    )


def etag(program: Program) -> str:
    """The entity tag of a program: its version, which every change (an edit, the retirement)
    advances."""
    return f'"{program.version}"'


def status_of(program: Program) -> str:
    return "active" if program.retired_at is None else "retired"


def program_body(program: Program) -> dict[str, Any]:
    """A program as the API answers: its document, plus its id, version, status, scheduled
    hours a week and who changed it when."""
    document = document_of(program)
    return {
        "id": program.id,
        "version": program.version,
        "status": status_of(program),
        **document.model_dump(mode="json"),
        "hours_per_week": document.hours_per_week,
        "created_at": program.created_at,
        "created_by": program.created_by,
        "updated_at": program.updated_at,
        "updated_by": program.updated_by,
        "retired_at": program.retired_at,
        "retired_by": program.retired_by,
    }


class DocumentCache:
    """The least recently used parsed documents, at most ``size`` of them."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._documents: OrderedDict[tuple[str, int], ProgramDocument] = OrderedDict()

    def document(self, program: Program) -> ProgramDocument:
        key = (program.id, program.version)
        document = self._documents.get(key)
        if document is None:
            document = ProgramDocument.model_validate(program.document)
            self._documents[key] = document
            if len(self._documents) > self.size:
                self._documents.popitem(last=False)
        else:
            self._documents.move_to_end(key)
        return document

    def __len__(self) -> int:
        return len(self._documents)


DOCUMENTS = DocumentCache(DOCUMENT_CACHE_SIZE)


def document_of(program: Program) -> ProgramDocument:
    """A stored program's document, parsed once per version and process. Only for a row as
    committed: every change advances the version, so a version's document never changes."""
    return DOCUMENTS.document(program)


def entry_of(program: Program) -> DirectoryEntry:
    return DirectoryEntry(program.id, program.version, document_of(program))


@dataclass(frozen=True, slots=True)
class Read:
    program: Program
    not_modified: bool  # If-None-Match named its current tag: answer 304


class ProgramService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def create(self, caller: Caller, document: ProgramDocument) -> Program:
        """A new program of the caller's tenant (409 once it has ``MAX_PROGRAMS`` active ones,
        or ``MAX_STORED_PROGRAMS`` counting retired ones)."""
        async with self.sessions() as session, session.begin():
            repository = ProgramRepository(session)
            await repository.lock_creations(caller.tenant)
            active, stored = await repository.counts(caller.tenant)
            if active >= MAX_PROGRAMS:
                raise Conflict(too_many_active())
            if stored >= MAX_STORED_PROGRAMS:
                raise Conflict(too_many_stored())
            now = utcnow()
            program = Program(
                id=new_id(),
                tenant_id=caller.tenant,
                version=1,
                name=document.name,
                level=document.level.value,
                document=document.model_dump(mode="json"),
                created_at=now,
                created_by=caller.label,
                updated_at=now,
                updated_by=caller.label,
            )
            repository.add(program)
            await session.flush()
            record(session, caller, 201, resource_id=program.id, details={"version": 1})
        return program

    async def page(
        self,
        caller: Caller,
        limit: int,
        cursor: str | None,
        *,
        level: str | None = None,
        include_retired: bool = False,
    ) -> tuple[list[Program], str | None]:
        """The caller's tenant's programs, oldest first, and the cursor of the next page."""
        after = decode_cursor(cursor) if cursor else None
        async with self.sessions() as session, session.begin():
            rows = list(
                await ProgramRepository(session).page(
                    caller.tenant,
                    limit=limit + 1,
                    after=after,
                    level=level,
                    include_retired=include_retired,
                )
            )
            record(session, caller, 200, details={"returned": len(rows[:limit])})
        last = rows[limit - 1] if len(rows) > limit else None
        return rows[:limit], encode_cursor(last.created_at, last.id) if last else None

    async def read(self, caller: Caller, program_id: str, if_none_match: str | None) -> Read:
        async with self.sessions() as session, session.begin():
            program = await _program(session, caller.tenant, program_id)
            fresh = if_none_match is not None and if_none_match_names(if_none_match, etag(program))
            record(session, caller, 304 if fresh else 200)
        return Read(program, fresh)

    async def update(
        self, caller: Caller, program_id: str, document: ProgramDocument, if_match: str | None
    ) -> Program:
        """Replace a program's document (the next version); not a retired one's (409)."""
        async with self.sessions() as session, session.begin():
            program = await _for_change(session, caller.tenant, program_id, if_match)
            if program.retired_at is not None:
                raise Conflict(
                    f"Program '{program_id}' is retired: it can no longer be edited. Add it "
                    "again (POST /v1/programs) if it takes referrals again."
                )
            program.document = document.model_dump(mode="json")
            program.name = document.name
            program.level = document.level.value
            program.version += 1
            program.updated_at = utcnow()
            program.updated_by = caller.label
            await session.flush()
            record(session, caller, 200, details={"version": program.version})
        return program

    async def retire(self, caller: Caller, program_id: str, if_match: str | None) -> Program:
        """Retire a program (it is matched to no one; referrals that name it still read it).
        Retiring a retired program changes nothing."""
        async with self.sessions() as session, session.begin():
            program = await _for_change(session, caller.tenant, program_id, if_match)
            if program.retired_at is None:
                program.retired_at = utcnow()
                program.retired_by = caller.label
                program.version += 1
                await session.flush()
            record(session, caller, 200, details={"version": program.version})
        return program

    # --- for the other packages --------------------------------------------------------------

    async def directory(self, tenant_id: str) -> list[DirectoryEntry]:
        """The tenant's programs that are not retired, oldest first (at most ``MAX_PROGRAMS``)."""
        async with self.sessions() as session, session.begin():
            rows = await ProgramRepository(session).page(tenant_id, limit=MAX_PROGRAMS)
        return [entry_of(row) for row in rows]

    async def entry(self, tenant_id: str, program_id: str) -> tuple[DirectoryEntry, bool] | None:
        """A program of the tenant, retired or not, and whether it is retired; None when the
        tenant has no program ``program_id``."""
        async with self.sessions() as session, session.begin():
            row = await ProgramRepository(session).get(tenant_id, program_id)
        return None if row is None else (entry_of(row), row.retired_at is not None)

    async def search(
        self, tenant_id: str, criteria: ProgramCriteria, limit: int, cursor: str | None
    ) -> tuple[list[tuple[DirectoryEntry, bool]], str | None]:
        """A page of the tenant's programs that meet ``criteria``, oldest first, each with
        whether it is retired, and the cursor of the next page (None: this is the last); 400
        for a cursor this API did not give."""
        after = decode_cursor(cursor) if cursor else None
        async with self.sessions() as session, session.begin():
            rows = list(
                await ProgramRepository(session).search(
                    tenant_id, criteria, limit=limit + 1, after=after
                )
            )
        last = rows[limit - 1] if len(rows) > limit else None
        page = [(entry_of(row), row.retired_at is not None) for row in rows[:limit]]
        return page, encode_cursor(last.created_at, last.id) if last else None


async def _program(
    session: AsyncSession, tenant: str, program_id: str, *, lock: bool = False
) -> Program:
    program = await ProgramRepository(session).get(tenant, program_id, lock=lock)
    if program is None:
        raise NotFound(f"No program with id '{program_id}'.")
    return program


async def _for_change(
    session: AsyncSession, tenant: str, program_id: str, if_match: str | None
) -> Program:
    """The program to change, locked until the transaction ends, once ``If-Match`` names its
    current version (428 without it, 412 when it names another)."""
    program = await _program(session, tenant, program_id, lock=True)
    require_if_match(
        if_match,
        etag(program),
        missing="Send If-Match with the ETag of the program you edited (GET it first).",
        changed="The program changed since you read it; fetch it again and reapply your change.",
    )
    return program
