"""Screening endpoints through the public API: store, pin, idempotency, evaluate, read, list.

Every test starts from empty tables plus the seeded default rule set (version 1, active).
Replays and clinician decisions are specified in test_screenings_replay_decision.py; error
responses, input validation and the questionnaire in test_screenings_errors.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from app.engine import ENGINE_VERSION
from app.kernel.settings import Settings
from tests.api.screenings_support import (
    RULE_SET,
    all_screenings,
    assert_nothing_stored,
    client_for,
    creation_events,
    draft_version,
    leave_a_key_without_its_screening,
    published_version,
    stored_keys,
)
from tests.support.apps import client_id_of, http_client, new_key
from tests.support.examples import Json, create, example, level_of, screen
from tests.support.problems import assert_problem, pointers

# --- POST /v1/screenings ----------------------------------------------------------------------


async def test_create_returns_201_with_location_and_the_deciding_version(
    client: httpx.AsyncClient,
) -> None:
    response = await screen(client, external_reference="enc-2026-000123")

    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {
        "id",
        "created_at",
        "external_reference",
        "person_id",
        "rule_set",
        "engine_version",
        "summary",
        "determination",
        "ask_next",
        "latest_decision",
    }
    assert list(body).index("summary") == list(body).index("determination") - 1
    assert list(body).index("ask_next") == list(body).index("determination") + 1
    assert "trace" not in body["determination"]  # only with ?include=trace
    assert response.headers["location"] == f"/v1/screenings/{body['id']}"
    assert datetime.fromisoformat(body["created_at"]).utcoffset() == timedelta(0)
    assert body["external_reference"] == "enc-2026-000123"
    assert body["engine_version"] == ENGINE_VERSION
    assert body["latest_decision"] is None
    version_1 = (await client.get(f"{RULE_SET}/versions/1")).json()
    assert body["rule_set"] == {
        "owner": "shared",
        "key": "iop-level-of-care",
        "version": 1,
        "sha256": version_1["sha256"],
    }
    assert level_of(body["determination"]) == "intensive_outpatient"
    # GET returns exactly what POST returned.
    stored = await client.get(response.headers["location"])
    assert stored.status_code == 200
    assert stored.headers["content-type"] == "application/json"
    assert stored.json() == body


async def test_a_pinned_version_decides_instead_of_the_active_one(
    client: httpx.AsyncClient,
) -> None:
    version = await published_version(client)  # published, not active
    sha256 = (await client.get(f"{RULE_SET}/versions/{version}")).json()["sha256"]

    pinned = await create(client, rule_set={"key": "iop-level-of-care", "version": version})
    pinned_to_1 = await create(client, rule_set={"version": 1})
    unpinned = await create(client)
    previewed = await client.post(
        "/v1/screenings/evaluate",
        json={"answers": example("adult-iop-suitable"), "rule_set": {"version": version}},
    )

    assert pinned["rule_set"] == {
        "owner": "shared",
        "key": "iop-level-of-care",
        "version": version,
        "sha256": sha256,
    }
    assert pinned_to_1["rule_set"]["version"] == 1
    assert unpinned["rule_set"]["version"] == 1
    assert previewed.json()["rule_set"]["version"] == version
    # Once activated, the new version decides unpinned screenings at once.
    activated = await client.post(f"{RULE_SET}/versions/{version}/activate")
    assert activated.status_code == 200, activated.text
    assert (await create(client))["rule_set"]["version"] == version


async def test_a_pin_that_cannot_decide_is_422_and_stores_nothing(
    client: httpx.AsyncClient,
) -> None:
    retired = await published_version(client)
    assert (await client.post(f"{RULE_SET}/versions/{retired}/retire")).status_code == 200
    draft = await draft_version(client)
    cases = {
        "draft": ({"key": "iop-level-of-care", "version": draft}, "#/rule_set/version"),
        "unknown version": ({"key": "iop-level-of-care", "version": 99}, "#/rule_set/version"),
        "retired": ({"key": "iop-level-of-care", "version": retired}, "#/rule_set/version"),
        "no active version": ({"key": "no-such-rule-set"}, "#/rule_set/key"),
    }

    for case, (pin, pointer) in cases.items():
        for path in ("/v1/screenings", "/v1/screenings/evaluate"):
            response = await client.post(
                path, json={"answers": example("adult-iop-suitable"), "rule_set": pin}
            )
            problem = assert_problem(response, 422, "validation-error")
            assert pointers(problem) == [pointer], (case, path, problem)

    await assert_nothing_stored(client)


# --- Idempotency-Key --------------------------------------------------------------------------
# Every guarantee here holds on SQLite and on PostgreSQL alike (CARELEVEL_TEST_DATABASE_URL):
# the key, the screening and its audit event are stored together or not at all.

CONCURRENT = 10


async def test_same_key_and_body_replays_the_original_response(
    client: httpx.AsyncClient, schema: AsyncEngine
) -> None:
    headers = {"Idempotency-Key": "intake-7f3a"}
    first = await screen(client, headers=headers)
    second = await screen(client, headers=headers)

    assert first.status_code == second.status_code == 201
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["location"] == first.headers["location"]
    assert second.json() == first.json()
    assert [s["id"] for s in await all_screenings(client)] == [first.json()["id"]]
    [key] = await stored_keys(schema)
    assert (key.state, key.screening_id) == ("completed", first.json()["id"])
    # Another key is another screening.
    other = await screen(client, headers={"Idempotency-Key": "intake-7f3b"})
    assert other.status_code == 201
    assert other.json()["id"] != first.json()["id"]
    assert len(await all_screenings(client)) == 2


async def test_a_key_belongs_to_its_client_within_a_tenant_too(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    headers = {"Idempotency-Key": "intake-per-client"}
    first = await screen(client, headers=headers)
    async with http_client(app, await new_key(app, name="second intake app")) as colleague:
        theirs = await screen(colleague, headers=headers)
        again = await screen(colleague, headers=headers)

    assert (first.status_code, theirs.status_code) == (201, 201)
    assert "idempotent-replayed" not in theirs.headers
    assert theirs.json()["id"] != first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == theirs.json()["id"]


async def test_same_key_with_another_body_is_422_and_stores_nothing_more(
    client: httpx.AsyncClient,
) -> None:
    headers = {"Idempotency-Key": "intake-7f3c"}
    first = await screen(client, headers=headers)

    other_answers = await screen(client, example("adult-iop-with-barriers"), headers=headers)
    other_reference = await screen(client, headers=headers, external_reference="enc-other")

    assert_problem(other_answers, 422, "idempotency-key-reused")
    assert_problem(other_reference, 422, "idempotency-key-reused")
    assert [s["id"] for s in await all_screenings(client)] == [first.json()["id"]]


async def test_a_retry_replays_even_when_its_pinned_version_decides_no_more(
    client: httpx.AsyncClient,
) -> None:
    version = await published_version(client)
    pin = {"key": "iop-level-of-care", "version": version}
    headers = {"Idempotency-Key": "intake-pinned"}
    first = await screen(client, headers=headers, rule_set=pin)
    assert first.status_code == 201, first.text
    retired = await client.post(f"{RULE_SET}/versions/{version}/retire")
    assert retired.status_code == 200, retired.text

    retry = await screen(client, headers=headers, rule_set=pin)
    other = await screen(client, headers=headers, rule_set=pin, external_reference="enc-other")
    new = await screen(client, headers={"Idempotency-Key": "intake-pinned-2"}, rule_set=pin)

    assert retry.status_code == 201
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first.json()
    assert_problem(other, 422, "idempotency-key-reused")
    assert pointers(assert_problem(new, 422, "validation-error")) == ["#/rule_set/version"]
    assert [s["id"] for s in await all_screenings(client)] == [first.json()["id"]]


async def test_concurrent_requests_with_one_key_store_one_screening(
    client: httpx.AsyncClient, schema: AsyncEngine
) -> None:
    """The first request stores; the others wait for it to commit, then replay it."""
    headers = {"Idempotency-Key": "intake-concurrent"}
    body = {"answers": example("adult-iop-suitable")}

    responses = await asyncio.gather(
        *(client.post("/v1/screenings", json=body, headers=headers) for _ in range(CONCURRENT))
    )

    assert [r.status_code for r in responses] == [201] * CONCURRENT, [r.text for r in responses]
    [stored] = await all_screenings(client)
    [first] = [r for r in responses if "idempotent-replayed" not in r.headers]
    assert first.json()["id"] == stored["id"]
    assert all(r.json() == first.json() for r in responses)
    assert {r.headers["location"] for r in responses} == {f"/v1/screenings/{stored['id']}"}
    events = await creation_events(schema)
    assert [e.resource_id for e in events if "replayed" not in e.details] == [stored["id"]]
    replays = [e for e in events if e.details.get("replayed")]
    assert [e.resource_id for e in replays] == [stored["id"]] * (CONCURRENT - 1)
    assert [k.screening_id for k in await stored_keys(schema)] == [stored["id"]]


async def test_concurrent_requests_with_one_key_and_two_bodies_store_one(
    client: httpx.AsyncClient,
) -> None:
    """Whichever body stores first owns the key: the same body replays, the other is 422."""
    headers = {"Idempotency-Key": "intake-two-bodies"}
    bodies = [
        {"answers": example("adult-iop-suitable"), "external_reference": f"enc-{n % 2}"}
        for n in range(CONCURRENT)
    ]

    responses = await asyncio.gather(
        *(client.post("/v1/screenings", json=body, headers=headers) for body in bodies)
    )

    [stored] = await all_screenings(client)
    for body, response in zip(bodies, responses, strict=True):
        if body["external_reference"] == stored["external_reference"]:
            assert response.status_code == 201, response.text
            assert response.json()["id"] == stored["id"]
        else:
            assert_problem(response, 422, "idempotency-key-reused")
    assert len([r for r in responses if r.status_code == 201]) == CONCURRENT // 2
    assert len([r for r in responses if r.headers.get("idempotent-replayed") == "true"]) == (
        CONCURRENT // 2 - 1
    )


async def test_a_failed_request_stores_nothing_and_leaves_its_key_free(
    client: httpx.AsyncClient, schema: AsyncEngine
) -> None:
    invalid = example("adult-iop-suitable")
    invalid["instruments"]["phq9"]["items"][8] = 4
    headers = {"Idempotency-Key": "intake-retry-after-fix"}
    # Refused by validation, then by the service (no such version): neither keeps the key.
    assert_problem(await screen(client, invalid, headers=headers), 422, "validation-error")
    refused = await screen(client, headers=headers, rule_set={"version": 42})
    assert_problem(refused, 422, "validation-error")
    assert await stored_keys(schema) == []
    await assert_nothing_stored(client)

    fixed = await screen(client, headers=headers)

    assert fixed.status_code == 201
    assert "idempotent-replayed" not in fixed.headers
    assert [s["id"] for s in await all_screenings(client)] == [fixed.json()["id"]]


async def test_a_key_an_earlier_version_left_without_its_screening_is_free(
    app: FastAPI, client: httpx.AsyncClient, schema: AsyncEngine
) -> None:
    """Earlier versions claimed a key before storing its screening: a process that died in
    between left the key "in progress", with no screening. Such a key answers nothing; the
    request that finds it is processed as new."""
    body = {"answers": example("adult-iop-suitable")}
    me = await client_id_of(app, client)
    await leave_a_key_without_its_screening(schema, me, "left-behind", body, datetime.now(UTC))
    headers = {"Idempotency-Key": "left-behind"}

    stored = await client.post("/v1/screenings", json=body, headers=headers)
    replayed = await client.post("/v1/screenings", json=body, headers=headers)

    assert stored.status_code == 201, stored.text
    assert "idempotent-replayed" not in stored.headers
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json()["id"] == stored.json()["id"]
    assert [s["id"] for s in await all_screenings(client)] == [stored.json()["id"]]
    [key] = await stored_keys(schema)
    assert (key.state, key.screening_id) == ("completed", stored.json()["id"])


# --- POST /v1/screenings/evaluate -------------------------------------------------------------


async def test_evaluate_returns_the_determination_and_stores_nothing(
    client: httpx.AsyncClient,
) -> None:
    answers = example("emergency-suicide-risk")

    response = await client.post("/v1/screenings/evaluate", json={"answers": answers})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["rule_set", "summary", "determination", "ask_next"]
    assert body["summary"].startswith("Recommended level of care: Emergency evaluation now")
    version_1 = (await client.get(f"{RULE_SET}/versions/1")).json()
    assert body["rule_set"] == {
        "owner": "shared",
        "key": "iop-level-of-care",
        "version": 1,
        "sha256": version_1["sha256"],
    }
    assert level_of(body["determination"]) == "emergency_evaluation"
    assert body["determination"]["urgency"] == "emergent"
    await assert_nothing_stored(client)
    # Storing the same answers gives the same determination.
    assert (await create(client, answers))["determination"] == body["determination"]


# --- GET /v1/screenings -----------------------------------------------------------------------


async def test_cursor_pagination_walks_every_row_once_newest_first(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/v1/screenings")).json() == {"items": [], "next_cursor": None}
    created = [await create(client, external_reference=f"enc-{n}") for n in range(7)]

    seen: list[Json] = []
    page_sizes: list[int] = []
    params: dict[str, str | int] = {"limit": 3}
    while True:
        response = await client.get("/v1/screenings", params=params)
        assert response.status_code == 200
        page = response.json()
        page_sizes.append(len(page["items"]))
        seen.extend(page["items"])
        if len(page_sizes) == 1:
            await create(client)  # newer than the cursor: not part of this walk
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]

    assert page_sizes == [3, 3, 1]
    assert [item["id"] for item in seen] == [s["id"] for s in reversed(created)]
    assert set(seen[0]) == {
        "id",
        "created_at",
        "external_reference",
        "person_id",
        "rule_set",
        "status",
        "level",
        "urgency",
        "iop_verdict",
    }
    newest = created[-1]
    assert seen[0]["external_reference"] == "enc-6"
    assert seen[0]["created_at"] == newest["created_at"]
    assert seen[0]["rule_set"] == newest["rule_set"]
    assert seen[0]["status"] == newest["determination"]["status"]
    assert seen[0]["level"] == "intensive_outpatient"
    assert seen[0]["urgency"] == newest["determination"]["urgency"]
    assert seen[0]["iop_verdict"] == newest["determination"]["iop"]["verdict"]
    assert len(await all_screenings(client)) == 8


@pytest.fixture
async def small_pages_client(
    schema: AsyncEngine, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an application whose page size is capped at 3."""
    async with client_for(schema, settings.model_copy(update={"max_page_size": 3})) as client:
        yield client


