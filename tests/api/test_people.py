"""A person's screenings over time: ``person_id`` on POST /v1/screenings, the list filter and
GET /v1/people/{person_id}/screenings (the trajectory's thresholds are tested on the pure
core, tests/unit/test_trajectory.py)."""

from __future__ import annotations

import copy
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.screenings.schemas import PERSON_ID_EXAMPLE
from tests.support.apps import http_client, new_key
from tests.support.examples import create, example, screen
from tests.support.problems import assert_problem, pointers

Json = dict[str, Any]
PERSON = "p-7d41c2a9e0b35f18"


def with_phq9(total: int, answers: Json | None = None) -> Json:
    """The adult IOP example's answers (or ``answers``) with a PHQ-9 of ``total``."""
    answers = copy.deepcopy(answers or example("adult-iop-suitable"))
    items = [0] * 9
    for n in range(9):
        items[n] = min(3, total - sum(items))
    answers["instruments"]["phq9"]["items"] = items
    return answers


def improved(total: int) -> Json:
    """Answers of someone at IOP for 6 weeks whose needs are now mild (outpatient is enough)."""
    answers = with_phq9(total)
    answers["treatment_history"] = {
        "current_or_recent_level": "intensive_outpatient",
        "discharged_last_30_days": False,
        "outpatient_not_effective": False,
        "previous_iop": "completed",
        "weeks_at_current_level": 6,
        "response_to_current_level": "improving",
    }
    answers["functioning"] = {
        "work_school": "mild",
        "self_care": "none",
        "relationships": "mild",
        "daily_activities": "none",
    }
    answers["instruments"]["audit"]["items"] = [1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    answers["co_occurring"]["substance_use"]["alcohol"] = "absent"
    return answers


async def three_screenings(client: httpx.AsyncClient, person: str = PERSON) -> list[Json]:
    first = await create(client, with_phq9(20), person_id=person)
    second = await create(client, with_phq9(14), person_id=person)
    third = await create(client, improved(8), person_id=person)
    return [first, second, third]


async def test_person_id_is_stored_shown_and_filtered(client: httpx.AsyncClient) -> None:
    stored = await create(client, person_id=PERSON)
    other = await create(client)
    assert stored["person_id"] == PERSON
    assert other["person_id"] is None
    read = (await client.get(f"/v1/screenings/{stored['id']}")).json()
    assert read["person_id"] == PERSON
    page = (await client.get("/v1/screenings", params={"person_id": PERSON})).json()
    assert [item["id"] for item in page["items"]] == [stored["id"]]
    assert page["items"][0]["person_id"] == PERSON


async def test_the_idempotency_key_covers_the_person_id(client: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "people-1"}
    first = await screen(client, person_id=PERSON, headers=headers)
    assert first.status_code == 201, first.text
    replayed = await screen(client, person_id=PERSON, headers=headers)
    assert replayed.headers.get("idempotent-replayed") == "true"
    assert replayed.json()["person_id"] == PERSON
    another = await screen(client, person_id="p-someone-else", headers=headers)
    assert_problem(another, 422, "idempotency-key-reused")


async def test_a_trajectory_of_three_screenings(client: httpx.AsyncClient) -> None:
    created = await three_screenings(client)

    response = await client.get(f"/v1/people/{PERSON}/screenings")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["person_id"] == PERSON
    assert [s["id"] for s in body["screenings"]] == [s["id"] for s in created]  # oldest first
    assert [s["scores"]["phq9"] for s in body["screenings"]] == [20, 14, 8]
    assert [s["level"] for s in body["screenings"]] == [
        "intensive_outpatient",
        "intensive_outpatient",
        "outpatient",
    ]
    (phq9,) = [i for i in body["instruments"] if i["instrument"] == "phq9"]
    assert phq9["change_from_baseline"] == {
        "points": -12,
        "percent": -60.0,
        "meaningful": "improvement",
    }
    assert phq9["change_from_previous"]["meaningful"] == "improvement"
    assert (phq9["response"], phq9["remission"]) == (True, False)
    assert phq9["references"]
    assert [c["direction"] for c in body["level_changes"]] == ["same", "down"]
    suggestion = body["suggestion"]
    assert suggestion["kind"] == "step_down"
    assert suggestion["current_level"] == "intensive_outpatient"
    assert suggestion["current_level_source"] == "treatment_history"
    assert suggestion["recommended_level"] == "outpatient"
    rescreen = body["rescreen"]
    assert rescreen["overdue"] is False
    assert "28 days" in rescreen["explanation"]


async def test_decisions_and_the_limit(client: httpx.AsyncClient) -> None:
    created = await three_screenings(client)
    decided = await client.post(
        f"/v1/screenings/{created[1]['id']}/decision",
        json={"final_level": "intensive_outpatient", "decided_by": "clinician-7"},
    )
    assert decided.status_code == 201, decided.text

    body = (await client.get(f"/v1/people/{PERSON}/screenings")).json()
    assert body["screenings"][1]["latest_decision"]["final_level"] == "intensive_outpatient"
    assert body["screenings"][0]["latest_decision"] is None
    assert body["screenings"][2]["latest_referral"] is None
    # The latest answers report the level: the person's own report names the current level.
    assert body["suggestion"]["current_level_source"] == "treatment_history"

    newest = (await client.get(f"/v1/people/{PERSON}/screenings", params={"limit": 2})).json()
    assert [s["id"] for s in newest["screenings"]] == [created[1]["id"], created[2]["id"]]


def phq9_baseline(body: Json) -> tuple[Any, ...]:
    (phq9,) = [i for i in body["instruments"] if i["instrument"] == "phq9"]
    return (phq9["baseline"], phq9["change_from_baseline"], phq9["response"], phq9["remission"])


async def test_the_baseline_does_not_move_with_the_limit(client: httpx.AsyncClient) -> None:
    created = await three_screenings(client)
    pages = [
        (await client.get(f"/v1/people/{PERSON}/screenings", params={"limit": n})).json()
        for n in (1, 2, 50)
    ]
    assert len({str(phq9_baseline(body)) for body in pages}) == 1
    baseline, change, response, remission = phq9_baseline(pages[0])
    assert (baseline["screening_id"], baseline["total"]) == (created[0]["id"], 20)
    assert (change["points"], response, remission) == (-12, True, False)
    assert {body["baseline_from"]["kind"] for body in pages} == {"first_screening"}


async def test_a_decision_starts_the_episode_the_baseline_is_read_from(
    client: httpx.AsyncClient,
) -> None:
    first = await create(client, with_phq9(20), person_id=PERSON)
    decided = await client.post(
        f"/v1/screenings/{first['id']}/decision",
        json={"final_level": "intensive_outpatient", "decided_by": "clinician-7"},
    )
    assert decided.status_code == 201, decided.text
    second = await create(client, with_phq9(14), person_id=PERSON)
    await create(client, improved(8), person_id=PERSON)
    for limit in (1, 50):
        params = {"limit": limit}
        body = (await client.get(f"/v1/people/{PERSON}/screenings", params=params)).json()
        baseline, change, response, _ = phq9_baseline(body)
        assert (baseline["total"], change["points"], response) == (14, -6, False)
        assert body["baseline_from"]["kind"] == "current_level"
        assert body["baseline_from"]["screening_id"] == second["id"]


async def test_the_rescreen_date_follows_the_decision_on_the_latest_screening(
    client: httpx.AsyncClient,
) -> None:
    created = await three_screenings(client)
    decided = await client.post(
        f"/v1/screenings/{created[2]['id']}/decision",
        json={
            "final_level": "intensive_outpatient",
            "decided_by": "clinician-7",
            "variance_reasons": ["other"],
            "comment": "Prefers the structure of the evening program.",
        },
    )
    assert decided.status_code == 201, decided.text
    rescreen = (await client.get(f"/v1/people/{PERSON}/screenings")).json()["rescreen"]
    assert (rescreen["level"], rescreen["level_source"]) == ("intensive_outpatient", "decision")
    assert "14 days" in rescreen["explanation"]  # IOP's, not outpatient's 28


async def test_a_discharge_from_residential_care_rescreens_in_7_days(
    client: httpx.AsyncClient,
) -> None:
    answers = improved(8)
    answers["treatment_history"] |= {
        "current_or_recent_level": "residential",
        "discharged_last_30_days": True,
    }
    created = await create(client, answers, person_id=PERSON)
    rescreen = (await client.get(f"/v1/people/{PERSON}/screenings")).json()["rescreen"]
    screened = date.fromisoformat(created["created_at"][:10])
    assert rescreen["due"] == (screened + timedelta(days=7)).isoformat()
    assert "riskiest" in rescreen["explanation"]
    assert any("FUH" in reference for reference in rescreen["references"])


async def test_another_tenants_person_is_not_found(app: FastAPI, client: httpx.AsyncClient) -> None:
    await three_screenings(client)
    async with http_client(app, await new_key(app, tenant="clinic-b")) as other:
        mine = await create(other, person_id=PERSON)
        response = await other.get(f"/v1/people/{PERSON}/screenings")
        unknown = await other.get("/v1/people/p-never-screened/screenings")
    assert [s["id"] for s in response.json()["screenings"]] == [mine["id"]]
    assert_problem(unknown, 404, "not-found")


async def test_unknown_person_and_a_screening_without_a_person(
    client: httpx.AsyncClient,
) -> None:
    await create(client)  # stored without a person id: belongs to no one
    response = await client.get(f"/v1/people/{PERSON_ID_EXAMPLE}/screenings")
    body = assert_problem(response, 404, "not-found")
    assert PERSON_ID_EXAMPLE in body["detail"]
    events = (await client.get("/v1/audit-events", params={"action": "person.screenings"})).json()
    assert [(e["outcome"], e["resource_id"]) for e in events["items"]] == [(404, PERSON_ID_EXAMPLE)]


@pytest.mark.parametrize(
    "person_id",
    ["short", "x" * 65, "-starts-with-dash", "has space in it", "ünïcödé-id", "a/b/c/d/e/f"],
)
async def test_person_id_violations_are_refused_at_the_field(
    client: httpx.AsyncClient, person_id: str
) -> None:
    response = await screen(client, person_id=person_id)
    problem = assert_problem(response, 422)
    assert pointers(problem) == ["#/person_id"]
    assert person_id not in response.text


async def test_limit_and_path_are_validated(client: httpx.AsyncClient) -> None:
    for limit in (0, 201):
        response = await client.get(f"/v1/people/{PERSON}/screenings", params={"limit": limit})
        assert pointers(assert_problem(response, 422)) == ["#/query/limit"]
    response = await client.get("/v1/people/bad~but_short/screenings")  # 13 chars: valid
    assert_problem(response, 404)
    response = await client.get("/v1/people/tiny/screenings")
    assert pointers(assert_problem(response, 422)) == ["#/path/person_id"]


async def test_the_read_is_audited_with_the_person_id(client: httpx.AsyncClient) -> None:
    await three_screenings(client)
    assert (await client.get(f"/v1/people/{PERSON}/screenings")).status_code == 200
    events = (await client.get("/v1/audit-events", params={"action": "person.screenings"})).json()
    (event,) = events["items"]
    assert (event["outcome"], event["resource_type"], event["resource_id"]) == (
        200,
        "person",
        PERSON,
    )
