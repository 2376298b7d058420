"""CDS Hooks 2.0 endpoints: ``/cds-services`` (discovery), ``/cds-services/{id}`` (a call)
and ``/cds-services/{id}/feedback``. Plain JSON, as the specification has it; every call
carries the EHR's signed JWT."""

from __future__ import annotations

import functools
import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import ValidationError

from app.cds_hooks.access import cds_access
from app.cds_hooks.cards import Links
from app.cds_hooks.examples import example_feedback, example_hook_request
from app.cds_hooks.schemas import (
    CdsResponse,
    Discovery,
    FeedbackRequest,
    HookRequest,
    UnsupportedHook,
)
from app.cds_hooks.service import CdsHooksService
from app.fhir.terminology import Vocabulary
from app.kernel.errors import (
    BadRequest,
    FieldProblem,
    Forbidden,
    NotFound,
    PrefetchMissing,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
    field_problems,
    problem,
    problem_example,
)
from app.kernel.issuers import CdsClient
from app.kernel.responses import json_response
from app.security.actions import Action
from app.security.caller import Caller
from app.security.links import LinkSigner

CDS_ERRORS: dict[int | str, dict[str, Any]] = {
    401: problem(
        "Missing, invalid, expired or replayed CDS client JWT.",
        problem_example(
            Unauthorized,
            "Send the signed JWT: Authorization: Bearer <JWT>.",
            summary="No JWT",
        ),
        problem_example(
            Unauthorized,
            "The token was already used: each call needs a new jti.",
            summary="A replayed JWT",
        ),
    ),
    403: problem(
        "The CDS client is not granted what this call needs.",
        problem_example(Forbidden, "This CDS client is not granted: screenings:write."),
    ),
    429: problem(
        "The client's rate limit is spent; retry after `Retry-After` seconds.",
        problem_example(
            TooManyRequests, "This client made more than 6000 requests in the current window."
        ),
    ),
    503: problem(
        "The database or the client's JWKS is unavailable; retry shortly.",
        problem_example(
            ServiceUnavailable,
            "The CDS client's signing keys cannot be fetched; retry shortly.",
        ),
    ),
}
router = APIRouter(prefix="/cds-services", tags=["CDS Hooks"], responses=CDS_ERRORS)
# The service calls, which carry the chart's prefetch: app/main.py gives them their own body
# limit (CARELEVEL_MAX_CHART_BODY_BYTES).
calls = APIRouter(prefix="/cds-services", tags=["CDS Hooks"], responses=CDS_ERRORS)

EXAMPLE_VOCABULARY = Vocabulary("https://carelevel.dev/fhir")
ServiceId = Annotated[str, Path(pattern=r"^[a-z0-9-]{1,64}$", description="The service's id.")]


def service(request: Request) -> CdsHooksService:
    cds: CdsHooksService = request.app.state.cds_hooks
    return cds


def links(request: Request, caller: Caller) -> Links:
    """The cards' links: this service's address, and view links signed now for the caller."""
    configured: str | None = request.app.state.settings.public_url
    signer: LinkSigner = request.app.state.link_signer
    view_query = functools.partial(
        signer.sign, tenant=caller.tenant, client_id=caller.client_id, now=time.time()
    )
    return Links(configured or str(request.base_url).rstrip("/"), view_query)


def cds_client(request: Request, caller: Caller) -> CdsClient | None:
    """The configuration of the EHR that made the call (its client id is ``cds:<name>``)."""
    clients: list[CdsClient] = request.app.state.settings.cds_clients
    return next((c for c in clients if f"cds:{c.name}" == caller.client_id), None)


async def _parsed(request: Request, model: type[Any]) -> Any:
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as error:
        if any(e["type"] == "json_invalid" for e in error.errors()):
            raise BadRequest("The body is not valid JSON.") from None
        problems = field_problems(error.errors(include_input=False))
        raise Unprocessable(
            "; ".join(f"{p.pointer[2:] or '(body)'}: {p.detail}" for p in problems[:5]),
            errors=problems,
        ) from None


@router.get(
    "",
    operation_id="discoverCdsServices",
    response_model=Discovery,
    response_model_exclude_none=True,
    summary="CDS Hooks discovery",
    description="The services carelevel offers: `carelevel-iop-screening` (patient-view) and "
    "`carelevel-iop-referral-check` (order-select), each with the prefetch it needs. The EHR "
    "reads it when the services are registered; it stores nothing. Needs a configured CDS "
    "client's JWT, like every CDS Hooks call.",
)
async def discovery(
    request: Request, caller: Annotated[Caller, cds_access(Action.QUESTIONNAIRE_READ)]
) -> Any:
    return json_response(service(request).discovery().to_wire())


