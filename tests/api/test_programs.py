"""The program directory over HTTP: added, listed (filtered, paged), read with its ETag,
edited and retired only with a current If-Match (one of concurrent changes made, on either
database); bounded per tenant; isolated by tenant, guarded by scopes, audited; every invalid
program refused naming the field; documents parsed once per version."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.programs.examples import EVENING_IOP
from app.programs.models import Program
from app.programs.service import DocumentCache
from app.security.principal import Scope
from tests.support.apps import http_client, new_key
from tests.support.problems import assert_problem, pointers

PROGRAMS = "/v1/programs"
Json = dict[str, Any]


def program(**fields: Any) -> Json:
    return copy.deepcopy(EVENING_IOP) | fields


async def retire(client: httpx.AsyncClient, location: str) -> httpx.Response:
    response = await client.post(f"{location}/retire", headers={"If-Match": "*"})
    assert response.status_code == 200, response.text
    return response


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

    retire = f"{location}/retire"
    assert_problem(await client.post(retire), 428, "precondition-required")
    assert_problem(await client.post(retire, headers={"If-Match": '"2"'}), 412)
    assert_problem(await client.post(retire, headers={"If-Match": 'W/"1"'}), 412)
    retired = await client.post(retire, headers={"If-Match": '"1"'})
    assert retired.status_code == 200, retired.text
    assert retired.headers["etag"] == '"2"'
    assert (retired.json()["status"], retired.json()["version"]) == ("retired", 2)
    assert retired.json()["retired_by"] is not None
    again = await client.post(retire, headers={"If-Match": "*"})
    assert (again.status_code, again.json()) == (200, retired.json())
    refused = await client.put(location, json=program(), headers={"If-Match": '"2"'})
    assert_problem(refused, 409, "conflict")
    assert (await client.get(location)).json()["status"] == "retired"


async def test_the_list_is_oldest_first_in_pages_filtered_by_level_and_retirement(
    client: httpx.AsyncClient,
) -> None:
    ids = [(await add(client, name=f"Program {n}")).json()["id"] for n in range(5)]
    php = (await add(client, name="Day program", level="partial_hospitalization")).json()["id"]
    retired = await client.post(f"{PROGRAMS}/{ids[1]}/retire", headers={"If-Match": '"1"'})
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
        for method, path, headers in (
            ("GET", location, {}),
            ("PUT", location, {"If-Match": '"1"'}),
            ("POST", f"{location}/retire", {"If-Match": "*"}),
        ):
            json = program() if method == "PUT" else None
            foreign = await other.request(method, path, json=json, headers=headers)
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
        retire = await reader.post(f"{location}/retire", headers={"If-Match": '"1"'})
        assert_problem(retire, 403)
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
    await client.post(f"{location}/retire", headers={"If-Match": '"2"'})

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


async def test_the_limit_counts_active_programs_and_bounds_retired_ones_too(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.programs.service.MAX_PROGRAMS", 2)
    monkeypatch.setattr("app.programs.service.MAX_STORED_PROGRAMS", 3)
    first = await add(client)
    await retire(client, first.headers["location"])
    second = await add(client)
    await add(client)  # a retired program leaves its place to another

    too_many_active = await client.post(PROGRAMS, json=program())
    await retire(client, second.headers["location"])
    too_many_kept = await client.post(PROGRAMS, json=program())

    active = assert_problem(too_many_active, 409, "conflict")["detail"]
    assert "2 active programs" in active
    assert "/retire" in active
    kept = assert_problem(too_many_kept, 409, "conflict")["detail"]
    assert "3 programs counting retired ones" in kept
    every = (await client.get(PROGRAMS, params={"include_retired": "true"})).json()["items"]
    assert [item["status"] for item in every] == ["retired", "retired", "active"]


async def test_concurrent_creations_never_pass_the_limit(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.programs.service.MAX_PROGRAMS", 3)
    for _ in range(2):
        await add(client)

    created = await asyncio.gather(*(client.post(PROGRAMS, json=program()) for _ in range(10)))

    statuses = sorted(response.status_code for response in created)
    assert statuses == [201] + [409] * 9, [r.text for r in created]
    assert len((await client.get(PROGRAMS)).json()["items"]) == 3


@pytest.mark.parametrize("change", ["edit", "retire"])
async def test_of_concurrent_changes_from_one_version_exactly_one_is_made(
    client: httpx.AsyncClient, change: str
) -> None:
    location = (await add(client)).headers["location"]
    headers = {"If-Match": '"1"'}

    def attempt(n: int) -> Awaitable[httpx.Response]:
        if change == "edit":
            return client.put(location, json=program(name=f"Edit {n}"), headers=headers)
        return client.post(f"{location}/retire", headers=headers)

    responses = await asyncio.gather(*(attempt(n) for n in range(10)))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [412] * 9, [r.text for r in responses]
    (made,) = [r.json() for r in responses if r.status_code == 200]
    assert (await client.get(location)).json() == made
    assert made["version"] == 2


async def test_delete_is_not_a_way_to_retire(client: httpx.AsyncClient) -> None:
    location = (await add(client)).headers["location"]

    refused = await client.delete(location, headers={"If-Match": '"1"'})

    assert refused.status_code == 405
    assert (await client.get(location)).json()["status"] == "active"


async def test_if_none_match_compares_weakly_and_takes_a_list(client: httpx.AsyncClient) -> None:
    location = (await add(client)).headers["location"]

    for tags in ('W/"1"', '"5", "1"', "*"):
        cached = await client.get(location, headers={"If-None-Match": tags})
        assert (cached.status_code, cached.headers["etag"]) == (304, '"1"'), tags
    assert (await client.get(location, headers={"If-None-Match": 'W/"2"'})).status_code == 200
    edited = await client.put(location, json=program(), headers={"If-Match": '"7", "1"'})
    assert edited.status_code == 200, edited.text


async def test_the_service_gives_other_packages_the_directory_and_any_entry(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    kept = (await add(client)).json()
    gone = (await add(client, name="Closed program")).json()
    await retire(client, f"{PROGRAMS}/{gone['id']}")
    service = app.state.program_service

    directory = await service.directory("default")
    assert [(e.id, e.version, e.program.name) for e in directory] == [(kept["id"], 1, kept["name"])]
    assert directory[0].program.hours_per_week == 9.0
    entry, retired = await service.entry("default", gone["id"])
    assert (entry.id, entry.version, retired) == (gone["id"], 2, True)
    assert await service.entry("clinic-b", kept["id"]) is None
    assert await service.directory("clinic-b") == []


async def test_the_directory_parses_a_document_once_per_version(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    location = (await add(client)).headers["location"]
    service = app.state.program_service

    (first,) = await service.directory("default")
    (again,) = await service.directory("default")
    entry, _ = await service.entry("default", first.id)
    await client.put(location, json=program(name="Renamed"), headers={"If-Match": '"1"'})
    (edited,) = await service.directory("default")

    assert again.program is first.program
    assert entry.program is first.program
    assert edited.program is not first.program
    assert (edited.version, edited.program.name) == (2, "Renamed")


def test_the_document_cache_keeps_the_least_recently_used_out() -> None:
    cache = DocumentCache(2)
    rows = [Program(id=f"p{n}", version=1, document=program(name=f"P{n}")) for n in range(3)]

    first = cache.document(rows[0])
    cache.document(rows[1])
    assert cache.document(rows[0]) is first  # used again: now the most recent
    cache.document(rows[2])  # evicts rows[1]

    assert len(cache) == 2
    assert cache.document(rows[0]) is first
    assert cache.document(rows[1]).name == "P1"  # parsed again
