"""GET /v1/audit-events: the tenant's audit trail, newest first."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from app.audit.schemas import AuditEventPage
from app.audit.service import audit_events
from app.kernel.deps import SettingsDep
from app.kernel.errors import (
    BadRequest,
    FieldProblem,
    Unprocessable,
    problem,
    problem_example,
    secured,
)
from app.kernel.pagination import Instant
from app.kernel.responses import json_response
from app.kernel.text import NO_CONTROL_CHARACTERS
from app.security.access import GuardedRoute, access
from app.security.actions import Action, ResourceType
from app.security.caller import Caller

router = APIRouter(
    prefix="/v1/audit-events", tags=["audit"], responses=secured(), route_class=GuardedRoute
)

Text = Annotated[str | None, Query(max_length=300, pattern=NO_CONTROL_CHARACTERS)]
# A client's id: an API client's (a UUID) or a token issuer's (``jwt:<provider>:<client>``).
ClientIdFilter = Annotated[
    str | None,
    Query(
        max_length=300,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="Events of this client (its id, as the events show it).",
    ),
]


@router.get(
    "",
    response_model=AuditEventPage,
    summary="List audit events",
    description="Every create, read, list, replay, decision, rule-set lifecycle action and "
    "client change of your tenant, successful or not, newest first, with cursor pagination. "
    "Reading the trail is recorded in it too. Each event names the client, the action, the "
    "resource id and the HTTP status, never answers or determinations; filter by action, "
    "resource, client, outcome, status or time. For compliance reviews and for answering "
    '"who looked at this screening?".',
    responses={
        400: problem(
            "The cursor is not valid.",
            problem_example(BadRequest, "The cursor is not one this API returned."),
        ),
        422: problem(
            "A filter is invalid.",
            problem_example(
                Unprocessable,
                "query/status: Input should be less than or equal to 599",
                errors=[
                    FieldProblem(
                        pointer="#/query/status", detail="Input should be less than or equal to 599"
                    )
                ],
            ),
        ),
    },
)
async def list_audit_events(
    request: Request,
    caller: Annotated[Caller, access(Action.AUDIT_LIST)],
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size (capped).")] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    action: Action | None = None,
    resource_type: ResourceType | None = None,
    resource_id: Text = None,
    client_id: ClientIdFilter = None,
    outcome: Annotated[
        Literal["success", "failure"] | None,
        Query(description="`failure`: answered with a 4xx or 5xx status."),
    ] = None,
    status: Annotated[int | None, Query(ge=100, le=599)] = None,
    recorded_from: Annotated[
        Instant | None, Query(description="At or after (with a zone).")
    ] = None,
    recorded_to: Annotated[Instant | None, Query(description="Before (with a zone).")] = None,
) -> Response:
    body = await audit_events(
        request.app.state.sessions,
        caller,
        limit=min(limit, settings.max_page_size),
        cursor=cursor,
        filters={
            "action": action.value if action else None,
            "resource_type": resource_type.value if resource_type else None,
            "resource_id": resource_id,
            "client_id": client_id,
            "failed": None if outcome is None else outcome == "failure",
            "status": status,
            "recorded_from": recorded_from,
            "recorded_to": recorded_to,
        },
    )
    return json_response(body)
