"""HTTP endpoints for screenings. Thin: parse, call one service method, shape the response."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status

from app.engine.determination import LevelOfCare, Urgency
from app.kernel.deps import SettingsDep
from app.kernel.errors import (
    BadRequest,
    FieldProblem,
    IdempotencyKeyReused,
    NotFound,
    RequestInFlight,
    Unprocessable,
    problem,
    problem_example,
    secured,
)
from app.kernel.pagination import Instant
from app.kernel.responses import JSON, json_response
from app.kernel.text import NO_CONTROL_CHARACTERS
from app.plain_requests import Binder, Unplain, plain_header, plain_json_body
from app.screenings.bodies import (
    evaluation_body,
    evaluation_readable,
    screening_json,
    screening_readable,
    shown_stored,
    stored_json,
    with_summary,
)
from app.screenings.models import PERSON_ID_LENGTH, PERSON_ID_PATTERN
from app.screenings.representations import VARY, negotiated, readable_openapi, readable_response
from app.screenings.schemas import (
    MAX_VERSION,
    RULE_SET_KEY,
    DecisionRequest,
    DecisionResponse,
    EvaluationResponse,
    ReplayRequest,
    ReplayResponse,
    ScreeningPage,
    ScreeningRequest,
    ScreeningResponse,
)
from app.screenings.service import ScreeningService
from app.security.access import GuardedRoute, access
from app.security.actions import Action
from app.security.caller import Caller

router = APIRouter(
    prefix="/v1/screenings", tags=["screenings"], responses=secured(), route_class=GuardedRoute
)


async def get_screening_service(request: Request) -> ScreeningService:
    service: ScreeningService = request.app.state.screening_service
    return service


# Every dependency is ``async def``: FastAPI runs a plain ``def`` in a worker thread.
ScreeningServiceDep = Annotated[ScreeningService, Depends(get_screening_service)]

EXAMPLE_ID = "7d7c1b0e-52a8-4f0e-8f5f-3f1f8c9b2a61"
INVALID_ANSWERS = problem_example(
    Unprocessable,
    'answers/instruments/phq9/items: PHQ-9 item 9 must be one of 0, 1, 2, 3 or "declined"',
    summary="An answer out of range",
    errors=[
        FieldProblem(
            pointer="#/answers/instruments/phq9/items",
            detail='PHQ-9 item 9 must be one of 0, 1, 2, 3 or "declined"',
        )
    ],
)
MISSING_ANSWER = problem_example(
    Unprocessable,
    "answers/respondent/age_group: Field required",
    summary="A required answer left out",
    errors=[FieldProblem(pointer="#/answers/respondent/age_group", detail="Field required")],
)
UNKNOWN_VERSION = problem_example(
    Unprocessable,
    "Rule set 'shared/iop-level-of-care' has no version 9.",
    summary="A pinned version that does not exist",
    errors=[FieldProblem(pointer="#/rule_set/version", detail="no such version")],
)
NO_SUCH_SCREENING = problem(
    "No such screening (in your tenant).",
    problem_example(NotFound, f"No screening with id '{EXAMPLE_ID}'."),
)


ScreeningId = Annotated[
    str, Path(max_length=64, pattern=r"^[A-Za-z0-9-]+$", description="The screening's id.")
]
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")  # what IdempotencyKey accepts
Include = Annotated[
    Literal["trace"] | None,
    Query(
        description="`trace` shows `determination.trace`: every rule evaluated, in order (about "
        "half of a determination's size). Without it the response leaves the trace out; the "
        "stored determination always keeps it, and `replay` compares whole determinations. "
        "JSON only: the readable forms never show the trace.",
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="Makes the request safe to retry: the same key and body return the original "
        "response and store nothing twice (kept at least 24 hours).",
    ),
]


# The binders of the operations the fast lane answers directly (app/plain_requests.py): the
# arguments FastAPI would pass their endpoint, for a plainly valid request. A request with a
# query string (``?include=trace``) is left to FastAPI, which validates it.
async def _bind_create(request: Request, caller: Caller) -> dict[str, Any] | None:
    if request.scope["query_string"]:
        return None
    try:
        key = plain_header(request, "idempotency-key", _IDEMPOTENCY_KEY)
    except Unplain:
        return None
    body = await plain_json_body(request, ScreeningRequest)
    if body is None:
        return None
    service: ScreeningService = request.app.state.screening_service
    return {
        "caller": caller,
        "request": body,
        "service": service,
        "idempotency_key": key,
        "include": None,
    }


async def _bind_evaluate(request: Request, caller: Caller) -> dict[str, Any] | None:
    if request.scope["query_string"]:
        return None
    body = await plain_json_body(request, ScreeningRequest)
    if body is None:
        return None
    service: ScreeningService = request.app.state.screening_service
    return {"caller": caller, "request": body, "service": service, "http": request, "include": None}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ScreeningResponse,
    summary="Screen and store",
    description="Validate the answers, evaluate them under the rule-set version that decides "
    "your tenant's screenings (your own active version of the key if you have one, else the "
    "shared one; or the version pinned in `rule_set`) and store the screening: the answers, "
    "the determination, your `external_reference` and the exact version (with its sha256) "
    "that decided it, so `replay` reproduces it. Returns 201 with a `Location`; the screening "
    "belongs to your tenant and is recorded in the audit trail. Use it when the intake is "
    "complete; to preview while the form is filled in, use `POST /v1/screenings/evaluate`. "
    "Send an `Idempotency-Key` to make retries safe: the same key and body return the "
    "original 201 (with `Idempotent-Replayed: true`) and store nothing twice.",
    responses={
        409: problem(
            "A request with the same Idempotency-Key is still in progress (retry after "
            "`Retry-After`).",
            problem_example(
                RequestInFlight, "A request with this Idempotency-Key is still being processed."
            ),
        ),
        422: problem(
            "Invalid answers, an unknown, draft or retired rule-set version, or an "
            "Idempotency-Key reused with another body.",
            INVALID_ANSWERS,
            MISSING_ANSWER,
            UNKNOWN_VERSION,
            problem_example(
                IdempotencyKeyReused,
                "This Idempotency-Key was already used with a different request body.",
            ),
        ),
    },
)
async def create_screening(
    caller: Annotated[Caller, access(Action.SCREENING_CREATE)],
    request: ScreeningRequest,
    service: ScreeningServiceDep,
    idempotency_key: IdempotencyKey = None,
    include: Include = None,
) -> Response:
    stored = await service.create(caller, request, idempotency_key)
    headers = {"Location": f"/v1/screenings/{stored.payload['id']}"}
    if stored.replayed:
        headers["Idempotent-Replayed"] = "true"
    body = stored_json(stored, include_trace=include is not None)
    return Response(body, status.HTTP_201_CREATED, headers, media_type=JSON)


@router.post(
    "/evaluate",
    response_model=EvaluationResponse,
    summary="Evaluate without storing",
    description="The same determination as `POST /v1/screenings`, stored nowhere: for intake "
    "apps that preview the result while the form is being filled, and for trying out a "
    "pinned rule-set version. Neither the answers nor the result are kept, and nothing is "
    "added to the audit trail (nothing stored is read), so it is safe to retry as it is. Send "
    "what was asked so far: the determination lists what is still missing. Answered as JSON, "
    "or as HTML, Markdown or plain text to read (`Accept`).",
    responses={
        **readable_openapi("The determination, with its summary:"),
        422: problem(
            "Invalid answers or an unknown, draft or retired rule-set version.",
            INVALID_ANSWERS,
            MISSING_ANSWER,
            UNKNOWN_VERSION,
        ),
    },
)
async def evaluate_screening(
    caller: Annotated[Caller, access(Action.SCREENING_EVALUATE)],
    request: ScreeningRequest,
    service: ScreeningServiceDep,
    http: Request,
    include: Include = None,
) -> Response:
    media_type = negotiated(http)
    with_trace = include is not None and media_type == JSON
    decided = await service.evaluate_only(caller, request, with_trace=with_trace)
    if media_type != JSON:
        return readable_response(media_type, evaluation_readable(decided))
    return Response(evaluation_body(decided, with_trace), media_type=JSON, headers=VARY)


# Each endpoint the fast lane may call directly, with the binder of its arguments.
DIRECT_BINDERS: dict[Callable[..., Any], Binder] = {
    create_screening: _bind_create,
    evaluate_screening: _bind_evaluate,
}


@router.get(
    "",
    response_model=ScreeningPage,
    summary="List screenings",
    description="Your tenant's stored screenings, newest first, as summaries (level, urgency, "
    "IOP verdict and the rule-set version that decided), filtered by your "
    "`external_reference`, `person_id`, level, urgency, rule-set version or creation time. "
    "Pages follow `next_cursor` until it is null. For reporting and work lists; read one "
    "screening for "
    "its full determination.",
    responses={
        400: problem(
            "The cursor is not valid.",
            problem_example(BadRequest, "The cursor is not one this API returned."),
        ),
        422: problem(
            "A filter is invalid (a date without a time zone, an unknown level, …).",
            problem_example(
                Unprocessable,
                "query/created_from: must be an ISO 8601 date and time with a time zone, for "
                "example 2026-11-26T00:00:00Z",
                errors=[
                    FieldProblem(
                        pointer="#/query/created_from",
                        detail="must be an ISO 8601 date and time with a time zone, for "
                        "example 2026-11-26T00:00:00Z",
                    )
                ],
            ),
        ),
    },
)
async def list_screenings(
    caller: Annotated[Caller, access(Action.SCREENING_LIST)],
    service: ScreeningServiceDep,
    settings: SettingsDep,
    limit: Annotated[
        int, Query(ge=1, le=1000, description="Page size (capped by the server).")
    ] = 50,
    cursor: Annotated[
        str | None, Query(max_length=200, description="`next_cursor` of the previous page.")
    ] = None,
    external_reference: Annotated[
        str | None, Query(max_length=200, pattern=NO_CONTROL_CHARACTERS)
    ] = None,
    level: LevelOfCare | None = None,
    urgency: Urgency | None = None,
    rule_set_key: Annotated[str | None, Query(pattern=RULE_SET_KEY)] = None,
    rule_set_version: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
    person_id: Annotated[
        str | None,
        Query(
            max_length=PERSON_ID_LENGTH,
            pattern=PERSON_ID_PATTERN,
            description="Only this person's screenings (your pseudonymous `person_id`).",
        ),
    ] = None,
    created_from: Annotated[
        Instant | None,
        Query(description="Created at or after this instant (with a time zone)."),
    ] = None,
    created_to: Annotated[
        Instant | None,
        Query(description="Created before this instant (exclusive; with a time zone)."),
    ] = None,
) -> Response:
    page = await service.page(
        caller,
        limit=min(limit, settings.max_page_size),
        cursor=cursor,
        filters={
            "external_reference": external_reference,
            "level": level.value if level else None,
            "urgency": urgency.value if urgency else None,
            "rule_set_key": rule_set_key,
            "rule_set_version": rule_set_version,
            "person_id": person_id,
            "created_from": created_from,
            "created_to": created_to,
        },
    )
    return json_response(page)


@router.get(
    "/{screening_id}",
    response_model=ScreeningResponse,
    summary="Get a screening",
    description="A stored screening as it was created: the determination, the rule-set version "
    "that decided it, and the clinician's latest decision if one was recorded. Another "
    "tenant's screening ids answer 404, like ids that do not exist. Reading is recorded in the "
    "audit trail. Answered as JSON, or as HTML, Markdown or plain text to read (`Accept`).",
    responses={
        **readable_openapi("The stored screening, with its summary:"),
        404: NO_SUCH_SCREENING,
    },
)
async def get_screening(
    caller: Annotated[Caller, access(Action.SCREENING_READ)],
    screening_id: ScreeningId,
    service: ScreeningServiceDep,
    http: Request,
    include: Include = None,
) -> Response:
    media_type = negotiated(http)  # before reading: a refusal reads (and records) nothing
    body, asking = await service.get(caller, screening_id, asking=media_type == JSON)
    if media_type != JSON:
        return readable_response(media_type, screening_readable(body))
    answer = screening_json(body, include is not None, asking)
    return Response(answer, media_type=JSON, headers=VARY)


@router.post(
    "/{screening_id}/replay",
    response_model=ReplayResponse,
    summary="Replay a screening",
    description="Re-evaluate the stored answers under the version that decided them (the result "
    "must be identical; `identical: false` is worth an alert) or under another version of the "
    "same rule set (a what-if), your tenant's fork or the shared one (`owner`). Stores "
    "nothing; an empty body replays under the original version.",
    responses={
        404: NO_SUCH_SCREENING,
        422: problem(
            "An unknown or draft rule-set version.",
            problem_example(
                Unprocessable,
                "Rule set 'shared/iop-level-of-care' has no version 9.",
                errors=[FieldProblem(pointer="#/version", detail="no such version")],
            ),
        ),
    },
)
async def replay_screening(
    caller: Annotated[Caller, access(Action.SCREENING_REPLAY)],
    screening_id: ScreeningId,
    service: ScreeningServiceDep,
    request: ReplayRequest | None = None,
    include: Include = None,
) -> Response:
    body = await service.replay(caller, screening_id, request or ReplayRequest())
    shown = shown_stored(body["determination"])
    return json_response(with_summary(body, shown, include_trace=include is not None))


@router.post(
    "/{screening_id}/decision",
    status_code=status.HTTP_201_CREATED,
    response_model=DecisionResponse,
    summary="Record the clinician's decision",
    description="The level the clinician chose and, when it differs from the recommendation, "
    "coded variance reasons. Decisions are appended, never changed: the latest one is shown "
    "with the screening, and every one is kept for reporting how often the recommendation is "
    "followed. Not idempotent: each call records a decision.",
    responses={
        404: NO_SUCH_SCREENING,
        422: problem(
            "Missing or superfluous variance reasons.",
            problem_example(
                Unprocessable,
                "The final level differs from the recommendation: give at least one variance "
                "reason.",
                errors=[
                    FieldProblem(
                        pointer="#/variance_reasons", detail="required when the level differs"
                    )
                ],
            ),
            problem_example(
                Unprocessable,
                "comment: a comment is required when a variance reason is 'other'",
                errors=[
                    FieldProblem(
                        pointer="#/comment",
                        detail="a comment is required when a variance reason is 'other'",
                    )
                ],
            ),
        ),
    },
)
async def record_decision(
    caller: Annotated[Caller, access(Action.SCREENING_DECIDE)],
    screening_id: ScreeningId,
    request: DecisionRequest,
    service: ScreeningServiceDep,
) -> Response:
    body = await service.decide(caller, screening_id, request)
    return json_response(body, status.HTTP_201_CREATED)
