"""HTTP endpoints for screenings. Thin: parse, call one service method, shape the response."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Response, status

from app.audit.actions import Action
from app.audit.trail import Caller
from app.deps import ScreeningServiceDep, SettingsDep
from app.engine.determination import LevelOfCare, Urgency
from app.errors import problem, secured
from app.pagination import Instant
from app.responses import JSON, json_response
from app.screenings.schemas import (
    MAX_VERSION,
    NO_CONTROL_CHARACTERS,
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
from app.security.access import GuardedRoute, access

router = APIRouter(
    prefix="/v1/screenings", tags=["screenings"], responses=secured(), route_class=GuardedRoute
)


ScreeningId = Annotated[
    str, Path(max_length=64, pattern=r"^[A-Za-z0-9-]+$", description="The screening's id.")
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


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ScreeningResponse,
    summary="Screen and store",
    description="Validate the answers, evaluate them under the active rule-set version (or the "
    "pinned one) and store the screening with the exact version that decided it. Returns 201 "
    "with a `Location`. Send an `Idempotency-Key` to make retries safe.",
    responses={
        409: problem("A request with the same Idempotency-Key is still in progress."),
        422: problem(
            "Invalid answers, an unknown, draft or retired rule-set version, or an "
            "Idempotency-Key reused with another body."
        ),
    },
)
async def create_screening(
    caller: Annotated[Caller, access(Action.SCREENING_CREATE)],
    request: ScreeningRequest,
    service: ScreeningServiceDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    stored = await service.create(caller, request, idempotency_key)
    headers = {"Location": f"/v1/screenings/{stored.body['id']}"}
    if stored.replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_response(stored.body, status.HTTP_201_CREATED, headers)


@router.post(
    "/evaluate",
    response_model=EvaluationResponse,
    summary="Evaluate without storing",
    description="The same determination as `POST /v1/screenings`, stored nowhere: for intake "
    "apps that preview the result while the form is being filled.",
    responses={422: problem("Invalid answers or an unknown, draft or retired rule-set version.")},
)
async def evaluate_screening(
    caller: Annotated[Caller, access(Action.SCREENING_EVALUATE)],
    request: ScreeningRequest,
    service: ScreeningServiceDep,
) -> Response:
    return Response(await service.evaluate_only(caller, request), media_type=JSON)


@router.get(
    "",
    response_model=ScreeningPage,
    summary="List screenings",
    description="Newest first, with cursor pagination and filters.",
    responses={
        400: problem("The cursor is not valid."),
        422: problem("A filter is invalid (a date without a time zone, an unknown level, …)."),
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
            "created_from": created_from,
            "created_to": created_to,
        },
    )
    return json_response(page)


@router.get(
    "/{screening_id}",
    response_model=ScreeningResponse,
    summary="Get a screening",
    responses={404: problem("No such screening.")},
)
async def get_screening(
    caller: Annotated[Caller, access(Action.SCREENING_READ)],
    screening_id: ScreeningId,
    service: ScreeningServiceDep,
) -> Response:
    return json_response(await service.get(caller, screening_id))


@router.post(
    "/{screening_id}/replay",
    response_model=ReplayResponse,
    summary="Replay a screening",
    description="Re-evaluate the stored answers under the version that decided them (the result "
    "must be identical; `identical: false` is worth an alert) or under another version of the "
    "same rule set (a what-if).",
    responses={
        404: problem("No such screening."),
        422: problem("An unknown or draft rule-set version."),
    },
)
async def replay_screening(
    caller: Annotated[Caller, access(Action.SCREENING_REPLAY)],
    screening_id: ScreeningId,
    service: ScreeningServiceDep,
    request: ReplayRequest | None = None,
) -> Response:
    return json_response(await service.replay(caller, screening_id, request or ReplayRequest()))


@router.post(
    "/{screening_id}/decision",
    status_code=status.HTTP_201_CREATED,
    response_model=DecisionResponse,
    summary="Record the clinician's decision",
    description="The level the clinician chose and, when it differs from the recommendation, "
    "coded variance reasons. Decisions are appended; the latest one is shown with the screening.",
    responses={
        404: problem("No such screening."),
        422: problem("Missing or superfluous variance reasons."),
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
