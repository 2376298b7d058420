"""CDS Hooks 2.0 services: discovery, the service calls, and feedback.

``carelevel-iop-screening`` (patient-view) shows the recommendation of the patient's latest
completed QuestionnaireResponse to our Questionnaire, or invites a screening when there is none,
saying what the chart already answers (app/fhir/chart.py, app/fhir/populate.py) and offering
that pre-filled draft.
``carelevel-iop-referral-check`` (order-select) shows a card only when a behavioral-health
referral being ordered is to another level than the screening recommends (app/cds_hooks/
orders.py), or invites a screening when there is none; it does not read the chart. What the
prefetch lacks is read from the EHR's FHIR server when the call grants a token for a server the
CDS client's configuration lists (app/cds_hooks/chart.py), all of it at once within one time
budget; otherwise a missing latest response is a 412. When that read fails, the card says the
screening on file could not be checked, never that there is none. Each evaluated response is
stored as a screening (idempotently: the same response, the same screening), and each card is
remembered so that feedback reaches its screening as the clinician's decision. A screening card
also suggests the tenant's programs that fit the screened person (app/cds_hooks/cards.py), from
the stored answers and the program directory, ranked off the event loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.trail import record
from app.cds_hooks.cards import (
    Links,
    ProgramOffer,
    invitation_card,
    program_offer,
    screening_card,
)
from app.cds_hooks.chart import ChartReader, may_query
from app.cds_hooks.models import IssuedCard
from app.cds_hooks.orders import code_map, difference
from app.cds_hooks.prefetch import (
    answers_ours,
    chart_resources,
    names_patient,
    needs,
    subject_reference,
    trusted_bases,
)
from app.cds_hooks.schemas import (
    Card,
    CdsResponse,
    Discovery,
    Feedback,
    FeedbackRequest,
    HookContext,
    HookRequest,
    OrderSelectContext,
    ServiceDescription,
    parse_context,
)
from app.engine import DEFAULT_RULE_SET_KEY
from app.engine.determination import LevelOfCare
from app.engine.matching import Preferences
from app.fhir.chart import CHART_QUERIES, chart_of
from app.fhir.populate import populate, populated_link_ids
from app.fhir.results import Result
from app.fhir.service import FhirService, result_of
from app.fhir.terminology import Vocabulary
from app.kernel.db import new_id, utcnow
from app.kernel.errors import BadRequest, NotFound, PrefetchMissing
from app.kernel.issuers import CdsClient
from app.referrals.matching import Screened, matched
from app.referrals.service import Directory
from app.screenings.models import Decision, Screening
from app.screenings.repository import ScreeningRepository
from app.screenings.schemas import VarianceReason
from app.security.caller import Caller

PREFETCH_KEY = "questionnaireResponse"


@dataclass(frozen=True, slots=True)
class CdsServiceSpec:
    id: str
    hook: str
    title: str
    description: str
    chart: bool  # whether its invitation is pre-filled from the chart (CHART_QUERIES)


SERVICES = {
    spec.id: spec
    for spec in (
        CdsServiceSpec(
            "carelevel-iop-screening",
            "patient-view",
            "IOP level-of-care screening",
            "Shows the level of care carelevel recommends from the patient's latest completed "
            "intake screening (QuestionnaireResponse), with its reasons, safety alerts and the "
            "barriers to an intensive outpatient program; invites a screening when there is "
            "none. Decision support, not a diagnosis.",
            chart=True,
        ),
        CdsServiceSpec(
            "carelevel-iop-referral-check",
            "order-select",
            "Level-of-care check of a behavioral-health referral",
            "When a referral (ServiceRequest) to a level of care is selected, shows a card if the "
            "patient's latest screening recommends another level.",
            chart=False,
        ),
    )
}


# The patient's answered QuestionnaireResponses, by the two search parameters EHRs support
# most widely (some support only ``patient``; ``questionnaire`` is rarely supported, and the
# responses $populate drafts cite a versioned canonical, ``…|version``, which an unversioned
# value may not match). carelevel picks the latest one to its Questionnaire itself.
RESPONSE_QUERY = "QuestionnaireResponse?patient={{context.patientId}}&status=completed,amended"


def prefetch_of(spec: CdsServiceSpec) -> dict[str, str]:
    """The prefetch a service asks for: the patient's responses, and the chart queries when
    its invitation is pre-filled from the chart."""
    return {**(CHART_QUERIES if spec.chart else {}), PREFETCH_KEY: RESPONSE_QUERY}


def _usage(spec: CdsServiceSpec, questionnaire: str) -> str:
    chart = " The other keys pre-fill a new screening from the chart." if spec.chart else ""
    return (
        f"Prefetch the patient's completed QuestionnaireResponses as '{PREFETCH_KEY}' "
        f"(carelevel uses the latest one to {questionnaire}, any version), or grant "
        f"fhirAuthorization for a FHIR server carelevel is configured to query.{chart} "
        "Decision support; a clinician reviews every recommendation."
    )


def discovery(vocabulary: Vocabulary) -> Discovery:
    """The discovery document: every service, with the prefetch it uses (the patient's
    responses, and the chart queries that pre-fill a new screening where it does)."""
    questionnaire = vocabulary.questionnaire(DEFAULT_RULE_SET_KEY)
    return Discovery(
        services=[
            ServiceDescription(
                hook=spec.hook,
                id=spec.id,
                title=spec.title,
                description=spec.description,
                prefetch=prefetch_of(spec),
                usageRequirements=_usage(spec, questionnaire),
            )
            for spec in SERVICES.values()
        ]
    )


@dataclass(slots=True)
class _ChartCall:
    """One call's view of the chart: the prefetch, completed by what carelevel read, the keys
    it could not read, and when the time for reading (one budget per call) runs out."""

    spec: CdsServiceSpec
    request: HookRequest
    context: HookContext
    client: CdsClient | None
    deadline: float  # time.monotonic()
    values: dict[str, Any] = field(default_factory=dict)
    unread: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.values = dict(self.request.prefetch or {})

    @property
    def may_query(self) -> bool:
        return may_query(self.request, self.client, self.context.patientId)

    @property
    def bases(self) -> frozenset[str]:
        """Where an absolute reference to the patient may point."""
        configured = self.client.fhir_servers if self.client is not None else ()
        return trusted_bases(self.request.fhirServer, configured)

    def missing_chart(self) -> dict[str, str]:
        """The chart queries of the service that the prefetch lacks."""
        if not self.spec.chart:
            return {}
        return {key: query for key, query in CHART_QUERIES.items() if needs(self.values, key)}


class CdsHooksService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        fhir: FhirService,
        chart_reader: ChartReader | None = None,
        programs: Directory | None = None,
    ) -> None:
        self.sessions = sessions
        self.fhir = fhir
        self.vocabulary = fhir.vocabulary
        self.chart_reader = chart_reader or ChartReader()
        self.programs = programs  # the program directory (None: cards suggest no program)

    async def aclose(self) -> None:
        await self.chart_reader.aclose()

    def discovery(self) -> Discovery:
        return discovery(self.vocabulary)

    async def call(
        self,
        caller: Caller,
        service_id: str,
        request: HookRequest,
        links: Links,
        client: CdsClient | None = None,
    ) -> CdsResponse:
        """Answer a hook call for ``client`` (the calling EHR's configuration: its local order
        codes)."""
        spec = SERVICES.get(service_id)
        if spec is None:
            raise NotFound(f"No CDS service '{service_id}'.")
        if request.hook != spec.hook:
            raise BadRequest(f"The service '{service_id}' answers the {spec.hook} hook.")
        context = parse_context(request)
        deadline = time.monotonic() + self.chart_reader.seconds
        chart = _ChartCall(spec, request, context, client, deadline)
        response = self._prefetched_response(chart, await self._latest(chart))
        if response is None:
            invitation = await self._invitation(chart, links)
            await self._remember(caller, spec, request, invitation, None)
            return CdsResponse(cards=[invitation])
        result = await self._evaluate(caller, response)
        note = None
        if isinstance(context, OrderSelectContext):
            codes = code_map(client.local_codes if client is not None else {})
            recommended = result.determination.get("recommended_level")
            note = difference(context.draftOrders, context.selections, recommended, codes)
            if note is None:
                return CdsResponse(cards=[])
        programs = await self._program_offer(caller, result)
        card = screening_card(self.vocabulary, links, result, note=note, programs=programs)
        if note is not None and card.indicator == "info":
            card.indicator = "warning"
        await self._remember(caller, spec, request, card, result)
        return CdsResponse(cards=[card])

    async def _program_offer(self, caller: Caller, result: Result) -> ProgramOffer | None:
        """What the tenant's directory offers the screened person: nothing to look up without
        a level, when emergency evaluation comes first, or without a program at the level."""
        level = (result.determination.get("recommended_level") or {}).get("level")
        if self.programs is None or level in (None, LevelOfCare.EMERGENCY_EVALUATION.value):
            return None
        entries = await self.programs.directory(caller.tenant)
        if not any(entry.program.level.value == level for entry in entries):
            return None
        async with self.sessions() as session, session.begin():
            row = await ScreeningRepository(session).get(caller.tenant, result.screening_id)
        if row is None:  # deleted since it was evaluated, moments ago
            return None
        screened = Screened(result.determination, row.answers)
        return await matched(screened, Preferences(), lambda needs: program_offer(needs, entries))

    async def _latest(self, chart: _ChartCall) -> object:
        """The prefetched latest response (a resource, a Bundle or null), read from the EHR's
        FHIR server when the prefetch lacks it and the call allows (with the chart the
        invitation would need, at once); None when that failed (listed in ``unread``)."""
        if not needs(chart.values, PREFETCH_KEY):
            return chart.values[PREFETCH_KEY]
        if not chart.may_query:
            failed = PREFETCH_KEY in chart.values
            raise PrefetchMissing(
                f"Prefetch '{PREFETCH_KEY}' is "
                + ("an OperationOutcome (the EHR could not fetch it)" if failed else "missing")
                + ", and the call grants no FHIR server carelevel may query: send the prefetch "
                "the discovery document asks for, or fhirServer and fhirAuthorization for a "
                "server this CDS client's configuration lists."
            )
        await self._read(chart, {**chart.missing_chart(), PREFETCH_KEY: RESPONSE_QUERY})
        return chart.values.get(PREFETCH_KEY)

    async def _read(self, chart: _ChartCall, queries: dict[str, str]) -> None:
        request = chart.request
        assert request.fhirServer is not None
        assert request.fhirAuthorization is not None
        fetched = await self.chart_reader.read(
            request.fhirServer,
            request.fhirAuthorization.access_token,
            queries,
            request.context,
            seconds=chart.deadline - time.monotonic(),
        )
        chart.values.update(fetched.values)
        chart.unread.extend(fetched.failed)

    async def _invitation(self, chart: _ChartCall, links: Links) -> Card:
        """The card inviting a screening, pre-filled with what the chart answers when the
        service uses the chart (its missing keys read from the EHR's FHIR server when the
        call allows and they were not read with the response)."""
        screening_unchecked = PREFETCH_KEY in chart.unread
        if not chart.spec.chart:
            return invitation_card(
                self.vocabulary,
                links,
                DEFAULT_RULE_SET_KEY,
                screening_unchecked=screening_unchecked,
            )
        missing = {k: q for k, q in chart.missing_chart().items() if k not in chart.unread}
        if missing and chart.may_query:
            await self._read(chart, missing)
        patient_id = chart.context.patientId
        given = {key: chart.values[key] for key in CHART_QUERIES if key in chart.values}
        draft = populate(
            self.vocabulary,
            chart_of(chart_resources(given, patient_id, chart.bases), patient_id),
            as_of=datetime.now(UTC),
            answered={
                "resourceType": "QuestionnaireResponse",
                "subject": {"reference": f"Patient/{patient_id}"},
            },
        )
        return invitation_card(
            self.vocabulary,
            links,
            DEFAULT_RULE_SET_KEY,
            draft=draft,
            prefilled=populated_link_ids(draft, self.vocabulary),
            chart_unread=any(key in CHART_QUERIES for key in chart.unread),
            screening_unchecked=screening_unchecked,
        )

    def _prefetched_response(self, chart: _ChartCall, found: object) -> dict[str, Any] | None:
        if isinstance(found, dict) and found.get("resourceType") == "Bundle":
            # The search may bring more than asked for: the latest completed response to our
            # Questionnaire is the one that counts.
            responses = [
                entry["resource"]
                for entry in found.get("entry") or []
                if isinstance(entry, dict) and answers_ours(entry.get("resource"), self.vocabulary)
            ]
            if not responses and _has_next_page(found):
                # Ours may be on a page carelevel did not read: not "none on file".
                chart.unread.append(PREFETCH_KEY)
            found = max(responses, key=_authored, default=None)
        if found is None:
            return None
        if not isinstance(found, dict) or found.get("resourceType") != "QuestionnaireResponse":
            raise BadRequest(f"Prefetch '{PREFETCH_KEY}' is not a QuestionnaireResponse.")
        if not names_patient(subject_reference(found), chart.context.patientId, chart.bases):
            # Never show one person's screening in another's chart.
            raise BadRequest(f"Prefetch '{PREFETCH_KEY}' is not about the patient in context.")
        return found

    async def _evaluate(self, caller: Caller, response: dict[str, Any]) -> Result:
        # The same response opens the same screening, however often the chart is opened, and
        # whether or not it was evaluated through FHIR first.
        _, stored = await self.fhir.evaluate(caller, response, None, once_per_response=True)
        return result_of(stored)

    async def _remember(
        self,
        caller: Caller,
        spec: CdsServiceSpec,
        request: HookRequest,
        card: Card,
        screening: Result | None,
    ) -> None:
        assert card.uuid is not None
        async with self.sessions() as session, session.begin():
            session.add(
                IssuedCard(
                    uuid=card.uuid,
                    tenant_id=caller.tenant,
                    client_id=caller.client_id,
                    service_id=spec.id,
                    hook_instance=request.hookInstance,
                    screening_id=None if screening is None else screening.screening_id,
                    screening_created_at=None if screening is None else screening.created_at,
                    created_at=utcnow(),
                )
            )

    async def feedback(self, caller: Caller, service_id: str, request: FeedbackRequest) -> int:
        """Record each card's outcome as the clinician's decision on its screening; returns
        how many were new (feedback sent again changes nothing)."""
        if service_id not in SERVICES:
            raise NotFound(f"No CDS service '{service_id}'.")
        recorded = 0
        async with self.sessions() as session, session.begin():
            for item in request.feedback:
                card, screening = await self._card(session, caller, service_id, item.card)
                if screening is None:  # an invitation: there is nothing to decide on
                    continue
                outcome_at = item.outcomeTimestamp
                known = await session.execute(
                    select(Decision.id).where(
                        Decision.card_uuid == card.uuid,
                        Decision.outcome == item.outcome,
                        Decision.outcome_at == outcome_at,
                    )
                )
                if known.first() is not None:
                    continue
                decision = _decision(item, card, screening, caller, outcome_at)
                session.add(decision)
                record(
                    session,
                    caller,
                    200,
                    resource_id=screening.id,
                    details={"decision_id": decision.id, "outcome": item.outcome},
                )
                recorded += 1
            if not recorded:
                record(session, caller, 200, details={"unchanged": len(request.feedback)})
        return recorded

    async def _card(
        self, session: AsyncSession, caller: Caller, service_id: str, card_uuid: str
    ) -> tuple[IssuedCard, Screening | None]:
        card = await session.get(IssuedCard, card_uuid)
        if card is None or card.tenant_id != caller.tenant or card.service_id != service_id:
            raise NotFound(f"No card '{card_uuid}' of this service.")
        if card.screening_id is None:
            return card, None
        screening = await ScreeningRepository(session).get(caller.tenant, card.screening_id)
        if screening is None:  # past its retention, and deleted since the card was shown
            raise NotFound(f"No card '{card_uuid}' of this service.")
        return card, screening


def _decision(
    item: Feedback, card: IssuedCard, screening: Screening, caller: Caller, outcome_at: datetime
) -> Decision:
    reasons: list[str] = []
    comment = None
    if item.outcome == "overridden" and item.overrideReason is not None:
        reason, comment = item.overrideReason.reason, item.overrideReason.userComment
        codes = {r.value for r in VarianceReason}
        if reason is not None and reason.code in codes:
            reasons = [reason.code]
        elif reason is not None:
            reasons = ["other"]
            comment = comment or reason.display
    if item.outcome == "overridden" and not reasons:
        reasons = ["other"] if comment else []
    return Decision(
        id=new_id(),
        screening_id=screening.id,
        screening_created_at=screening.created_at,
        tenant_id=caller.tenant,
        client_id=caller.client_id,
        created_at=utcnow(),
        final_level=screening.level if item.outcome == "accepted" else None,
        recommended_level=screening.level,
        variance_reasons=reasons,
        comment=(comment or None) and comment.replace("\x00", "")[:2000],
        decided_by=caller.label,
        outcome=item.outcome,
        source="cds-hooks",
        card_uuid=card.uuid,
        outcome_at=outcome_at,
    )


def _has_next_page(bundle: dict[str, Any]) -> bool:
    links = bundle.get("link")
    return isinstance(links, list) and any(
        isinstance(link, dict) and link.get("relation") == "next" for link in links
    )


def _authored(response: dict[str, Any]) -> datetime:
    """When a response was authored, comparable across time zones (unknown: earliest)."""
    value = response.get("authored")
    try:
        authored = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        authored = None
    if authored is None:
        return datetime.min.replace(tzinfo=UTC)
    return authored if authored.tzinfo else authored.replace(tzinfo=UTC)
