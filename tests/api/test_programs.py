"""The program directory over HTTP: added, listed (filtered, paged), read with its ETag,
edited only with a current If-Match, retired; isolated by tenant, guarded by scopes, audited;
every invalid program refused naming the field."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.programs.examples import EVENING_IOP
from app.security.principal import Scope
from tests.support.apps import http_client, new_key
from tests.support.problems import assert_problem, pointers

PROGRAMS = "/v1/programs"
Json = dict[str, Any]


def program(**fields: Any) -> Json:
    return copy.deepcopy(EVENING_IOP) | fields


async def add(client: httpx.AsyncClient, **fields: Any) -> httpx.Response:
    response = await client.post(PROGRAMS, json=program(**fields))
    assert response.status_code == 201, response.text
    return response


async def test_a_program_is_added_and_read_back_with_its_etag(client: httpx.AsyncClient) -> None:
    created = await add(client, languages=["es", "en", "es"], payers=["self-pay", "medicaid"])

    body = created.json()
    assert created.headers["location"] == f"{PROGRAMS}/{body['id']}"
    assert created.headers["etag"] == '"1"'
    assert (body["version"], body["status"], body["hours_per_week"]) == (1, "active", 9.0)
    assert (body["languages"], body["payers"]) == (["en", "es"], ["medicaid", "self-pay"])
    assert body["retired_at"] is None
    assert body["created_by"] == body["updated_by"]
    read = await client.get(created.headers["location"])
    assert read.status_code == 200, read.text
    assert read.json() == body
    assert read.headers["etag"] == '"1"'


async def test_a_current_if_none_match_is_answered_304(client: httpx.AsyncClient) -> None:
    location = (await add(client)).headers["location"]

    unchanged = await client.get(location, headers={"If-None-Match": '"1"'})
    changed = await client.get(location, headers={"If-None-Match": '"7"'})

    assert (unchanged.status_code, unchanged.content) == (304, b"")
    assert unchanged.headers["etag"] == '"1"'
    assert changed.status_code == 200


async def test_an_edit_needs_the_current_etag_and_makes_the_next_version(
    client: httpx.AsyncClient,
) -> None:
    location = (await add(client)).headers["location"]
    edited = program(accepting_referrals=False, timetable=[])

    missing = await client.put(location, json=edited)
    assert_problem(missing, 428, "precondition-required")
    done = await client.put(location, json=edited, headers={"If-Match": '"1"'})
    assert done.status_code == 200, done.text
    assert done.headers["etag"] == '"2"'
    assert (done.json()["version"], done.json()["accepting_referrals"]) == (2, False)
    assert done.json()["hours_per_week"] is None
    stale = await client.put(location, json=program(), headers={"If-Match": '"1"'})
    assert_problem(stale, 412, "precondition-failed")
    assert stale.headers["etag"] == '"2"'
    assert (await client.get(location)).json() == done.json()  # the refused edit changed nothing


async def test_retiring_keeps_the_program_readable_and_stops_edits(
    client: httpx.AsyncClient,
) -> None:
    location = (await add(client)).headers["location"]

    assert_problem(await client.delete(location), 428, "precondition-required")
    assert_problem(await client.delete(location, headers={"If-Match": '"2"'}), 412)
    retired = await client.delete(location, headers={"If-Match": '"1"'})
    assert retired.status_code == 200, retired.text
    assert (retired.json()["status"], retired.json()["version"]) == ("retired", 2)
    assert retired.json()["retired_by"] is not None
    again = await client.delete(location, headers={"If-Match": "*"})
    assert (again.status_code, again.json()) == (200, retired.json())
    refused = await client.put(location, json=program(), headers={"If-Match": '"2"'})
    assert_problem(refused, 409, "conflict")
    assert (await client.get(location)).json()["status"] == "retired"


async def test_the_list_is_oldest_first_in_pages_filtered_by_level_and_retirement(
    client: httpx.AsyncClient,
) -> None:
    ids = [(await add(client, name=f"Program {n}")).json()["id"] for n in range(5)]
    php = (await add(client, name="Day program", level="partial_hospitalization")).json()["id"]
    retired = await client.delete(f"{PROGRAMS}/{ids[1]}", headers={"If-Match": '"1"'})
    assert retired.status_code == 200

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(PROGRAMS, params=params)).json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [ids[0], *ids[2:], php]
    every = (await client.get(PROGRAMS, params={"include_retired": "true"})).json()["items"]
    assert [item["id"] for item in every] == [*ids, php]
    level = (await client.get(PROGRAMS, params={"level": "partial_hospitalization"})).json()
    assert [item["id"] for item in level["items"]] == [php]
    assert_problem(await client.get(PROGRAMS, params={"cursor": "not-a-cursor"}), 400)
    bad_level = await client.get(PROGRAMS, params={"level": "somewhere"})
    assert pointers(assert_problem(bad_level, 422)) == ["#/query/level"]


@pytest.mark.parametrize(
    ("fields", "pointer"),
    [
        (
            {"timetable": [{"day": "monday", "start": "18:00", "end": "21:00"}]},
            "#/timetable/0/modality",
        ),
        (
            {
                "modality": "in_person",
                "timetable": [
                    {"day": "friday", "start": "09:00", "end": "12:00"},
                    {"day": "monday", "start": "18:00", "end": "17:30"},
                ],
            },
            "#/timetable/1/end",
        ),
        (
            {
                "travel_times": [
                    {"area": "riverside", "minutes": 10},
                    {"area": "north", "minutes": 20},
                    {"area": "riverside", "minutes": 12},
                ]
            },
            "#/travel_times/2/area",
        ),
        ({"languages": ["en", "Spanish"]}, "#/languages/1"),
        ({"location": {"label": "Riverside", "latitude": 39.78}}, "#/location/longitude"),
        ({"name": "Evening\u0000IOP"}, "#/name"),
        ({"level": "somewhere"}, "#/level"),
        ({"capacity": {"waitlist_weeks": 105}}, "#/capacity/waitlist_weeks"),
        (
            {
                "modality": "in_person",
                "timetable": [
                    {"day": "monday", "start": "18:00", "end": "21:00", "modality": "telehealth"}
                ],
            },
            "#/timetable/0/modality",
        ),
        ({"patient_name": "someone"}, "#"),  # an unknown member: its object, never its name
    ],
)
async def test_an_invalid_program_is_refused_naming_the_field(
    client: httpx.AsyncClient, fields: Json, pointer: str
) -> None:
    refused = await client.post(PROGRAMS, json=program(**fields))

    problem = assert_problem(refused, 422, "validation-error")
    assert pointers(problem) == [pointer]
    assert "someone" not in refused.text
    assert "Spanish" not in refused.text
    assert (await client.get(PROGRAMS)).json()["items"] == []


async def test_an_edit_is_validated_like_a_new_program(client: httpx.AsyncClient) -> None:
    location = (await add(client)).headers["location"]
    bad = program(travel_times=[{"area": "a", "minutes": 1}, {"area": "a", "minutes": 2}])

    refused = await client.put(location, json=bad, headers={"If-Match": '"1"'})

    assert pointers(assert_problem(refused, 422)) == ["#/travel_times/1/area"]
    assert (await client.get(location)).json()["version"] == 1


async def test_another_tenants_program_is_404_like_an_unknown_one(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    location = (await add(client)).headers["location"]
    async with http_client(app, await new_key(app, tenant="clinic-b")) as other:
        for method, headers in (
            ("GET", {}),
            ("PUT", {"If-Match": '"1"'}),
            ("DELETE", {"If-Match": "*"}),
        ):
            json = program() if method == "PUT" else None
            foreign = await other.request(method, location, json=json, headers=headers)
            assert_problem(foreign, 404, "not-found")
        assert (await other.get(PROGRAMS)).json()["items"] == []
    assert (await client.get(location)).json()["version"] == 1


async def test_writing_needs_programs_write_and_reading_programs_read(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    location = (await add(client)).headers["location"]
    async with http_client(app, await new_key(app, scopes={Scope.PROGRAMS_READ})) as reader:
        assert (await reader.get(location)).status_code == 200
        assert_problem(await reader.post(PROGRAMS, json=program()), 403, "forbidden")
        refused = await reader.put(location, json=program(), headers={"If-Match": '"1"'})
        assert_problem(refused, 403, "forbidden")
        assert_problem(await reader.delete(location, headers={"If-Match": '"1"'}), 403)
    async with http_client(app, await new_key(app, scopes={Scope.PROGRAMS_WRITE})) as writer:
        assert_problem(await writer.get(PROGRAMS), 403, "forbidden")
        assert (await writer.post(PROGRAMS, json=program())).status_code == 201


async def test_every_change_is_in_the_audit_trail_with_the_program_id(
    client: httpx.AsyncClient,
) -> None:
    location = (await add(client)).headers["location"]
    program_id = location.rsplit("/", 1)[1]
    await client.put(location, json=program(), headers={"If-Match": '"1"'})
    await client.put(location, json=program(), headers={"If-Match": '"1"'})  # 412
    await client.delete(location, headers={"If-Match": '"2"'})

    events = (await client.get("/v1/audit-events", params={"limit": 100})).json()["items"]
    mine = [
        (e["action"], e["outcome"], e["details"].get("version"))
        for e in reversed(events)
        if e["resource_type"] == "program" and e["resource_id"] == program_id
    ]
    assert mine == [
        ("program.create", 201, 1),
        ("program.update", 200, 2),
        ("program.update", 412, None),
        ("program.retire", 200, 3),
    ]


async def test_a_tenant_holds_at_most_the_limit_of_programs(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.programs.service.MAX_PROGRAMS", 2)
    first = await add(client)
    await client.delete(first.headers["location"], headers={"If-Match": "*"})
    await add(client)

    refused = await client.post(PROGRAMS, json=program())

    assert "retired ones included" in assert_problem(refused, 409, "conflict")["detail"]
    every = (await client.get(PROGRAMS, params={"include_retired": "true"})).json()["items"]
    assert len(every) == 2


async def test_the_service_gives_other_packages_the_directory_and_any_entry(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    kept = (await add(client)).json()
    gone = (await add(client, name="Closed program")).json()
    await client.delete(f"{PROGRAMS}/{gone['id']}", headers={"If-Match": "*"})
    service = app.state.program_service

    directory = await service.directory("default")
    assert [(e.id, e.version, e.program.name) for e in directory] == [(kept["id"], 1, kept["name"])]
    assert directory[0].program.hours_per_week == 9.0
    entry, retired = await service.entry("default", gone["id"])
    assert (entry.id, entry.version, retired) == (gone["id"], 2, True)
    assert await service.entry("clinic-b", kept["id"]) is None
    assert await service.directory("clinic-b") == []