async def test_page_size_is_capped_by_the_server(small_pages_client: httpx.AsyncClient) -> None:
    client = small_pages_client
    for _ in range(5):
        await create(client)

    asked_for_more = (await client.get("/v1/screenings", params={"limit": 500})).json()
    default = (await client.get("/v1/screenings")).json()
    rest = await client.get(
        "/v1/screenings", params={"limit": 500, "cursor": asked_for_more["next_cursor"]}
    )

    assert len(asked_for_more["items"]) == 3
    assert asked_for_more["next_cursor"] is not None
    assert len(default["items"]) == 3
    assert len(rest.json()["items"]) == 2
    assert rest.json()["next_cursor"] is None


async def test_filters_by_reference_level_urgency_and_version(
    client: httpx.AsyncClient,
) -> None:
    iop = await create(client, external_reference="enc-a")
    emergency = await create(client, example("emergency-suicide-risk"), external_reference="enc-b")
    insufficient = await create(client, example("insufficient-information"))
    version = await published_version(client)
    pinned = await create(
        client,
        external_reference="enc-a",
        rule_set={"key": "iop-level-of-care", "version": version},
    )
    assert level_of(insufficient["determination"]) is None

    async def ids(**filters: str | int) -> list[str]:
        # A page of one row at a time: the filters hold across every cursor.
        return [item["id"] for item in await all_screenings(client, limit=1, **filters)]

    assert await ids(external_reference="enc-a") == [pinned["id"], iop["id"]]
    assert await ids(external_reference="enc-unknown") == []
    assert await ids(level="emergency_evaluation") == [emergency["id"]]
    assert await ids(level="intensive_outpatient") == [pinned["id"], iop["id"]]
    assert await ids(urgency="emergent") == [emergency["id"]]
    assert await ids(urgency="routine") == [pinned["id"], iop["id"]]
    assert await ids(urgency="urgent") == [insufficient["id"]]  # safety questions left open
    assert await ids(rule_set_version=version) == [pinned["id"]]
    assert await ids(rule_set_version=1) == [insufficient["id"], emergency["id"], iop["id"]]
    assert await ids(rule_set_key="iop-level-of-care", rule_set_version=version) == [pinned["id"]]
    assert await ids(rule_set_key="another-rule-set") == []
    assert await ids(external_reference="enc-a", rule_set_version=1) == [iop["id"]]


