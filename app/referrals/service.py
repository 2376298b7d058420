"""Matching screenings to the tenant's program directory, and the referrals recorded from them.

The matcher itself is pure (app/engine/matching.py); this module reads what it needs (the
stored screening or answers evaluated now, the directory) and stores referrals with the
program as it was and the judgement that explained the choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.trail import record
from app.engine.matching import Matches, Preferences, candidate_json, judge, match
from app.engine.programs import DirectoryEntry
from app.kernel.db import new_id, utcnow
from app.kernel.errors import Conflict, FieldProblem, NotFound, Unprocessable
from app.programs.models import Program
from app.programs.service import entry_of
from app.referrals.matching import Screened, matched
from app.referrals.models import Referral
from app.referrals.repository import ReferralRepository
from app.referrals.schemas import MatchRequest, ReferralRequest
from app.screenings.models import Decision, Screening
from app.screenings.repository import ScreeningRepository
from app.screenings.schemas import ScreeningRequest
from app.screenings.service import ScreeningService
from app.security.caller import Caller

# A screening is referred a handful of times; the bound keeps its list one short page.
MAX_REFERRALS_PER_SCREENING = 100


class Directory(Protocol):
    """The tenant's program directory, as the program service offers it to other packages."""

    async def directory(self, tenant_id: str) -> list[DirectoryEntry]: ...

    async def entry(
        self, tenant_id: str, program_id: str
    ) -> tuple[DirectoryEntry, bool] | None: ...


def _program_brief(entry: DirectoryEntry) -> dict[str, Any]:
    program = entry.program
    return {
        "id": entry.id,
        "version": entry.version,
        "name": program.name,
        "level": program.level.value,
        "modality": program.modality.value,
        "hours_per_week": program.hours_per_week,
        "contact": None if program.contact is None else program.contact.model_dump(mode="json"),
    }


def ranked(
    screening_id: str | None, matches: Matches, entries: Sequence[DirectoryEntry], limit: int
) -> dict[str, Any]:
    """The matches as the API answers them: the best ``limit`` candidates, each with the
    program in brief."""
    by_id = {entry.id: entry for entry in entries}
    candidates = []
    for candidate in matches.candidates[:limit]:
        shown = candidate_json(candidate)
        for name in ("program_id", "program_version", "name"):
            del shown[name]
        candidates.append({"program": _program_brief(by_id[candidate.program_id])} | shown)
    return {
        "screening_id": screening_id,
        "level": matches.level,
        "level_source": matches.level_source,
        "urgency": matches.urgency,
        "notice": matches.notice,
        "considered": len(entries),
        "candidates": candidates,
    }


def referral_body(referral: Referral) -> dict[str, Any]:
    judged = referral.match
    return {
        "id": referral.id,
        "screening_id": referral.screening_id,
        "created_at": referral.created_at,
        "program_id": referral.program_id,
        "program_version": referral.program_version,
        "program": referral.program,
        "level": referral.level,
        "match": {
            name: judged[name]
            for name in ("fits", "summary", "travel_minutes", "waitlist_weeks", "criteria")
        },
        "referred_by": referral.referred_by,
        "note": referral.note,
        "source": referral.source,
    }


