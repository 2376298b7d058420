"""Screening use cases: evaluate, store (idempotently), read, list, replay, decide."""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.audit.trail import audit_event_values, record
from app.db import new_id, utcnow
from app.engine import DEFAULT_RULE_SET_KEY, ScreeningAnswers, evaluate
from app.engine.compiler import CompiledRuleSet
from app.engine.determination import Determination, determination_to_json
from app.errors import (
    Conflict,
    FieldProblem,
    IdempotencyKeyReused,
    NotFound,
    RequestInFlight,
    Unprocessable,
)
from app.pagination import decode_cursor, encode_cursor
from app.rulesets.cache import RuleSetCache, VersionRef
from app.rulesets.models import VersionStatus
from app.rulesets.repository import RuleSetRepository
from app.screenings.models import Decision, IdempotencyRecord, Screening
from app.screenings.repository import JsonText, ScreeningRepository, store_in_one_statement
from app.screenings.schemas import (
    DecisionRequest,
    ReplayRequest,
    RuleSetPin,
    ScreeningRequest,
)
from app.security.caller import Caller
from app.security.principal import SHARED

if TYPE_CHECKING:
    from app.operations.metrics import Metrics


@dataclass(frozen=True, slots=True)
class Decided:
    """A determination and the stored version that decided it."""

    version_id: str
    owner: str
    key: str
    version: int
    compiled: CompiledRuleSet
    determination: Determination
    determination_json: bytes  # as the API returns it and the database stores it


@dataclass(frozen=True, slots=True)
class Resolved:
    """The version that decides, with its compiled form."""

    version_id: str
    owner: str
    key: str
    version: int
    compiled: CompiledRuleSet


def rule_set_used(owner: str, key: str, version: int, sha256: str) -> dict[str, Any]:
    return {"owner": owner, "key": key, "version": version, "sha256": sha256}


def _no_rule_set(detail: str, pointer: str, problem: str) -> Unprocessable:
    return Unprocessable(detail, errors=[FieldProblem(pointer=pointer, detail=problem)])


async def resolve_rule_set(
    session: AsyncSession,
    cache: RuleSetCache,
    tenant: str,
    pin: RuleSetPin | None,
    *,
    operator_tenant: str,
    allow_retired: bool = False,
    pointer: str = "#/rule_set/version",
) -> Resolved:
    """The version that decides for ``tenant``: the pinned one, or the active version of the
    key, the tenant's own before the shared one.

    The active version comes from the in-process cache: no database read per request. A pinned
    version costs one small query (its status can change) and never a read of its content once
    this process has compiled it. Drafts never decide anything; retired versions decide no new
    screening but still replay (``allow_retired``). Problems name ``pointer``.
    """
    key = pin.key if pin else DEFAULT_RULE_SET_KEY
    if pin is not None and pin.owner is not None and pin.owner not in (tenant, SHARED):
        raise _no_rule_set(
            f"No rule set '{pin.owner}/{key}'.", "#/rule_set/owner", "no such rule set"
        )
    if pin is None or pin.version is None:
        owners = [pin.owner] if pin is not None and pin.owner else [tenant, SHARED]
        ref = _active(cache, owners, key)
        if ref is None and not cache.recently_refreshed(1.0):
            # A key this process has not seen active yet: look once, but never more than once
            # a second, so requests naming unknown keys cannot turn into a query each.
            await cache.refresh(session)
            ref = _active(cache, owners, key)
        compiled = cache.cached(ref.id) if ref else None
        if ref is None or compiled is None:
            raise _no_rule_set(
                f"Rule set '{key}' has no active version.", "#/rule_set/key", "no active version"
            )
        return Resolved(ref.id, ref.owner, ref.key, ref.version, compiled)
    repository = ScreeningRepository(session)
    owner = pin.owner or (tenant if await repository.owns_rule_set(tenant, key) else SHARED)
    pinned = await repository.pinned_version(owner, key, pin.version)
    hidden_draft = (
        pinned is not None
        and pinned.status == VersionStatus.DRAFT
        and owner == SHARED
        and tenant != operator_tenant
    )
    if pinned is None or hidden_draft:
        raise _no_rule_set(
            f"Rule set '{owner}/{key}' has no version {pin.version}.", pointer, "no such version"
        )
    if pinned.status == VersionStatus.DRAFT:
        raise _no_rule_set(
            "Screenings are decided by published versions only; this version is a draft.",
            pointer,
            "is a draft",
        )
    if pinned.status == VersionStatus.RETIRED and not allow_retired:
        raise _no_rule_set(
            "This version is retired: it decides no new screenings (replays still work).",
            pointer,
            "is retired",
        )
    compiled = cache.cached(pinned.id)
    if compiled is None or compiled.ref.sha256 != pinned.sha256:
        row = await RuleSetRepository(session).version_by_id(pinned.id)
        if row is None:  # pragma: no cover - deleted between the two reads (drafts only)
            raise _no_rule_set(
                f"Rule set '{owner}/{key}' has no version {pin.version}.",
                pointer,
                "no such version",
            )
        compiled = cache.compiled(row)
    return Resolved(pinned.id, owner, key, pin.version, compiled)


