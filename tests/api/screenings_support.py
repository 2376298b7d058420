"""Helpers shared by the screening API specifications (no tests here)."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.audit.models import AuditEvent
from app.kernel.settings import Settings
from app.screenings.models import IdempotencyRecord
from app.screenings.schemas import ScreeningRequest
from app.screenings.service import fingerprint
from tests.support.apps import OPERATOR_TENANT, http_client, new_key, started_app
from tests.support.examples import Json

RULE_SET = "/v1/rule-sets/shared/iop-level-of-care"


async def all_screenings(
    client: httpx.AsyncClient, *, limit: int = 100, **filters: Any
) -> list[Json]:
    """Every screening summary GET /v1/screenings lists, following the cursors."""
    items: list[Json] = []
    params: dict[str, Any] = {"limit": limit, **filters}
    while True:
        response = await client.get("/v1/screenings", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        if page["next_cursor"] is None:
            return items
        params["cursor"] = page["next_cursor"]


async def assert_nothing_stored(client: httpx.AsyncClient) -> None:
    assert await all_screenings(client) == []


def step_up_to_partial_hospitalization(content: Json) -> None:
    """Edit a rule-set document: failed weekly outpatient care now steps up to partial
    hospitalization instead of IOP; the test cases that exercise the rule expect that."""
    placement = next(stage for stage in content["stages"] if stage.get("stage") == "placement")
    rule = next(rule for rule in placement["rules"] if rule["id"] == "place.iop-step-up")
    rule["level"] = "partial_hospitalization"
    for case in content["tests"]:
        if "place.iop-step-up" in case["expect"].get("fired", []):
            case["expect"]["level"] = "partial_hospitalization"
            case["expect"]["iop"] = "higher_level_needed"


async def draft_version(
    client: httpx.AsyncClient, edit: Callable[[Json], None] | None = None
) -> int:
    """A new draft copied from version 1 through the rule-set API, optionally edited."""
    created = await client.post(f"{RULE_SET}/versions", params={"copy_from": 1})
    assert created.status_code == 201, created.text
    version: int = created.json()["version"]
    if edit is not None:
        content = copy.deepcopy(created.json()["content"])
        edit(content)
        updated = await client.put(
            f"{RULE_SET}/versions/{version}",
            json=content,
            headers={"If-Match": created.headers["etag"]},
        )
        assert updated.status_code == 200, updated.text
    return version


async def published_version(
    client: httpx.AsyncClient, edit: Callable[[Json], None] | None = None
) -> int:
    """A new published (not active) version copied from version 1, optionally edited."""
    version = await draft_version(client, edit)
    published = await client.post(f"{RULE_SET}/versions/{version}/publish")
    assert published.status_code == 200, published.text
    return version


@contextlib.asynccontextmanager
async def client_for(schema: AsyncEngine, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Like the ``client`` fixture (empty tables, seeded default), for other ``settings``."""
    async with (
        started_app(schema, settings) as application,
        http_client(application, await new_key(application)) as http,
    ):
        yield http


async def leave_a_key_without_its_screening(
    schema: AsyncEngine, client_id: str, key: str, body: Json, claimed_at: datetime
) -> None:
    """What an earlier version of the service left when its process died between claiming
    ``key`` for ``body`` (a row "in progress", without a screening) and storing the screening;
    arranged in the database. The service no longer writes such rows."""
    print_ = fingerprint(ScreeningRequest.model_validate(body))
    async with AsyncSession(schema) as session, session.begin():
        session.add(
            IdempotencyRecord(
                tenant_id=OPERATOR_TENANT,
                client_id=client_id,
                key=key,
                fingerprint=print_,
                state="in_progress",
                created_at=claimed_at,
                expires_at=claimed_at + timedelta(hours=24),
            )
        )


async def stored_keys(schema: AsyncEngine) -> list[IdempotencyRecord]:
    """Every idempotency key in the database."""
    async with AsyncSession(schema) as session:
        return list((await session.execute(select(IdempotencyRecord))).scalars())


async def creation_events(schema: AsyncEngine) -> list[AuditEvent]:
    """The audit events of ``screening.create``, oldest first."""
    query = (
        select(AuditEvent)
        .where(AuditEvent.action == "screening.create")
        .order_by(AuditEvent.recorded_at)
    )
    async with AsyncSession(schema) as session:
        return list((await session.execute(query)).scalars())
