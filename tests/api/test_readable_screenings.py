"""A determination a clinician can read: the ``summary`` beside every determination, the trace
only when asked for (``?include=trace``), and ``Accept`` choosing JSON, an HTML page,
Markdown or plain text on POST /v1/screenings/evaluate and GET /v1/screenings/{id}."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit.models import AuditEvent
from app.engine.determination import ENGINE_VERSION
from app.screenings.models import Screening
from app.screenings.readable import STYLE_SOURCE
from tests.support.apps import http_client, new_key
from tests.support.examples import Json, create, example
from tests.support.problems import assert_problem, pointers

EVALUATE = "/v1/screenings/evaluate"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
OFFERED = ["application/json", "text/html", "text/markdown", "text/plain"]


async def evaluate(
    client: httpx.AsyncClient, name: str = "adult-iop-with-barriers", **headers: str
) -> httpx.Response:
    return await client.post(EVALUATE, json={"answers": example(name)}, headers=headers)


async def screen_with(
    client: httpx.AsyncClient, params: dict[str, str], headers: dict[str, str] | None = None
) -> httpx.Response:
    """POST /v1/screenings of the adult IOP example with a query string."""
    body = {"answers": example("adult-iop-suitable")}
    return await client.post("/v1/screenings", params=params, json=body, headers=headers)


async def stored_determination(schema: AsyncEngine, screening_id: str) -> Json:
    async with schema.connect() as connection:
        row = (
            await connection.execute(
                select(Screening.determination).where(Screening.id == screening_id)
            )
        ).one()
    found: Json = row.determination
    return found


# --- JSON: the summary, and the trace on request ----------------------------------------------


async def test_every_determination_comes_with_its_summary_and_without_its_trace(
    client: httpx.AsyncClient,
) -> None:
    evaluated = (await evaluate(client, "emergency-suicide-risk")).json()
    stored = await create(client, example("emergency-suicide-risk"))
    read = (await client.get(f"/v1/screenings/{stored['id']}")).json()
    replayed = (await client.post(f"/v1/screenings/{stored['id']}/replay")).json()

    summaries = {body["summary"] for body in (evaluated, stored, read, replayed)}
    assert len(summaries) == 1  # the same determination says the same
    [said] = summaries
    alert = evaluated["determination"]["safety_alerts"][0]
    assert said.startswith("Recommended level of care: Emergency evaluation now; urgency: emergent")
    assert said.endswith(f"Do now: {alert['action']}")
    for body in (evaluated, stored, read, replayed):
        assert "trace" not in body["determination"]
        names = list(body)
        assert names.index("summary") == names.index("determination") - 1
    assert replayed["identical"] is True  # whole determinations compared, trace included


async def test_include_trace_shows_the_determination_as_stored(
    client: httpx.AsyncClient, schema: AsyncEngine
) -> None:
    created = await screen_with(client, {"include": "trace"})
    assert created.status_code == 201, created.text
    body = created.json()
    stored = await stored_determination(schema, body["id"])
    assert stored["trace"]  # the stored determination always keeps it
    assert body["determination"] == stored
    read = await client.get(f"/v1/screenings/{body['id']}", params={"include": "trace"})
    assert read.json()["determination"] == stored
    replayed = await client.post(f"/v1/screenings/{body['id']}/replay?include=trace")
    assert replayed.json()["determination"] == stored
    evaluated = await client.post(
        EVALUATE, params={"include": "trace"}, json={"answers": example("adult-iop-suitable")}
    )
    assert evaluated.json()["determination"] == stored
    # Without it, the same determination less its trace.
    brief = (await client.get(f"/v1/screenings/{body['id']}")).json()["determination"]
    assert brief == {name: value for name, value in stored.items() if name != "trace"}
    assert len(created.content) > 1.6 * len(
        (await client.get(f"/v1/screenings/{body['id']}")).content
    )


@pytest.mark.parametrize("include", [None, "trace"])
async def test_a_replayed_creation_has_the_shape_of_the_first_answer(
    client: httpx.AsyncClient, include: str | None
) -> None:
    params = {"include": include} if include else {}
    headers = {"Idempotency-Key": f"readable-{include}"}
    first = await screen_with(client, params, headers)
    again = await screen_with(client, params, headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["idempotent-replayed"] == "true"
    assert list(again.json()) == list(first.json())
    assert again.json() == first.json()
    assert ("trace" in first.json()["determination"]) is (include is not None)


@pytest.mark.parametrize("include", ["Trace", "everything", ""])
async def test_include_takes_trace_only(client: httpx.AsyncClient, include: str) -> None:
    for response in (
        await client.post(
            EVALUATE, params={"include": include}, json={"answers": example("adult-iop-suitable")}
        ),
        await screen_with(client, {"include": include}),
        await client.get(f"/v1/screenings/{'0' * 8}", params={"include": include}),
    ):
        assert pointers(assert_problem(response, 422, "validation-error")) == ["#/query/include"]


# --- Accept ------------------------------------------------------------------------------------


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "application/*, text/*"])
async def test_json_stays_the_default(client: httpx.AsyncClient, accept: str | None) -> None:
    response = await evaluate(client, **({"Accept": accept} if accept else {}))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["vary"] == "Accept"
    assert response.json()["summary"]


async def test_a_browser_gets_a_page_it_may_show(client: httpx.AsyncClient) -> None:
    response = await evaluate(client, Accept=BROWSER)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["vary"] == "Accept"
    # The API's policy (nothing loads, nothing frames it), with the page's one stylesheet.
    policy = response.headers["content-security-policy"]
    assert policy.startswith("default-src 'none'; ")
    assert f"style-src {STYLE_SOURCE};" in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"
    page = response.text
    summary = (await evaluate(client)).json()["summary"]
    assert summary in page
    assert page.index("Recommendation") < page.index("Barriers to attending")
    assert "shared/iop-level-of-care version 1" in page


@pytest.mark.parametrize(("accept", "heading"), [("text/markdown", "# "), ("text/plain", "")])
async def test_text_forms_say_the_same(
    client: httpx.AsyncClient, accept: str, heading: str
) -> None:
    response = await evaluate(client, Accept=accept)
    assert response.status_code == 200
    assert response.headers["content-type"] == f"{accept}; charset=utf-8"
    assert response.headers["vary"] == "Accept"
    text = " ".join(response.text.replace("\\", "").split())
    assert " ".join((await evaluate(client)).json()["summary"].split()) in text
    assert f"{heading}Barriers to attending, and how to lift them" in response.text
    assert "Clinical decision support, not a diagnosis" in text


async def test_an_unacceptable_accept_is_a_406_listing_what_is_offered(
    client: httpx.AsyncClient,
) -> None:
    stored = await create(client)
    for response in (
        await evaluate(client, Accept="image/png"),
        await client.get(f"/v1/screenings/{stored['id']}", headers={"Accept": "application/xml"}),
    ):
        problem = assert_problem(response, 406, "not-acceptable")
        assert problem["available"] == OFFERED
        assert response.headers["vary"] == "Accept"


async def test_a_stored_screening_reads_as_a_page_and_the_read_is_recorded(
    client: httpx.AsyncClient, schema: AsyncEngine
) -> None:
    stored = await create(client, external_reference="enc-2026-000123")
    response = await client.get(f"/v1/screenings/{stored['id']}", headers={"Accept": BROWSER})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["vary"] == "Accept"
    page = response.text
    for shown in (stored["id"], stored["rule_set"]["sha256"], "enc-2026-000123", ENGINE_VERSION):
        assert shown in page
    assert stored["summary"] in page
    refused = await client.get(f"/v1/screenings/{stored['id']}", headers={"Accept": "image/*"})
    assert refused.status_code == 406
    async with schema.connect() as connection:
        events = (
            await connection.execute(
                select(AuditEvent.outcome).where(
                    AuditEvent.action == "screening.read", AuditEvent.resource_id == stored["id"]
                )
            )
        ).all()
    assert sorted(outcome for (outcome,) in events) == [200, 406]  # a refusal reads nothing


async def test_another_tenants_screening_is_not_found_in_any_form(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    stored = await create(client)
    async with http_client(app, await new_key(app, tenant="clinic-b")) as other_tenant:
        for accept in ("text/html", "text/plain", "application/json"):
            response = await other_tenant.get(
                f"/v1/screenings/{stored['id']}", headers={"Accept": accept}
            )
            assert_problem(response, 404, "not-found")
