"""Matching screenings to the program directory and recording referrals, over HTTP: ranks with
their reasons for a stored screening and for answers evaluated now; referrals stored with the
program as it was, listed newest first, refused for retired programs and changed versions;
isolated by tenant; audited without the preferences."""

from __future__ import annotations

import asyncio
import copy
import threading
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.engine.matching import CRITERIA, Matches, Needs, match
from app.engine.programs import DirectoryEntry
from app.programs.examples import EVENING_IOP
from app.referrals import service as referral_service
from app.referrals.models import Referral
from app.security.principal import Scope
from tests.support.apps import http_client, new_key
from tests.support.examples import create, example
from tests.support.problems import assert_problem, pointers

Json = dict[str, Any]
MATCHES = "/v1/program-matches"
DAYTIME = [
    {"day": day, "start": "09:00", "end": "12:00", "modality": "in_person"}
    for day in ("monday", "wednesday", "thursday")
]
# Five programs around the adult IOP example (own vehicle, 12 hours a week, daytime and
# evenings, telehealth capable; the determination asks for a co-occurring capable program).
DIRECTORY: dict[str, Json] = {
    "evening": copy.deepcopy(EVENING_IOP) | {"name": "Evening IOP"},
    "waitlist": copy.deepcopy(EVENING_IOP)
    | {"name": "Daytime IOP", "timetable": DAYTIME, "capacity": {"waitlist_weeks": 1}},
    "teens": copy.deepcopy(EVENING_IOP) | {"name": "Teen IOP", "populations": ["adolescent"]},
    "php": copy.deepcopy(EVENING_IOP) | {"name": "Day program", "level": "partial_hospitalization"},
    "no-co-occurring": copy.deepcopy(EVENING_IOP)
    | {"name": "Mental health IOP", "co_occurring_capability": "none"},
}


async def add_programs(client: httpx.AsyncClient) -> dict[str, str]:
    """The directory above, added; the programs' ids by key."""
    ids = {}
    for key, document in DIRECTORY.items():
        response = await client.post("/v1/programs", json=document)
        assert response.status_code == 201, response.text
        ids[key] = response.json()["id"]
    return ids


def outcomes(candidate: Json) -> dict[str, str]:
    return {c["criterion"]: c["outcome"] for c in candidate["criteria"]}


async def test_a_stored_screening_is_matched_with_ranks_and_reasons(
    client: httpx.AsyncClient,
) -> None:
    ids = await add_programs(client)
    screening = await create(client, example("adult-iop-suitable"))

    response = await client.post(
        MATCHES,
        json={"screening_id": screening["id"], "preferences": {"origin": {"area": "riverside"}}},
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["screening_id"], body["level"], body["notice"]) == (
        screening["id"],
        "intensive_outpatient",
        None,
    )
    assert body["considered"] == 5
    ranked = [c["program"]["id"] for c in body["candidates"]]
    assert ranked[:2] == [ids["evening"], ids["waitlist"]]  # open places before a wait
    assert set(ranked[2:]) == {ids["teens"], ids["php"], ids["no-co-occurring"]}
    assert [c["rank"] for c in body["candidates"]] == [1, 2, 3, 4, 5]
    assert [c["fits"] for c in body["candidates"]] == [True, True, False, False, False]
    first, second = body["candidates"][:2]
    assert outcomes(first)["travel"] == "fits"
    assert first["travel_minutes"] == 10
    assert outcomes(second)["waitlist"] == "partly"
    by_id = {c["program"]["id"]: c for c in body["candidates"]}
    assert outcomes(by_id[ids["teens"]])["population"] == "does_not_fit"
    assert outcomes(by_id[ids["php"]])["level"] == "does_not_fit"
    assert outcomes(by_id[ids["no-co-occurring"]])["co_occurring"] == "does_not_fit"
    assert by_id[ids["teens"]]["summary"].startswith("Does not fit: ")


