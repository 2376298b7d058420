"""Replays (exact, or a what-if under another version) and clinician decisions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.kernel.settings import Settings
from tests.api.screenings_support import (
    RULE_SET,
    client_for,
    draft_version,
    published_version,
    step_up_to_partial_hospitalization,
)
from tests.support.examples import create, example, level_of
from tests.support.problems import assert_problem, pointers

# --- POST /v1/screenings/{id}/replay ----------------------------------------------------------


async def test_replay_under_the_deciding_version_is_identical(
    client: httpx.AsyncClient,
) -> None:
    screenings = [
        await create(client, example(name))
        for name in ("adult-iop-suitable", "emergency-suicide-risk", "insufficient-information")
    ]

    for screening in screenings:
        url = f"/v1/screenings/{screening['id']}/replay"
        for response in (await client.post(url), await client.post(url, json={"version": 1})):
            assert response.status_code == 200, response.text
            replay = response.json()
            assert replay["screening_id"] == screening["id"]
            assert replay["identical"] is True
            assert replay["what_if"] is False
            assert replay["original_rule_set"] == screening["rule_set"]
            assert replay["replay_rule_set"] == screening["rule_set"]
            assert replay["level_before"] == replay["level_after"]
            assert replay["level_before"] == level_of(screening["determination"])
            assert replay["determination"] == screening["determination"]

    assert len((await client.get("/v1/screenings")).json()["items"]) == 3  # nothing stored


@pytest.fixture
async def roomy_client(schema: AsyncEngine, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose body cap admits a whole rule-set document: the default one is ~100 KB of
    JSON, over the default 64 KiB cap (reported; not a screening concern)."""
    roomy = settings.model_copy(update={"max_body_bytes": 1024 * 1024})
    async with client_for(schema, roomy) as client:
        yield client


async def test_what_if_under_another_published_version_reports_the_change(
    roomy_client: httpx.AsyncClient,
) -> None:
    client = roomy_client
    screening = await create(client)  # IOP under version 1, stepped up after failed outpatient
    version = await published_version(client, step_up_to_partial_hospitalization)
    url = f"/v1/screenings/{screening['id']}/replay"

    what_if = await client.post(url, json={"version": version})

    assert what_if.status_code == 200, what_if.text
    body = what_if.json()
    assert body["what_if"] is True
    assert body["identical"] is False
    assert body["original_rule_set"] == screening["rule_set"]
    assert body["replay_rule_set"]["version"] == version
    assert body["replay_rule_set"]["sha256"] != screening["rule_set"]["sha256"]
    assert body["level_before"] == "intensive_outpatient"
    assert body["level_after"] == "partial_hospitalization"
    assert level_of(body["determination"]) == "partial_hospitalization"
    # The stored screening is untouched and nothing new is stored.
    stored = await client.get(f"/v1/screenings/{screening['id']}")
    assert stored.json() == screening
    assert len((await client.get("/v1/screenings")).json()["items"]) == 1
    # A replay stays exact whichever version is active now, and after its version retires.
    assert (await client.post(f"{RULE_SET}/versions/{version}/activate")).status_code == 200
    assert (await client.post(f"{RULE_SET}/versions/1/retire")).status_code == 200
    exact = (await client.post(url)).json()
    assert exact["identical"] is True
    assert exact["what_if"] is False
    assert exact["replay_rule_set"] == screening["rule_set"]
    retired_what_if = (await client.post(url, json={"version": 1})).json()
    assert retired_what_if["identical"] is True


async def test_replay_under_a_draft_or_unknown_version_is_422(
    client: httpx.AsyncClient,
) -> None:
    screening = await create(client)
    draft = await draft_version(client)
    url = f"/v1/screenings/{screening['id']}/replay"

    for version in (draft, 99):
        problem = assert_problem(await client.post(url, json={"version": version}), 422)
        assert pointers(problem) == ["#/version"]
    for body in ({"version": 0}, {"version": "two"}, {"key": "other"}):
        assert_problem(await client.post(url, json=body), 422, "validation-error")


