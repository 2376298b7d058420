"""Screening use cases: evaluate, store (idempotently), read, list, replay, decide."""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.audit.trail import audit_event_values, record
from app.engine import ScreeningAnswers, evaluate
from app.engine.compiler import CompiledRuleSet
from app.engine.determination import Determination, determination_to_json
from app.kernel.batching import TurnBatch
from app.kernel.db import new_id, utcnow
from app.kernel.errors import (
    Conflict,
    FieldProblem,
    IdempotencyKeyReused,
    NotFound,
    RequestInFlight,
    Unprocessable,
)
from app.kernel.pagination import decode_cursor, encode_cursor
from app.rulesets.resolve import RuleSets
from app.screenings.asking import ask_next, missing_items
from app.screenings.bodies import (
    Decided,
    Stored,
    brief_json,
    build_screening_body,
    decision_body,
    screening_body,
    stored_rule_set,
)
from app.screenings.models import Decision, Screening, subject_reference
from app.screenings.repository import JsonText, ScreeningRepository, store_screening
from app.screenings.schemas import (
    DecisionRequest,
    ReplayRequest,
    RuleSetPin,
    ScreeningRequest,
)
from app.security.caller import Caller

if TYPE_CHECKING:
    from app.operations.metrics import Metrics


def fingerprint(request: ScreeningRequest, context: dict[str, Any] | None = None) -> str:
    """sha256 of the request's canonical JSON (and of the FHIR context it came with): the same
    body gives the same fingerprint."""
    return _fingerprint(request.model_dump(mode="json"), context)


def _fingerprint(dumped: dict[str, Any], context: dict[str, Any] | None) -> str:
    """``fingerprint`` of a request already dumped (``model_dump(mode="json")``). A body
    without a person id hashes as it did before person ids existed, so keys stored then still
    replay."""
    if dumped.get("person_id") is None:
        dumped = {name: value for name, value in dumped.items() if name != "person_id"}
    body = dumped | ({"fhir_context": context} if context else {})
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _created(decided: Decided) -> dict[str, Any]:
    """The details of a creation's audit event: which version decided."""
    return {"rule_set_version": decided.rule_set.name}


