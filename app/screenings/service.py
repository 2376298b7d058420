"""Screening use cases: evaluate, store (idempotently), read, list, replay, decide."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import new_id, utcnow
from app.engine import DEFAULT_RULE_SET_KEY, ENGINE_VERSION, ScreeningAnswers, evaluate
from app.engine.compiler import CompiledRuleSet
from app.engine.determination import Determination, determination_to_json
from app.errors import (
    BadRequest,
    Conflict,
    FieldProblem,
    IdempotencyKeyReused,
    NotFound,
    RequestInFlight,
    Unprocessable,
)
from app.rulesets.cache import RuleSetCache
from app.rulesets.models import VersionStatus
from app.rulesets.repository import RuleSetRepository
from app.screenings.models import Decision, IdempotencyRecord, Screening
from app.screenings.repository import ScreeningRepository
from app.screenings.schemas import (
    DecisionRequest,
    ReplayRequest,
    RuleSetPin,
    ScreeningRequest,
)


@dataclass(frozen=True, slots=True)
class Decided:
    """A determination and the stored version that decided it."""

    version_id: str
    key: str
    version: int
    compiled: CompiledRuleSet
    determination: Determination


def rule_set_used(key: str, version: int, sha256: str) -> dict[str, Any]:
    return {"key": key, "version": version, "sha256": sha256}


async def resolve_rule_set(
    session: AsyncSession,
    cache: RuleSetCache,
    pin: RuleSetPin | None,
    *,
    allow_retired: bool = False,
    pointer: str = "#/rule_set/version",
) -> tuple[str, str, int, CompiledRuleSet]:
    """(version id, key, version, compiled) for a pin, or the active version of the key.

    The active version comes from the in-process cache: no database read per request. A pinned
    version costs one small query (its status can change) and never a read of its content once
    this process has compiled it. Drafts never decide anything; retired versions decide no new
    screening but still replay (``allow_retired``). Problems name ``pointer``.
    """
    key = pin.key if pin else DEFAULT_RULE_SET_KEY
    if pin is None or pin.version is None:
        ref = cache.active(key)
        compiled = cache.cached(ref.id) if ref else None
        if ref is not None and compiled is not None:
            return ref.id, ref.key, ref.version, compiled
        # A key this process has not seen active yet: look once, but never more than once a
        # second, so requests naming unknown keys cannot turn into a query each.
        if not cache.recently_refreshed(1.0):
            await cache.refresh(session)
        ref = cache.active(key)
        compiled = cache.cached(ref.id) if ref else None
        if ref is None or compiled is None:
            raise Unprocessable(
                f"Rule set '{key}' has no active version.",
                errors=[FieldProblem(pointer="#/rule_set/key", detail="no active version")],
            )
        return ref.id, ref.key, ref.version, compiled
    pinned = await ScreeningRepository(session).pinned_version(key, pin.version)
    if pinned is None:
        raise Unprocessable(
            f"Rule set '{key}' has no version {pin.version}.",
            errors=[FieldProblem(pointer=pointer, detail="no such version")],
        )
    if pinned.status == VersionStatus.DRAFT:
        raise Unprocessable(
            "Screenings are decided by published versions only; this version is a draft.",
            errors=[FieldProblem(pointer=pointer, detail="is a draft")],
        )
    if pinned.status == VersionStatus.RETIRED and not allow_retired:
        raise Unprocessable(
            "This version is retired: it decides no new screenings (replays still work).",
            errors=[FieldProblem(pointer=pointer, detail="is retired")],
        )
    compiled = cache.cached(pinned.id)
    if compiled is None or compiled.ref.sha256 != pinned.sha256:
        row = await RuleSetRepository(session).version_by_id(pinned.id)
        if row is None:  # pragma: no cover - deleted between the two reads (drafts only)
            raise Unprocessable(
                f"Rule set '{key}' has no version {pin.version}.",
                errors=[FieldProblem(pointer=pointer, detail="no such version")],
            )
        compiled = cache.compiled(row)
    return pinned.id, key, pin.version, compiled


async def decide(session: AsyncSession, cache: RuleSetCache, request: ScreeningRequest) -> Decided:
    version_id, key, version, compiled = await resolve_rule_set(session, cache, request.rule_set)
    return Decided(version_id, key, version, compiled, evaluate(compiled, request.answers))


def evaluation_body(decided: Decided) -> bytes:
    return orjson.dumps(
        {
            "rule_set": rule_set_used(decided.key, decided.version, decided.compiled.ref.sha256),
            "determination": decided.determination,
        }
    )


def screening_body(row: Screening, decision: Decision | None = None) -> dict[str, Any]:
    return {
        "id": row.id,
        "created_at": row.created_at,
        "external_reference": row.external_reference,
        "rule_set": rule_set_used(row.rule_set_key, row.rule_set_version, row.rule_set_sha256),
        "engine_version": row.engine_version,
        "determination": row.determination,
        "latest_decision": decision_body(decision, row) if decision else None,
    }


def decision_body(decision: Decision, screening: Screening) -> dict[str, Any]:
    return {
        "id": decision.id,
        "screening_id": screening.id,
        "created_at": decision.created_at,
        "final_level": decision.final_level,
        "recommended_level": decision.recommended_level,
        "matches_recommendation": decision.final_level == decision.recommended_level,
        "variance_reasons": decision.variance_reasons,
        "comment": decision.comment,
        "decided_by": decision.decided_by,
    }


def fingerprint(request: ScreeningRequest) -> str:
    """sha256 of the request's canonical JSON: the same body gives the same fingerprint."""
    canonical = orjson.dumps(request.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


# A claimed key stays "in progress" for the few milliseconds a screening takes; one still in
# progress after this long belongs to a request whose process died between claiming the key and
# storing the screening, and a retry takes it over instead of getting 409 until the key expires.
IN_FLIGHT_LEASE = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Stored:
    body: dict[str, Any]
    replayed: bool


class ScreeningService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cache: RuleSetCache,
        idempotency_ttl: timedelta,
    ) -> None:
        self.sessions = sessions
        self.cache = cache
        self.idempotency_ttl = idempotency_ttl

    async def evaluate_only(self, request: ScreeningRequest) -> bytes:
        async with self.sessions() as session:
            return evaluation_body(await decide(session, self.cache, request))

    async def create(self, request: ScreeningRequest, idempotency_key: str | None) -> Stored:
        """Evaluate and store a screening; with a key, at most once per key and body."""
        claimed_at = None
        if idempotency_key is not None:
            replay, claimed_at = await self._claim_key(idempotency_key, fingerprint(request))
            if replay is not None:
                return Stored(replay, replayed=True)
        try:
            async with self.sessions() as session, session.begin():
                decided = await decide(session, self.cache, request)
                determination = orjson.loads(determination_to_json(decided.determination))
                row = Screening(
                    id=new_id(),
                    created_at=utcnow(),
                    external_reference=request.external_reference,
                    idempotency_key=idempotency_key,
                    rule_set_version_id=decided.version_id,
                    rule_set_key=decided.key,
                    rule_set_version=decided.version,
                    rule_set_sha256=decided.compiled.ref.sha256,
                    engine_version=ENGINE_VERSION,
                    status=decided.determination.status.value,
                    level=determination["recommended_level"]["level"]
                    if determination["recommended_level"]
                    else None,
                    urgency=decided.determination.urgency.value,
                    iop_verdict=decided.determination.iop.verdict.value,
                    answers=request.answers.model_dump(mode="json"),
                    determination=determination,
                )
                repository = ScreeningRepository(session)
                repository.add(row)
                await session.flush()
                # A retry may have taken the key over while this request was stuck: it decides.
                if (
                    idempotency_key is not None
                    and claimed_at is not None
                    and not await repository.complete_key(idempotency_key, claimed_at, row.id)
                ):
                    raise RequestInFlight(
                        "A retry with this Idempotency-Key took over this request.",
                        headers={"Retry-After": "1"},
                    )
                body = screening_body(row)
        except BaseException:
            if idempotency_key is not None and claimed_at is not None:
                await self._release_key(idempotency_key, claimed_at)
            raise
        return Stored(body, replayed=False)

    async def _claim_key(
        self, key: str, print_: str
    ) -> tuple[dict[str, Any] | None, datetime | None]:
        """Claim an idempotency key (returning the claim time, which only this request holds),
        or return the stored response the key already produced."""
        now = utcnow()
        for _ in range(2):
            try:
                async with self.sessions() as session, session.begin():
                    session.add(
                        IdempotencyRecord(
                            key=key,
                            fingerprint=print_,
                            state="in_progress",
                            created_at=now,
                            expires_at=now + self.idempotency_ttl,
                        )
                    )
                return None, now
            except IntegrityError:
                pass
            async with self.sessions() as session, session.begin():
                repository = ScreeningRepository(session)
                record = await repository.idempotency(key)
                if record is None:
                    continue  # released meanwhile: try to claim it again
                if record.expires_at < now:
                    await session.delete(record)
                    continue
                if record.fingerprint != print_:
                    raise IdempotencyKeyReused(
                        "This Idempotency-Key was already used with a different request body."
                    )
                if record.state != "completed" or record.screening_id is None:
                    abandoned = record.created_at < now - IN_FLIGHT_LEASE
                    if abandoned and await repository.take_over_key(key, record.created_at, now):
                        return None, now
                    raise RequestInFlight(
                        "A request with this Idempotency-Key is still being processed.",
                        headers={"Retry-After": "1"},
                    )
                screening = await repository.get(record.screening_id)
                if screening is None:  # pragma: no cover - screenings are never deleted
                    raise Conflict("The screening for this Idempotency-Key is missing.")
                return screening_body(screening), None
        raise RequestInFlight(
            "This Idempotency-Key is contended by concurrent requests; retry.",
            headers={"Retry-After": "1"},
        )

    async def purge_expired_keys(self) -> None:
        """Forget idempotency keys past their retention (run periodically)."""
        async with self.sessions() as session, session.begin():
            await ScreeningRepository(session).purge_expired_keys(utcnow())

    async def _release_key(self, key: str, claimed_at: datetime) -> None:
        """Give a failed request's key back, unless another request has taken it over."""
        async with self.sessions() as session, session.begin():
            await ScreeningRepository(session).release_key(key, claimed_at)

    async def get(self, screening_id: str) -> dict[str, Any]:
        async with self.sessions() as session:
            repository = ScreeningRepository(session)
            row = await repository.get(screening_id)
            if row is None:
                raise NotFound(f"No screening with id '{screening_id}'.")
            return screening_body(row, await repository.latest_decision(row.id))

    async def page(
        self,
        *,
        limit: int,
        cursor: str | None,
        filters: Mapping[str, Any],
    ) -> dict[str, Any]:
        after = decode_cursor(cursor) if cursor else None
        async with self.sessions() as session:
            rows = await ScreeningRepository(session).page(limit=limit + 1, after=after, **filters)
        items = [
            {
                "id": row.id,
                "created_at": row.created_at,
                "external_reference": row.external_reference,
                "rule_set": rule_set_used(
                    row.rule_set_key, row.rule_set_version, row.rule_set_sha256
                ),
                "status": row.status,
                "level": row.level,
                "urgency": row.urgency,
                "iop_verdict": row.iop_verdict,
            }
            for row in rows[:limit]
        ]
        next_cursor = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
        return {"items": items, "next_cursor": next_cursor}

    async def replay(self, screening_id: str, request: ReplayRequest) -> dict[str, Any]:
        async with self.sessions() as session:
            row = await ScreeningRepository(session).get(screening_id)
            if row is None:
                raise NotFound(f"No screening with id '{screening_id}'.")
            version = request.version or row.rule_set_version
            pin = RuleSetPin(key=row.rule_set_key, version=version)
            version_id, key, number, compiled = await resolve_rule_set(
                session, self.cache, pin, allow_retired=True, pointer="#/version"
            )
        answers = ScreeningAnswers.model_validate(row.answers)
        determination = evaluate(compiled, answers)
        replayed = orjson.loads(determination_to_json(determination))
        level_after = (
            replayed["recommended_level"]["level"] if replayed["recommended_level"] else None
        )
        return {
            "screening_id": row.id,
            "original_rule_set": rule_set_used(
                row.rule_set_key, row.rule_set_version, row.rule_set_sha256
            ),
            "replay_rule_set": rule_set_used(key, number, compiled.ref.sha256),
            "what_if": version_id != row.rule_set_version_id,
            "identical": replayed == row.determination,
            "level_before": row.level,
            "level_after": level_after,
            "determination": replayed,
        }

    async def decide(self, screening_id: str, request: DecisionRequest) -> dict[str, Any]:
        async with self.sessions() as session, session.begin():
            repository = ScreeningRepository(session)
            row = await repository.get(screening_id)
            if row is None:
                raise NotFound(f"No screening with id '{screening_id}'.")
            differs = request.final_level.value != row.level
            if differs and not request.variance_reasons:
                raise Unprocessable(
                    "The final level differs from the recommendation: give at least one variance "
                    "reason.",
                    errors=[
                        FieldProblem(
                            pointer="#/variance_reasons", detail="required when the level differs"
                        )
                    ],
                )
            if not differs and request.variance_reasons:
                raise Unprocessable(
                    "Variance reasons apply only when the final level differs from the "
                    "recommendation.",
                    errors=[
                        FieldProblem(
                            pointer="#/variance_reasons",
                            detail="must be empty when the level matches",
                        )
                    ],
                )
            decision = Decision(
                id=new_id(),
                screening_id=row.id,
                created_at=utcnow(),
                final_level=request.final_level.value,
                recommended_level=row.level,
                variance_reasons=[reason.value for reason in request.variance_reasons],
                comment=request.comment,
                decided_by=request.decided_by,
            )
            repository.add(decision)
            await session.flush()
            return decision_body(decision, row)


def encode_cursor(row: Screening) -> str:
    raw = orjson.dumps([row.created_at.isoformat(), row.id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (created_at, id) a cursor encodes; 400 for anything this API did not return."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, screening_id = orjson.loads(base64.urlsafe_b64decode(padded))
        after = datetime.fromisoformat(created)
        if after.tzinfo is None or not isinstance(screening_id, str) or "\x00" in screening_id:
            raise ValueError("not a cursor")
        after.astimezone(UTC)  # out of range raises OverflowError
        return after, screening_id
    except (ValueError, TypeError, OverflowError, orjson.JSONDecodeError):
        raise BadRequest("The cursor is not one this API returned.") from None