def resolve_from_cache(cache: RuleSetCache, tenant: str, pin: RuleSetPin | None) -> Resolved | None:
    """What ``resolve_rule_set`` answers when it needs no database: the active version of the
    key, already compiled in this process (the common case, and what nearly every request
    asks for). None otherwise (a pinned version, an owner to check, a key not seen active
    yet): ``resolve_rule_set`` then decides."""
    if pin is not None and (
        pin.version is not None or (pin.owner is not None and pin.owner not in (tenant, SHARED))
    ):
        return None
    key = pin.key if pin else DEFAULT_RULE_SET_KEY
    owners = [pin.owner] if pin is not None and pin.owner else [tenant, SHARED]
    ref = _active(cache, owners, key)
    compiled = cache.cached(ref.id) if ref else None
    if ref is None or compiled is None:
        return None
    return Resolved(ref.id, ref.owner, ref.key, ref.version, compiled)


def _active(cache: RuleSetCache, owners: list[str], key: str) -> VersionRef | None:
    for owner in owners:
        ref = cache.active(owner, key)
        if ref is not None and cache.cached(ref.id) is not None:
            return ref
    return None


def evaluation_body(decided: Decided) -> bytes:
    return orjson.dumps(
        {
            "rule_set": rule_set_used(
                decided.owner, decided.key, decided.version, decided.compiled.ref.sha256
            ),
            "determination": orjson.Fragment(decided.determination_json),
        }
    )


def stored_rule_set(row: Screening) -> dict[str, Any]:
    return rule_set_used(
        row.rule_set_owner, row.rule_set_key, row.rule_set_version, row.rule_set_sha256
    )


def screening_body(row: Screening, decision: Decision | None = None) -> dict[str, Any]:
    return _screening_body(
        row.id,
        row.created_at,
        row.external_reference,
        stored_rule_set(row),
        row.engine_version,
        row.determination,
        decision_body(decision, row) if decision else None,
    )


def _screening_body(
    screening_id: str,
    created_at: datetime,
    external_reference: str | None,
    rule_set: dict[str, Any],
    engine_version: str,
    determination: Any,
    latest_decision: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "id": screening_id,
        "created_at": created_at,
        "external_reference": external_reference,
        "rule_set": rule_set,
        "engine_version": engine_version,
        "determination": determination,
        "latest_decision": latest_decision,
    }


def decision_body(decision: Decision, screening: Screening) -> dict[str, Any]:
    return {
        "id": decision.id,
        "screening_id": screening.id,
        "created_at": decision.created_at,
        "final_level": decision.final_level,
        "recommended_level": decision.recommended_level,
        "matches_recommendation": decision.final_level is not None
        and decision.final_level == decision.recommended_level,
        "variance_reasons": decision.variance_reasons,
        "comment": decision.comment,
        "decided_by": decision.decided_by,
        "outcome": decision.outcome,
        "source": decision.source,
    }


def fingerprint(request: ScreeningRequest, context: dict[str, Any] | None = None) -> str:
    """sha256 of the request's canonical JSON (and of the FHIR context it came with): the same
    body gives the same fingerprint."""
    return _fingerprint(request.model_dump(mode="json"), context)


def _fingerprint(dumped: dict[str, Any], context: dict[str, Any] | None) -> str:
    """``fingerprint`` of a request already dumped (``model_dump(mode="json")``)."""
    body = dumped | ({"fhir_context": context} if context else {})
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


