"""HTTP endpoint for a person's screenings over time (measurement-based care)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from app.kernel.errors import NotFound, problem, problem_example, secured
from app.kernel.responses import json_response
from app.people.examples import PERSON_ID
from app.people.schemas import PersonScreenings
from app.people.service import PeopleService
from app.screenings.models import PERSON_ID_LENGTH, PERSON_ID_PATTERN
from app.security.access import GuardedRoute, access
from app.security.actions import Action
from app.security.caller import Caller

router = APIRouter(
    prefix="/v1/people", tags=["people"], responses=secured(), route_class=GuardedRoute
)


async def get_people_service(request: Request) -> PeopleService:
    service: PeopleService = request.app.state.people_service
    return service


# Every dependency is ``async def``: FastAPI runs a plain ``def`` in a worker thread.
PeopleServiceDep = Annotated[PeopleService, Depends(get_people_service)]

PersonId = Annotated[
    str,
    Path(
        max_length=PERSON_ID_LENGTH,
        pattern=PERSON_ID_PATTERN,
        description="Your pseudonymous id of the person (the `person_id` given with their "
        "screenings).",
    ),
]


@router.get(
    "/{person_id}/screenings",
    operation_id="listPersonScreenings",
    response_model=PersonScreenings,
    summary="A person's screenings over time",
    description="The newest screenings (`limit`) your tenant stored with this `person_id`, "
    "oldest first, and what they say over time: each instrument's scores with the change "
    "from the baseline (the first score of the current episode, `baseline_from`, read beyond "
    "`limit` when older) and from the previous one (for the PHQ-9 and GAD-7: whether it is "
    "meaningful, a response or a remission), how the recommended level moved, what the "
    "latest recommendation means for the person's current level (step up, step down or "
    "continue, with measurement-based care prompts), and when to screen again after the "
    "level in force. Clinical "
    "decision support: a clinician reviews it. 404 when your tenant has no screening of "
    "that person. Reading is recorded in the audit trail.",
    responses={
        404: problem(
            "Your tenant has no screening of this person.",
            problem_example(NotFound, f"No screening of person '{PERSON_ID}'."),
        ),
    },
)
async def person_screenings(
    caller: Annotated[Caller, access(Action.PERSON_SCREENINGS)],
    person_id: PersonId,
    service: PeopleServiceDep,
    limit: Annotated[
        int, Query(ge=1, le=200, description="How many of the newest screenings to read.")
    ] = 50,
) -> Response:
    return json_response(await service.screenings(caller, person_id, limit))
