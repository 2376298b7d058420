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
from app.settings import Settings
from tests.api.conftest import client_id_of
from tests.api.screenings_support import (
    RULE_SET,
    Json,
    all_screenings,
    assert_nothing_stored,
    assert_problem,
    claim_key_as_a_dead_request_would,
    client_for,
    create,
    draft_version,
    example,
    level_of,
    pointers,
    published_version,
    screen,
)

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
        "rule_set",
        "engine_version",
        "determination",
        "latest_decision",
    }
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


async def test_same_key_and_body_replays_the_original_response(
    client: httpx.AsyncClient,
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
    # Another key is another screening.
    other = await screen(client, headers={"Idempotency-Key": "intake-7f3b"})
    assert other.status_code == 201
    assert other.json()["id"] != first.json()["id"]
    assert len(await all_screenings(client)) == 2


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


async def test_concurrent_requests_with_one_key_store_one_screening(
    client: httpx.AsyncClient,
) -> None:
    headers = {"Idempotency-Key": "intake-concurrent"}
    body = {"answers": example("adult-iop-suitable")}

    responses = await asyncio.gather(
        *(client.post("/v1/screenings", json=body, headers=headers) for _ in range(20))
    )

    assert {r.status_code for r in responses} <= {201, 409}, [r.text for r in responses]
    stored = await all_screenings(client)
    assert len(stored) == 1
    created = [r for r in responses if r.status_code == 201]
    assert len([r for r in created if "idempotent-replayed" not in r.headers]) == 1
    assert {r.json()["id"] for r in created} == {stored[0]["id"]}
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "idempotency-request-in-flight")
            assert int(response.headers["retry-after"]) >= 1
    # Once the first request has finished, a retry replays it.
    retry = await client.post("/v1/screenings", json=body, headers=headers)
    assert retry.status_code == 201
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json()["id"] == stored[0]["id"]


async def test_the_key_of_a_failed_request_can_be_used_again(
    client: httpx.AsyncClient,
) -> None:
    invalid = example("adult-iop-suitable")
    invalid["instruments"]["phq9"]["items"][8] = 4
    headers = {"Idempotency-Key": "intake-retry-after-fix"}
    # Refused by validation, then by the service (no such version): neither claims the key.
    assert_problem(await screen(client, invalid, headers=headers), 422, "validation-error")
    refused = await screen(client, headers=headers, rule_set={"version": 42})
    assert_problem(refused, 422, "validation-error")

    fixed = await screen(client, headers=headers)

    assert fixed.status_code == 201
    assert "idempotent-replayed" not in fixed.headers
    assert [s["id"] for s in await all_screenings(client)] == [fixed.json()["id"]]


async def test_a_key_in_progress_is_409_until_its_lease_runs_out(
    app: FastAPI, client: httpx.AsyncClient, schema: AsyncEngine
) -> None:
    body = {"answers": example("adult-iop-suitable")}
    now = datetime.now(UTC)
    me = await client_id_of(app, client)
    await claim_key_as_a_dead_request_would(schema, me, "in-flight", body, now)
    await claim_key_as_a_dead_request_would(
        schema, me, "abandoned", body, now - timedelta(minutes=5)
    )

    in_flight = await client.post(
        "/v1/screenings", json=body, headers={"Idempotency-Key": "in-flight"}
    )
    taken_over = await client.post(
        "/v1/screenings", json=body, headers={"Idempotency-Key": "abandoned"}
    )

    assert_problem(in_flight, 409, "idempotency-request-in-flight")
    assert in_flight.headers["retry-after"] == "1"
    assert taken_over.status_code == 201
    assert "idempotent-replayed" not in taken_over.headers
    assert [s["id"] for s in await all_screenings(client)] == [taken_over.json()["id"]]
    replayed = await client.post(
        "/v1/screenings", json=body, headers={"Idempotency-Key": "abandoned"}
    )
    assert replayed.headers["idempotent-replayed"] == "true"


# --- POST /v1/screenings/evaluate -------------------------------------------------------------


async def test_evaluate_returns_the_determination_and_stores_nothing(
    client: httpx.AsyncClient,
) -> None:
    answers = example("emergency-suicide-risk")

    response = await client.post("/v1/screenings/evaluate", json={"answers": answers})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"rule_set", "determination"}
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
