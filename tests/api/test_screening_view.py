"""The clinician's view: a short-lived signed link opens a stored screening's page without an
API key (the link CDS Hooks cards carry), every opening is audited, and a changed or expired
link opens nothing."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit.models import AuditEvent
from app.cds_hooks.cards import Links
from app.screenings.readable import STYLE_SOURCE
from app.screenings.view import view_url
from app.security.links import LinkSigner
from tests.support.apps import OPERATOR_TENANT, client_id_of, http_client
from tests.support.examples import Json, create, example
from tests.support.problems import assert_problem

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def signer_of(app: FastAPI) -> LinkSigner:
    signer: LinkSigner = app.state.link_signer
    return signer


def link(
    app: FastAPI,
    screening_id: str,
    *,
    now: float | None = None,
    tenant: str = OPERATOR_TENANT,
    changes: dict[str, str] | None = None,
) -> str:
    """A view link as a card carries it, relative (``changes``: parameters changed after)."""
    signed = signer_of(app).sign(
        screening_id, tenant=tenant, client_id="cds:ehr-a", now=time.time() if now is None else now
    )
    return view_url("", screening_id, signed | (changes or {}))


async def view_events(schema: AsyncEngine) -> list[Any]:
    async with schema.connect() as connection:
        result = await connection.execute(
            select(AuditEvent).where(AuditEvent.action == "screening.view")
        )
        return list(result.all())


@pytest.fixture
async def anonymous(app: FastAPI) -> Any:
    async with http_client(app, None) as http:
        yield http


async def test_a_signed_link_opens_the_page_without_a_key_and_is_audited(
    app: FastAPI, client: httpx.AsyncClient, anonymous: httpx.AsyncClient, schema: AsyncEngine
) -> None:
    stored = await create(client, example("emergency-suicide-risk"))
    opened = await anonymous.get(link(app, stored["id"]), headers={"X-Request-ID": "view-1"})

    assert opened.status_code == 200, opened.text
    assert opened.headers["content-type"] == "text/html; charset=utf-8"
    assert opened.headers["cache-control"] == "no-store"
    assert opened.headers["referrer-policy"] == "no-referrer"
    assert f"style-src {STYLE_SOURCE};" in opened.headers["content-security-policy"]
    page = opened.text
    assert stored["summary"] in page
    assert page.index("Safety alerts") < page.index("Recommendation")
    assert stored["id"] in page
    [event] = await view_events(schema)
    assert (event.tenant_id, event.client_id, event.resource_id) == (
        OPERATOR_TENANT,
        "cds:ehr-a",
        stored["id"],
    )
    assert (event.outcome, event.request_id, event.resource_type) == (200, "view-1", "screening")
    # Opened again: audited again.
    assert (await anonymous.get(link(app, stored["id"]))).status_code == 200
    assert len(await view_events(schema)) == 2


async def test_the_link_carries_no_answer_and_no_result(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    stored = await create(client, external_reference="enc-2026-000123")
    url = httpx.URL(link(app, stored["id"]))
    assert url.path == f"/v1/screenings/{stored['id']}/view"
    assert set(url.params) == {"tenant", "client", "expires", "signature"}
    determination = stored["determination"]
    for value in url.params.values():
        assert value not in (determination["urgency"], determination["recommended_level"]["level"])
        assert "enc-2026" not in value


@pytest.mark.parametrize(
    ("change", "status", "slug"),
    [
        ({"signature": "A" * 43}, 403, "forbidden"),
        ({"expires": str(int(time.time()) + 86_400)}, 403, "forbidden"),  # lengthened
        ({"tenant": "clinic-b"}, 403, "forbidden"),
        ({"client": "someone-else"}, 403, "forbidden"),
        ({"signature": ""}, 403, "forbidden"),
    ],
)
async def test_a_changed_link_is_refused_and_opens_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    schema: AsyncEngine,
    change: dict[str, str],
    status: int,
    slug: str,
) -> None:
    stored = await create(client)
    refused = await anonymous.get(link(app, stored["id"], changes=change))
    problem = assert_problem(refused, status, slug)
    assert stored["summary"] not in refused.text
    assert "not valid" in problem["detail"]
    assert await view_events(schema) == []


async def test_an_expired_link_is_gone_as_a_page_for_a_browser(
    app: FastAPI, client: httpx.AsyncClient, anonymous: httpx.AsyncClient, schema: AsyncEngine
) -> None:
    stored = await create(client)
    lifetime = signer_of(app).lifetime_seconds
    expired = link(app, stored["id"], now=time.time() - lifetime)
    assert_problem(await anonymous.get(expired), 410, "gone")
    page = await anonymous.get(expired, headers={"Accept": BROWSER})
    assert page.status_code == 410
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "no-store"
    assert "This link has expired" in page.text
    tampered = await anonymous.get(
        link(app, stored["id"], changes={"signature": "B" * 43}), headers={"Accept": BROWSER}
    )
    assert (tampered.status_code, tampered.headers["content-type"]) == (
        403,
        "text/html; charset=utf-8",
    )
    assert await view_events(schema) == []


async def test_a_link_opens_its_tenants_screening_only(
    app: FastAPI, client: httpx.AsyncClient, anonymous: httpx.AsyncClient, schema: AsyncEngine
) -> None:
    stored = await create(client)
    # Genuinely signed, for another tenant: that tenant has no such screening.
    elsewhere = link(app, stored["id"], tenant="clinic-b")
    assert_problem(await anonymous.get(elsewhere), 404, "not-found")
    [event] = await view_events(schema)
    assert (event.tenant_id, event.outcome) == ("clinic-b", 404)


async def test_an_api_key_adds_nothing_to_a_link(
    app: FastAPI, client: httpx.AsyncClient, schema: AsyncEngine
) -> None:
    stored = await create(client)
    me = await client_id_of(app, client)
    assert (
        await client.get(link(app, stored["id"], changes={"signature": "C" * 43}))
    ).status_code == 403
    opened = await client.get(link(app, stored["id"]))
    assert opened.status_code == 200
    [event] = await view_events(schema)
    assert event.client_id == "cds:ehr-a" != me  # the link's client, not the key's


async def test_the_cards_link_opens_the_view(
    app: FastAPI, client: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    """What a CDS card carries (tests/api/test_cds_hooks.py checks the card) opens as it is."""
    stored: Json = await create(client)
    signer = signer_of(app)

    def query(screening_id: str) -> dict[str, str]:
        return signer.sign(screening_id, tenant=OPERATOR_TENANT, client_id="cds:x", now=time.time())

    url = Links("http://carelevel.test", query).screening(stored["id"])
    opened = await anonymous.get(url)
    assert opened.status_code == 200
    assert stored["summary"] in opened.text