@calls.post(
    "/{service_id}",
    operation_id="callCdsService",
    response_model=CdsResponse,
    response_model_exclude_none=True,
    summary="Call a CDS service",
    description="Evaluates the prefetched QuestionnaireResponse (stored as a screening, once "
    "per response) and answers cards: the level and urgency, the reasons, safety alerts and "
    "barriers, a suggestion to create the referral, and a link to the stored screening's "
    "readable view that a clinician's browser opens without an API key (signed, valid "
    "`CARELEVEL_SIGNED_LINK_SECONDS`, 15 minutes by default; every opening is audited). No "
    "response on file: a card inviting the screening, saying what the chart already answers "
    "(from the chart prefetch keys) and linking to carelevel's SMART app. Without the prefetch, "
    "carelevel reads it from the call's `fhirServer` with its `fhirAuthorization` when the CDS "
    "client's configuration lists that server (`fhir_servers`); a server that fails means "
    "asking the person; neither: 412. Opening the chart again with the same response "
    "gives the same screening: it is evaluated and stored once per response, in the tenant "
    "of the CDS client.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/HookRequest"},
                    "example": example_hook_request(EXAMPLE_VOCABULARY),
                }
            },
        }
    },
    responses={
        400: problem(
            "Not JSON, another hook than the service's, or a prefetch about someone else.",
            problem_example(BadRequest, "The body is not valid JSON.", summary="Not JSON"),
            problem_example(
                BadRequest,
                "The service 'carelevel-iop-screening' answers the patient-view hook.",
                summary="Another hook",
            ),
            problem_example(
                BadRequest,
                "Prefetch 'questionnaireResponse' is not about the patient in context.",
                summary="A prefetch about someone else",
            ),
        ),
        404: problem(
            "No such service.",
            problem_example(NotFound, "No CDS service 'carelevel-iop'."),
        ),
        412: problem(
            "The prefetch carelevel needs is missing, and it may not read it itself.",
            problem_example(
                PrefetchMissing,
                "Prefetch 'questionnaireResponse' is missing, and the call grants no FHIR "
                "server carelevel may query: send the prefetch the discovery document asks for, "
                "or fhirServer and fhirAuthorization for a server this CDS client's "
                "configuration lists.",
            ),
        ),
        422: problem(
            "The request or the prefetched QuestionnaireResponse cannot be used.",
            problem_example(
                Unprocessable,
                "The hook context is invalid.",
                errors=[FieldProblem(pointer="#/context/patientId", detail="Field required")],
            ),
        ),
    },
)
async def call_service(
    request: Request,
    service_id: ServiceId,
    caller: Annotated[Caller, cds_access(Action.SCREENING_CREATE)],
) -> Any:
    hook_request: HookRequest = await _parsed(request, HookRequest)
    try:
        answer = await service(request).call(
            caller, service_id, hook_request, links(request, caller), cds_client(request, caller)
        )
    except UnsupportedHook as error:
        raise BadRequest(f"carelevel does not answer the {error.hook} hook.") from None
    except ValidationError as error:
        # parse_context's error locations start with "context": pointers from the body's root.
        problems = field_problems(error.errors(include_input=False))
        raise Unprocessable("The hook context is invalid.", errors=problems) from None
    return json_response(answer.to_wire())


@router.post(
    "/{service_id}/feedback",
    operation_id="sendCdsFeedback",
    summary="Feedback on cards",
    description="What the clinician did with each card: `accepted` (the recommendation taken) "
    "or `overridden` (with the override reason, one of the card's `overrideReasons`, and an "
    "optional comment). Recorded as the clinician's decision on the card's screening, the "
    "same record as `POST /v1/screenings/{id}/decision`. Sending the same feedback again "
    "records nothing new; feedback on a card inviting a screening is acknowledged (there is "
    "nothing to decide on). Answers how many outcomes were recorded: safe to retry.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/FeedbackRequest"},
                    "example": example_feedback(EXAMPLE_VOCABULARY),
                }
            },
        }
    },
    responses={
        200: {
            "description": "How many outcomes were recorded (0 when the feedback was sent before).",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["recorded"],
                        "properties": {"recorded": {"type": "integer", "minimum": 0}},
                    },
                    "examples": {
                        "recorded": {"summary": "One outcome recorded", "value": {"recorded": 1}}
                    },
                }
            },
        },
        400: problem("Not JSON.", problem_example(BadRequest, "The body is not valid JSON.")),
        404: problem(
            "No such service, or a card this service did not show your tenant.",
            problem_example(
                NotFound, "No card 'ced0e2bf-903a-4748-a324-f33522477a8b' of this service."
            ),
        ),
        422: problem(
            "The feedback is invalid.",
            problem_example(
                Unprocessable,
                "feedback/0/outcome: Input should be 'accepted' or 'overridden'",
                errors=[
                    FieldProblem(
                        pointer="#/feedback/0/outcome",
                        detail="Input should be 'accepted' or 'overridden'",
                    )
                ],
            ),
        ),
    },
)
async def feedback(
    request: Request,
    service_id: ServiceId,
    caller: Annotated[Caller, cds_access(Action.SCREENING_DECIDE)],
) -> Any:
    body: FeedbackRequest = await _parsed(request, FeedbackRequest)
    recorded = await service(request).feedback(caller, service_id, body)
    return json_response({"recorded": recorded})
