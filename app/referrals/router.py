"""HTTP endpoints for matching screenings to the program directory and recording referrals."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status

from app.kernel.errors import (
    Conflict,
    FieldProblem,
    NotFound,
    Unprocessable,
    problem,
    problem_example,
    secured,
)
from app.kernel.responses import json_response
from app.referrals.schemas import (
    EXAMPLE_PROGRAM_ID,
    EXAMPLE_REFERRAL_ID,
    EXAMPLE_SCREENING_ID,
    MatchRequest,
    MatchResponse,
    ReferralList,
    ReferralRequest,
    ReferralResponse,
)
from app.referrals.service import MAX_REFERRALS_PER_SCREENING, ReferralService
from app.screenings.router import INVALID_ANSWERS, NO_SUCH_SCREENING, UNKNOWN_VERSION
from app.security.access import GuardedRoute, access
from app.security.actions import Action
from app.security.caller import Caller

router = APIRouter(responses=secured(), route_class=GuardedRoute)


async def get_referral_service(request: Request) -> ReferralService:
    service: ReferralService = request.app.state.referral_service
    return service


# Every dependency is ``async def``: FastAPI runs a plain ``def`` in a worker thread.
ReferralServiceDep = Annotated[ReferralService, Depends(get_referral_service)]
ScreeningId = Annotated[
    str, Path(max_length=64, pattern=r"^[A-Za-z0-9-]+$", description="The screening's id.")
]
ReferralId = Annotated[
    str, Path(max_length=64, pattern=r"^[A-Za-z0-9-]+$", description="The referral's id.")
]
NO_SUCH_REFERRAL = problem(
    "No such screening or referral (another tenant's ids answer the same).",
    problem_example(
        NotFound, f"No screening with id '{EXAMPLE_SCREENING_ID}'.", summary="An unknown screening"
    ),
    problem_example(
        NotFound,
        f"No referral with id '{EXAMPLE_REFERRAL_ID}' of this screening.",
        summary="An unknown referral",
    ),
)


@router.post(
    "/v1/program-matches",
    tags=["programs"],
    operation_id="evaluateProgramMatches",
    response_model=MatchResponse,
    summary="Match a screening to the program directory",
    description="Rank your tenant's programs (those not retired) for a stored screening "
    "(`screening_id`) or for answers evaluated now as `POST /v1/screenings/evaluate` does "
    "(`answers`, with an optional `rule_set` pin). Each program is judged on a fixed list of "
    "criteria (level, population, specialty, co-occurring capability, services, language, "
    "payer, whether it accepts referrals, modality, schedule, hours, travel, waitlist), each "
    "with a sentence saying why; a program `fits` when no criterion rules it out. Programs "
    "that fit come first, then those with fewer problems, the shortest wait and the shortest "
    "travel. `preferences` adds what the answers do not hold: where the person travels from "
    "(an area of your programs' travel-time tables, or coordinates for a straight-line "
    "estimate), preferred languages and the payer. Stores nothing; a stored screening's read "
    "is recorded in the audit trail (counts only, never the preferences).",
    responses={
        404: NO_SUCH_SCREENING,
        422: problem(
            "Neither or both of screening_id and answers, invalid answers or preferences, or an "
            "unknown rule-set version.",
            problem_example(
                Unprocessable,
                "answers: give either screening_id or answers",
                summary="Neither or both",
                errors=[
                    FieldProblem(pointer="#/answers", detail="give either screening_id or answers")
                ],
            ),
            INVALID_ANSWERS,
            UNKNOWN_VERSION,
        ),
    },
)
async def match_programs(
    caller: Annotated[Caller, access(Action.PROGRAM_MATCH)],
    request: MatchRequest,
    service: ReferralServiceDep,
) -> Response:
    return json_response(await service.matches(caller, request))


@router.post(
    "/v1/screenings/{screening_id}/referrals",
    tags=["screenings"],
    operation_id="recordReferral",
    status_code=status.HTTP_201_CREATED,
    response_model=ReferralResponse,
    summary="Refer to a program",
    description="Record that the screened person was referred to a program of your directory. "
    "The referral keeps the program as it is now and its judgement against the screening "
    "(with the `preferences` given, as when matching): a program of another level than the "
    "recommended one may be referred to, and the judgement says it does not fit. Send the "
    "`program_version` you matched against to be told (409) when the program changed since. "
    "Referrals are appended, never changed; a screening keeps at most "
    f"{MAX_REFERRALS_PER_SCREENING}. Not idempotent: each call records a referral. Recorded "
    "in the audit trail.",
    responses={
        404: NO_SUCH_SCREENING,
        409: problem(
            "The program is retired, takes no referrals, or changed since the version given; "
            "or the screening has as many referrals as it keeps.",
            problem_example(
                Conflict,
                "The program is retired: refer to one of the directory's programs.",
                summary="A retired program",
            ),
            problem_example(
                Conflict,
                "The program changed since version 1 (it is now version 2): match again and "
                "check the changes.",
                summary="A program changed since",
            ),
        ),
        422: problem(
            "No such program in your directory, or an invalid body.",
            problem_example(
                Unprocessable,
                f"No program with id '{EXAMPLE_PROGRAM_ID}' in your directory.",
                summary="An unknown program",
                errors=[FieldProblem(pointer="#/program_id", detail="no such program")],
            ),
        ),
    },
)
async def refer(
    caller: Annotated[Caller, access(Action.SCREENING_REFER)],
    screening_id: ScreeningId,
    request: ReferralRequest,
    service: ReferralServiceDep,
) -> Response:
    body = await service.refer(caller, screening_id, request)
    location = f"/v1/screenings/{body['screening_id']}/referrals/{body['id']}"
    return json_response(body, status.HTTP_201_CREATED, {"Location": location})


@router.get(
    "/v1/screenings/{screening_id}/referrals",
    tags=["screenings"],
    operation_id="listReferrals",
    response_model=ReferralList,
    summary="List a screening's referrals",
    description="The referrals recorded from a screening, newest first, each with the program "
    "as it was when referred and the judgement that went with it. Another tenant's screening "
    "ids answer 404, like ids that do not exist. Reading is recorded in the audit trail.",
    responses={404: NO_SUCH_SCREENING},
)
async def list_referrals(
    caller: Annotated[Caller, access(Action.SCREENING_REFERRALS)],
    screening_id: ScreeningId,
    service: ReferralServiceDep,
) -> Response:
    return json_response(await service.of_screening(caller, screening_id))


@router.get(
    "/v1/screenings/{screening_id}/referrals/{referral_id}",
    tags=["screenings"],
    operation_id="readReferral",
    response_model=ReferralResponse,
    summary="Read a referral",
    description="One referral recorded from a screening (where `POST "
    "/v1/screenings/{screening_id}/referrals` answers `Location`), with the program as it was "
    "when referred and the judgement that went with it. Another tenant's ids answer 404, like "
    "ids that do not exist. Reading is recorded in the audit trail.",
    responses={404: NO_SUCH_REFERRAL},
)
async def read_referral(
    caller: Annotated[Caller, access(Action.SCREENING_REFERRAL)],
    screening_id: ScreeningId,
    referral_id: ReferralId,
    service: ReferralServiceDep,
) -> Response:
    return json_response(await service.referral(caller, screening_id, referral_id))
