"""FHIR use cases: the Questionnaire of a rule-set version, evaluating a QuestionnaireResponse
(stored exactly like ``POST /v1/screenings``: same idempotency, tenant and audit), and reading
a stored result back as FHIR resources."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.trail import record
from app.engine.instruments import InstrumentId
from app.fhir.healthcare_service import healthcare_service
from app.fhir.outcome import FhirError, Issue, item_expression
from app.fhir.questionnaire import QuestionnaireVersion, build_questionnaire, is_questionnaire_key
from app.fhir.referrals import referral_request
from app.fhir.response import ReadResponse, answers_link_id, read_response
from app.fhir.results import Result, referral, require_subject, resources, transaction_bundle
from app.fhir.search import Search, ServiceSearch, matches, program_criteria, screening_ids
from app.fhir.terminology import Vocabulary
from app.kernel.errors import NotFound, Unprocessable
from app.kernel.pagination import decode_cursor, encode_cursor
from app.kernel.text import NO_CONTROL_CHARACTERS
from app.programs.service import ProgramService
from app.referrals.models import Referral
from app.rulesets.resolve import RuleSets
from app.screenings.bodies import Stored, stored_rule_set
from app.screenings.models import Screening
from app.screenings.repository import ScreeningRepository
from app.screenings.schemas import RuleSetPin, ScreeningRequest
from app.screenings.service import ScreeningService
from app.security.caller import Caller

_PLAIN = re.compile(NO_CONTROL_CHARACTERS)
_OBSERVATION_SUFFIXES = ("", *(f"-{i.value.replace('_', '-')}" for i in InstrumentId))
# A referral's ServiceRequest is named by the referral's id alone (a UUID, like a screening's).
_REFERRAL_SUFFIX = ""


class FhirService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        rule_sets: RuleSets,
        screenings: ScreeningService,
        vocabulary: Vocabulary,
        programs: ProgramService,
    ) -> None:
        self.sessions = sessions
        self.programs = programs
        self.rule_sets = rule_sets
        self.screenings = screenings
        self.vocabulary = vocabulary

    # --- the Questionnaire ------------------------------------------------------------------

    async def questionnaire_version(
        self, caller: Caller, key: str, pin: tuple[str, int] | None
    ) -> QuestionnaireVersion | None:
        """The rule-set version a Questionnaire stands for: ``pin`` (owner, version), or the
        version that decides the caller's screenings of ``key``. None: there is none."""
        if not is_questionnaire_key(key):
            return None
        rule_set = RuleSetPin(owner=pin[0], key=key, version=pin[1]) if pin else RuleSetPin(key=key)
        async with self.sessions() as session, session.begin():
            try:
                deciding = await self.rule_sets.resolve(
                    session, caller.tenant, rule_set, allow_retired=True
                )
            except Unprocessable:
                return None
            row = await self.rule_sets.header(session, deciding)
        if row is None:  # pragma: no cover - deleted between the two reads (drafts only)
            return None
        return QuestionnaireVersion(
            owner=row.owner,
            key=row.key,
            version=row.version,
            title=row.title,
            status=row.status,
            date=row.activated_at or row.published_at,
            sha256=row.sha256,
        )

    async def questionnaire(
        self, caller: Caller, key: str, pin: tuple[str, int] | None
    ) -> dict[str, Any] | None:
        version = await self.questionnaire_version(caller, key, pin)
        return None if version is None else build_questionnaire(self.vocabulary, version)

    # --- evaluating a QuestionnaireResponse ---------------------------------------------------

    async def evaluate(
        self,
        caller: Caller,
        resource: Any,
        idempotency_key: str | None,
        *,
        once_per_response: bool = False,
        us_core: bool = False,
    ) -> tuple[dict[str, Any], Stored]:
        """Evaluate and store the screening a QuestionnaireResponse answers; its result as a
        transaction Bundle. Nothing is stored when the response cannot be used.
        ``once_per_response``: a response evaluated before (by either path) gives its screening
        again; so does, without an ``idempotency_key``, a response that names itself
        (``identifies_itself``), so that the EHR files its results once. ``us_core``: refuse
        a response whose results could not be US Core ones."""
        read = read_response(resource, self.vocabulary)
        if us_core:
            require_subject(read.context)
        request = self._screening_request(read)
        digest = response_digest(read, request)
        if once_per_response or (idempotency_key is None and identifies_itself(read.context)):
            existing = await self.screenings.of_response(caller, digest)
            if existing is not None:
                return transaction_bundle(self.vocabulary, result_of(existing)), existing
            # Concurrent first calls with the same response still store one screening.
            idempotency_key = f"fhir-response:{digest[:48]}"
        try:
            stored = await self.screenings.create(
                caller, request, idempotency_key, read.context, response_digest=digest
            )
        except Unprocessable as error:
            if not any(e.pointer.startswith("#/rule_set") for e in error.errors or []):
                raise
            raise FhirError(
                422,
                "The cited Questionnaire has no version that can decide: " + error.detail,
                [
                    Issue(
                        diagnostics=error.detail,
                        expression="QuestionnaireResponse.questionnaire",
                        code="not-found",
                    )
                ],
            ) from None
        return transaction_bundle(self.vocabulary, result_of(stored)), stored

    def _screening_request(self, read: ReadResponse) -> ScreeningRequest:
        pin: dict[str, Any] = {"key": read.key}
        if read.pin:
            pin |= {"owner": read.pin[0], "version": read.pin[1]}
        identifier = read.context.get("identifier")
        reference = identifier.get("value") if isinstance(identifier, dict) else None
        if not (isinstance(reference, str) and len(reference) <= 200 and _PLAIN.match(reference)):
            reference = None
        try:
            return ScreeningRequest.model_validate(
                {"answers": read.answers, "external_reference": reference, "rule_set": pin}
            )
        except ValidationError as error:
            issues = []
            for problem in error.errors(include_input=False, include_url=False):
                location = tuple(problem["loc"])
                if location[:1] != ("answers",):
                    continue
                link_id = answers_link_id(location[1:])
                issues.append(
                    Issue(
                        diagnostics=f"linkId '{link_id}': {problem['msg']}",
                        expression=item_expression(link_id),
                    )
                )
            raise FhirError(
                422,
                "The answers do not satisfy the questionnaire's rules.",
                issues or [Issue(diagnostics="the answers are invalid")],
            ) from None

    # --- stored results -----------------------------------------------------------------------

    async def resource(
        self, caller: Caller, resource_type: str, resource_id: str
    ) -> dict[str, Any]:
        """A stored result's resource (``<screening id>`` is the recommendation, ``…-phq9`` a
        score, ``…-referral`` the ServiceRequest); 404 for anything else, another tenant's
        included."""
        missing = NotFound(f"No {resource_type} with id '{resource_id}'.")
        suffix = resource_id[36:]
        expected = {
            "ServiceRequest": ("-referral", _REFERRAL_SUFFIX),
            "Observation": _OBSERVATION_SUFFIXES,
        }
        if suffix not in expected.get(resource_type, ()):
            raise missing  # not a name carelevel gives: no need to read anything
        if resource_type == "ServiceRequest" and suffix == _REFERRAL_SUFFIX:
            return await self._recorded_referral(caller, resource_id, missing)
        try:
            row = await self.screenings.stored(caller, resource_id[:36])
        except NotFound:
            raise missing from None
        for found in resources(self.vocabulary, _result_of_row(row)):
            if found["resourceType"] == resource_type and found["id"] == resource_id:
                return found
        raise missing

    async def _recorded_referral(
        self, caller: Caller, referral_id: str, missing: NotFound
    ) -> dict[str, Any]:
        """A recorded referral's ServiceRequest; 404 for another tenant's, or for one whose
        screening a token bound to a patient may not see."""
        async with self.sessions() as session, session.begin():
            found = await session.get(Referral, referral_id)
            if found is None or found.tenant_id != caller.tenant:
                raise missing
            row = await ScreeningRepository(session).get(caller.tenant, found.screening_id)
            if row is None or not caller.principal.may_see(row.subject_reference):
                raise missing
            record(session, caller, 200, resource_id=row.id)
        return self._referral_request(found, row)

    def _referral_request(self, found: Referral, row: Screening) -> dict[str, Any]:
        proposed = referral(self.vocabulary, _result_of_row(row)) is not None
        return referral_request(self.vocabulary, found, row, proposed=proposed)

    async def search(
        self, caller: Caller, search: Search
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of the stored results ``search`` matches, newest screening first, and the
        cursor of the next page (None: this is the last). Screenings are read in batches by
        the subject index until the page is full; a cursor is the (created_at, id) of the
        last resource returned, so a page may end within a screening's resources."""
        after = decode_cursor(search.cursor) if search.cursor else None
        async with self.sessions() as session, session.begin():
            repository = ScreeningRepository(session)
            if search.references is None:
                found = await self._of_screenings(repository, caller, search, after)
            else:
                found = await self._of_subjects(
                    repository, caller, search, search.references, after
                )
            page = found[: search.count]
            record(
                session,
                caller,
                200,
                details={"search": search.resource_type, "returned": len(page)},
            )
        last = page[-1] if len(found) > search.count else None
        next_cursor = encode_cursor(last[0].created_at, last[1]["id"]) if last else None
        return [resource for _, resource in page], next_cursor

    async def _of_subjects(
        self,
        repository: ScreeningRepository,
        caller: Caller,
        search: Search,
        references: frozenset[str],
        after: tuple[datetime, str] | None,
    ) -> list[tuple[Screening, dict[str, Any]]]:
        """At least a page and one more of the matches after the cursor, or every match."""
        found: list[tuple[Screening, dict[str, Any]]] = []
        if after is not None:
            at, last_id = after
            screening_id = await _screening_of(repository, caller.tenant, last_id)
            row = await repository.get(caller.tenant, screening_id)
            if row is not None and row.subject_reference in references:
                rest = await self._matching(repository, [row], search)
                ids = [resource["id"] for _, resource in rest]
                found += rest[ids.index(last_id) + 1 :] if last_id in ids else []
            after = (at, screening_id)
        batch = search.count + 1
        while len(found) <= search.count:
            rows = await repository.of_subjects(caller.tenant, references, limit=batch, after=after)
            found += await self._matching(repository, rows, search)
            if len(rows) < batch:
                break
            after = (rows[-1].created_at, rows[-1].id)
        return found

    async def _of_screenings(
        self,
        repository: ScreeningRepository,
        caller: Caller,
        search: Search,
        after: tuple[datetime, str] | None,
    ) -> list[tuple[Screening, dict[str, Any]]]:
        """The matches after the cursor among the few screenings an identifier names."""
        named = {
            await _screening_of(repository, caller.tenant, resource_id)
            for resource_id in screening_ids(search.identifiers)
        }
        rows = [
            row
            for screening_id in sorted(named)
            if (row := await repository.get(caller.tenant, screening_id)) is not None
        ]
        rows.sort(key=lambda row: (row.created_at, row.id), reverse=True)
        found = await self._matching(repository, rows, search)
        if after is None:
            return found
        ids = [resource["id"] for _, resource in found]
        return found[ids.index(after[1]) + 1 :] if after[1] in ids else []

    async def _matching(
        self, repository: ScreeningRepository, rows: Sequence[Screening], search: Search
    ) -> list[tuple[Screening, dict[str, Any]]]:
        """The resources of ``rows`` that ``search`` matches, each screening's in order: its
        results, then (ServiceRequests) the referrals recorded from it, oldest first."""
        recorded: dict[str, list[Referral]] = {}
        if search.resource_type == "ServiceRequest" and rows:
            query = (
                select(Referral)
                .where(
                    Referral.tenant_id == rows[0].tenant_id,
                    Referral.screening_id.in_([row.id for row in rows]),
                )
                .order_by(Referral.created_at, Referral.id)
            )
            for found in (await repository.session.execute(query)).scalars():
                recorded.setdefault(found.screening_id, []).append(found)
        matched = []
        for row in rows:
            rendered = resources(self.vocabulary, _result_of_row(row))
            rendered += [self._referral_request(r, row) for r in recorded.get(row.id, [])]
            matched += [(row, resource) for resource in rendered if matches(resource, search)]
        return matched

    # --- the program directory ----------------------------------------------------------------

    async def healthcare_service(self, caller: Caller, program_id: str) -> dict[str, Any]:
        """A program of the caller's tenant as a HealthcareService (retired ones inactive)."""
        found = await self.programs.entry(caller.tenant, program_id)
        if found is None:
            raise NotFound(f"No HealthcareService with id '{program_id}'.")
        entry, retired = found
        async with self.sessions() as session, session.begin():
            record(session, caller, 200, resource_id=entry.id)
        return healthcare_service(self.vocabulary, entry, retired=retired)

    async def healthcare_services(
        self, caller: Caller, search: ServiceSearch
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of the tenant's programs ``search`` matches, as HealthcareServices, oldest
        first, and the cursor of the next page (None: this is the last)."""
        criteria = program_criteria(search, self.vocabulary.levels)
        page, next_cursor = await self.programs.search(
            caller.tenant, criteria, search.count, search.cursor
        )
        async with self.sessions() as session, session.begin():
            record(
                session,
                caller,
                200,
                details={"search": "HealthcareService", "returned": len(page)},
            )
        found = [healthcare_service(self.vocabulary, e, retired=r) for e, r in page]
        return found, next_cursor


async def _screening_of(repository: ScreeningRepository, tenant: str, resource_id: str) -> str:
    """The screening a result resource belongs to: a recorded referral's (its id is the
    referral's), else the one whose id the resource's begins with."""
    if len(resource_id) == 36:
        found = await repository.session.get(Referral, resource_id)
        if found is not None and found.tenant_id == tenant:
            return found.screening_id
    return resource_id[:36]


def result_of(stored: Stored) -> Result:
    """What the FHIR resources of a stored screening are rendered from."""
    body = stored.body
    return Result(
        screening_id=body["id"],
        created_at=body["created_at"],
        rule_set=body["rule_set"],
        engine_version=body["engine_version"],
        determination=body["determination"],
        context=stored.fhir_context or {},
    )


def _result_of_row(row: Screening) -> Result:
    return Result(
        screening_id=row.id,
        created_at=row.created_at,
        rule_set=stored_rule_set(row),
        engine_version=row.engine_version,
        determination=row.determination,
        context=row.fhir_context or {},
    )


def identifies_itself(context: dict[str, Any]) -> bool:
    """Whether a QuestionnaireResponse says which one it is: an ``identifier``, or an ``id``
    on the EHR's server together with the ``subject``. Sent again, it is the same response
    (``response_digest``), not a new screening."""
    return bool(context.get("identifier")) or bool(context.get("id") and context.get("subject"))


def response_digest(read: ReadResponse, request: ScreeningRequest) -> str:
    """sha256 of what makes a QuestionnaireResponse the same one: its identifier, subject,
    authoring time, the Questionnaire it cites and its answers once normalised. What a FHIR
    server adds on storing it (its ``id``, ``meta``, narrative) does not count."""
    identity = {name: read.context.get(name) for name in ("identifier", "subject", "authored")}
    body = {
        "response": identity,
        "questionnaire": [read.key, read.pin],
        "answers": request.answers.model_dump(mode="json"),
    }
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
