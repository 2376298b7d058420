"""CDS Hooks 2.0 services: discovery, the service calls, and feedback.

``carelevel-iop-screening`` (patient-view) shows the recommendation of the patient's latest
completed QuestionnaireResponse to our Questionnaire, or invites a screening when there is none,
saying what the chart already answers (app/fhir/populate.py) and offering that pre-filled draft.
``carelevel-iop-referral-check`` (order-select) shows a card only when a behavioral-health
referral being ordered is to another level than the screening recommends (app/cds_hooks/
orders.py). What the prefetch lacks is read from the EHR's FHIR server when the call grants a
token for a server the CDS client's configuration lists (app/cds_hooks/chart.py); otherwise a
missing latest response is a 412. Each evaluated response is stored as a screening
(idempotently: the same response, the same screening), and each card is remembered so that
feedback reaches its screening as the clinician's decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.trail import record
from app.cds_hooks.cards import Links, invitation_card, screening_card
from app.cds_hooks.chart import ChartReader, may_query
from app.cds_hooks.models import IssuedCard
from app.cds_hooks.orders import code_map, difference
from app.cds_hooks.prefetch import chart_resources, names_patient, needs, subject_reference
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
from app.fhir.populate import CHART_QUERIES, chart_of, populate, populated_link_ids
from app.fhir.response import ANSWERED
from app.fhir.results import Result
from app.fhir.service import FhirService, result_of
from app.fhir.terminology import Vocabulary
from app.kernel.db import new_id, utcnow
from app.kernel.errors import BadRequest, NotFound, PrefetchMissing
from app.kernel.issuers import CdsClient
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
        ),
        CdsServiceSpec(
            "carelevel-iop-referral-check",
            "order-select",
            "Level-of-care check of a behavioral-health referral",
            "When a referral (ServiceRequest) to a level of care is selected, shows a card if the "
            "patient's latest screening recommends another level.",
        ),
    )
}


def response_query(vocabulary: Vocabulary) -> str:
    """The search for the patient's latest completed response to our Questionnaire."""
    questionnaire = vocabulary.questionnaire(DEFAULT_RULE_SET_KEY)
    return (
        "QuestionnaireResponse?subject=Patient/{{context.patientId}}"
        f"&questionnaire={questionnaire}&status=completed,amended&_sort=-authored&_count=1"
    )


def discovery(vocabulary: Vocabulary) -> Discovery:
    """The discovery document: every service, with the prefetch it needs (the latest
    response) and the chart queries that pre-fill a new screening."""
    questionnaire = vocabulary.questionnaire(DEFAULT_RULE_SET_KEY)
    prefetch = {**CHART_QUERIES, PREFETCH_KEY: response_query(vocabulary)}
    return Discovery(
        services=[
            ServiceDescription(
                hook=spec.hook,
                id=spec.id,
                title=spec.title,
                description=spec.description,
                prefetch=prefetch,
                usageRequirements="Prefetch the latest completed QuestionnaireResponse to "
                f"{questionnaire} as '{PREFETCH_KEY}' (or grant fhirAuthorization for a FHIR "
                "server carelevel is configured to query); the other keys pre-fill a new "
                "screening from the chart. Decision support; a clinician reviews every "
                "recommendation.",
            )
            for spec in SERVICES.values()
        ]
    )


@dataclass(slots=True)
class _ChartCall:
    """One call's view of the chart: the prefetch, completed by what carelevel read, and the
    keys it could not read."""

    request: HookRequest
    context: HookContext
    may_query: bool
    values: dict[str, Any] = field(default_factory=dict)
    unread: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.values = dict(self.request.prefetch or {})


class CdsHooksService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        fhir: FhirService,
        chart_reader: ChartReader | None = None,
    ) -> None:
        self.sessions = sessions
        self.fhir = fhir
        self.vocabulary = fhir.vocabulary
        self.chart_reader = chart_reader or ChartReader()

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
        chart = _ChartCall(request, context, may_query(request, client, context.patientId))
        response = self._prefetched_response(request, context.patientId, await self._latest(chart))
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
        card = screening_card(self.vocabulary, links, result, note=note)
        if note is not None and card.indicator == "info":
            card.indicator = "warning"
        await self._remember(caller, spec, request, card, result)
        return CdsResponse(cards=[card])

    async def _latest(self, chart: _ChartCall) -> object:
        """The prefetched latest response (a resource, a Bundle or null), read from the EHR's
        FHIR server when the prefetch lacks it and the call allows; None when that failed."""
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
        await self._read(chart, {PREFETCH_KEY: response_query(self.vocabulary)})
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
        )
        chart.values.update(fetched.values)
        chart.unread.extend(fetched.failed)

    async def _invitation(self, chart: _ChartCall, links: Links) -> Card:
        """The card inviting a screening, pre-filled with what the chart answers (its
        missing keys read from the EHR's FHIR server when the call allows)."""
        missing = {key: query for key, query in CHART_QUERIES.items() if needs(chart.values, key)}
        if missing and chart.may_query:
            await self._read(chart, missing)
        patient_id = chart.context.patientId
        given = {key: chart.values[key] for key in CHART_QUERIES if key in chart.values}
        draft = populate(
            self.vocabulary,
            chart_of(chart_resources(given, patient_id)),
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
            prefilled=populated_link_ids(draft),
            chart_unread=bool(chart.unread),
        )

    def _prefetched_response(
        self, request: HookRequest, patient_id: str, found: object
    ) -> dict[str, Any] | None:
        if isinstance(found, dict) and found.get("resourceType") == "Bundle":
            # The search may bring more than asked for: the latest completed response to our
            # Questionnaire is the one that counts.
            responses = [
                entry["resource"]
                for entry in found.get("entry") or []
                if isinstance(entry, dict) and self._is_our_answered_response(entry.get("resource"))
            ]
            found = max(responses, key=_authored, default=None)
        if found is None:
            return None
        if not isinstance(found, dict) or found.get("resourceType") != "QuestionnaireResponse":
            raise BadRequest(f"Prefetch '{PREFETCH_KEY}' is not a QuestionnaireResponse.")
        if not names_patient(subject_reference(found), patient_id, request.fhirServer):
            # Never show one person's screening in another's chart.
            raise BadRequest(f"Prefetch '{PREFETCH_KEY}' is not about the patient in context.")
        return found

    def _is_our_answered_response(self, resource: Any) -> bool:
        if (
            not isinstance(resource, dict)
            or resource.get("resourceType") != "QuestionnaireResponse"
        ):
            return False
        cited = resource.get("questionnaire")
        ours = self.vocabulary.questionnaire(DEFAULT_RULE_SET_KEY)
        return (
            resource.get("status") in ANSWERED
            and isinstance(cited, str)
            and cited.partition("|")[0] == ours
        )

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