# --- POST /v1/screenings/{id}/decision --------------------------------------------------------


async def test_decisions_are_appended_and_the_latest_is_shown(
    client: httpx.AsyncClient,
) -> None:
    screening = await create(client)
    url = f"/v1/screenings/{screening['id']}/decision"

    agreed = await client.post(
        url, json={"final_level": "intensive_outpatient", "decided_by": "clinician-042"}
    )
    assert agreed.status_code == 201, agreed.text
    first = agreed.json()
    assert first["screening_id"] == screening["id"]
    assert first["final_level"] == first["recommended_level"] == "intensive_outpatient"
    assert first["matches_recommendation"] is True
    assert first["variance_reasons"] == []
    assert first["comment"] is None
    assert first["decided_by"] == "clinician-042"
    assert (await client.get(f"/v1/screenings/{screening['id']}")).json()[
        "latest_decision"
    ] == first

    varied = await client.post(
        url,
        json={
            "final_level": "outpatient",
            "variance_reasons": ["client_declined_recommended_level", "other"],
            "comment": "Prefers weekly sessions near work; will revisit in two weeks.",
            "decided_by": "clinician-043",
        },
    )
    assert varied.status_code == 201, varied.text
    second = varied.json()
    assert second["id"] != first["id"]
    assert second["recommended_level"] == "intensive_outpatient"
    assert second["matches_recommendation"] is False
    assert second["variance_reasons"] == ["client_declined_recommended_level", "other"]
    stored = (await client.get(f"/v1/screenings/{screening['id']}")).json()
    assert stored["latest_decision"] == second
    # The screening itself never changes.
    assert {k: v for k, v in stored.items() if k != "latest_decision"} == {
        k: v for k, v in screening.items() if k != "latest_decision"
    }


async def test_invalid_decisions_are_422_and_store_nothing(client: httpx.AsyncClient) -> None:
    screening = await create(client)  # recommends intensive_outpatient
    url = f"/v1/screenings/{screening['id']}/decision"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"final_level": "outpatient"}, "#/variance_reasons"),
        ({"final_level": "outpatient", "variance_reasons": []}, "#/variance_reasons"),
        (
            {"final_level": "intensive_outpatient", "variance_reasons": ["waitlist"]},
            "#/variance_reasons",
        ),
        ({"final_level": "outpatient", "variance_reasons": ["other"]}, "#/comment"),
        (
            {"final_level": "outpatient", "variance_reasons": ["other"], "comment": "  "},
            "#/comment",
        ),
        ({"final_level": "outpatient", "variance_reasons": ["because"]}, "#/variance_reasons/0"),
        ({"final_level": "somewhere"}, "#/final_level"),
        ({"final_level": "outpatient", "variance_reasons": ["waitlist"], "mood": 1}, "#"),
    ]

    for fields, pointer in cases:
        response = await client.post(url, json={"decided_by": "clinician-042"} | fields)
        problem = assert_problem(response, 422, "validation-error")
        assert pointers(problem) == [pointer], (fields, problem)
    missing_author = await client.post(url, json={"final_level": "intensive_outpatient"})
    assert pointers(assert_problem(missing_author, 422)) == ["#/decided_by"]

    stored = (await client.get(f"/v1/screenings/{screening['id']}")).json()
    assert stored["latest_decision"] is None


async def test_without_a_recommendation_every_level_needs_a_reason(
    client: httpx.AsyncClient,
) -> None:
    screening = await create(client, example("insufficient-information"))
    url = f"/v1/screenings/{screening['id']}/decision"

    refused = await client.post(url, json={"final_level": "outpatient", "decided_by": "c-1"})
    decided = await client.post(
        url,
        json={
            "final_level": "outpatient",
            "variance_reasons": ["clinical_judgment"],
            "decided_by": "c-1",
        },
    )

    assert pointers(assert_problem(refused, 422)) == ["#/variance_reasons"]
    assert decided.status_code == 201
    assert decided.json()["recommended_level"] is None
    assert decided.json()["matches_recommendation"] is False
