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
from app.batching import TurnBatch
from app.db import new_id, utcnow
from app.engine import ScreeningAnswers, evaluate
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
from app.rulesets.deciding import DecidingVersion, rule_set_used
from app.rulesets.resolve import RuleSets
from app.screenings.models import Decision, IdempotencyRecord, Screening
from app.screenings.repository import JsonText, ScreeningRepository, store_in_one_statement
from app.screenings.schemas import (
    DecisionRequest,
    ReplayRequest,
    RuleSetPin,
    ScreeningRequest,
)
from app.security.caller import Caller

if TYPE_CHECKING:
    from app.operations.metrics import Metrics


@dataclass(frozen=True, slots=True)
class Decided:
    """A determination and the stored version that decided it."""

    rule_set: DecidingVersion
    determination: Determination
    determination_json: bytes  # as the API returns it and the database stores it


def evaluation_body(decided: Decided) -> bytes:
    return orjson.dumps(
        {
            "rule_set": decided.rule_set.rule_set_used(),
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
    return {"rule_set_version": decided.rule_set.name}


def _not_found(screening_id: str) -> NotFound:
    """The same answer for an id that does not exist and one of another tenant."""
    return NotFound(f"No screening with id '{screening_id}'.")


class ScreeningService:
    """Screening use cases. Every method acts for a ``Caller``: it sees its tenant's screenings
    only, and writes the audit event of its action in the same transaction as its work."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        rule_sets: RuleSets,
        idempotency_ttl: timedelta,
        metrics: Metrics | None = None,
    ) -> None:
        self.sessions = sessions
        self.rule_sets = rule_sets
        self.idempotency_ttl = idempotency_ttl
        self.metrics = metrics
        self.evaluations = TurnBatch()  # see app/batching.py

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
        rule_set = self.rule_sets.resolve_cached(caller.tenant, request.rule_set)
        if rule_set is None:
            async with contextlib.AsyncExitStack() as stack:
                if session is None:
                    session = await stack.enter_async_context(self.sessions())
                rule_set = await self.rule_sets.resolve(session, caller.tenant, request.rule_set)
        compiled, answers = rule_set.compiled, request.answers
        determination, determination_json = await self.evaluations.run(
            lambda: self._evaluate(compiled, answers)
        )
        return Decided(rule_set, determination, determination_json)

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
            decided.rule_set.rule_set_used(),
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
            "rule_set_version_id": decided.rule_set.id,
            "rule_set_owner": decided.rule_set.owner,
            "rule_set_key": decided.rule_set.key,
            "rule_set_version": decided.rule_set.version,
            "rule_set_sha256": decided.rule_set.sha256,
            "engine_version": decided.rule_set.engine_version,
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
            rule_set = await self.rule_sets.resolve(
                session, caller.tenant, pin, allow_retired=True, pointer="#/version"
            )
            record(session, caller, 200, details={"rule_set_version": rule_set.name})
        answers = ScreeningAnswers.model_validate(row.answers)
        _, determination_json = self._evaluate(rule_set.compiled, answers)
        replayed = orjson.loads(determination_json)
        level_after = (
            replayed["recommended_level"]["level"] if replayed["recommended_level"] else None
        )
        return {
            "screening_id": row.id,
            "original_rule_set": stored_rule_set(row),
            "replay_rule_set": rule_set.rule_set_used(),
            "what_if": rule_set.id != row.rule_set_version_id,
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