async def test_answers_are_evaluated_and_matched_without_storing(
    client: httpx.AsyncClient,
) -> None:
    ids = await add_programs(client)
    answers = example("adult-iop-suitable")
    answers["logistics"]["times_available"] = ["evening"]

    response = await client.post(MATCHES, json={"answers": answers})
    top = await client.post(MATCHES, json={"answers": answers, "limit": 2})

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["screening_id"], body["level_source"]) == (None, "recommended")
    assert body["candidates"][0]["program"]["id"] == ids["evening"]
    by_id = {c["program"]["id"]: c for c in body["candidates"]}
    daytime = by_id[ids["waitlist"]]
    assert outcomes(daytime)["schedule"] == "does_not_fit"
    assert "Monday 09:00-12:00" in daytime["criteria"][9]["explanation"]
    assert top.json()["candidates"] == body["candidates"][:2]
    listed = await client.get("/v1/screenings")
    assert listed.json()["items"] == []


async def test_an_emergency_has_no_candidates_and_says_why(client: httpx.AsyncClient) -> None:
    await add_programs(client)

    response = await client.post(MATCHES, json={"answers": example("emergency-suicide-risk")})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["candidates"] == []
    assert "Emergency evaluation" in body["notice"]


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({}, "#/answers"),
        (
            {
                "screening_id": "0b8f5a7e-6c1d-4f0a-9a57-3f1c2e4d5b6a",
                "answers": example("adult-iop-suitable"),
            },
            "#/answers",
        ),
        ({"answers": {"respondent": {}}}, "#/answers/respondent/age_group"),
        (
            {"screening_id": "x", "rule_set": {"version": 1}},
            "#/rule_set",
        ),
        ({"answers": {}, "limit": 51}, "#/limit"),
        ({"answers": {}, "preferences": {"origin": {"latitude": 91}}}, None),
        ({"answers": {}, "preferences": {"languages": ["Klingon!"]}}, "#/preferences/languages/0"),
    ],
)
async def test_invalid_match_requests_name_the_field(
    client: httpx.AsyncClient, body: Json, pointer: str | None
) -> None:
    response = await client.post(MATCHES, json=body)

    problem = assert_problem(response, 422)
    if pointer is not None:
        assert pointer in pointers(problem), pointers(problem)
    assert "Klingon" not in response.text


async def test_a_referral_is_stored_with_the_program_and_listed(
    client: httpx.AsyncClient,
) -> None:
    ids = await add_programs(client)
    screening = await create(client, example("adult-iop-suitable"))
    referrals = f"/v1/screenings/{screening['id']}/referrals"

    first = await client.post(
        referrals,
        json={"program_id": ids["evening"], "program_version": 1, "referred_by": "clinician-042"},
    )
    second = await client.post(
        referrals,
        json={"program_id": ids["php"], "referred_by": "clinician-042", "note": "Step up."},
    )

    assert first.status_code == 201, first.text
    body = first.json()
    assert first.headers["location"] == f"{referrals}/{body['id']}"
    read = await client.get(first.headers["location"])
    assert read.status_code == 200, read.text
    assert read.json() == body
    assert (body["program_id"], body["program_version"], body["level"]) == (
        ids["evening"],
        1,
        "intensive_outpatient",
    )
    assert body["program"]["name"] == "Evening IOP"
    assert body["match"]["fits"] is True
    assert second.status_code == 201, second.text
    assert second.json()["match"]["fits"] is False  # another level: allowed, and said
    # Edited later, the program does not change what was referred to.
    edited = DIRECTORY["evening"] | {"name": "Renamed"}
    changed = await client.put(
        f"/v1/programs/{ids['evening']}", json=edited, headers={"If-Match": '"1"'}
    )
    assert changed.status_code == 200, changed.text
    listed = await client.get(referrals)
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert [i["id"] for i in items] == [second.json()["id"], body["id"]]
    assert items[1]["program"]["name"] == "Evening IOP"


