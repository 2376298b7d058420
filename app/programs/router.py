"""HTTP endpoints for the tenant's program directory (scopes ``programs:read`` and
``programs:write``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status

from app.engine.determination import LevelOfCare
from app.engine.programs import ProgramDocument
from app.kernel.deps import SettingsDep
from app.kernel.errors import (
    BadRequest,
    Conflict,
    FieldProblem,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    Unprocessable,
    problem,
    problem_example,
    secured,
)
from app.kernel.responses import json_response
from app.programs.models import Program
from app.programs.schemas import ProgramOut, ProgramPage
from app.programs.service import (
    MAX_PROGRAMS,
    MAX_STORED_PROGRAMS,
    ProgramService,
    etag,
    program_body,
    too_many_active,
    too_many_stored,
)
from app.security.access import GuardedRoute, access
from app.security.actions import Action
from app.security.caller import Caller

router = APIRouter(
    prefix="/v1/programs", tags=["programs"], responses=secured(), route_class=GuardedRoute
)


async def get_program_service(request: Request) -> ProgramService:
    service: ProgramService = request.app.state.program_service
    return service


# Every dependency is ``async def``: FastAPI runs a plain ``def`` in a worker thread.
ProgramServiceDep = Annotated[ProgramService, Depends(get_program_service)]

EXAMPLE_PROGRAM_ID = "0193a6f2-7c41-7e0a-9d55-3b8f0c2e6a17"
ProgramId = Annotated[
    str, Path(max_length=64, pattern=r"^[A-Za-z0-9-]+$", description="The program's id.")
]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=200,
        description='The program\'s current `ETag` (its version in quotes, `"2"`), or `*`.',
    ),
]

NO_SUCH_PROGRAM = problem(
    "No such program (in your tenant).",
    problem_example(NotFound, f"No program with id '{EXAMPLE_PROGRAM_ID}'."),
)
CHANGED = problem(
    "The program changed since it was read (the response's `ETag` is the current one).",
    problem_example(
        PreconditionFailed,
        "The program changed since you read it; fetch it again and reapply your change.",
    ),
)
NO_IF_MATCH = problem(
    "If-Match is missing.",
    problem_example(
        PreconditionRequired,
        "Send If-Match with the ETag of the program you edited (GET it first).",
    ),
)
INVALID_PROGRAM = problem(
    "The program is invalid: every problem names its field.",
    problem_example(
        Unprocessable,
        "timetable/1/end: must be later than start",
        summary="A session that ends before it starts",
        errors=[FieldProblem(pointer="#/timetable/1/end", detail="must be later than start")],
    ),
    problem_example(
        Unprocessable,
        "travel_times/1/area: names an area listed before",
        summary="An area listed twice",
        errors=[
            FieldProblem(pointer="#/travel_times/1/area", detail="names an area listed before")
        ],
    ),
    problem_example(
        Unprocessable,
        "timetable/0/modality: a hybrid program says for each session whether it is in person "
        "or telehealth",
        summary="A hybrid program's session without its modality",
        errors=[
            FieldProblem(
                pointer="#/timetable/0/modality",
                detail="a hybrid program says for each session whether it is in person or "
                "telehealth",
            )
        ],
    ),
)


def program_response(program: Program, status_code: int = 200) -> Response:
    headers = {"ETag": etag(program)}
    if status_code == status.HTTP_201_CREATED:
        headers["Location"] = f"/v1/programs/{program.id}"
    return json_response(program_body(program), status_code, headers)


@router.post(
    "",
    operation_id="createProgram",
    status_code=status.HTTP_201_CREATED,
    response_model=ProgramOut,
    summary="Add a program",
    description="A program your tenant runs or refers people to: its level of care, who it "
    "admits, what it treats, its services, weekly timetable, location and travel times, "
    "languages, capacity and payers. Lists are sets (duplicates dropped, sorted) and the "
    "timetable is put in week order. Only the program's own contact details belong here, "
    "never a person's. Returns 201 with `Location` and the `ETag` that `If-Match` needs to "
    f"edit it. Not idempotent: each call adds a program. At most {MAX_PROGRAMS} active "
    f"programs a tenant, and {MAX_STORED_PROGRAMS} counting retired ones. Recorded in the "
    "audit trail.",
    responses={
        409: problem(
            f"The tenant already has {MAX_PROGRAMS} active programs, or "
            f"{MAX_STORED_PROGRAMS} counting retired ones.",
            problem_example(Conflict, too_many_active(), summary="Too many active programs"),
            problem_example(Conflict, too_many_stored(), summary="Too many programs kept"),
        ),
        422: INVALID_PROGRAM,
    },
)
async def create(
    caller: Annotated[Caller, access(Action.PROGRAM_CREATE)],
    body: ProgramDocument,
    programs: ProgramServiceDep,
) -> Response:
    return program_response(await programs.create(caller, body), status.HTTP_201_CREATED)


@router.get(
    "",
    operation_id="listPrograms",
    response_model=ProgramPage,
    summary="List programs",
    description="Your tenant's programs, oldest first; retired ones only with "
    "`include_retired=true`. Filter by `level` to see what you have at one level of care. "
    "Pages follow `next_cursor` until it is null (send the same filters with it).",
    responses={
        400: problem(
            "The cursor is not valid.",
            problem_example(BadRequest, "The cursor is not one this API returned."),
        )
    },
)
async def list_programs(
    caller: Annotated[Caller, access(Action.PROGRAM_LIST)],
    programs: ProgramServiceDep,
    settings: SettingsDep,
    level: Annotated[
        LevelOfCare | None, Query(description="Only programs at this level of care.")
    ] = None,
    include_retired: Annotated[
        bool, Query(description="Include retired programs (default: active ones only).")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    rows, next_cursor = await programs.page(
        caller,
        min(limit, settings.max_page_size),
        cursor,
        level=None if level is None else level.value,
        include_retired=include_retired,
    )
    return json_response({"items": [program_body(r) for r in rows], "next_cursor": next_cursor})


@router.get(
    "/{program_id}",
    operation_id="getProgram",
    response_model=ProgramOut,
    summary="Get a program",
    description="One program of your tenant, retired or not, with its `ETag` (its version in "
    "quotes): send it as `If-Match` to edit or retire the program, or as `If-None-Match` to "
    "be answered 304 without a body while it has not changed. Another tenant's program ids "
    "answer 404.",
    responses={
        304: {"description": "Not modified: the `ETag` sent in `If-None-Match` is current."},
        404: NO_SUCH_PROGRAM,
    },
)
async def get(
    caller: Annotated[Caller, access(Action.PROGRAM_READ)],
    program_id: ProgramId,
    programs: ProgramServiceDep,
    if_none_match: Annotated[
        str | None,
        Header(alias="If-None-Match", max_length=200, description="An `ETag` you hold."),
    ] = None,
) -> Response:
    read = await programs.read(caller, program_id, if_none_match)
    if read.not_modified:
        return Response(
            status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag(read.program)}
        )
    return program_response(read.program)


@router.put(
    "/{program_id}",
    operation_id="updateProgram",
    response_model=ProgramOut,
    summary="Edit a program",
    description="Replace a program's document (send all of it: what a GET answers, without "
    "`id`, `version`, `status`, `hours_per_week` and the `created_`/`updated_`/`retired_` "
    "fields). Requires `If-Match` with the current `ETag` (428 without it); an `ETag` that is "
    "no longer current answers 412: read the program again first. The version goes up by one "
    "and the response carries the new `ETag`. Referrals already recorded keep the version "
    "they named. A retired program cannot be edited (409). Recorded in the audit trail.",
    responses={
        404: NO_SUCH_PROGRAM,
        409: problem(
            "The program is retired.",
            problem_example(
                Conflict,
                f"Program '{EXAMPLE_PROGRAM_ID}' is retired: it can no longer be edited. Add it "
                "again (POST /v1/programs) if it takes referrals again.",
            ),
        ),
        412: CHANGED,
        422: INVALID_PROGRAM,
        428: NO_IF_MATCH,
    },
)
async def update(
    caller: Annotated[Caller, access(Action.PROGRAM_UPDATE)],
    program_id: ProgramId,
    body: ProgramDocument,
    programs: ProgramServiceDep,
    if_match: IfMatch = None,
) -> Response:
    return program_response(await programs.update(caller, program_id, body, if_match))


@router.post(
    "/{program_id}/retire",
    operation_id="retireProgram",
    response_model=ProgramOut,
    summary="Retire a program",
    description="The program is matched to no one from now on and can no longer be edited; "
    "it stays readable, and so do the referrals that name it. Requires `If-Match` with the "
    "current `ETag` (428 without it, 412 when it is not current). Answers 200 with the retired "
    "program; retiring a retired program changes nothing. Recorded in the audit trail.",
    responses={404: NO_SUCH_PROGRAM, 412: CHANGED, 428: NO_IF_MATCH},
)
async def retire(
    caller: Annotated[Caller, access(Action.PROGRAM_RETIRE)],
    program_id: ProgramId,
    programs: ProgramServiceDep,
    if_match: IfMatch = None,
) -> Response:
    return program_response(await programs.retire(caller, program_id, if_match))