# A claimed key stays "in progress" for the few milliseconds a screening takes; one still in
# progress after this long belongs to a request whose process died between claiming the key and
# storing the screening, and a retry takes it over instead of getting 409 until the key expires.
IN_FLIGHT_LEASE = timedelta(seconds=60)


@dataclass(slots=True)
class Stored:
    """A stored screening as the API answers it. A screening just evaluated keeps its
    determination as the engine serialised it: ``json()`` embeds those bytes, and ``body``
    decodes them only when asked (FHIR and CDS Hooks read the determination)."""

    payload: dict[str, Any]
    replayed: bool
    fhir_context: dict[str, Any] | None = None
    determination_json: bytes | None = None

    @property
    def body(self) -> dict[str, Any]:
        if self.determination_json is not None:
            decoded = orjson.loads(self.determination_json)
            self.payload = {
                name: decoded if name == "determination" else value
                for name, value in self.payload.items()
            }
            self.determination_json = None
        return self.payload

    def json(self) -> bytes:
        """The response body: the bytes ``orjson.dumps(self.body)`` would give."""
        return orjson.dumps(self.payload)


def _created(decided: Decided) -> dict[str, Any]:
    """The details of a creation's audit event: which version decided."""
    return {"rule_set_version": f"{decided.owner}/{decided.key}/{decided.version}"}


def _not_found(screening_id: str) -> NotFound:
    """The same answer for an id that does not exist and one of another tenant."""
    return NotFound(f"No screening with id '{screening_id}'.")


