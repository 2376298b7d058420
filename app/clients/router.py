"""HTTP endpoints for managing a tenant's API clients (scope ``admin``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status

from app.clients.schemas import ClientCreate, ClientCreated, ClientOut, ClientPage
from app.clients.service import ClientService, client_body
from app.kernel.deps import SettingsDep
from app.kernel.errors import (
    BadRequest,
    Conflict,
    FieldProblem,
    Forbidden,
    NotFound,
    Unprocessable,
    problem,
    problem_example,
    secured,
)
from app.kernel.responses import json_response
from app.security.access import GuardedRoute, access
from app.security.actions import Action
from app.security.caller import Caller

router = APIRouter(
    prefix="/v1/clients", tags=["clients"], responses=secured(), route_class=GuardedRoute
)


async def get_client_service(request: Request) -> ClientService:
    service: ClientService = request.app.state.client_service
    return service


# Every dependency is ``async def``: FastAPI runs a plain ``def`` in a worker thread.
ClientServiceDep = Annotated[ClientService, Depends(get_client_service)]

EXAMPLE_CLIENT_ID = "b6c79ef6-0920-4d7b-97dc-909499d4ca8a"
NO_SUCH_CLIENT = problem(
    "No such client (in your tenant).",
    problem_example(NotFound, f"No client with id '{EXAMPLE_CLIENT_ID}'."),
)

ClientId = Annotated[
    str, Path(max_length=64, pattern=r"^[A-Za-z0-9-]+$", description="The client's id.")
]


@router.post(
    "",
    operation_id="createClient",
    status_code=status.HTTP_201_CREATED,
    response_model=ClientCreated,
    summary="Create a client",
    description="A new client of your tenant with the scopes given, each of which you must "
    "hold yourself. The response holds its API key, shown this once: carelevel stores only a "
    "hash of it, so store it in your secret manager at once. Give each integration its own "
    "client with the fewest scopes it needs. Not idempotent: each call makes a new client and "
    "key. Recorded in the audit trail.",
    responses={
        403: problem(
            "A scope you do not hold yourself (or the admin scope is missing).",
            problem_example(
                Forbidden,
                "A client can grant only scopes it holds itself; not metrics:read.",
                summary="A scope beyond your own",
            ),
            problem_example(
                Forbidden,
                "This client lacks the scope this operation needs: admin.",
                summary="Not an admin",
            ),
        ),
        422: problem(
            "Invalid name or scopes, or another tenant named.",
            problem_example(
                Unprocessable,
                "scopes/0: Input should be 'screenings:write', 'screenings:read', "
                "'rulesets:read', 'rulesets:write', 'rulesets:publish', 'audit:read', 'admin', "
                "'metrics:read', 'programs:read' or 'programs:write'",
                summary="An unknown scope",
                errors=[
                    FieldProblem(
                        pointer="#/scopes/0",
                        detail="Input should be 'screenings:write', 'screenings:read', "
                        "'rulesets:read', 'rulesets:write', 'rulesets:publish', 'audit:read', "
                        "'admin', 'metrics:read', 'programs:read' or 'programs:write'",
                    )
                ],
            ),
            problem_example(
                Unprocessable,
                "An admin creates clients of its own tenant only.",
                summary="Another tenant",
                errors=[FieldProblem(pointer="#/tenant", detail="must be your own tenant")],
            ),
        ),
    },
)
async def create(
    caller: Annotated[Caller, access(Action.CLIENT_CREATE)],
    body: ClientCreate,
    clients: ClientServiceDep,
) -> Response:
    created = await clients.create(caller, body.name, body.scopes, tenant=body.tenant)
    payload = client_body(created.client) | {"api_key": created.api_key}
    return json_response(payload, 201, {"Location": f"/v1/clients/{created.client.id}"})


@router.get(
    "",
    response_model=ClientPage,
    summary="List clients",
    description="Your tenant's clients, oldest first, revoked ones included. Keys are never "
    "shown again; `key_prefix` tells them apart. Pages follow `next_cursor` until it is null. "
    "Use it to review who can call the API and which keys were not used lately "
    "(`last_used_at`).",
    responses={
        400: problem(
            "The cursor is not valid.",
            problem_example(BadRequest, "The cursor is not one this API returned."),
        )
    },
)
async def list_clients(
    caller: Annotated[Caller, access(Action.CLIENT_LIST)],
    clients: ClientServiceDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    rows, next_cursor = await clients.page(caller, min(limit, settings.max_page_size), cursor)
    return json_response({"items": [client_body(r) for r in rows], "next_cursor": next_cursor})


@router.get(
    "/{client_id}",
    operation_id="getClient",
    response_model=ClientOut,
    summary="Get a client",
    description="One client of your tenant: its name, scopes, key prefix, who created or "
    "revoked it and when its key was last used (never the key itself). Another tenant's "
    "client ids answer 404.",
    responses={404: NO_SUCH_CLIENT},
)
async def get(
    caller: Annotated[Caller, access(Action.CLIENT_READ)],
    client_id: ClientId,
    clients: ClientServiceDep,
) -> Response:
    client = await clients.get(caller, client_id)
    return json_response(client_body(client))


@router.post(
    "/{client_id}/revoke",
    operation_id="revokeClient",
    response_model=ClientOut,
    summary="Revoke a client",
    description="Its key stops working at once on this process and within "
    "`CARELEVEL_CREDENTIAL_CACHE_SECONDS` everywhere else. Revoking twice changes nothing. To "
    "rotate a key, create a new client, switch over, then revoke the old one.",
    responses={
        404: NO_SUCH_CLIENT,
        409: problem(
            "A client cannot revoke itself.",
            problem_example(
                Conflict,
                "A client cannot revoke its own key (it would lock itself out): revoke it with "
                "another admin client or with `carelevel clients revoke`.",
            ),
        ),
    },
)
async def revoke(
    caller: Annotated[Caller, access(Action.CLIENT_REVOKE)],
    client_id: ClientId,
    clients: ClientServiceDep,
) -> Response:
    client = await clients.revoke(caller, client_id)
    return json_response(client_body(client))