async def test_a_referral_to_a_changed_retired_or_unknown_program_is_refused(
    client: httpx.AsyncClient,
) -> None:
    ids = await add_programs(client)
    screening = await create(client, example("adult-iop-suitable"))
    referrals = f"/v1/screenings/{screening['id']}/referrals"
    program = f"/v1/programs/{ids['evening']}"
    edited = DIRECTORY["evening"] | {"capacity": {"open_places": 0}}
    assert (await client.put(program, json=edited, headers={"If-Match": '"1"'})).status_code == 200

    changed = await client.post(
        referrals,
        json={"program_id": ids["evening"], "program_version": 1, "referred_by": "c-1"},
    )
    retired = await client.post(
        f"/v1/programs/{ids['waitlist']}/retire", headers={"If-Match": '"1"'}
    )
    assert retired.status_code == 200, retired.text
    to_retired = await client.post(
        referrals, json={"program_id": ids["waitlist"], "referred_by": "c-1"}
    )
    unknown = await client.post(
        referrals, json={"program_id": "no-such-program", "referred_by": "c-1"}
    )
    no_screening = await client.post(
        "/v1/screenings/no-such-screening/referrals",
        json={"program_id": ids["evening"], "referred_by": "c-1"},
    )

    assert_problem(changed, 409)
    assert_problem(to_retired, 409)
    assert pointers(assert_problem(unknown, 422)) == ["#/program_id"]
    assert_problem(no_screening, 404)
    assert (await client.get(referrals)).json()["items"] == []


async def test_another_tenants_screening_and_programs_are_not_found(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    ids = await add_programs(client)
    screening = await create(client, example("adult-iop-suitable"))
    ours = (
        await client.post(
            f"/v1/screenings/{screening['id']}/referrals",
            json={"program_id": ids["evening"], "referred_by": "c-1"},
        )
    ).json()
    async with http_client(app, await new_key(app, tenant="clinic-b")) as other:
        matched = await other.post(MATCHES, json={"screening_id": screening["id"]})
        referred = await other.post(
            f"/v1/screenings/{screening['id']}/referrals",
            json={"program_id": ids["evening"], "referred_by": "c-1"},
        )
        listed = await other.get(f"/v1/screenings/{screening['id']}/referrals")
        read = await other.get(f"/v1/screenings/{screening['id']}/referrals/{ours['id']}")
        own = await create(other, example("adult-iop-suitable"))
        their_directory = await other.post(MATCHES, json={"screening_id": own["id"]})
        to_ours = await other.post(
            f"/v1/screenings/{own['id']}/referrals",
            json={"program_id": ids["evening"], "referred_by": "c-1"},
        )

    assert_problem(matched, 404)
    assert_problem(referred, 404)
    assert_problem(listed, 404)
    assert_problem(read, 404)
    assert their_directory.json()["considered"] == 0
    assert pointers(assert_problem(to_ours, 422)) == ["#/program_id"]


async def test_matching_needs_programs_read_and_screenings_read(app: FastAPI) -> None:
    async with http_client(app, await new_key(app, scopes={Scope.SCREENINGS_READ})) as reader:
        response = await reader.post(MATCHES, json={"answers": example("adult-iop-suitable")})

    assert_problem(response, 403)


async def test_the_audit_trail_records_counts_never_the_origin(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await add_programs(client)
    screening = await create(client, example("adult-iop-suitable"))
    origin = {"latitude": 39.123456, "longitude": -89.654321}

    response = await client.post(
        MATCHES, json={"screening_id": screening["id"], "preferences": {"origin": origin}}
    )

    assert response.status_code == 200, response.text
    assert "39.123456" not in response.text
    async with app.state.sessions() as session:
        events = (
            (await session.execute(select(AuditEvent).where(AuditEvent.action == "program.match")))
            .scalars()
            .all()
        )
    assert [(e.resource_id, e.details) for e in events] == [
        (screening["id"], {"considered": 5, "returned": 5})
    ]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # A failed field alone: no "give either" or "give both" error about the others.
        ({"screening_id": "not an id!"}, ["#/screening_id"]),
        ({"origin": {"latitude": "north", "longitude": 10.5}}, ["#/preferences/origin/latitude"]),
        ({"origin": {"latitude": 91, "longitude": 10.5}}, ["#/preferences/origin/latitude"]),
        ({"origin": {"latitude": True, "longitude": 10}}, ["#/preferences/origin/latitude"]),
        ({"origin": {"area": "Not a token!"}}, ["#/preferences/origin/area"]),
        ({"origin": {"latitude": 40}}, ["#/preferences/origin/longitude"]),
    ],
)
async def test_an_invalid_field_is_the_only_one_named(
    client: httpx.AsyncClient, body: Json, expected: list[str]
) -> None:
    if "origin" in body:
        body = {"answers": example("adult-iop-suitable"), "preferences": body}

    response = await client.post(MATCHES, json=body)

    assert pointers(assert_problem(response, 422)) == expected