@dataclass(frozen=True, slots=True)
class _NewScreening:
    """A screening decided and not stored yet: the column values of its row, of its audit
    event (None when the action is not audited) and of its idempotency key (None without)."""

    decided: Decided
    screening: dict[str, Any]
    event: dict[str, Any] | None
    key: dict[str, Any] | None


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
        self.evaluations = TurnBatch()  # see app/kernel/batching.py

    @property
    def engine(self) -> AsyncEngine:
        """The engine the sessions are bound to: what ``store_screening`` writes through."""
        engine = self.sessions.kw.get("bind")
        assert isinstance(engine, AsyncEngine), "sessions bound to the database's engine"
        return engine

    def _evaluate(self, compiled: CompiledRuleSet, answers: ScreeningAnswers) -> Determination:
        started = time.perf_counter()
        determination = evaluate(compiled, answers)
        if self.metrics is not None:
            self.metrics.evaluated(time.perf_counter() - started)
        return determination

    def _evaluate_to_json(
        self, compiled: CompiledRuleSet, answers: ScreeningAnswers, whole: bool
    ) -> tuple[Determination, bytes | None, bytes]:
        """The determination, its whole JSON (only when ``whole``) and its brief JSON."""
        determination = self._evaluate(compiled, answers)
        whole_json = determination_to_json(determination) if whole else None
        return determination, whole_json, brief_json(determination)

    async def _decide(
        self,
        session: AsyncSession | None,
        caller: Caller,
        request: ScreeningRequest,
        whole: bool = True,
    ) -> Decided:
        """Resolve the version that decides and evaluate under it; the determination's whole
        JSON is written only when ``whole`` (what is stored, or asked for with its trace).
        Without ``session``, one is opened only when the in-process cache cannot answer
        (opening and closing a session costs more than an evaluation)."""
        rule_set = self.rule_sets.resolve_cached(caller.tenant, request.rule_set)
        if rule_set is None:
            async with contextlib.AsyncExitStack() as stack:
                if session is None:
                    session = await stack.enter_async_context(self.sessions())
                rule_set = await self.rule_sets.resolve(session, caller.tenant, request.rule_set)
        compiled, answers = rule_set.compiled, request.answers
        determination, whole_json, brief = await self.evaluations.run(
            lambda: self._evaluate_to_json(compiled, answers, whole)
        )
        asking = []
        if determination.missing:  # a complete screening has nothing to ask
            given = answers.model_dump(mode="json", exclude_none=True)
            asking = ask_next(determination.missing, compiled, given)
        return Decided(rule_set, determination, whole_json, brief, asking)

    async def evaluate_only(
        self, caller: Caller, request: ScreeningRequest, *, with_trace: bool = False
    ) -> Decided:
        """The determination of ``request``, stored nowhere (its whole JSON only when
        ``with_trace``)."""
        return await self._decide(None, caller, request, whole=with_trace)

    async def create(
        self,
        caller: Caller,
        request: ScreeningRequest,
        idempotency_key: str | None,
        fhir_context: dict[str, Any] | None = None,
        response_digest: str | None = None,
    ) -> Stored:
        """Evaluate and store a screening; with a key, at most once per key and body: a retry
        replays the stored screening, even one that is being stored when it arrives (it waits
        for that). ``fhir_context`` is what a QuestionnaireResponse said of its subject and
        encounter, ``response_digest`` what identifies that response (see ``of_response``).

        The evaluation holds no connection; the key, the screening and its audit event are
        then stored together (``store_screening``), or nothing when the key exists."""
        try:
            decided = await self._decide(None, caller, request)
        except Unprocessable:
            if idempotency_key is None:
                raise
            # A retry of a stored request replays even if its pin no longer works.
            print_ = fingerprint(request, fhir_context)
            replay = await self._replay(caller, idempotency_key, print_)
            if replay is None:
                raise
            return replay
        new = self._new_screening(
            caller, request, decided, idempotency_key, fhir_context, response_digest
        )
        for _ in range(3):
            if await store_screening(self.engine, new.screening, new.event, new.key):
                return self._answer_stored(caller, new)
            assert new.key is not None  # only a key can be there already
            replay = await self._replay(caller, new.key["key"], new.key["fingerprint"])
            if replay is not None:
                return replay
            # The key had expired (now deleted) or was deleted meanwhile: store after all.
        raise RequestInFlight(  # the key replaced under this request again and again
            "This Idempotency-Key is contended by concurrent requests; retry.",
            headers={"Retry-After": "1"},
        )

    def _new_screening(
        self,
        caller: Caller,
        request: ScreeningRequest,
        decided: Decided,
        idempotency_key: str | None,
        fhir_context: dict[str, Any] | None,
        response_digest: str | None,
    ) -> _NewScreening:
        """The rows that store a screening just decided: the screening, its audit event and
        (with a key) its idempotency key, completed at once."""
        values = self._screening_values(
            caller, request, decided, idempotency_key, fhir_context, response_digest
        )
        assert decided.whole_json is not None  # what is stored is the whole determination
        values["determination"] = JsonText(decided.whole_json.decode())
        event = audit_event_values(caller, 201, resource_id=values["id"], details=_created(decided))
        if idempotency_key is None:
            values["answers"] = JsonText(request.answers.model_dump_json())
            return _NewScreening(decided, values, event, None)
        dumped = request.model_dump(mode="json")  # one dump for the fingerprint and the answers
        values["answers"] = JsonText(orjson.dumps(dumped["answers"]).decode())
        key = {
            "tenant_id": caller.tenant,
            "client_id": caller.client_id,
            "key": idempotency_key,
            "fingerprint": _fingerprint(dumped, fhir_context),
            "state": "completed",
            "screening_id": values["id"],
            "created_at": values["created_at"],
            "expires_at": values["created_at"] + self.idempotency_ttl,
        }
        return _NewScreening(decided, values, event, key)

    def _answer_stored(self, caller: Caller, new: _NewScreening) -> Stored:
        """The answer for a screening this request stored."""
        values, decided = new.screening, new.decided
        assert decided.whole_json is not None  # a stored screening's is written whole
        if new.event is not None:
            caller.recorded = True
        if self.metrics is not None:
            self.metrics.screening_stored(values["level"], values["urgency"])
        body = build_screening_body(
            values["id"],
            values["created_at"],
            values["external_reference"],
            decided.rule_set.rule_set_used(),
            values["engine_version"],
            orjson.Fragment(decided.whole_json),
            None,
            values["person_id"],
        )
        return Stored(
            body, False, values["fhir_context"], decided=decided, ask_next=decided.ask_next
        )

    async def _replay(self, caller: Caller, key: str, print_: str) -> Stored | None:
        """What a key the caller's client already stored answers: its screening, replayed, or
        422 when the key came with another body. None when there is no such key: one that has
        expired is deleted (as is one without a screening, a claim that an earlier version of
        this service left behind), and the request proceeds as new."""
        tenant, client = caller.tenant, caller.client_id
        async with self.sessions() as session, session.begin():
            repository = ScreeningRepository(session)
            stored = await repository.idempotency(tenant, client, key)
            now = utcnow()
            if stored is None or stored.expires_at < now or stored.screening_id is None:
                if stored is not None:
                    await repository.forget_key(tenant, client, key, now)
                return None
            if stored.fingerprint != print_:
                raise IdempotencyKeyReused(
                    "This Idempotency-Key was already used with a different request body."
                )
            screening = await repository.get(tenant, stored.screening_id)
            if screening is None:  # pragma: no cover - kept years longer than any key
                raise Conflict("The screening for this Idempotency-Key is missing.")
            record(session, caller, 201, resource_id=screening.id, details={"replayed": True})
            asking = await self._ask_next_of(session, caller, screening)
        if self.metrics is not None:
            self.metrics.replayed()
        return Stored(screening_body(screening), True, screening.fhir_context, ask_next=asking)

    async def _ask_next_of(
        self, session: AsyncSession, caller: Caller, row: Screening
    ) -> list[dict[str, Any]]:
        """What to ask next of a stored screening, under the version that decided it."""
        missing = row.determination.get("missing") or []
        if not missing:
            return []
        pin = RuleSetPin(
            owner=row.rule_set_owner, key=row.rule_set_key, version=row.rule_set_version
        )
        rule_set = await self.rule_sets.resolve(session, caller.tenant, pin, allow_retired=True)
        return ask_next(missing_items(missing), rule_set.compiled, row.answers)

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
            "person_id": request.person_id,
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
            "subject_reference": subject_reference(fhir_context),
            "response_digest": response_digest,
        }

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

    async def stored(self, caller: Caller, screening_id: str) -> Screening:
        """The stored screening (its row), read as the caller's action records it."""
        async with self.sessions() as session, session.begin():
            row = await self.visible(session, caller, screening_id)
            record(session, caller, 200, resource_id=row.id)
        return row

    @staticmethod
    async def visible(session: AsyncSession, caller: Caller, screening_id: str) -> Screening:
        """The caller's stored screening, read in ``session`` (the caller's transaction, which
        records its action): 404 for another tenant's, or another patient's."""
        row = await ScreeningRepository(session).get(caller.tenant, screening_id)
        # A token bound to a patient finds no one else's, like another tenant's.
        if row is None or not caller.principal.may_see(row.subject_reference):
            raise _not_found(screening_id)
        return row

    async def get(
        self, caller: Caller, screening_id: str, *, asking: bool = True
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The stored screening's body, and (unless ``asking`` is false: the readable forms show
        the determination's own list) what to ask next of it."""
        async with self.sessions() as session, session.begin():
            repository = ScreeningRepository(session)
            row = await repository.get(caller.tenant, screening_id)
            if row is None:
                raise _not_found(screening_id)
            body = screening_body(row, await repository.latest_decision(row.id))
            to_ask = await self._ask_next_of(session, caller, row) if asking else []
            record(session, caller, 200)
        return body, to_ask

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
                "person_id": row.person_id,
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
        replayed = orjson.loads(determination_to_json(self._evaluate(rule_set.compiled, answers)))
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
                screening_created_at=row.created_at,
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