class ReferralService:
    """Matches and referrals, each for a ``Caller``: its tenant's screenings and programs only,
    its audit event written in the transaction that reads or stores."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        screenings: ScreeningService,
        programs: Directory,
    ) -> None:
        self.sessions = sessions
        self.screenings = screenings
        self.programs = programs

    async def matches(self, caller: Caller, request: MatchRequest) -> dict[str, Any]:
        """The directory ranked against a stored screening or answers evaluated now."""
        preferences = request.preferences.preferences()
        if request.answers is None:
            assert request.screening_id is not None  # the request has one or the other
            screened = await self._screened(caller, request.screening_id)
            screening_id: str | None = request.screening_id
        else:
            evaluate = ScreeningRequest(answers=request.answers, rule_set=request.rule_set)
            decided = await self.screenings.evaluate_only(caller, evaluate)
            answers = request.answers.model_dump(mode="json", exclude_none=True)
            screened = Screened(orjson.loads(decided.brief_json), answers)
            screening_id = None
        entries = await self.programs.directory(caller.tenant)
        body = await matched(
            screened,
            preferences,
            lambda needs: ranked(screening_id, match(needs, entries), entries, request.limit),
        )
        # Recorded once matched (the read above stores nothing and holds no lock), before the
        # answer leaves: the event says how many programs were judged and returned.
        async with self.sessions() as session, session.begin():
            record(session, caller, 200, resource_id=screening_id, details=_counts(body))
        return body

    async def _screened(self, caller: Caller, screening_id: str) -> Screened:
        """What matching reads of a stored screening, read in a transaction that ends before
        the matcher runs."""
        async with self.sessions() as session, session.begin():
            row = await self.screenings.visible(session, caller, screening_id)
            decision = await ScreeningRepository(session).latest_decision(row.id)
        return _screened(row, decision)

    async def refer(
        self, caller: Caller, screening_id: str, request: ReferralRequest
    ) -> dict[str, Any]:
        """Record a referral of the screening's person to a program of the directory, in one
        transaction: the program is locked while it is checked and referred to (an edit or a
        retirement waits, or is seen), and the screening's referrals while they are counted."""
        preferences = request.preferences.preferences() if request.preferences else Preferences()
        async with self.sessions() as session, session.begin():
            referrals = ReferralRepository(session)
            program = await referrals.program(caller.tenant, request.program_id)  # first: locks
            row = await self.screenings.visible(session, caller, screening_id)
            entry = _referable(program, request)
            await referrals.lock_referrals_of(row.id)
            if await referrals.count(caller.tenant, row.id) >= MAX_REFERRALS_PER_SCREENING:
                raise Conflict(
                    f"This screening has {MAX_REFERRALS_PER_SCREENING} referrals already, "
                    "as many as one screening keeps: screen again."
                )
            decision = await ScreeningRepository(session).latest_decision(row.id)
            # One program judged: brief, so the locks are held while it runs.
            judged = await matched(
                _screened(row, decision),
                preferences,
                lambda needs: candidate_json(judge(needs, entry)),
            )
            referral = Referral(
                id=new_id(),
                tenant_id=caller.tenant,
                client_id=caller.client_id,
                screening_id=row.id,
                screening_created_at=row.created_at,
                created_at=utcnow(),
                program_id=entry.id,
                program_version=entry.version,
                program=entry.program.model_dump(mode="json"),
                level=entry.program.level.value,
                match=judged,
                referred_by=request.referred_by,
                note=request.note,
                source="api",
            )
            referrals.add(referral)
            record(
                session,
                caller,
                201,
                resource_id=row.id,
                details={"referral_id": referral.id, "program_id": entry.id},
            )
            await session.flush()
            return referral_body(referral)

    async def of_screening(self, caller: Caller, screening_id: str) -> dict[str, Any]:
        """The screening's referrals, newest first."""
        async with self.sessions() as session, session.begin():
            row = await self.screenings.visible(session, caller, screening_id)
            rows = await ReferralRepository(session).of_screening(
                caller.tenant, row.id, MAX_REFERRALS_PER_SCREENING
            )
            record(session, caller, 200, resource_id=row.id, details={"returned": len(rows)})
        return {"items": [referral_body(r) for r in rows]}

    async def referral(self, caller: Caller, screening_id: str, referral_id: str) -> dict[str, Any]:
        """One of the screening's referrals."""
        async with self.sessions() as session, session.begin():
            row = await self.screenings.visible(session, caller, screening_id)
            found = await ReferralRepository(session).get(caller.tenant, row.id, referral_id)
            if found is None:
                raise NotFound(f"No referral with id '{referral_id}' of this screening.")
            record(session, caller, 200, resource_id=row.id, details={"referral_id": found.id})
        return referral_body(found)


def _screened(row: Screening, decision: Decision | None) -> Screened:
    return Screened(
        row.determination,
        row.answers,
        decided_level=None if decision is None else decision.final_level,
    )


def _referable(program: Program | None, request: ReferralRequest) -> DirectoryEntry:
    """The program referred to, if it can take this referral."""
    if program is None:
        raise Unprocessable(
            f"No program with id '{request.program_id}' in your directory.",
            errors=[FieldProblem(pointer="#/program_id", detail="no such program")],
        )
    if program.retired_at is not None:
        raise Conflict("The program is retired: refer to one of the directory's programs.")
    entry = entry_of(program)
    if not entry.program.accepting_referrals:
        raise Conflict("The program takes no new referrals at present.")
    if request.program_version is not None and request.program_version != entry.version:
        raise Conflict(
            f"The program changed since version {request.program_version} (it is now "
            f"version {entry.version}): match again and check the changes."
        )
    return entry


def _counts(body: dict[str, Any]) -> dict[str, Any]:
    """What the audit trail keeps of a match: counts, never preferences or origins."""
    return {"considered": body["considered"], "returned": len(body["candidates"])}
