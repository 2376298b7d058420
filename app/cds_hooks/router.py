"""CDS Hooks 2.0 endpoints: ``/cds-services`` (discovery), ``/cds-services/{id}`` (a call)
and ``/cds-services/{id}/feedback``. Plain JSON, as the specification has it; every call
carries the EHR's signed JWT."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import ValidationError

from app.audit.actions import Action
from app.audit.trail import Caller
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
from app.errors import BadRequest, FieldProblem, Unprocessable, field_problems, problem
from app.fhir.terminology import Vocabulary
from app.responses import json_response

router = APIRouter(
    prefix="/cds-services",
    tags=["CDS Hooks"],
    responses={
        401: problem("Missing, invalid, expired or replayed CDS client JWT."),
        403: problem("The CDS client is not granted what this call needs."),
        429: problem("The client's rate limit is spent; retry after `Retry-After` seconds."),
        503: problem("The database or the client's JWKS is unavailable; retry shortly."),
    },
)

EXAMPLE_VOCABULARY = Vocabulary("https://carelevel.dev/fhir")
ServiceId = Annotated[str, Path(pattern=r"^[a-z0-9-]{1,64}$", description="The service's id.")]


def service(request: Request) -> CdsHooksService:
    cds: CdsHooksService = request.app.state.cds_hooks
    return cds


def links(request: Request) -> Links:
    configured: str | None = request.app.state.settings.public_url
    return Links(configured or str(request.base_url).rstrip("/"))


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
    response_model=Discovery,
    response_model_exclude_none=True,
    summary="CDS Hooks discovery",
    description="The services carelevel offers: `carelevel-iop-screening` (patient-view) and "
    "`carelevel-iop-referral-check` (order-select), each with the prefetch it needs.",
)
async def discovery(
    request: Request, caller: Annotated[Caller, cds_access(Action.QUESTIONNAIRE_READ)]
) -> Any:
    return json_response(service(request).discovery().to_wire())


@router.post(
    "/{service_id}",
    response_model=CdsResponse,
    response_model_exclude_none=True,
    summary="Call a CDS service",
    description="Evaluates the prefetched QuestionnaireResponse (stored as a screening, once "
    "per response) and answers cards: the level and urgency, the reasons, safety alerts and "
    "barriers, a suggestion to create the referral, a link to the stored screening. No "
    "response on file: a card inviting the screening. Without the prefetch: 412.",
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
            "Not JSON, another hook than the service's, or a prefetch about someone else."
        ),
        404: problem("No such service."),
        412: problem("The prefetch carelevel needs is missing."),
        422: problem("The request or the prefetched QuestionnaireResponse cannot be used."),
    },
)
async def call_service(
    request: Request,
    service_id: ServiceId,
    caller: Annotated[Caller, cds_access(Action.SCREENING_CREATE)],
) -> Any:
    hook_request: HookRequest = await _parsed(request, HookRequest)
    try:
        answer = await service(request).call(caller, service_id, hook_request, links(request))
    except UnsupportedHook as error:
        raise BadRequest(f"carelevel does not answer the {error.hook} hook.") from None
    except ValidationError as error:
        problems = [
            FieldProblem(pointer="#/context" + p.pointer[1:], detail=p.detail)
            for p in field_problems(error.errors(include_input=False))
        ]
        raise Unprocessable("The hook context is invalid.", errors=problems) from None
    return json_response(answer.to_wire())


@router.post(
    "/{service_id}/feedback",
    summary="Feedback on cards",
    description="What the clinician did with each card: `accepted` (the recommendation taken) "
    "or `overridden` (with the override reason, one of the card's `overrideReasons`, and an "
    "optional comment). Recorded as the clinician's decision on the card's screening, the "
    "same record as `POST /v1/screenings/{id}/decision`. Sending the same feedback again "
    "records nothing new; feedback on a card inviting a screening is acknowledged (there is "
    "nothing to decide on). Answers how many outcomes were recorded.",
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
        200: {"content": {"application/json": {"schema": {"type": "object"}}}},
        400: problem("Not JSON."),
        404: problem("No such service, or a card this service did not show your tenant."),
        422: problem("The feedback is invalid."),
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