def test_the_schema_states_the_coordinates_bounds_and_the_matchers_criteria(app: FastAPI) -> None:
    schemas = app.openapi()["components"]["schemas"]
    latitude = schemas["OriginIn"]["properties"]["latitude"]["anyOf"][0]
    criterion = schemas["CriterionOut"]["properties"]["criterion"]

    assert (latitude["type"], latitude["minimum"], latitude["maximum"]) == ("number", -90, 90)
    assert criterion["enum"] == list(CRITERIA)


async def test_a_decided_level_is_matched_and_referred_against(client: httpx.AsyncClient) -> None:
    ids = await add_programs(client)
    screening = await create(client, example("adult-iop-suitable"))
    decided = await client.post(
        f"/v1/screenings/{screening['id']}/decision",
        json={
            "final_level": "partial_hospitalization",
            "decided_by": "clinician-042",
            "variance_reasons": ["clinical_judgment"],
        },
    )
    assert decided.status_code == 201, decided.text

    response = await client.post(MATCHES, json={"screening_id": screening["id"]})
    referred = await client.post(
        f"/v1/screenings/{screening['id']}/referrals",
        json={"program_id": ids["php"], "referred_by": "clinician-042"},
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["level"], body["level_source"]) == ("partial_hospitalization", "decided")
    by_id = {c["program"]["id"]: c for c in body["candidates"]}
    assert body["candidates"][0]["program"]["id"] == ids["php"]
    assert outcomes(by_id[ids["php"]])["level"] == "fits"
    assert outcomes(by_id[ids["evening"]])["level"] == "does_not_fit"
    assert referred.status_code == 201, referred.text
    assert outcomes(referred.json()["match"])["level"] == "fits"


async def test_matching_runs_off_the_event_loop_holding_no_connection(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_programs(client)
    screening = await create(client, example("adult-iop-suitable"))
    pool = app.state.engine.pool
    seen: list[tuple[int, int]] = []
    real = match

    def spying(needs: Needs, entries: Sequence[DirectoryEntry]) -> Matches:
        seen.append((threading.get_ident(), pool.checkedout()))
        return real(needs, entries)

    monkeypatch.setattr(referral_service, "match", spying)

    response = await client.post(MATCHES, json={"screening_id": screening["id"]})

    assert response.status_code == 200, response.text
    [(thread, connections)] = seen
    assert thread != threading.get_ident()  # not the event loop's
    assert connections == 0


async def test_concurrent_referrals_never_pass_the_screenings_limit(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await add_programs(client)
    screening = await create(client, example("adult-iop-suitable"))
    referrals = f"/v1/screenings/{screening['id']}/referrals"
    monkeypatch.setattr(referral_service, "MAX_REFERRALS_PER_SCREENING", 2)

    answers = await asyncio.gather(
        *(
            client.post(referrals, json={"program_id": ids[key], "referred_by": "c-1"})
            for key in ("evening", "waitlist", "php", "evening", "waitlist", "php")
        )
    )

    assert sorted(a.status_code for a in answers) == [201, 201, 409, 409, 409, 409]
    assert len((await client.get(referrals)).json()["items"]) == 2


async def test_a_referral_stores_no_origin_and_rounded_travel_minutes(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    ids = await add_programs(client)
    screening = await create(client, example("adult-iop-suitable"))
    origin = {"latitude": 39.871234, "longitude": -89.587654}

    response = await client.post(
        f"/v1/screenings/{screening['id']}/referrals",
        json={
            "program_id": ids["evening"],
            "referred_by": "c-1",
            "preferences": {"origin": origin},
        },
    )

    assert response.status_code == 201, response.text
    async with app.state.sessions() as session:
        stored = (await session.execute(select(Referral))).scalar_one()
    minutes = stored.match["travel_minutes"]
    assert minutes is not None
    assert minutes % 5 == 0
    kept = str(stored.match)
    assert [text for text in ("39.87", "89.58", "871234", "587654") if text in kept] == []