async def test_created_from_is_inclusive_and_created_to_exclusive(
    client: httpx.AsyncClient,
) -> None:
    created = [await create(client) for _ in range(5)]
    instants = [datetime.fromisoformat(s["created_at"]) for s in created]

    async def ids(**filters: str) -> list[str]:
        return [item["id"] for item in await all_screenings(client, limit=100, **filters)]

    window = await ids(created_from=instants[1].isoformat(), created_to=instants[3].isoformat())
    assert window == [created[2]["id"], created[1]["id"]]
    assert await ids(created_from=instants[4].isoformat()) == [created[4]["id"]]
    assert await ids(created_to=instants[0].isoformat()) == []
    # The same instants written in another time zone, or with "Z", select the same rows.
    plus_two = timezone(timedelta(hours=2))
    shifted = await ids(
        created_from=instants[1].astimezone(plus_two).isoformat(),
        created_to=instants[3].astimezone(plus_two).isoformat(),
    )
    assert shifted == window
    zulu = instants[3].isoformat().replace("+00:00", "Z")
    assert await ids(created_from=zulu) == [created[4]["id"], created[3]["id"]]


async def test_ask_next_lists_the_questions_to_ask_safety_first(client: httpx.AsyncClient) -> None:
    """An intake app's loop: submit what it has, ask the first question listed, submit again.
    The same list comes with the evaluation, the stored screening, the read and a replay of
    the creation."""
    partial = example("insufficient-information")
    evaluated = (await client.post("/v1/screenings/evaluate", json={"answers": partial})).json()
    asking = evaluated["ask_next"]
    assert [ask["item"] for ask in asking] != []
    assert asking[0]["stage"] == "safety"
    assert asking[0]["kind"] == "question"
    first = asking[0]["questions"][0]
    assert first["pointer"] == "/" + first["path"].replace(".", "/")
    assert first["link_id"] == first["path"]
    assert {ask["item"] for ask in asking} == {
        m["item"] for m in evaluated["determination"]["missing"]
    }
    headers = {"Idempotency-Key": "ask-next-1"}
    created = await client.post("/v1/screenings", json={"answers": partial}, headers=headers)
    replayed = await client.post("/v1/screenings", json={"answers": partial}, headers=headers)
    read = await client.get(created.headers["location"])
    assert replayed.headers["idempotent-replayed"] == "true"
    for response in (created, replayed, read):
        assert response.json()["ask_next"] == asking
    # Answering the first question takes it off the list.
    section, _, name = first["path"].partition(".")
    answered = partial | {section: {**partial.get(section, {}), name: "none"}}
    again = (await client.post("/v1/screenings/evaluate", json={"answers": answered})).json()
    assert first["path"] not in [q["path"] for ask in again["ask_next"] for q in ask["questions"]]


async def test_a_complete_screening_has_nothing_to_ask(client: httpx.AsyncClient) -> None:
    evaluated = await client.post(
        "/v1/screenings/evaluate", json={"answers": example("adult-iop-suitable")}
    )
    assert evaluated.json()["determination"]["status"] == "complete"
    assert evaluated.json()["ask_next"] == []


async def test_an_intake_may_start_before_the_concern_is_asked(client: httpx.AsyncClient) -> None:
    answers = {"respondent": {"age_group": "adult", "answered_by": "self_report"}}
    evaluated = await client.post("/v1/screenings/evaluate", json={"answers": answers})
    assert evaluated.status_code == 200, evaluated.text
    body = evaluated.json()
    assert body["determination"]["status"] == "insufficient_information"
    asked = [q["path"] for ask in body["ask_next"] for q in ask["questions"]]
    assert "presenting_concerns" in asked
    assert body["ask_next"][0]["stage"] == "safety"