class ScreeningService:
    """Screening use cases. Every method acts for a ``Caller``: it sees its tenant's screenings
    only, and writes the audit event of its action in the same transaction as its work."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cache: RuleSetCache,
        idempotency_ttl: timedelta,
        operator_tenant: str,
        metrics: Metrics | None = None,
    ) -> None:
        self.sessions = sessions
        self.cache = cache
        self.idempotency_ttl = idempotency_ttl
        self.operator_tenant = operator_tenant
        self.metrics = metrics

    @property
    def postgres(self) -> AsyncEngine | None:
        """The engine when it is PostgreSQL's, which stores a screening in one statement (see
        ``_create_in_one_statement``)."""
        bind = self.sessions.kw.get("bind")
        if isinstance(bind, AsyncEngine) and bind.dialect.name == "postgresql":
            return bind
        return None

    def _evaluate(
        self, compiled: CompiledRuleSet, answers: ScreeningAnswers
    ) -> tuple[Determination, bytes]:
        started = time.perf_counter()
        determination = evaluate(compiled, answers)
        if self.metrics is not None:
            self.metrics.evaluated(time.perf_counter() - started)
        return determination, determination_to_json(determination)

    async def _decide(
        self, session: AsyncSession | None, caller: Caller, request: ScreeningRequest
    ) -> Decided:
        """Resolve the version that decides and evaluate under it. Without ``session``, one is
        opened only when the in-process cache cannot answer (opening and closing a session
        costs more than an evaluation)."""
        resolved = resolve_from_cache(self.cache, caller.tenant, request.rule_set)
        if resolved is None:
            async with contextlib.AsyncExitStack() as stack:
                if session is None:
                    session = await stack.enter_async_context(self.sessions())
                resolved = await resolve_rule_set(
                    session,
                    self.cache,
                    caller.tenant,
                    request.rule_set,
                    operator_tenant=self.operator_tenant,
                )
        determination, determination_json = self._evaluate(resolved.compiled, request.answers)
        return Decided(
            resolved.version_id,
            resolved.owner,
            resolved.key,
            resolved.version,
            resolved.compiled,
            determination,
            determination_json,
        )

    async def evaluate_only(self, caller: Caller, request: ScreeningRequest) -> bytes:
        return evaluation_body(await self._decide(None, caller, request))

    async def create(
        self,
        caller: Caller,
        request: ScreeningRequest,
        idempotency_key: str | None,
        fhir_context: dict[str, Any] | None = None,
        response_digest: str | None = None,
    ) -> Stored:
        """Evaluate and store a screening; with a key, at most once per key and body.
        ``fhir_context`` is what a QuestionnaireResponse said of its subject and encounter,
        ``response_digest`` what identifies that response (see ``of_response``)."""
        postgres = self.postgres
        if postgres is not None:
            stored = await self._create_in_one_statement(
                postgres, caller, request, idempotency_key, fhir_context, response_digest
            )
            if stored is not None:
                return stored
        claimed_at = None
        if idempotency_key is not None:
            print_ = fingerprint(request, fhir_context)
            replay, claimed_at = await self._claim_key(caller, idempotency_key, print_)
            if replay is not None:
                return replay
        try:
            async with self.sessions() as session, session.begin():
                decided = await self._decide(session, caller, request)
                row = self._screening_row(
                    caller, request, decided, idempotency_key, fhir_context, response_digest
                )
                repository = ScreeningRepository(session)
                repository.add(row)
                record(session, caller, 201, resource_id=row.id, details=_created(decided))
                await session.flush()
                # A retry may have taken the key over while this request was stuck: it decides.
                if (
                    idempotency_key is not None
                    and claimed_at is not None
                    and not await repository.complete_key(
                        caller.tenant, caller.client_id, idempotency_key, claimed_at, row.id
                    )
                ):
                    raise RequestInFlight(
                        "A retry with this Idempotency-Key took over this request.",
                        headers={"Retry-After": "1"},
                    )
                body = screening_body(row)
        except BaseException:
            if idempotency_key is not None and claimed_at is not None:
                await self._release_key(caller, idempotency_key, claimed_at)
            raise
        if self.metrics is not None:
            self.metrics.screening_stored(row.level, row.urgency)
        return Stored(body, False, fhir_context)

    async def _create_in_one_statement(
        self,
        engine: AsyncEngine,
        caller: Caller,
        request: ScreeningRequest,
        idempotency_key: str | None,
        fhir_context: dict[str, Any] | None,
        response_digest: str | None,
    ) -> Stored | None:
        """PostgreSQL, the common case: evaluate, then store the screening, its audit event and
        its idempotency key (completed at once) in one statement, one round trip and one
        commit. None when there is a key and this cannot be the first request with it (the
        key exists, or the request cannot be decided): the claim path then answers as it
        always does (a replay, a reused key, a request in flight, or the refusal)."""
        try:
            decided = await self._decide(None, caller, request)
        except Unprocessable:
            if idempotency_key is None:
                raise
            return None  # a retry of a stored request replays even if its pin no longer works
        values = self._screening_values(
            caller, request, decided, idempotency_key, fhir_context, response_digest
        )
        determination = decided.determination_json
        if idempotency_key is None:
            values["answers"] = JsonText(request.answers.model_dump_json())
        else:  # one dump for the fingerprint and the stored answers
            dumped = request.model_dump(mode="json")
            print_ = _fingerprint(dumped, fhir_context)
            values["answers"] = JsonText(orjson.dumps(dumped["answers"]).decode())
        values["determination"] = JsonText(determination.decode())
        screening_id, created_at = values["id"], values["created_at"]
        event = audit_event_values(caller, 201, resource_id=screening_id, details=_created(decided))
        key = None
        if idempotency_key is not None:
            key = {
                "tenant_id": caller.tenant,
                "client_id": caller.client_id,
                "key": idempotency_key,
                "fingerprint": print_,
                "state": "completed",
                "screening_id": screening_id,
                "created_at": created_at,
                "expires_at": created_at + self.idempotency_ttl,
            }
        if not await store_in_one_statement(engine, values, event, key):
            return None
        if event is not None:
            caller.recorded = True
        if self.metrics is not None:
            self.metrics.screening_stored(values["level"], values["urgency"])
        body = _screening_body(
            screening_id,
            created_at,
            values["external_reference"],
            rule_set_used(decided.owner, decided.key, decided.version, values["rule_set_sha256"]),
            values["engine_version"],
            orjson.Fragment(determination),
            None,
        )
        return Stored(body, False, fhir_context, determination_json=determination)

    def _screening_row(
        self,
        caller: Caller,
        request: ScreeningRequest,
        decided: Decided,
        idempotency_key: str | None,
        fhir_context: dict[str, Any] | None,
        response_digest: str | None,
    ) -> Screening:
        values = self._screening_values(
            caller, request, decided, idempotency_key, fhir_context, response_digest
        )
        return Screening(
            **values,
            answers=request.answers.model_dump(mode="json"),
            determination=orjson.loads(decided.determination_json),
        )

    def _screening_values(
        self,
        caller: Caller,
        request: ScreeningRequest,
        decided: Decided,
        idempotency_key: str | None,
        fhir_context: dict[str, Any] | None,
        response_digest: str | None,
    ) -> dict[str, Any]:
        """A screening's columns but its answers and determination."""
        recommended = decided.determination.recommended_level
        return {
            "id": new_id(),
            "tenant_id": caller.tenant,
            "client_id": caller.client_id,
            "created_at": utcnow(),
            "external_reference": request.external_reference,
            "idempotency_key": idempotency_key,
            "rule_set_version_id": decided.version_id,
            "rule_set_owner": decided.owner,
            "rule_set_key": decided.key,
            "rule_set_version": decided.version,
            "rule_set_sha256": decided.compiled.ref.sha256,
            "engine_version": decided.compiled.engine_version,
            "status": decided.determination.status.value,
            "level": recommended.level.value if recommended else None,
            "urgency": decided.determination.urgency.value,
            "iop_verdict": decided.determination.iop.verdict.value,
            "fhir_context": fhir_context,
            "response_digest": response_digest,
        }

    async def _claim_key(
        self, caller: Caller, key: str, print_: str
    ) -> tuple[Stored | None, datetime | None]:
        """Claim an idempotency key of the caller's client (returning the claim time, which
        only this request holds), or return the stored response the key already produced."""
        now = utcnow()
        tenant, client = caller.tenant, caller.client_id
        for _ in range(2):
            try:
                async with self.sessions() as session, session.begin():
                    session.add(
                        IdempotencyRecord(
                            tenant_id=tenant,
                            client_id=client,
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
                stored = await repository.idempotency(tenant, client, key)
                if stored is None:
                    continue  # released meanwhile: try to claim it again
                if stored.expires_at < now:
                    await session.delete(stored)
                    continue
                if stored.fingerprint != print_:
                    raise IdempotencyKeyReused(
                        "This Idempotency-Key was already used with a different request body."
                    )
                if stored.state != "completed" or stored.screening_id is None:
                    abandoned = stored.created_at < now - IN_FLIGHT_LEASE
                    if abandoned and await repository.take_over_key(
                        tenant, client, key, stored.created_at, now
                    ):
                        return None, now
                    raise RequestInFlight(
                        "A request with this Idempotency-Key is still being processed.",
                        headers={"Retry-After": "1"},
                    )
                screening = await repository.get(tenant, stored.screening_id)
                if screening is None:  # pragma: no cover - screenings are never deleted
                    raise Conflict("The screening for this Idempotency-Key is missing.")
                record(session, caller, 201, resource_id=screening.id, details={"replayed": True})
                if self.metrics is not None:
                    self.metrics.replayed()
                return Stored(screening_body(screening), True, screening.fhir_context), None
        raise RequestInFlight(
            "This Idempotency-Key is contended by concurrent requests; retry.",
            headers={"Retry-After": "1"},
        )

    async def of_response(self, caller: Caller, response_digest: str) -> Stored | None:
        """The caller's tenant's latest screening of a QuestionnaireResponse already evaluated
        (its digest), audited as a repeated creation; None when there is none."""
        async with self.sessions() as session, session.begin():
            row = await ScreeningRepository(session).latest_for_response(
                caller.tenant, response_digest
            )
            if row is None:
                return None
            record(session, caller, 200, resource_id=row.id, details={"existing": True})
            return Stored(screening_body(row), True, row.fhir_context)

    async def purge_expired_keys(self) -> None:
        """Forget idempotency keys past their retention (run periodically)."""
        async with self.sessions() as session, session.begin():
            await ScreeningRepository(session).purge_expired_keys(utcnow())

    async def _release_key(self, caller: Caller, key: str, claimed_at: datetime) -> None:
        """Give a failed request's key back, unless another request has taken it over."""
        async with self.sessions() as session, session.begin():
            await ScreeningRepository(session).release_key(
                caller.tenant, caller.client_id, key, claimed_at
            )

    async def stored(self, caller: Caller, screening_id: str) -> Screening:
        """The stored screening (its row), read as the caller's action records it."""
        async with self.sessions() as session, session.begin():
            row = await ScreeningRepository(session).get(caller.tenant, screening_id)
            if row is None:
                raise _not_found(screening_id)
            record(session, caller, 200, resource_id=row.id)
        return row

    async def get(self, caller: Caller, screening_id: str) -> dict[str, Any]:
        async with self.sessions() as session, session.begin():
            repository = ScreeningRepository(session)
            row = await repository.get(caller.tenant, screening_id)
            if row is None:
                raise _not_found(screening_id)
            body = screening_body(row, await repository.latest_decision(row.id))
            record(session, caller, 200)
        return body

    async def page(
        self,
        caller: Caller,
        *,
        limit: int,
        cursor: str | None,
        filters: Mapping[str, Any],
    ) -> dict[str, Any]:
        after = decode_cursor(cursor) if cursor else None
        async with self.sessions() as session, session.begin():
            rows = await ScreeningRepository(session).page(
                caller.tenant, limit=limit + 1, after=after, **filters
            )
            # Which filters were used, never their values (an external reference is an id).
            used = sorted(name for name, value in filters.items() if value is not None)
            record(session, caller, 200, details={"filters": used, "returned": len(rows[:limit])})
        items = [
            {
                "id": row.id,
                "created_at": row.created_at,
                "external_reference": row.external_reference,
                "rule_set": stored_rule_set(row),
                "status": row.status,
                "level": row.level,
                "urgency": row.urgency,
                "iop_verdict": row.iop_verdict,
            }
            for row in rows[:limit]
        ]
        last = rows[limit - 1] if len(rows) > limit else None
        next_cursor = encode_cursor(last.created_at, last.id) if last else None
        return {"items": items, "next_cursor": next_cursor}

    async def replay(
        self, caller: Caller, screening_id: str, request: ReplayRequest
    ) -> dict[str, Any]:
        async with self.sessions() as session, session.begin():
            row = await ScreeningRepository(session).get(caller.tenant, screening_id)
            if row is None:
                raise _not_found(screening_id)
            owner = request.owner or row.rule_set_owner
            if request.version is None and owner == row.rule_set_owner:
                version: int | None = row.rule_set_version
            else:
                version = request.version  # None: that owner's active version
            pin = RuleSetPin(owner=owner, key=row.rule_set_key, version=version)
            resolved = await resolve_rule_set(
                session,
                self.cache,
                caller.tenant,
                pin,
                operator_tenant=self.operator_tenant,
                allow_retired=True,
                pointer="#/version",
            )
            record(
                session,
                caller,
                200,
                details={"rule_set_version": f"{resolved.owner}/{resolved.key}/{resolved.version}"},
            )
        answers = ScreeningAnswers.model_validate(row.answers)
        _, determination_json = self._evaluate(resolved.compiled, answers)
        replayed = orjson.loads(determination_json)
        level_after = (
            replayed["recommended_level"]["level"] if replayed["recommended_level"] else None
        )
        return {
            "screening_id": row.id,
            "original_rule_set": stored_rule_set(row),
            "replay_rule_set": rule_set_used(
                resolved.owner, resolved.key, resolved.version, resolved.compiled.ref.sha256
            ),
            "what_if": resolved.version_id != row.rule_set_version_id,
            "identical": replayed == row.determination,
            "level_before": row.level,
            "level_after": level_after,
            "determination": replayed,
        }

    async def decide(
        self, caller: Caller, screening_id: str, request: DecisionRequest
    ) -> dict[str, Any]:
        async with self.sessions() as session, session.begin():
            repository = ScreeningRepository(session)
            row = await repository.get(caller.tenant, screening_id)
            if row is None:
                raise _not_found(screening_id)
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
                tenant_id=caller.tenant,
                client_id=caller.client_id,
                created_at=utcnow(),
                final_level=request.final_level.value,
                recommended_level=row.level,
                variance_reasons=[reason.value for reason in request.variance_reasons],
                comment=request.comment,
                decided_by=request.decided_by,
                outcome="decided",
                source="api",
            )
            repository.add(decision)
            record(session, caller, 201, details={"decision_id": decision.id})
            await session.flush()
            return decision_body(decision, row)
