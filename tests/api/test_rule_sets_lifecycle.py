"""Activating, rolling back and retiring rule-set versions: which version decides new
screenings, in this process and in another one on the same database; concurrent changes; the
database's own guarantee of one active version per rule set.

Every test starts from the seeded default rule set: ``iop-level-of-care`` version 1, published
and active.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.kernel.db import utcnow
from app.kernel.settings import Settings
from app.rulesets.models import RuleSetVersion
from app.rulesets.work import RULE_SET_WORK
from tests.api.rule_sets_support import (
    KEY,
    RULE_SETS,
    SHARED_SETS,
    VERSIONS,
    activate,
    copy_of_version_1,
    create_draft,
    default_document,
    eventually,
    label_of,
    named,
    publish,
    published_step_down_version,
    screen,
    screened_by,
    statuses,
    version,
)
from tests.support.apps import admin_client, running
from tests.support.problems import assert_problem


async def published_copies(client: httpx.AsyncClient, count: int) -> list[int]:
    """``count`` published copies of version 1 (none active)."""
    numbers = []
    for _ in range(count):
        numbers.append(await copy_of_version_1(client))
        await publish(client, numbers[-1])
    return numbers


async def active_in_database(schema: AsyncEngine) -> list[int]:
    async with schema.connect() as connection:
        result = await connection.execute(
            select(RuleSetVersion.version).where(
                RuleSetVersion.key == KEY, RuleSetVersion.status == "active"
            )
        )
        return list(result.scalars().all())


# --- activation and rollback -------------------------------------------------------------------


async def test_activation_decides_new_screenings_and_rollback_restores(
    client: httpx.AsyncClient,
) -> None:
    before = await screen(client, "adolescent-step-down")
    assert before["rule_set"]["version"] == 1
    assert before["determination"]["recommended_level"]["level"] == "intensive_outpatient"
    v2 = await published_step_down_version(client)

    result = await activate(client, v2)

    assert result == {
        "owner": "shared",
        "key": KEY,
        "version": 2,
        "status": "active",
        "previous_active_version": 1,
    }
    assert await statuses(client) == {2: "active", 1: "published"}
    detail = (await version(client, 2)).json()
    assert detail["activated_by"] == detail["created_by"]  # the test's client did both
    assert detail["activated_at"] is not None
    after = await screen(client, "adolescent-step-down")
    assert after["rule_set"] == {
        "owner": "shared",
        "key": KEY,
        "version": 2,
        "sha256": detail["sha256"],
    }
    assert after["determination"]["recommended_level"]["level"] == "partial_hospitalization"
    summary = (await client.get(RULE_SETS)).json()[0]
    assert (summary["active_version"], summary["latest_version"]) == (2, 2)

    rollback = await activate(client, 1)

    assert rollback["previous_active_version"] == 2
    assert await statuses(client) == {2: "published", 1: "active"}
    rolled_back = await screen(client, "adolescent-step-down")
    assert rolled_back["rule_set"]["version"] == 1
    assert rolled_back["determination"]["recommended_level"]["level"] == "intensive_outpatient"
    stored = await client.get(f"/v1/screenings/{after['id']}")
    assert stored.json()["rule_set"]["version"] == 2


async def test_activating_the_active_version_changes_nothing(client: httpx.AsyncClient) -> None:
    before = (await version(client, 1)).json()

    result = await activate(client, 1)

    assert (result["status"], result["previous_active_version"]) == ("active", None)
    assert (await version(client, 1)).json() == before


async def test_only_published_versions_can_be_activated_and_only_inactive_ones_retired(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    v2 = await published_step_down_version(client)
    await create_draft(client, await default_document(client))  # version 3, a draft

    assert_problem(await client.post(f"{VERSIONS}/3/activate"), 409)
    assert_problem(await client.post(f"{VERSIONS}/3/retire"), 409)
    assert_problem(await client.post(f"{VERSIONS}/1/retire"), 409)
    assert await statuses(client) == {3: "draft", 2: "published", 1: "active"}

    retired = await client.post(f"{VERSIONS}/{v2}/retire", headers=await named(app, "dr-retire"))

    assert retired.status_code == 200, retired.text
    body = retired.json()
    assert body["status"] == "retired"
    assert re.match(label_of("dr-retire"), body["retired_by"])
    assert body["retired_at"] is not None
    assert_problem(await client.post(f"{VERSIONS}/{v2}/activate"), 409)
    assert_problem(await client.post(f"{VERSIONS}/{v2}/retire"), 409)
    assert_problem(await client.put(f"{VERSIONS}/{v2}", json={}, headers={"If-Match": "*"}), 409)
    assert await statuses(client) == {3: "draft", 2: "retired", 1: "active"}
    assert await screened_by(client, "adult-iop-suitable") == 1


# --- concurrency -------------------------------------------------------------------------------


async def test_fifty_concurrent_activations_leave_exactly_one_active(
    client: httpx.AsyncClient, schema: AsyncEngine
) -> None:
    numbers = [1, *await published_copies(client, 4)]

    responses = await asyncio.gather(
        *(client.post(f"{VERSIONS}/{n}/activate") for _ in range(10) for n in numbers)
    )

    outcomes = Counter(response.status_code for response in responses)
    assert set(outcomes) <= {200, 409}, outcomes
    assert outcomes[200] >= 1
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409)
    listed = await statuses(client)
    active = [number for number, status in listed.items() if status == "active"]
    assert len(active) == 1, listed
    assert sorted(listed.values()) == ["active"] + ["published"] * 4
    assert await active_in_database(schema) == active
    # this process switched to the committed winner (no refresh needed, none may undo it)
    assert await screened_by(client, "adult-iop-suitable") == active[0]


async def test_concurrent_activations_and_retirements_stay_consistent(
    client: httpx.AsyncClient, schema: AsyncEngine
) -> None:
    for _ in range(2):
        numbers = await published_copies(client, 3)

        responses = await asyncio.gather(
            *(
                client.post(f"{VERSIONS}/{n}/{action}")
                for n in numbers
                for action in ("activate", "retire")
            )
        )

        assert {response.status_code for response in responses} <= {200, 409}
        rows = (await client.get(VERSIONS)).json()
        assert [row["status"] for row in rows].count("active") == 1
        for row in rows:  # retired means retired: never active again, never un-retired
            assert (row["retired_at"] is not None) == (row["status"] == "retired"), row
        assert len(await active_in_database(schema)) == 1


async def test_a_draft_cannot_change_once_publishing_has_committed(
    client: httpx.AsyncClient,
) -> None:
    document = await default_document(client)
    for attempt in range(3):
        created = await client.post(VERSIONS, json=document)
        number, etag = created.json()["version"], created.headers["etag"]
        edited = {**document, "title": f"Edit {attempt}"}

        put, published = await asyncio.gather(
            client.put(f"{VERSIONS}/{number}", json=edited, headers={"If-Match": etag}),
            client.post(f"{VERSIONS}/{number}/publish"),
        )

        assert published.status_code == 200, published.text
        assert put.status_code in (200, 409), put.text
        current = (await version(client, number)).json()
        assert current["sha256"] == published.json()["sha256"]  # what was published stays
        assert current["status"] == "published"


# --- visibility across processes ---------------------------------------------------------------


async def test_an_activation_reaches_another_process(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    v2 = await published_step_down_version(client)
    async with (
        running(settings) as other_app,
        admin_client(other_app, "other") as other,
    ):
        assert await screened_by(other, "adolescent-step-down") == 1

        async def other_uses_v2() -> bool:
            return await screened_by(other, "adolescent-step-down") == v2

        await activate(client, v2)
        await eventually(other_uses_v2, within=3.0)
        decided = await screen(other, "adolescent-step-down")
        assert decided["determination"]["recommended_level"]["level"] == "partial_hospitalization"

        async def first_uses_v1() -> bool:
            return await screened_by(client, "adolescent-step-down") == 1

        await activate(other, 1)  # the rollback, through the other process
        await eventually(first_uses_v1, within=3.0)


# --- the database's guarantee ------------------------------------------------------------------


async def test_the_database_allows_one_active_version_per_rule_set(
    client: httpx.AsyncClient, schema: AsyncEngine
) -> None:
    active = (await version(client, 1)).json()
    async with schema.connect() as connection:
        rule_set_id = (
            await connection.execute(
                select(RuleSetVersion.rule_set_id).where(RuleSetVersion.key == KEY)
            )
        ).scalar_one()
    row = {
        "rule_set_id": rule_set_id,
        "owner": "shared",
        "key": KEY,
        "version": 2,
        "status": "active",
        "title": active["title"],
        "content": active["content"],
        "sha256": active["sha256"],
        "revision": 1,
        "created_by": "intruder",
        "created_at": utcnow(),
        "updated_at": utcnow(),
    }

    with pytest.raises(IntegrityError):
        async with schema.begin() as connection:
            await connection.execute(insert(RuleSetVersion).values(row))

    async with schema.begin() as connection:  # the same row, published, is fine
        await connection.execute(insert(RuleSetVersion).values({**row, "status": "published"}))
        count = await connection.execute(
            select(func.count()).where(RuleSetVersion.key == KEY, RuleSetVersion.status == "active")
        )
        assert count.scalar_one() == 1
    assert await statuses(client) == {2: "published", 1: "active"}


async def test_concurrent_imports_of_a_new_rule_set_each_get_a_version(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Five operations at once for one tenant: more than its default share of the rule-set
    # workers (test_rule_sets.py specifies that share), which this test is not about.
    monkeypatch.setattr(RULE_SET_WORK, "per_tenant", 5)
    document = {**await default_document(client), "key": "clinic-variant"}

    responses = await asyncio.gather(
        *(client.post(f"{SHARED_SETS}/import", json=document) for _ in range(5))
    )

    assert [response.status_code for response in responses] == [201] * 5
    assert sorted(response.json()["version"] for response in responses) == [1, 2, 3, 4, 5]
    assert await statuses(client, "clinic-variant") == dict.fromkeys(range(5, 0, -1), "draft")
    assert [s["key"] for s in (await client.get(RULE_SETS)).json()] == ["clinic-variant", KEY]


async def test_a_deleted_draft_number_is_never_reused(client: httpx.AsyncClient) -> None:
    created = await client.post("/v1/rule-sets/shared/iop-level-of-care/versions?copy_from=1")
    assert created.json()["version"] == 2
    deleted = await client.delete(
        "/v1/rule-sets/shared/iop-level-of-care/versions/2",
        headers={"If-Match": created.headers["etag"]},
    )
    assert deleted.status_code == 204
    again = await client.post("/v1/rule-sets/shared/iop-level-of-care/versions?copy_from=1")
    assert again.json()["version"] == 3
